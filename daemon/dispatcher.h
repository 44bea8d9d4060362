/* dispatcher: the master's side of the workers. Owns the worker processes (fork, restart with
 * backoff, stop), their IPC sockets in the runtime directory, the queue of accepted events per
 * worker, the events each process has in flight, and the ack path.
 *
 * Delivery contract: an accepted event is in the spool; each worker reads its backlog from its
 * spool consumer into a bounded memory window, so a dead sink's backlog stays on disk. An
 * event stays referenced by the master until the worker process it was sent to acks it (after
 * its sink committed); the worker's durable cursor is the lowest seq it has not committed.
 * When a process dies, or its connection breaks, every event it had not acked goes back to the
 * front of its worker's queue and is delivered again (at-least-once; sinks make replays
 * no-ops); after a master crash the spool replays from the cursors.
 * Priority events use a queue of their own and may exceed the in-flight limit, so a backlog
 * of ordinary events never delays them.
 * On SIGHUP the set of workers is re-applied: unchanged workers (same fingerprint) keep their
 * processes; changed or removed ones retire (take no new events, drain, stop) while their
 * replacements start at once.
 */
#ifndef EVENTSD_DISPATCHER_H
#define EVENTSD_DISPATCHER_H

#include "config.h"
#include "salt_frame.h"
#include "spool.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <zmq.h>

typedef struct dispatcher dispatcher_t;

/* A loaded config shared by the master and the workers started from it. */
typedef struct {
    eventsd_config_t *cfg;
    int               refs;
} config_ref_t;

config_ref_t *config_ref_new(eventsd_config_t *cfg);   /* takes ownership of cfg, refs = 1 */
config_ref_t *config_ref_get(config_ref_t *ref);
void config_ref_put(config_ref_t **ref_p);

/* runtime_dir must exist with mode 0700 (the caller creates it). spool is borrowed: each
 * worker reads its backlog from its consumer there and acks move its cursor. */
dispatcher_t *dispatcher_new(const char *runtime_dir, spool_t *spool);
/* Stops nothing: call only after every process exited (dispatcher_idle) or after kill_all. */
void dispatcher_destroy(dispatcher_t **self_p);

/* Makes the running workers match ref->cfg->workers (see above). Index i of targets passed to
 * dispatcher_accept refers to ref->cfg->workers[i] from now on. */
int dispatcher_apply(dispatcher_t *self, config_ref_t *ref, char *err, size_t errlen);

/* Hands the event just spooled as seq to every worker whose targets[i] has RULES_DELIVER
 * (priority with RULES_PRIORITY) and that is caught up with the spool: it is queued from
 * memory; a worker that is behind reads it from the spool later. Takes ownership of ev's
 * members (zeroes them). */
void dispatcher_accept(dispatcher_t *self, salt_event_t *ev, const uint8_t *targets,
                       uint64_t seq);

/* How many poll items dispatcher_pollitems needs now. */
int dispatcher_n_pollitems(const dispatcher_t *self);
/* Changes whenever workers are added or removed: items built before a change are stale and
 * must not be passed to dispatcher_handle. */
uint64_t dispatcher_layout(const dispatcher_t *self);
/* Poll items for listening and connected worker sockets; returns how many were written. */
int dispatcher_pollitems(dispatcher_t *self, zmq_pollitem_t *items, int max);
/* Handles the revents of the items from dispatcher_pollitems. */
void dispatcher_handle(dispatcher_t *self, const zmq_pollitem_t *items, int n);
/* Called for every reaped child. Returns false when pid was not a worker. */
bool dispatcher_child_exited(dispatcher_t *self, pid_t pid, int status);
/* Restarts, sends, stops retiring workers. */
void dispatcher_tick(dispatcher_t *self, int64_t now_ms);
int dispatcher_timeout_ms(const dispatcher_t *self, int64_t now_ms);

/* Moves every worker's spool cursor to the lowest seq it has not committed (also done every
 * 100 ms by dispatcher_tick; call before closing the spool). */
void dispatcher_update_cursors(dispatcher_t *self);

/* Shutdown: every worker drains and stops once its queues are empty. */
void dispatcher_begin_drain(dispatcher_t *self);
/* True when no worker process is left. */
bool dispatcher_idle(const dispatcher_t *self);
/* Events accepted and not yet acked (spooled and unread + queued + in flight; the spooled
 * part counts every unread record, also those for other workers: an upper bound). */
uint64_t dispatcher_pending(const dispatcher_t *self);
void dispatcher_kill_all(dispatcher_t *self);

/* An internal event a worker made (EMIT: a trigger pipeline's emit handler). tag and data
 * (msgpack map) are valid during the call only. */
typedef void (dispatcher_emit_fn)(void *arg, const char *worker, const char *tag, size_t tag_len,
                                  const void *data, size_t data_len);
void dispatcher_on_emit(dispatcher_t *self, dispatcher_emit_fn *fn, void *arg);

/* One worker's figures (the current groups; a reload's retiring ones are left out). */
typedef struct {
    const char *name;                      /* valid until the next dispatcher_apply */
    int         processes;
    uint64_t    written, rejected, restarts;
    uint64_t    pending;                   /* queued in memory and in flight */
    uint64_t    spooled, dropped;          /* upper bounds, see dispatcher_pending */
    int64_t     latency_last_ms;           /* entering memory to the ack, last acked event */
    int64_t     latency_max_ms;            /* the largest since the last stats line */
} worker_figures_t;

/* Fills out[0 .. max-1]; returns the number filled. */
int dispatcher_figures(dispatcher_t *self, worker_figures_t *out, int max);

/* Logs one stats fragment per worker; interval_s is used for rates; starts a new
 * latency_max_ms interval. Appends to line. */
void dispatcher_format_stats(dispatcher_t *self, char *line, size_t len, double interval_s);

#endif
