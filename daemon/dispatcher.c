#include "dispatcher.h"
#include "envelope.h"
#include "log.h"
#include "rules.h"
#include "spool.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Events a worker may have read from the spool into memory, beyond those in flight: the
 * backlog stays on disk, so the master's memory does not grow with it. */
#define QUEUE_WINDOW_MIN  1000
#define PRIORITY_WINDOW   10000
#define READS_PER_TICK    5000
#define CURSOR_EVERY_MS   100
#define RESTART_MIN_MS    100
#define RESTART_MAX_MS    10000
#define STABLE_AFTER_MS   10000
#define EXIT_GRACE_MS     5000    /* a worker that hung up after STOP gets this long to exit */
#define ENVELOPE_MAX      (1u << 30)

/* One accepted event, shared by every worker queue that holds it. */
typedef struct {
    int      refs;
    uint64_t seq;
    char    *tag;
    size_t   tag_len;
    uint8_t *payload;
    size_t   payload_len;
    int64_t  since_ms;   /* when it entered memory: acks measure latency from here */
} mevent_t;

typedef struct {
    mevent_t *ev;
    bool      priority;
} entry_t;

/* A FIFO of entries that can also take entries back at its front (re-delivery). */
typedef struct {
    entry_t *items;
    size_t   cap, head, len;
} equeue_t;

typedef enum { SLOT_IDLE, SLOT_RUNNING } slot_state_t;

typedef struct {
    int                idx;
    slot_state_t       state;
    pid_t              pid;
    int                listen_fd, conn_fd;
    char              *socket_path;
    equeue_t           inflight;
    msgpack_sbuffer    out;
    size_t             out_off;
    envelope_reader_t *reader;
    bool               stop_sent;
    int                backoff_ms;
    int64_t            started_ms, restart_at_ms;
    int64_t            term_at_ms;   /* told to STOP and hung up: SIGTERM if still alive then */
} slot_t;

typedef struct group {
    char           *name;
    spool_consumer_t *consumer;   /* shared by the groups of one name; NULL once removed */
    uint64_t        prio_mem_from; /* priority events from this seq on were queued in memory */
    uint64_t        spill_from;    /* ... unless at or after this one (priority window full) */
    config_ref_t   *ref;
    int             cfg_index;
    int             generation;
    bool            retiring;
    equeue_t        queue, priority_queue;
    slot_t         *slots;
    int             n_slots;
    uint64_t        committed, rejected, restarts, committed_at_last_stats;
    int64_t         latency_last_ms, latency_max_ms;   /* entering memory to ack */
    struct group   *next;
} group_t;

struct dispatcher {
    char     *runtime_dir;
    spool_t  *spool;          /* borrowed */
    int64_t   cursors_at_ms;
    group_t  *groups;
    group_t **by_index;       /* current config's worker index -> group */
    int       n_index;
    int       generation;
    uint64_t  layout;         /* changes whenever groups are added or removed */
    bool      draining;
    uint64_t  queued_events, queued_bytes;
    dispatcher_emit_fn *emit;   /* EMIT messages from workers go here */
    void     *emit_arg;
};

/* ---- config references ---- */

config_ref_t *config_ref_new(eventsd_config_t *cfg)
{
    config_ref_t *ref = calloc(1, sizeof *ref);
    if (ref) {
        ref->cfg = cfg;
        ref->refs = 1;
    }
    return ref;
}

config_ref_t *config_ref_get(config_ref_t *ref)
{
    ref->refs++;
    return ref;
}

void config_ref_put(config_ref_t **ref_p)
{
    if (!ref_p || !*ref_p)
        return;
    if (--(*ref_p)->refs == 0) {
        eventsd_config_destroy(&(*ref_p)->cfg);
        free(*ref_p);
    }
    *ref_p = NULL;
}

/* ---- events and queues ---- */

static void mevent_put(dispatcher_t *d, mevent_t *ev)
{
    if (--ev->refs > 0)
        return;
    d->queued_events--;
    d->queued_bytes -= ev->payload_len + ev->tag_len;
    free(ev->tag);
    free(ev->payload);
    free(ev);
}

static int equeue_grow(equeue_t *q)
{
    size_t cap = q->cap ? q->cap * 2 : 256;
    entry_t *items = malloc(cap * sizeof *items);
    if (!items)
        return -1;
    for (size_t i = 0; i < q->len; i++)
        items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static int equeue_push_back(equeue_t *q, entry_t e)
{
    if (q->len == q->cap && equeue_grow(q) < 0)
        return -1;
    q->items[(q->head + q->len++) % q->cap] = e;
    return 0;
}

static int equeue_push_front(equeue_t *q, entry_t e)
{
    if (q->len == q->cap && equeue_grow(q) < 0)
        return -1;
    q->head = (q->head + q->cap - 1) % q->cap;
    q->items[q->head] = e;
    q->len++;
    return 0;
}

static entry_t equeue_pop_front(equeue_t *q)
{
    entry_t e = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return e;
}

static entry_t equeue_pop_back(equeue_t *q)
{
    return q->items[(q->head + --q->len) % q->cap];
}

static void equeue_clear(dispatcher_t *d, equeue_t *q)
{
    while (q->len)
        mevent_put(d, equeue_pop_front(q).ev);
    free(q->items);
    memset(q, 0, sizeof *q);
}

/* ---- slots: sockets and processes ---- */

static const worker_config_t *group_cfg(const group_t *g)
{
    return &g->ref->cfg->workers[g->cfg_index];
}

static int slot_listen(dispatcher_t *d, group_t *g, slot_t *s, char *err, size_t errlen)
{
    char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    int n = snprintf(path, sizeof path, "%s/%s.%d.%d.sock", d->runtime_dir, g->name,
                     g->generation, s->idx);
    if (n < 0 || (size_t) n >= sizeof path) {
        snprintf(err, errlen, "runtime_dir %s: socket path too long", d->runtime_dir);
        return -1;
    }
    unlink(path);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask(0177);   /* sockets 0600 from the start, no window with wider mode */
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *) &sa, sizeof sa);
    umask(old);
    if (rc < 0 || listen(fd, 4) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->listen_fd = fd;
    s->socket_path = strdup(path);
    return 0;
}

static void slot_close_conn(slot_t *s)
{
    if (s->conn_fd >= 0)
        close(s->conn_fd);
    s->conn_fd = -1;
    msgpack_sbuffer_clear(&s->out);
    s->out_off = 0;
    envelope_reader_destroy(&s->reader);
}

static group_t *find_active_group(dispatcher_t *d, const char *name)
{
    for (group_t *g = d->groups; g; g = g->next)
        if (!g->retiring && strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

/* Everything the process had not acked goes back to the front of the queues, in order: its
 * own worker's, or, when a reload replaced that worker, the replacement's (the old settings
 * may be the very thing the operator fixed). */
static void slot_requeue(dispatcher_t *d, group_t *g, slot_t *s)
{
    size_t n = s->inflight.len;
    group_t *to = g->retiring ? find_active_group(d, g->name) : NULL;
    if (!to)
        to = g;
    while (s->inflight.len) {
        entry_t e = equeue_pop_back(&s->inflight);
        equeue_push_front(e.priority ? &to->priority_queue : &to->queue, e);
    }
    if (n)
        log_warning("msg=\"re-queued unacknowledged events\" worker=%s slot=%d events=%zu",
                    g->name, s->idx, n);
}

static void child_exec_worker(group_t *g, slot_t *s)
{
    /* Nothing that holds a socket or a connection crosses the fork: close every inherited
     * descriptor (the bus, zmq's, other workers' sockets) but stdio. */
    close_range(3, ~0u, 0);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);     /* reload is the master's business */
    signal(SIGINT, SIG_IGN);     /* a terminal ^C goes to the master, which drains us */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    char ident[128];
    snprintf(ident, sizeof ident, "worker:%s/%d", g->name, s->idx);
    log_set_ident(ident);
    worker_run(group_cfg(g), g->ref->cfg->master_id, g->ref->cfg->bus.max_depth, s->socket_path);
}

static void slot_spawn(group_t *g, slot_t *s, int64_t now)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        child_exec_worker(g, s);
    if (pid < 0) {
        log_error("msg=\"fork failed\" worker=%s slot=%d error=\"%s\"", g->name, s->idx,
                  strerror(errno));
        s->restart_at_ms = now + s->backoff_ms;
        return;
    }
    s->state = SLOT_RUNNING;
    s->pid = pid;
    s->started_ms = now;
    s->stop_sent = false;
    s->term_at_ms = 0;
    log_info("msg=\"worker started\" worker=%s slot=%d pid=%d sink=%s", g->name, s->idx,
             (int) pid, group_cfg(g)->sink);
}

/* ---- groups ---- */

static bool group_spool_done(const group_t *g);

static bool group_empty(const group_t *g)
{
    if (g->queue.len || g->priority_queue.len || !group_spool_done(g))
        return false;
    for (int i = 0; i < g->n_slots; i++)
        if (g->slots[i].inflight.len)
            return false;
    return true;
}

static bool group_has_process(const group_t *g)
{
    for (int i = 0; i < g->n_slots; i++)
        if (g->slots[i].state == SLOT_RUNNING)
            return true;
    return false;
}

static void group_free(dispatcher_t *d, group_t *g)
{
    for (int i = 0; i < g->n_slots; i++) {
        slot_t *s = &g->slots[i];
        slot_close_conn(s);
        if (s->listen_fd >= 0)
            close(s->listen_fd);
        if (s->socket_path)
            unlink(s->socket_path);
        free(s->socket_path);
        msgpack_sbuffer_destroy(&s->out);
        equeue_clear(d, &s->inflight);
    }
    equeue_clear(d, &g->queue);
    equeue_clear(d, &g->priority_queue);
    free(g->slots);
    free(g->name);
    config_ref_put(&g->ref);
    free(g);
}

/* A group that never ran (a failed apply): a consumer made for a name no running group has
 * would hold every segment forever, so it goes too. */
static void group_discard(dispatcher_t *d, group_t *g)
{
    if (g->consumer && !find_active_group(d, g->name))
        spool_consumer_remove(d->spool, g->name);
    group_free(d, g);
}

static group_t *group_new(dispatcher_t *d, config_ref_t *ref, int index, int generation,
                          char *err, size_t errlen)
{
    const worker_config_t *wc = &ref->cfg->workers[index];
    group_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->name = strdup(wc->name);
    g->consumer = g->name ? spool_consumer(d->spool, g->name) : NULL;
    g->prio_mem_from = spool_next_seq(d->spool);
    g->spill_from = UINT64_MAX;
    g->ref = config_ref_get(ref);
    g->cfg_index = index;
    g->generation = generation;
    g->n_slots = wc->processes;
    g->slots = calloc((size_t) g->n_slots, sizeof *g->slots);
    if (!g->name || !g->slots || !g->consumer) {
        snprintf(err, errlen, "out of memory");
        g->n_slots = 0;
        group_discard(d, g);
        return NULL;
    }
    for (int i = 0; g->slots && i < g->n_slots; i++) {
        slot_t *s = &g->slots[i];
        s->idx = i;
        s->listen_fd = s->conn_fd = -1;
        s->backoff_ms = RESTART_MIN_MS;
        msgpack_sbuffer_init(&s->out);
    }
    for (int i = 0; g->slots && i < g->n_slots; i++)
        if (slot_listen(d, g, &g->slots[i], err, errlen) < 0) {
            group_discard(d, g);
            return NULL;
        }
    return g;
}

dispatcher_t *dispatcher_new(const char *runtime_dir, spool_t *spool)
{
    dispatcher_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->runtime_dir = strdup(runtime_dir);
    d->spool = spool;
    return d;
}

void dispatcher_destroy(dispatcher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dispatcher_t *d = *self_p;
    while (d->groups) {
        group_t *g = d->groups;
        d->groups = g->next;
        group_free(d, g);
    }
    free(d->by_index);
    free(d->runtime_dir);
    free(d);
    *self_p = NULL;
}

static void link_at_tail(dispatcher_t *d, group_t *g)
{
    group_t **link = &d->groups;
    while (*link)
        link = &(*link)->next;
    *link = g;
    d->layout++;
}

/* The events still queued (not in flight) for a retiring worker go to its replacement. */
static void retire(group_t *g, group_t *successor, const char *why)
{
    g->retiring = true;
    if (successor) {   /* it reads on from where g stopped, with g's memory of priorities */
        successor->prio_mem_from = g->prio_mem_from;
        successor->spill_from = g->spill_from;
    }
    size_t moved = g->queue.len + g->priority_queue.len;
    while (successor && g->priority_queue.len)
        equeue_push_back(&successor->priority_queue, equeue_pop_front(&g->priority_queue));
    while (successor && g->queue.len)
        equeue_push_back(&successor->queue, equeue_pop_front(&g->queue));
    log_info("msg=\"%s\" worker=%s queued_events_moved=%zu", why, g->name,
             successor ? moved : 0);
}

/* A removed worker's spooled backlog is nobody's any more: its cursor goes. */
static void forget_consumer(dispatcher_t *d, const char *name)
{
    for (group_t *g = d->groups; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            g->consumer = NULL;
    spool_consumer_remove(d->spool, name);
}

static bool same_settings(const group_t *g, const worker_config_t *wc)
{
    return g && strcmp(group_cfg(g)->fingerprint, wc->fingerprint) == 0;
}

/* Two phases: every new group is created before anything running is touched, so a failure
 * leaves the dispatcher exactly as it was. */
int dispatcher_apply(dispatcher_t *d, config_ref_t *ref, char *err, size_t errlen)
{
    int n = ref->cfg->n_workers;
    group_t **index = calloc((size_t) n + 1, sizeof *index);
    bool *created = calloc((size_t) n + 1, sizeof *created);
    if (!index || !created) {
        free(index);
        free(created);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int generation = d->generation + 1;
    for (int i = 0; i < n; i++) {
        const worker_config_t *wc = &ref->cfg->workers[i];
        group_t *running = find_active_group(d, wc->name);
        if (same_settings(running, wc)) {
            index[i] = running;
            continue;
        }
        index[i] = group_new(d, ref, i, generation, err, errlen);
        created[i] = index[i] != NULL;
        if (!index[i]) {
            for (int k = 0; k < i; k++)
                if (created[k])
                    group_discard(d, index[k]);
            free(index);
            free(created);
            return -1;
        }
    }
    d->generation = generation;
    for (int i = 0; i < n; i++) {
        group_t *running = find_active_group(d, ref->cfg->workers[i].name);
        if (created[i]) {
            if (running)
                retire(running, index[i], "worker changed, retiring its processes after they drain");
        } else {   /* same settings: keep the processes, follow the new config */
            config_ref_t *old = running->ref;
            running->ref = config_ref_get(ref);
            running->cfg_index = i;
            config_ref_put(&old);
        }
    }
    for (group_t *g = d->groups; g; g = g->next) {
        bool kept = false;
        for (int i = 0; i < n; i++)
            kept |= index[i] == g;
        if (!kept && !g->retiring) {
            retire(g, NULL, "worker removed from config, retiring after drain");
            forget_consumer(d, g->name);
        }
    }
    for (int i = 0; i < n; i++)
        if (created[i])
            link_at_tail(d, index[i]);
    free(created);
    free(d->by_index);
    d->by_index = index;
    d->n_index = n;
    return 0;
}

/* ---- accepting and sending ---- */

static size_t queue_window(const group_t *g)
{
    size_t w = (size_t) group_cfg(g)->max_inflight;
    return w < QUEUE_WINDOW_MIN ? QUEUE_WINDOW_MIN : w;
}

/* An event in master memory: takes tag and payload (malloc'd, freed by mevent_put); NULL, with
 * both freed, when out of memory. */
static mevent_t *mevent_adopt(dispatcher_t *d, uint64_t seq, char *tag, size_t tag_len,
                              uint8_t *payload, size_t payload_len)
{
    mevent_t *m = calloc(1, sizeof *m);
    if (!m) {
        free(tag);
        free(payload);
        return NULL;
    }
    *m = (mevent_t){ .seq = seq, .tag = tag, .tag_len = tag_len, .payload = payload,
                     .payload_len = payload_len, .since_ms = clock_ms() };
    d->queued_events++;
    d->queued_bytes += payload_len + tag_len;
    return m;
}

/* An event read from the spool: copies of its tag and payload (the record's buffer is reused). */
static mevent_t *mevent_new(dispatcher_t *d, uint64_t seq, const char *tag, size_t tag_len,
                            const uint8_t *payload, size_t payload_len)
{
    char *t = malloc(tag_len + 1);
    uint8_t *p = malloc(payload_len ? payload_len : 1);
    if (!t || !p) {
        free(t);
        free(p);
        return NULL;
    }
    memcpy(t, tag, tag_len);
    t[tag_len] = '\0';
    memcpy(p, payload, payload_len);
    return mevent_adopt(d, seq, t, tag_len, p, payload_len);
}

static bool priority_in_memory(const group_t *g, uint64_t seq)
{
    return seq >= g->prio_mem_from && seq < g->spill_from;
}

/* Whether g takes the event just spooled as seq from memory; otherwise it reads it from the
 * spool later (its consumer is behind, or its window is full). */
static bool takes_from_memory(group_t *g, uint64_t seq, bool prio)
{
    if (prio && g->spill_from == UINT64_MAX) {
        if (g->priority_queue.len < PRIORITY_WINDOW) {
            spool_consumer_follow(g->consumer, seq);   /* else the reader skips it later */
            return true;
        }
        g->spill_from = seq;   /* from here on priorities of g come through the spool */
    }
    return g->queue.len + g->priority_queue.len < queue_window(g) &&
           spool_consumer_follow(g->consumer, seq);
}

void dispatcher_accept(dispatcher_t *d, salt_event_t *ev, const uint8_t *targets, uint64_t seq)
{
    mevent_t *m = mevent_adopt(d, seq, ev->tag, ev->tag_len, ev->payload, ev->payload_len);
    memset(ev, 0, sizeof *ev);
    if (!m)
        return;
    for (int i = 0; i < d->n_index; i++) {
        group_t *g = d->by_index[i];
        if (!(targets[i] & RULES_DELIVER)) {
            spool_consumer_follow(g->consumer, seq);   /* not for g: nothing to read later */
            continue;
        }
        bool prio = targets[i] & RULES_PRIORITY;
        if (!takes_from_memory(g, seq, prio))
            continue;
        m->refs++;
        equeue_push_back(prio ? &g->priority_queue : &g->queue, (entry_t){ m, prio });
    }
    if (m->refs == 0) {
        m->refs = 1;
        mevent_put(d, m);
    }
}

/* Reads g's backlog from the spool into memory, up to its window. */
static void group_fill(dispatcher_t *d, group_t *g)
{
    if (g->retiring || !g->consumer)
        return;
    size_t window = queue_window(g);
    spool_record_t rec;
    for (int n = 0; n < READS_PER_TICK && g->queue.len + g->priority_queue.len < window; n++) {
        int rc = spool_consumer_next(g->consumer, &rec);
        if (rc == 0) {
            if (g->spill_from != UINT64_MAX) {   /* caught up: priorities in memory again */
                g->prio_mem_from = spool_next_seq(d->spool);
                g->spill_from = UINT64_MAX;
            }
            return;
        }
        bool prio = false;
        if (rc < 0 || !spool_record_targets(&rec, g->name, &prio))
            continue;
        if (prio && priority_in_memory(g, rec.seq))
            continue;
        mevent_t *m = mevent_new(d, rec.seq, rec.tag, rec.tag_len, rec.payload, rec.payload_len);
        if (!m)
            return;
        m->refs = 1;
        equeue_push_back(prio ? &g->priority_queue : &g->queue, (entry_t){ m, prio });
    }
}

/* The master gives up on a connection: its unacked events go back to the queue, and a process
 * that is still alive is terminated so that it is reaped and restarted (a live process without
 * a connection would never get events, nor STOP). */
static void slot_drop_conn(dispatcher_t *d, group_t *g, slot_t *s)
{
    slot_close_conn(s);
    slot_requeue(d, g, s);
    if (s->state != SLOT_RUNNING)
        return;
    if (s->stop_sent)   /* after STOP it is exiting by itself: give it time before SIGTERM */
        s->term_at_ms = clock_ms() + EXIT_GRACE_MS;
    else
        kill(s->pid, SIGTERM);
}

static bool slot_can_send(const slot_t *s)
{
    return s->state == SLOT_RUNNING && s->conn_fd >= 0 && !s->stop_sent;
}

/* Drops what was sent from the front of the buffer: events keep being appended while a slow
 * worker reads, and without this the buffer would only ever grow. */
static void slot_compact_out(slot_t *s)
{
    if (s->out_off < (1u << 20) && s->out_off * 2 < s->out.size)
        return;
    memmove(s->out.data, s->out.data + s->out_off, s->out.size - s->out_off);
    s->out.size -= s->out_off;
    s->out_off = 0;
}

static void slot_flush_out(dispatcher_t *d, group_t *g, slot_t *s)
{
    while (s->out_off < s->out.size) {
        ssize_t n = send(s->conn_fd, s->out.data + s->out_off, s->out.size - s->out_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                slot_compact_out(s);
                return;
            }
            log_warning("msg=\"worker connection broken\" worker=%s slot=%d error=\"%s\"",
                        g->name, s->idx, strerror(errno));
            slot_drop_conn(d, g, s);
            return;
        }
        s->out_off += (size_t) n;
    }
    msgpack_sbuffer_clear(&s->out);
    s->out_off = 0;
}

static void slot_send(slot_t *s, entry_t e)
{
    envelope_pack_event(&s->out, e.ev->seq, e.priority ? ENVELOPE_FLAG_PRIORITY : 0, e.ev->tag,
                        e.ev->tag_len, e.ev->payload, e.ev->payload_len);
    equeue_push_back(&s->inflight, e);
}

/* The connected slot with the fewest events in flight, if it has room under limit. */
static slot_t *least_loaded(group_t *g, size_t limit)
{
    slot_t *best = NULL;
    for (int i = 0; i < g->n_slots; i++) {
        slot_t *s = &g->slots[i];
        if (slot_can_send(s) && s->inflight.len < limit &&
            (!best || s->inflight.len < best->inflight.len))
            best = s;
    }
    return best;
}

static void group_dispatch(dispatcher_t *d, group_t *g)
{
    size_t limit = (size_t) group_cfg(g)->max_inflight;
    slot_t *s;
    group_fill(d, g);
    while (g->priority_queue.len && (s = least_loaded(g, 2 * limit)))
        slot_send(s, equeue_pop_front(&g->priority_queue));
    while (g->queue.len && (s = least_loaded(g, limit)))
        slot_send(s, equeue_pop_front(&g->queue));
    for (int i = 0; i < g->n_slots; i++)
        if (g->slots[i].conn_fd >= 0 && g->slots[i].out.size)
            slot_flush_out(d, g, &g->slots[i]);
}

/* ---- socket events ---- */

static void slot_accept(group_t *g, slot_t *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (s->state != SLOT_RUNNING || s->conn_fd >= 0) {
        close(fd);   /* not the process we started: nobody else may talk to a slot */
        return;
    }
    s->reader = envelope_reader_new(ENVELOPE_MAX);
    if (!s->reader) {
        close(fd);
        return;
    }
    s->conn_fd = fd;
    log_debug("msg=\"worker connected\" worker=%s slot=%d pid=%d", g->name, s->idx, (int) s->pid);
}

static int slot_on_ack(group_t *g, slot_t *s, dispatcher_t *d, const envelope_msg_t *m)
{
    bool found = false;
    for (size_t i = 0; i < s->inflight.len && !found; i++)
        found = s->inflight.items[(s->inflight.head + i) % s->inflight.cap].ev->seq == m->seq;
    if (!found)
        return -1;
    for (;;) {
        entry_t e = equeue_pop_front(&s->inflight);
        uint64_t seq = e.ev->seq;
        if (seq == m->seq) {
            g->latency_last_ms = clock_ms() - e.ev->since_ms;
            if (g->latency_last_ms > g->latency_max_ms)
                g->latency_max_ms = g->latency_last_ms;
        }
        mevent_put(d, e.ev);
        if (seq == m->seq)
            break;
    }
    g->committed += m->committed;
    g->rejected += m->rejected;
    return 0;
}

/* Reads what the worker sent and applies its acks. Returns 1 while the connection is usable,
 * 0 once it is over (EOF, error, protocol violation). */
static int slot_read_acks(dispatcher_t *d, group_t *g, slot_t *s)
{
    ssize_t n = envelope_reader_fill(s->reader, s->conn_fd);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 1;
    char err[128];
    envelope_msg_t m;
    int rc;
    while (n > 0 && (rc = envelope_reader_next(s->reader, &m, err, sizeof err)) != 0) {
        if (rc > 0 && m.type == ENVELOPE_EMIT) {
            if (d->emit)
                d->emit(d->emit_arg, g->name, m.tag, m.tag_len, m.payload, m.payload_len);
            continue;
        }
        if (rc < 0 || m.type != ENVELOPE_ACK || slot_on_ack(g, s, d, &m) < 0) {
            log_error("msg=\"protocol error from worker, killing it\" worker=%s slot=%d "
                      "error=\"%s\"", g->name, s->idx, rc < 0 ? err : "unexpected ack");
            kill(s->pid, SIGKILL);
            n = 0;
        }
    }
    return n > 0;
}

static void slot_on_readable(dispatcher_t *d, group_t *g, slot_t *s)
{
    if (!slot_read_acks(d, g, s))
        slot_drop_conn(d, g, s);
}

int dispatcher_pollitems(dispatcher_t *d, zmq_pollitem_t *items, int max)
{
    int n = 0;
    for (group_t *g = d->groups; g; g = g->next)
        for (int i = 0; i < g->n_slots && n < max; i++) {
            slot_t *s = &g->slots[i];
            int fd = s->conn_fd >= 0 ? s->conn_fd : s->listen_fd;
            short events = ZMQ_POLLIN | (s->conn_fd >= 0 && s->out.size ? ZMQ_POLLOUT : 0);
            items[n++] = (zmq_pollitem_t){ .fd = fd, .events = events };
        }
    return n;
}

void dispatcher_handle(dispatcher_t *d, const zmq_pollitem_t *items, int n)
{
    int k = 0;
    for (group_t *g = d->groups; g; g = g->next)
        for (int i = 0; i < g->n_slots && k < n; i++, k++) {
            slot_t *s = &g->slots[i];
            if (!items[k].revents)
                continue;
            if (items[k].fd == s->listen_fd)
                slot_accept(g, s);
            else if (items[k].fd == s->conn_fd && (items[k].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
                slot_on_readable(d, g, s);
            if (s->conn_fd >= 0 && items[k].fd == s->conn_fd && (items[k].revents & ZMQ_POLLOUT))
                slot_flush_out(d, g, s);
        }
}

/* ---- process lifecycle ---- */

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exit_code=%d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "signal=%d", WTERMSIG(status));
    else
        snprintf(buf, len, "status=%d", status);
}

bool dispatcher_child_exited(dispatcher_t *d, pid_t pid, int status)
{
    int64_t now = clock_ms();
    for (group_t *g = d->groups; g; g = g->next)
        for (int i = 0; i < g->n_slots; i++) {
            slot_t *s = &g->slots[i];
            if (s->state != SLOT_RUNNING || s->pid != pid)
                continue;
            /* Its last acks may still sit in the socket: apply them before re-queueing, or
             * committed events would be delivered again. */
            for (int k = 0; k < 4096 && s->conn_fd >= 0 && slot_read_acks(d, g, s); k++)
                ;   /* bounded: EAGAIN would mean a live peer, which a reaped child is not */
            slot_close_conn(s);
            slot_requeue(d, g, s);
            s->state = SLOT_IDLE;
            s->pid = 0;
            bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 && s->stop_sent;
            if (now - s->started_ms > STABLE_AFTER_MS)
                s->backoff_ms = RESTART_MIN_MS;
            char how[48];
            describe_status(status, how, sizeof how);
            if (clean) {
                log_info("msg=\"worker stopped\" worker=%s slot=%d pid=%d", g->name, i, (int) pid);
            } else {
                g->restarts++;
                log_warning("msg=\"worker died, restarting\" worker=%s slot=%d pid=%d %s "
                            "restart_in_ms=%d", g->name, i, (int) pid, how, s->backoff_ms);
            }
            s->restart_at_ms = now + (clean ? 0 : s->backoff_ms);
            s->backoff_ms = s->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : s->backoff_ms * 2;
            return true;
        }
    return false;
}

/* A group that is winding down (shutdown or retired by a reload) still runs processes while it
 * has queued events; once it has none, each process is told to stop. Events in flight belong
 * to running processes (or come back to the queue when one dies), so they need no new one. */
static bool group_winding_down(const dispatcher_t *d, const group_t *g)
{
    return d->draining || g->retiring;
}

static bool group_spool_done(const group_t *g)
{
    return g->retiring || !g->consumer || spool_consumer_at_end(g->consumer);
}

static bool group_needs_processes(const dispatcher_t *d, const group_t *g)
{
    return !group_winding_down(d, g) || g->queue.len || g->priority_queue.len ||
           !group_spool_done(g);
}

/* STOP follows every event already sent on the same socket, so the worker commits all of
 * them (its pending batch included) and acks before it exits. */
static void slot_maybe_stop(dispatcher_t *d, group_t *g, slot_t *s)
{
    if (s->stop_sent || !slot_can_send(s))
        return;
    envelope_pack_stop(&s->out);
    s->stop_sent = true;
    slot_flush_out(d, g, s);
}

static void group_tick(dispatcher_t *d, group_t *g, int64_t now)
{
    bool needed = group_needs_processes(d, g);
    for (int i = 0; i < g->n_slots; i++) {
        slot_t *s = &g->slots[i];
        if (s->state == SLOT_IDLE && now >= s->restart_at_ms && needed)
            slot_spawn(g, s, now);
        if (s->state == SLOT_RUNNING && s->term_at_ms && now >= s->term_at_ms) {
            log_warning("msg=\"worker did not exit after STOP, terminating it\" worker=%s "
                        "slot=%d pid=%d", g->name, s->idx, (int) s->pid);
            kill(s->pid, SIGTERM);
            s->term_at_ms = 0;
        }
    }
    group_dispatch(d, g);
    if (!needed)
        for (int i = 0; i < g->n_slots; i++)
            slot_maybe_stop(d, g, &g->slots[i]);
}

static void min_seq(const equeue_t *q, uint64_t *low)
{
    for (size_t i = 0; i < q->len; i++) {
        uint64_t seq = q->items[(q->head + i) % q->cap].ev->seq;
        if (seq < *low)
            *low = seq;
    }
}

/* A worker's cursor: the lowest seq it has not committed, over every group of its name (a
 * retiring one may still have events in flight). */
void dispatcher_update_cursors(dispatcher_t *d)
{
    for (group_t *g = d->groups; g; g = g->next) {
        if (g->retiring || !g->consumer)
            continue;
        uint64_t low = spool_consumer_next_seq(g->consumer);
        for (group_t *h = d->groups; h; h = h->next) {
            if (h->consumer != g->consumer)
                continue;
            min_seq(&h->queue, &low);
            min_seq(&h->priority_queue, &low);
            for (int i = 0; i < h->n_slots; i++)
                min_seq(&h->slots[i].inflight, &low);
        }
        spool_consumer_ack(g->consumer, low);
    }
}

void dispatcher_tick(dispatcher_t *d, int64_t now)
{
    if (now - d->cursors_at_ms >= CURSOR_EVERY_MS) {
        d->cursors_at_ms = now;
        dispatcher_update_cursors(d);
    }
    group_t **link = &d->groups;
    while (*link) {
        group_t *g = *link;
        group_tick(d, g, now);
        if (g->retiring && group_empty(g) && !group_has_process(g)) {
            log_info("msg=\"retired worker drained and stopped\" worker=%s", g->name);
            *link = g->next;
            group_free(d, g);
            d->layout++;
            continue;
        }
        link = &g->next;
    }
}

int dispatcher_timeout_ms(const dispatcher_t *d, int64_t now)
{
    int64_t best = -1;
    for (const group_t *g = d->groups; g; g = g->next)
        for (int i = 0; i < g->n_slots; i++) {
            const slot_t *s = &g->slots[i];
            if (s->state != SLOT_IDLE || !group_needs_processes(d, g))
                continue;
            int64_t wait = s->restart_at_ms > now ? s->restart_at_ms - now : 0;
            if (best < 0 || wait < best)
                best = wait;
        }
    return (int) best;
}

uint64_t dispatcher_layout(const dispatcher_t *d)
{
    return d->layout;
}

int dispatcher_n_pollitems(const dispatcher_t *d)
{
    int n = 0;
    for (const group_t *g = d->groups; g; g = g->next)
        n += g->n_slots;
    return n;
}

void dispatcher_begin_drain(dispatcher_t *d)
{
    d->draining = true;
}

bool dispatcher_idle(const dispatcher_t *d)
{
    for (const group_t *g = d->groups; g; g = g->next)
        if (group_has_process(g) || !group_empty(g))
            return false;
    return true;
}

static uint64_t group_spooled(const dispatcher_t *d, const group_t *g)
{
    if (g->retiring || !g->consumer)
        return 0;
    return spool_next_seq(d->spool) - spool_consumer_next_seq(g->consumer);
}

uint64_t dispatcher_pending(const dispatcher_t *d)
{
    uint64_t n = 0;
    for (const group_t *g = d->groups; g; g = g->next) {
        n += g->queue.len + g->priority_queue.len + group_spooled(d, g);
        for (int i = 0; i < g->n_slots; i++)
            n += g->slots[i].inflight.len;
    }
    return n;
}

void dispatcher_kill_all(dispatcher_t *d)
{
    for (group_t *g = d->groups; g; g = g->next)
        for (int i = 0; i < g->n_slots; i++)
            if (g->slots[i].state == SLOT_RUNNING) {
                kill(g->slots[i].pid, SIGKILL);
                waitpid(g->slots[i].pid, NULL, 0);
                g->slots[i].state = SLOT_IDLE;
            }
}

void dispatcher_format_stats(dispatcher_t *d, char *line, size_t len, double interval_s)
{
    size_t used = strlen(line);
    for (group_t *g = d->groups; g && used < len; g = g->next) {
        uint64_t pending = g->queue.len + g->priority_queue.len;
        for (int i = 0; i < g->n_slots; i++)
            pending += g->slots[i].inflight.len;
        double rate = interval_s > 0 ? (double) (g->committed - g->committed_at_last_stats) /
                                           interval_s : 0;
        g->committed_at_last_stats = g->committed;
        int n = snprintf(line + used, len - used,
                         " %s.written=%llu %s.pending=%llu %s.spooled=%llu %s.failed=%llu "
                         "%s.restarts=%llu %s.dropped=%llu %s.rate=%.0f %s.latency_max_ms=%lld",
                         g->name, (unsigned long long) g->committed, g->name,
                         (unsigned long long) pending, g->name,
                         (unsigned long long) group_spooled(d, g), g->name,
                         (unsigned long long) g->rejected, g->name,
                         (unsigned long long) g->restarts, g->name,
                         (unsigned long long) (g->consumer ? spool_consumer_dropped(g->consumer) : 0),
                         g->name, rate, g->name, (long long) g->latency_max_ms);
        g->latency_max_ms = 0;
        if (n < 0)
            break;
        used += (size_t) n;
    }
}

int dispatcher_figures(dispatcher_t *d, worker_figures_t *out, int max)
{
    int n = 0;
    for (group_t *g = d->groups; g && n < max; g = g->next) {
        if (g->retiring)
            continue;
        uint64_t pending = g->queue.len + g->priority_queue.len;
        for (int i = 0; i < g->n_slots; i++)
            pending += g->slots[i].inflight.len;
        out[n++] = (worker_figures_t){
            .name = g->name, .processes = g->n_slots, .written = g->committed,
            .rejected = g->rejected, .restarts = g->restarts, .pending = pending,
            .spooled = group_spooled(d, g),
            .dropped = g->consumer ? spool_consumer_dropped(g->consumer) : 0,
            .latency_last_ms = g->latency_last_ms, .latency_max_ms = g->latency_max_ms,
        };
    }
    return n;
}

void dispatcher_on_emit(dispatcher_t *d, dispatcher_emit_fn *fn, void *arg)
{
    d->emit = fn;
    d->emit_arg = arg;
}
