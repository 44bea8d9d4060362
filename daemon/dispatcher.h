/* dispatcher: the master's side of the workers. Owns the worker processes (fork, restart with
 * backoff, stop), their IPC sockets in the runtime directory, the queue of accepted events per
 * worker, the events each process has in flight, and the ack path.
 *
 * Delivery contract: an accepted event stays referenced by the master until the worker
 * process it was sent to acks it (after its sink committed). When a process dies, or its
 * connection breaks, every event it had not acked goes back to the front of its worker's
 * queue and is delivered again (at-least-once; sinks make replays no-ops).
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

/* runtime_dir must exist with mode 0700 (the caller creates it). */
dispatcher_t *dispatcher_new(const char *runtime_dir);
/* Stops nothing: call only after every process exited (dispatcher_idle) or after kill_all. */
void dispatcher_destroy(dispatcher_t **self_p);

/* Makes the running workers match ref->cfg->workers (see above). Index i of targets passed to
 * dispatcher_accept refers to ref->cfg->workers[i] from now on. */
int dispatcher_apply(dispatcher_t *self, config_ref_t *ref, char *err, size_t errlen);

/* Queues an accepted event for every worker whose targets[i] has RULES_DELIVER (priority
 * with RULES_PRIORITY). Takes ownership of ev's members (zeroes them). */
void dispatcher_accept(dispatcher_t *self, salt_event_t *ev, const uint8_t *targets);

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

/* True when so many events wait in memory that the bus should not be read for now. */
bool dispatcher_backlogged(const dispatcher_t *self);

/* Shutdown: every worker drains and stops once its queues are empty. */
void dispatcher_begin_drain(dispatcher_t *self);
/* True when no worker process is left. */
bool dispatcher_idle(const dispatcher_t *self);
/* Events accepted and not yet acked (queued + in flight). */
uint64_t dispatcher_pending(const dispatcher_t *self);
void dispatcher_kill_all(dispatcher_t *self);

/* Logs one stats fragment per worker; interval_s is used for rates. Appends to line. */
void dispatcher_format_stats(dispatcher_t *self, char *line, size_t len, double interval_s);

#endif
