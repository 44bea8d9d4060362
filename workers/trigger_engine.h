/* trigger_engine: the streams of one trigger worker (Winchester's model, issue 7), kept in a
 * SQLite file (worker key `state`) so they survive restarts.
 *
 * An event that matches one of a trigger's `match` criteria (tag pattern and field
 * conditions) joins the stream of that trigger keyed by its distinguished_by values (a missing
 * field: the event does not join, counted). Per stream the engine keeps, incrementally
 * (constant work per event, never re-reading the stream): first and last arrival, the number
 * of events, per fire criterion the number of matching events, and for all_expected the
 * expected minions (from the expected_tag event's expected_field list; those in data.missing
 * are recorded missing at once), which of them returned, succeeded (data.success true, or
 * data.retcode 0 when success is absent) or failed, duplicate returns (counted once), and
 * returns that arrive before the expected list (kept, matched when it arrives). Job fields
 * for the summary come from the expected_tag event: jid, fun, tgt, user, and _stamp.
 *
 * A stream is due to FIRE when every fire criterion holds (and all_expected, if set) and
 * fire_delay has passed since it first held; it is due to EXPIRE when expire_from (first or
 * last arrival) + expire_s has passed first. Times are wall-clock epoch ms (they persist).
 * When a worker holds max_streams open streams, a new one first expires the oldest early
 * (its expire pipeline runs; counted and logged).
 *
 * A due stream is handed out with a summary; it stays in the store, marked in progress, until
 * the caller reports its pipeline committed (finish: the stream is deleted) or failed (defer:
 * due again later). After a restart, streams in progress are due again: a stream can never
 * stay half-fired; pipelines must therefore be idempotent (the shipped SQL upserts).
 * Events of a stream that arrive while it is in progress or after it finished start a new
 * stream under the same key (a late return after a timeout shows up as its own stream only
 * if it matches; the shipped job trigger records it in salt_jobs by the upsert).
 *
 * Summary (msgpack map, the data of the internal event the pipeline sees; tag
 * "eventsd/trigger/<trigger>/fire" or ".../expire"):
 *   trigger, key (the distinguishing values joined by "/"), reason ("fire" | "expire" |
 *   "evicted"), events, first_stamp, last_stamp (ISO-8601 UTC), duration (s, float),
 *   counts (array: per fire criterion), and with all_expected: jid, fun, target, user,
 *   expected, returned, succeeded, failed, missing (array of minion ids that were expected
 *   and did not return, plus those listed missing by Salt), missing_count (its length),
 *   duplicates, unexpected (returns from minions not in the list). A stream that never saw
 *   its expected_tag event (a return after the job's stream finished, or eventsd started
 *   mid-job) has expected 0 and jid from its key: the shipped SQL does not let such a stream
 *   overwrite a job row that has an expected list.
 * Owns: the SQLite connection, compiled patterns and conditions.
 */
#ifndef EVENTSD_TRIGGER_ENGINE_H
#define EVENTSD_TRIGGER_ENGINE_H

#include "config.h"
#include "worker_event.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct trigger_engine trigger_engine_t;

typedef enum { TRIGGER_FIRE, TRIGGER_EXPIRE, TRIGGER_EVICTED } trigger_reason_t;

typedef struct {
    int64_t                 stream_id;
    const trigger_config_t *trigger;
    trigger_reason_t        reason;
    const char             *pipeline;   /* fire_pipeline or expire_pipeline; NULL = none:
                                           finish it at once */
    msgpack_sbuffer         tag;        /* NUL-terminated */
    msgpack_sbuffer         summary;    /* msgpack map, see above */
    char                  **missing;    /* the missing minions (also in the summary) */
    size_t                  n_missing;
} trigger_due_t;

typedef struct {
    uint64_t events, joined, unkeyed, streams_open, fired, expired, evicted, deferred;
} trigger_engine_stats_t;

/* Opens (creating) w->state, compiles the triggers w->triggers names from cfg. Errors name
 * the file and line of a bad pattern ("FILE:LINE: trigger 'x' match tag pattern: ..."). */
trigger_engine_t *trigger_engine_open(const eventsd_config_t *cfg, const worker_config_t *w,
                                      char *err, size_t errlen);
void trigger_engine_close(trigger_engine_t **self_p);

/* Applies events in one transaction. now_ms is wall-clock epoch ms. 0, or -1 with err and
 * nothing applied (the worker retries the batch). */
int trigger_engine_apply(trigger_engine_t *self, worker_event_t *const *events, size_t n,
                         int64_t now_ms, char *err, size_t errlen);

/* Epoch ms when the next stream is due (fire, expire or a deferred retry), INT64_MAX if none. */
int64_t trigger_engine_next_due(trigger_engine_t *self);

/* The next stream due at now_ms into *out (caller frees with trigger_due_free). 1, 0 (none
 * due) or -1 (err). */
int trigger_engine_next(trigger_engine_t *self, int64_t now_ms, trigger_due_t *out, char *err,
                        size_t errlen);
void trigger_due_free(trigger_due_t *due);

/* Its pipeline committed: the stream is gone. 0 or -1. */
int trigger_engine_finish(trigger_engine_t *self, int64_t stream_id, char *err, size_t errlen);
/* Its pipeline failed: due again at retry_at_ms (epoch). 0 or -1. */
int trigger_engine_defer(trigger_engine_t *self, int64_t stream_id, int64_t retry_at_ms,
                         char *err, size_t errlen);

const trigger_engine_stats_t *trigger_engine_stats(const trigger_engine_t *self);

/* For `eventsd --explain`: for each trigger of w, whether ev would join it and under which
 * key (no state is read). Lines indented by four spaces. */
void trigger_engine_explain(const eventsd_config_t *cfg, const worker_config_t *w,
                            const worker_event_t *ev, FILE *out);

#endif
