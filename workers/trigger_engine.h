/* trigger_engine: the streams of one trigger worker (Winchester's model, issue 7), kept in a
 * SQLite file (worker key `state`) so they survive restarts.
 *
 * An event that matches one of a trigger's `match` criteria (tag pattern and field
 * conditions, see trigger_match.h: numbers compare numerically, a missing field makes a
 * condition false) joins the stream of that trigger keyed by its distinguished_by values
 * (trigger_key.h: joined by "/", '%' and '/' in values escaped as %25 and %2F, "FIELD|day" /
 * "FIELD|hour" buckets of an ISO stamp; a missing field: the event does not join, counted as
 * unkeyed). Per stream the engine keeps, incrementally (constant work per event, never
 * re-reading the stream): first and last arrival, the earliest and latest _stamp, the
 * number of events, per fire criterion the number of joined events matching it, and for
 * all_expected the expected minions (from the expected_tag event's expected_field list;
 * those in its data.missing are recorded missing by Salt at once), which of them returned,
 * succeeded (data.success true, or data.retcode 0 when success is absent) or failed (the
 * first return of a minion decides), duplicate returns (counted in `duplicates`, once per
 * extra return, never twice in returned), and returns that arrive before the expected list
 * (kept, matched when it arrives). Expected-list and return events must join the stream
 * (match `match`) to count. Job fields for the summary come from the expected_tag event:
 * jid, fun, tgt, user; returns fill jid, fun and user while no expected event was seen.
 * Cost: a return is one member upsert + one stream update (plus the stream lookup),
 * whatever the job size; an expected-list event one upsert per listed minion.
 *
 * A stream is due to FIRE when every fire criterion holds (and all_expected: the list arrived
 * and every expected minion returned or was listed missing by Salt) and fire_delay has
 * passed since that first held; it is due to EXPIRE when expire_from (first or last
 * arrival) + expire_s comes first (a tie fires). A trigger with neither fire criteria nor
 * all_expected never fires: it only expires (a daily summary). Times are wall-clock epoch
 * ms passed in by the caller, never read here (they persist).
 * When a worker holds max_streams open streams, a new one first expires the oldest (by first
 * arrival) early: reason "evicted", its expire pipeline runs; counted in `evicted`, the
 * caller logs it.
 *
 * A due stream is handed out with a summary; it stays in the store, marked in progress, until
 * the caller reports its pipeline committed (finish: the stream is deleted) or failed (defer:
 * due again at retry_at, with the same reason). After a restart, streams in progress that
 * were not deferred are due at once, deferred ones at their retry time: a stream can never
 * stay half-fired; pipelines must therefore be idempotent (the shipped SQL upserts). The
 * summary is rebuilt from the stored row, byte-identical each time it is handed out.
 * At open, open streams take their due time from the current expire and fire_delay
 * settings; changed fire criteria counts apply from a stream's next event. Streams of a
 * trigger the worker no longer runs are set aside (not due, counted as `orphaned`) and come
 * back when a config runs it again. Stream ids are never reused.
 * Events of a stream that arrive while it is in progress or after it finished start a new
 * stream under the same key (a late return after a timeout is its own stream, with
 * expected_known false and expected 0; it expires on its own, and the shipped SQL does not
 * let it overwrite the job's row).
 *
 * Summary (msgpack map, the data of the internal event the pipeline sees; tag
 * "eventsd/trigger/<trigger>/fire" or ".../expire", evicted streams ".../expire" too), keys
 * in this order:
 *   trigger, key (the distinguishing values joined by "/"), reason ("fire" | "expire" |
 *   "evicted"), events, first_stamp, last_stamp (the _stamp texts as sent, nil when no event
 *   had one), duration (s, float: last - first stamp, by arrival when a stamp is absent),
 *   counts (array: per fire criterion), and with all_expected: jid, fun, target (data.tgt as
 *   Salt sent it: a string or a list), user (nil when unknown), expected_known (bool: the
 *   expected list arrived), expected, returned (distinct minions, listed or not), succeeded,
 *   failed, missing (sorted array of expected minions that did not return, Salt's missing
 *   ones included), missing_count, duplicates, unexpected (distinct returned minions not in
 *   the list; 0 while there is no list).
 * Owns: the store (trigger_store.h), compiled patterns, conditions and keys. The config
 * passed to open must outlive the engine: trigger_due_t.trigger points into it.
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
    uint64_t orphaned;       /* streams of a trigger this worker no longer runs, set aside
                                (kept, not due) until a config runs it again */
    uint64_t statements;     /* SQL statements executed since open (cost per event) */
    uint64_t rows_changed;   /* rows inserted, updated or deleted since open */
} trigger_engine_stats_t;

/* Opens (creating) w->state, compiles the triggers w->triggers names from cfg (looked up in
 * cfg->trigger_cfgs). Errors name the file and line of a bad pattern
 * ("FILE:LINE: trigger 'x' match #1 tag pattern '^(': MESSAGE at offset N", likewise
 * "fire #i", "expected_tag pattern", "returned_tag pattern", "match #i condition '...':
 * pattern ..."), "FILE:LINE: worker 'w' names unknown trigger 'x'", or the store's
 * "sqlite: PATH: ..." (also a state file of another schema version). */
trigger_engine_t *trigger_engine_open(const eventsd_config_t *cfg, const worker_config_t *w,
                                      char *err, size_t errlen);
void trigger_engine_close(trigger_engine_t **self_p);

/* Applies events in one transaction. now_ms is wall-clock epoch ms. 0, or -1 with err and
 * nothing applied (the worker retries the batch). */
int trigger_engine_apply(trigger_engine_t *self, worker_event_t *const *events, size_t n,
                         int64_t now_ms, char *err, size_t errlen);

/* Epoch ms when the next stream is due (fire, expire or a deferred retry), INT64_MAX if none;
 * 0 (due at once) when the store cannot answer, so the caller's next() reports the error. */
int64_t trigger_engine_next_due(trigger_engine_t *self);

/* The next stream due at now_ms (the earliest due first) into *out. 1 (caller frees it with
 * trigger_due_free), 0 (none due) or -1 (err); on 0 and -1 *out holds nothing to free
 * (trigger_due_free on it is harmless). The stream is in progress until finish or defer. */
int trigger_engine_next(trigger_engine_t *self, int64_t now_ms, trigger_due_t *out, char *err,
                        size_t errlen);
void trigger_due_free(trigger_due_t *due);

/* Its pipeline committed: the stream is gone. 0 or -1 (also for a stream that is not in
 * progress: only what next() handed out can be finished or deferred). */
int trigger_engine_finish(trigger_engine_t *self, int64_t stream_id, char *err, size_t errlen);
/* Its pipeline failed: due again at retry_at_ms (epoch). 0 or -1. */
int trigger_engine_defer(trigger_engine_t *self, int64_t stream_id, int64_t retry_at_ms,
                         char *err, size_t errlen);

const trigger_engine_stats_t *trigger_engine_stats(const trigger_engine_t *self);

/* --check-config: compiles w's triggers (tag patterns and conditions) without opening the
 * store. 0, or -1 with "FILE:LINE: trigger 'x' ... pattern: ..." in err. */
int trigger_engine_check(const eventsd_config_t *cfg, const worker_config_t *w, char *err,
                         size_t errlen);

/* For `eventsd --explain`: for each trigger of w, whether ev would join it and under which
 * key (no state is read). Lines indented by four spaces. */
void trigger_engine_explain(const eventsd_config_t *cfg, const worker_config_t *w,
                            const worker_event_t *ev, FILE *out);

#endif
