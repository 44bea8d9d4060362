/* pipeline: runs one configured pipeline for a due stream (issue 7).
 *
 * Handlers run in two phases. Compute (no side effects): every handler prepares what it
 * will do from the summary (sql: the template's values for the job row and one row per
 * missing minion; graphite: metric lines; counter: counter ids; emit: the tag; log: the
 * line); a handler that cannot (a bad value, a template error) fails the pipeline before
 * anything is written. Commit, in order: sql (one transaction per handler; all of its rows
 * or none), graphite and counter (through their sinks' write_batch + flush), log, and emit
 * last (the internal event goes to the master). A failed commit returns SINK_RETRY; the
 * caller (sink_trigger) retries the whole pipeline later with backoff, so handlers must be
 * idempotent: the shipped SQL upserts by jid, emitted events carry a stable event hash.
 * sql, graphite and counter handlers are the ordinary sinks (sink.h), opened lazily with the
 * handler's settings (a worker_config_t) and kept open; the summary is handed to them as an
 * event with the due stream's tag and the summary as data, so SQL templates read
 * :data.jid, :data.missing|json and so on. missing_template runs once per missing minion
 * with data = the summary without its `missing` list (10,000 missing minions would copy it
 * 10,000 times) + {"minion": id}, all of a handler's missing rows in one transaction, before
 * its job row. Graphite and counter handlers fold each summary in once (by its event hash),
 * so a rerun after a later handler failed does not count it twice.
 * Owns: its handlers' sinks.
 */
#ifndef EVENTSD_PIPELINE_H
#define EVENTSD_PIPELINE_H

#include "config.h"
#include "sink.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pipeline pipeline_t;

/* How emit reaches the master: sends tag + msgpack data; 0 or -1 (then the pipeline fails
 * and is retried). */
typedef int (*pipeline_emit_fn)(void *arg, const char *tag, size_t tag_len, const void *data,
                                size_t data_len);

pipeline_t *pipeline_new(const pipeline_config_t *cfg, const char *master_id,
                         pipeline_emit_fn emit, void *emit_arg, char *err, size_t errlen);
void pipeline_destroy(pipeline_t **self_p);

/* Runs the handlers for one due stream (tag and summary as trigger_engine hands them out,
 * missing the missing minions). SINK_OK, SINK_RETRY (err; retry later) or SINK_FATAL. */
sink_result_t pipeline_run(pipeline_t *self, const char *tag, const void *summary,
                           size_t summary_len, char *const *missing, size_t n_missing,
                           char *err, size_t errlen);

/* Timed work of the handlers' own sinks, once opened (redis rotates its intervals at their
 * boundaries, graphite sends a closing interval again, complete): the clock_ms() at which
 * pipeline_flush is due, INT64_MAX for never. */
int64_t pipeline_flush_at(pipeline_t *self);
/* Flushes every handler sink that is due. A failure is logged (rate-limited) and retried
 * later with a backoff of its own (1 s .. 5 min): it delays nothing else. */
void pipeline_flush(pipeline_t *self);

/* --check-config: the handlers' settings, the sinks' own checks (templates compiled for the
 * sink's dialect, missing_template too), the emit/log name templates. Every problem, one a
 * line ("FILE:LINE: message"; FILE is the handler sink's file, "config" when it has none). */
int pipeline_check(const pipeline_config_t *cfg, char *err, size_t errlen);

#endif
