/* sink: the one interface every storage backend implements (sqlite, file, pgsql, mysql; later
 * graphite, redis). Batching, retry with backoff, dead-lettering and acks live once, in the
 * worker, outside the sinks.
 *
 * A sink is opened inside the worker process, after fork, and owns exactly one connection.
 * write_batch writes n events in ONE transaction:
 *   SINK_OK          all n committed;
 *   SINK_RETRY       nothing committed, transient (locked, disconnected): retry later;
 *   SINK_REJECT_ROW  nothing committed, events[*bad_index] is rejected by the data itself:
 *                    the worker dead-letters it and writes the others again;
 *   SINK_FATAL       nothing committed, the sink cannot go on: the worker exits non-zero.
 * err receives a one-line reason for anything but SINK_OK.
 *
 * Aggregating sinks (graphite, redis counters) fold events into memory and send the result
 * later, once per interval. They set flush_at and flush: write_batch then only folds the
 * events in (SINK_OK = absorbed, nothing sent yet), and the worker holds the acks of every
 * absorbed event until flush returns SINK_OK. A worker that dies before that never acked
 * them, so the master sends them again to its successor and nothing is lost; flush must
 * therefore be safe to repeat after a partial failure (graphite: the same line for the same
 * time slot overwrites; redis: one MULTI/EXEC).
 */
#ifndef EVENTSD_SINK_H
#define EVENTSD_SINK_H

#include "config.h"
#include "worker_event.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { SINK_OK = 0, SINK_RETRY, SINK_REJECT_ROW, SINK_FATAL } sink_result_t;

typedef struct sink sink_t;

/* How a sink hands the worker an internal event of its own making (a trigger pipeline's emit
 * handler): the worker sends it to the master as ENVELOPE_EMIT (tag, msgpack data map).
 * 0, or -1 when it could not be sent (the master is gone). */
typedef int (*sink_emit_fn)(void *arg, const char *tag, size_t tag_len, const void *data,
                            size_t data_len);

typedef struct {
    const char *name;
    /* --check-config: validate settings and compile templates without connecting.
     * Errors as "FILE:LINE: message". */
    int (*check)(const worker_config_t *cfg, char *err, size_t errlen);
    sink_t *(*open)(const worker_config_t *cfg, const char *master_id, char *err, size_t errlen);
    sink_result_t (*write_batch)(sink_t *self, worker_event_t *const *events, size_t n,
                                 size_t *bad_index, char *err, size_t errlen);
    void (*close)(sink_t **self_p);
    /* Optional (NULL for row sinks). flush_at: the clock_ms() at which flush is due, also
     * when nothing is held if the sink has timed work of its own (redis rotates intervals
     * at their boundaries); INT64_MAX for never. flush: sends everything absorbed so far; SINK_OK,
     * SINK_RETRY (kept, retried with backoff) or SINK_FATAL. On STOP the worker flushes
     * whatever is held without waiting for flush_at. */
    int64_t (*flush_at)(sink_t *self);
    sink_result_t (*flush)(sink_t *self, char *err, size_t errlen);
    /* true for sinks whose write_batch only absorbs (graphite, redis): acks wait for flush.
     * false for a sink with flush timers whose write_batch commits (trigger). */
    bool defers_acks;
    /* Optional, for `eventsd --explain`: prints to out, one item per line indented by four
     * spaces, what this sink would make of ev (metric names with rollups, counter keys, the
     * template's values) without connecting anywhere. */
    void (*explain)(const worker_config_t *cfg, const char *master_id,
                    const worker_event_t *ev, FILE *out);
    /* Optional, for sinks that make events (trigger): the worker calls it after every
     * successful open with the function that sends an event to the master. */
    void (*set_emit)(sink_t *self, sink_emit_fn emit, void *arg);
} sink_ops_t;

/* NULL when no sink has that name. */
const sink_ops_t *sink_lookup(const char *name);

extern const sink_ops_t sink_sqlite_ops;
extern const sink_ops_t sink_file_ops;
extern const sink_ops_t sink_mysql_ops;
extern const sink_ops_t sink_pgsql_ops;
extern const sink_ops_t sink_graphite_ops;
extern const sink_ops_t sink_redis_ops;
extern const sink_ops_t sink_trigger_ops;

#endif
