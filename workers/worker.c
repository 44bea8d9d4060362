#include "worker.h"
#include "envelope.h"
#include "log.h"
#include "sink.h"
#include "worker_event.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 10000

typedef struct {
    worker_event_t *ev;
    bool            dead;    /* dead-lettered: acked as rejected, not written */
} batch_entry_t;

typedef struct {
    const worker_config_t *cfg;
    const char            *master_id;
    int                    max_depth;
    const sink_ops_t      *ops;
    sink_t                *sink;
    int                    fd;
    envelope_reader_t     *reader;
    batch_entry_t         *batch;
    size_t                 len, cap;
    int64_t                oldest_ms;      /* arrival of the oldest unwritten event */
    bool                   flush_now;      /* a priority event is waiting */
    bool                   stopping;       /* STOP received or master gone */
    bool                   master_gone;
    int64_t                retry_at_ms;
    int                    retry_ms;
    log_complaint_t        sink_complaint;
    worker_event_t       **scratch;        /* the live events of one chunk, for the sink */
    /* Aggregating sinks: events absorbed by write_batch but not yet flushed. Their ack waits
     * for the flush (acks are cumulative: the last seq and the counts). */
    bool                   held;
    uint64_t               held_seq, held_committed, held_rejected;
    int64_t                flush_retry_at_ms;
} worker_t;

static int connect_master(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Frees everything the worker allocated (what it inherited from the master stays: it is the
 * master's, and this process ends now). */
static __attribute__((noreturn)) void worker_exit(worker_t *w, int code)
{
    if (w->sink)
        w->ops->close(&w->sink);
    for (size_t i = 0; i < w->len; i++)
        worker_event_destroy(&w->batch[i].ev);
    free(w->batch);
    free(w->scratch);
    envelope_reader_destroy(&w->reader);
    if (w->fd >= 0)
        close(w->fd);
    _exit(code);   /* never run the master's atexit handlers (czmq) in a child */
}

/* Sends one whole message to the master. 0, or -1 once the master is gone. */
static int send_all(worker_t *w, const msgpack_sbuffer *buf)
{
    size_t off = 0;
    while (!w->master_gone && off < buf->size) {
        ssize_t n = send(w->fd, buf->data + off, buf->size - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->master_gone = w->stopping = true;
            break;
        }
        off += (size_t) n;
    }
    return w->master_gone ? -1 : 0;
}

static void send_ack(worker_t *w, uint64_t seq, uint64_t committed, uint64_t rejected)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    envelope_pack_ack(&buf, seq, committed, rejected);
    send_all(w, &buf);
    msgpack_sbuffer_destroy(&buf);
}

/* ---- issue 7: internal events a sink makes (trigger pipelines' emit handler) ---- */

/* The sink's emit function (sink_emit_fn): one ENVELOPE_EMIT on the master socket. */
static int send_emit(void *arg, const char *tag, size_t tag_len, const void *data,
                     size_t data_len)
{
    worker_t *w = arg;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int rc = envelope_pack_emit(&buf, tag, tag_len, data, data_len);
    if (rc == 0)
        rc = send_all(w, &buf);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

/* ---- dead letters ---- */

static void dead_letter(worker_t *w, const worker_event_t *ev, const char *why)
{
    msgpack_sbuffer line;
    msgpack_sbuffer_init(&line);
    msgpack_sbuffer_write(&line, "{\"worker\": ", 11);
    payload_json_string(&line, w->cfg->name, strlen(w->cfg->name));
    msgpack_sbuffer_write(&line, ", \"error\": ", 11);
    payload_json_string(&line, why, strlen(why));
    msgpack_sbuffer_write(&line, ", \"tag\": ", 9);
    payload_json_string(&line, ev->tag, ev->tag_len);
    msgpack_sbuffer_write(&line, ", \"event_hash\": ", 16);
    payload_json_string(&line, ev->hash, strlen(ev->hash));
    msgpack_sbuffer_write(&line, ", \"data\": ", 10);
    if (ev->data)
        payload_to_json(payload_root(ev->data), &line);
    else   /* the payload itself could not be decoded */
        msgpack_sbuffer_write(&line, "null", 4);
    msgpack_sbuffer_write(&line, "}\n", 2);

    bool stored = false;
    if (w->cfg->dead_letter) {
        int fd = open(w->cfg->dead_letter, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        stored = fd >= 0 && write(fd, line.data, line.size) == (ssize_t) line.size &&
                 fdatasync(fd) == 0;
        if (fd >= 0)
            close(fd);
    }
    if (stored)
        log_warning("msg=\"row rejected, written to the dead-letter file\" tag=%s "
                    "event_hash=%s error=\"%s\" file=%s", ev->tag, ev->hash, why,
                    w->cfg->dead_letter);
    else   /* the log is the last place the event can live: keep all of it there */
        log_error("msg=\"row rejected and no dead-letter file took it\" error=\"%s\" event=%.*s",
                  why, (int) line.size - 1, line.data);
    msgpack_sbuffer_destroy(&line);
}

/* ---- batching ---- */

static void batch_push(worker_t *w, worker_event_t *ev)
{
    if (w->len == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        batch_entry_t *batch = realloc(w->batch, cap * sizeof *batch);
        if (batch)
            w->batch = batch;
        worker_event_t **scratch = batch ? realloc(w->scratch, cap * sizeof *scratch) : NULL;
        if (scratch)
            w->scratch = scratch;
        if (!batch || !scratch) {
            log_error("msg=\"out of memory\"");
            worker_event_destroy(&ev);
            worker_exit(w, 1);
        }
        w->cap = cap;
    }
    if (w->len == 0)
        w->oldest_ms = clock_ms();
    w->batch[w->len++] = (batch_entry_t){ ev, false };
    if (ev->priority)
        w->flush_now = true;
}

static void batch_drop_front(worker_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        worker_event_destroy(&w->batch[i].ev);
    memmove(w->batch, w->batch + n, (w->len - n) * sizeof *w->batch);
    w->len -= n;
    w->oldest_ms = clock_ms();
}

static bool sink_ready(worker_t *w)
{
    if (w->sink)
        return true;
    char err[512];
    w->sink = w->ops->open(w->cfg, w->master_id, err, sizeof err);
    if (!w->sink) {
        log_complain(&w->sink_complaint, LOG_LVL_ERROR,
                     "msg=\"cannot open sink, will retry\" sink=%s error=\"%s\"", w->cfg->sink,
                     err);
        return false;
    }
    if (w->ops->set_emit)   /* issue 7: see send_emit */
        w->ops->set_emit(w->sink, send_emit, w);
    return true;
}

static void schedule_retry(worker_t *w)
{
    int jitter = w->retry_ms / 4;
    w->retry_at_ms = clock_ms() + w->retry_ms + (jitter ? rand() % (jitter + 1) : 0);
    w->retry_ms = w->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->retry_ms * 2;
}

/* Writes the first chunk of the batch. Returns true when it is done (committed or all dead). */
static bool write_chunk(worker_t *w)
{
    size_t chunk = w->len < (size_t) w->cfg->batch_size ? w->len : (size_t) w->cfg->batch_size;
    for (;;) {
        size_t live = 0, dead = 0;
        for (size_t i = 0; i < chunk; i++)
            if (w->batch[i].dead)
                dead++;
            else
                w->scratch[live++] = w->batch[i].ev;
        sink_result_t rc = SINK_OK;
        size_t bad = 0;
        char err[1024] = "";
        if (live)
            rc = w->ops->write_batch(w->sink, w->scratch, live, &bad, err, sizeof err);
        if (rc == SINK_OK) {
            log_recovered(&w->sink_complaint, "msg=\"sink writes again\" sink=%s", w->cfg->sink);
            if (w->ops->defers_acks) {
                w->held = true;
                w->held_seq = w->batch[chunk - 1].ev->seq;
                w->held_committed += live;
                w->held_rejected += dead;
            } else {
                send_ack(w, w->batch[chunk - 1].ev->seq, live, dead);
            }
            batch_drop_front(w, chunk);
            w->retry_ms = RETRY_MIN_MS;
            return true;
        }
        if (rc == SINK_REJECT_ROW && bad < live) {
            for (size_t i = 0; i < chunk; i++)
                if (w->batch[i].ev == w->scratch[bad]) {
                    w->batch[i].dead = true;
                    dead_letter(w, w->batch[i].ev, err);
                }
            continue;   /* the rest of the chunk goes again at once */
        }
        if (rc == SINK_FATAL) {
            log_error("msg=\"sink failed fatally, exiting so the master restarts this worker\" "
                      "sink=%s error=\"%s\"", w->cfg->sink, err);
            worker_exit(w, 1);
        }
        log_complain(&w->sink_complaint, LOG_LVL_WARNING,
                     "msg=\"sink write failed, batch kept for retry\" sink=%s events=%zu "
                     "error=\"%s\" retry_in_ms=%d", w->cfg->sink, live, err, w->retry_ms);
        schedule_retry(w);
        return false;
    }
}

static bool flush_due(const worker_t *w, int64_t now)
{
    if (w->len == 0 || now < w->retry_at_ms)
        return false;
    return w->flush_now || w->stopping || w->len >= (size_t) w->cfg->batch_size ||
           now - w->oldest_ms >= w->cfg->batch_interval_ms;
}

static void flush(worker_t *w)
{
    if (!sink_ready(w)) {
        schedule_retry(w);
        return;
    }
    while (w->len && write_chunk(w))
        if (!w->flush_now && !w->stopping && w->len < (size_t) w->cfg->batch_size)
            break;   /* a partial tail waits for its own interval */
    if (w->len == 0 || w->flush_now)
        w->flush_now = false;
}

/* ---- aggregating sinks ---- */

/* When the sink wants flush called: when its interval ends with events held, and also with
 * nothing held when it has timed work of its own (redis rotates its intervals at their
 * boundaries even when no event comes). */
static int64_t sink_flush_at(const worker_t *w)
{
    if (!w->ops->flush || !w->sink)
        return INT64_MAX;
    if (w->held && w->stopping)
        return w->flush_retry_at_ms;
    int64_t at = w->ops->flush_at(w->sink);
    return at > w->flush_retry_at_ms ? at : w->flush_retry_at_ms;
}

/* Sends what the sink holds and acks the events behind it (if any). */
static void sink_flush(worker_t *w)
{
    char err[1024] = "";
    sink_result_t rc = w->ops->flush(w->sink, err, sizeof err);
    if (rc == SINK_OK) {
        log_recovered(&w->sink_complaint, "msg=\"sink writes again\" sink=%s", w->cfg->sink);
        if (w->held)
            send_ack(w, w->held_seq, w->held_committed, w->held_rejected);
        w->held = false;
        w->held_committed = w->held_rejected = 0;
        w->flush_retry_at_ms = 0;
        w->retry_ms = RETRY_MIN_MS;
        return;
    }
    if (rc == SINK_FATAL) {
        log_error("msg=\"sink failed fatally, exiting so the master restarts this worker\" "
                  "sink=%s error=\"%s\"", w->cfg->sink, err);
        worker_exit(w, 1);
    }
    log_complain(&w->sink_complaint, LOG_LVL_WARNING,
                 "msg=\"sink flush failed, aggregates kept for retry\" sink=%s "
                 "error=\"%s\" retry_in_ms=%d", w->cfg->sink, err, w->retry_ms);
    schedule_retry(w);
    w->flush_retry_at_ms = w->retry_at_ms;
}

/* ---- receiving ---- */

static void on_event(worker_t *w, const envelope_msg_t *m)
{
    char err[256];
    worker_event_t *ev = worker_event_new(m->seq, m->flags & ENVELOPE_FLAG_PRIORITY, m->tag,
                                          m->tag_len, m->payload, m->payload_len, w->max_depth,
                                          err, sizeof err);
    if (ev) {
        batch_push(w, ev);
        return;
    }
    /* The master validated it, so this is a memory or limit problem: dead-letter the event
     * (acked as rejected, never silently) rather than stall the worker on it. */
    worker_event_t *stub = calloc(1, sizeof *stub);
    if (stub)
        stub->tag = strndup(m->tag, m->tag_len);
    if (!stub || !stub->tag) {
        log_error("msg=\"out of memory\"");
        free(stub);
        worker_exit(w, 1);
    }
    stub->seq = m->seq;
    stub->tag_len = m->tag_len;
    batch_push(w, stub);
    w->batch[w->len - 1].dead = true;
    dead_letter(w, stub, err);
}

static void receive(worker_t *w)
{
    ssize_t n = envelope_reader_fill(w->reader, w->fd);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        log_warning("msg=\"master connection closed, committing what is pending and exiting\"");
        w->master_gone = w->stopping = true;
        return;
    }
    envelope_msg_t m;
    char err[128];
    int rc;
    while ((rc = envelope_reader_next(w->reader, &m, err, sizeof err)) > 0) {
        if (m.type == ENVELOPE_EVENT)
            on_event(w, &m);
        else if (m.type == ENVELOPE_STOP)
            w->stopping = true;
    }
    if (rc < 0) {
        log_error("msg=\"protocol error from master\" error=\"%s\"", err);
        worker_exit(w, 1);
    }
}

static int poll_timeout(const worker_t *w, int64_t now)
{
    int64_t due = INT64_MAX;
    if (w->len) {
        due = w->oldest_ms + w->cfg->batch_interval_ms;
        if (w->flush_now || w->stopping || w->len >= (size_t) w->cfg->batch_size)
            due = now;
        if (w->retry_at_ms > due)
            due = w->retry_at_ms;
    }
    int64_t flush = sink_flush_at(w);
    if (flush < due)
        due = flush;
    if (due == INT64_MAX)
        return w->stopping ? 0 : -1;
    if (due - now > 60000)
        return 60000;
    return due > now ? (int) (due - now) : 0;
}

void worker_run(const worker_config_t *cfg, const char *master_id, int max_depth,
                const char *socket_path)
{
    worker_t w = { .cfg = cfg, .master_id = master_id, .max_depth = max_depth,
                   .retry_ms = RETRY_MIN_MS };
    w.sink_complaint.interval_ms = 30000;
    w.ops = sink_lookup(cfg->sink);
    w.fd = connect_master(socket_path);
    w.reader = envelope_reader_new(1u << 30);
    if (!w.ops || w.fd < 0 || !w.reader) {
        log_error("msg=\"worker cannot start\" socket=%s error=\"%s\"", socket_path,
                  w.ops ? strerror(errno) : "unknown sink");
        worker_exit(&w, 1);
    }
    sink_ready(&w);
    for (;;) {
        int64_t now = clock_ms();
        if (flush_due(&w, now))
            flush(&w);
        if (now >= sink_flush_at(&w) && (w.len == 0 || !w.stopping))
            sink_flush(&w);
        if (w.stopping && w.len == 0 && !w.held)
            worker_exit(&w, 0);
        struct pollfd pfd = { .fd = w.fd, .events = POLLIN };
        int timeout = poll_timeout(&w, clock_ms());
        if (w.master_gone)
            pfd.fd = -1;
        if (poll(&pfd, 1, timeout) > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            receive(&w);
    }
}
