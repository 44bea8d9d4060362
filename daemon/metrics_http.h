/* metrics_http: the Prometheus listener of stats.listen, run inside the master's zmq_poll
 * loop, and the prom_write_* helpers that write the text exposition format (0.0.4).
 *
 * The listener never blocks the master: every socket is non-blocking, there are at most
 * METRICS_HTTP_MAX_CONNS connections (one more is answered 503 if the answer fits the
 * socket at once, and closed), and each is a small state machine:
 *   READ   the request head, at most METRICS_HTTP_MAX_HEAD bytes (431 beyond), until
 *          "\r\n\r\n" (or "\n\n"), within the connection timeout (5 s by default) so a slow
 *          client cannot hold a slot for long;
 *   WRITE  the whole response (head + body, Content-Length, Connection: close), as the
 *          socket takes it, within the timeout;
 *   DRAIN  after shutdown(SHUT_WR), read and discard until the client closes (at most 1 s),
 *          so that unread request bytes do not turn our close into a reset that would
 *          destroy the response before the client read it.
 * Routes: GET|HEAD /metrics -> 200 text/plain; version=0.0.4 with the render callback's
 * body; GET|HEAD / -> 200 a line pointing at /metrics; other paths 404; other methods 405;
 * a request line that is not "METHOD SP /TARGET SP HTTP/1.x" 400. A query string is ignored.
 * Owns: the listening socket, the connections and their buffers.
 */
#ifndef EVENTSD_METRICS_HTTP_H
#define EVENTSD_METRICS_HTTP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define METRICS_HTTP_MAX_CONNS  16
#define METRICS_HTTP_MAX_HEAD   8192
#define METRICS_HTTP_TIMEOUT_MS 5000

typedef struct metrics_http metrics_http_t;

/* Appends the exposition body for GET /metrics to out (prom_write_* helpers). */
typedef void (*metrics_render_fn)(void *arg, msgpack_sbuffer *out);

typedef struct {
    uint64_t requests;   /* responses started, any status */
    uint64_t rejected;   /* connections refused because every slot was busy */
    uint64_t timeouts;   /* connections closed at their deadline */
    uint64_t accept_errors; /* accept failed for lack of descriptors or memory (the listener
                               then rests a quarter second instead of spinning the poll) */
} metrics_http_stats_t;

/* Listens on listen = "HOST:PORT" ("[v6addr]:PORT" for IPv6; HOST "*" or "" = any address;
 * PORT 0 = a free port, see metrics_http_port). Errors: "stats.listen 'x': expected
 * HOST:PORT", "stats.listen 'x': <getaddrinfo message>", "stats.listen 'x': bind: <strerror>". */
metrics_http_t *metrics_http_new(const char *listen, char *err, size_t errlen);
void metrics_http_destroy(metrics_http_t **self_p);

/* The bound port (the chosen one when PORT was 0). */
int metrics_http_port(const metrics_http_t *self);

/* How many poll items metrics_http_pollitems may write (1 + METRICS_HTTP_MAX_CONNS at most). */
int metrics_http_n_pollitems(const metrics_http_t *self);
/* The listener and every connection; returns how many items were written (<= max). */
int metrics_http_pollitems(metrics_http_t *self, zmq_pollitem_t *items, int max);
/* Handles the revents of the items from metrics_http_pollitems (items before a later
 * metrics_http_pollitems call are stale), and closes connections past their deadline, so
 * call it after every poll even when nothing of ours is ready. render is called only for
 * /metrics. Never blocks. */
void metrics_http_handle(metrics_http_t *self, const zmq_pollitem_t *items, int n,
                         metrics_render_fn render, void *arg);
/* Milliseconds until the nearest connection deadline or the end of an accept pause
 * (now_ms = clock_ms()), -1 when there is none. For the poll timeout. */
int metrics_http_timeout_ms(const metrics_http_t *self, int64_t now_ms);

/* Changes the per-state timeout (default METRICS_HTTP_TIMEOUT_MS); for tests. */
void metrics_http_set_timeout_ms(metrics_http_t *self, int timeout_ms);

const metrics_http_stats_t *metrics_http_stats(const metrics_http_t *self);

/* ---- Prometheus text exposition format 0.0.4 --------------------------------------------
 * Write "# HELP" and "# TYPE" once per metric family (prom_write_family), then its samples.
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not
 * starting with "__"); an invalid name writes nothing and returns -1. Label values are
 * escaped (\\ \" \n), HELP text too (\\ \n). Integers are written in full; doubles as an
 * integer when they are one (|v| < 2^53), else %.17g; NaN, +Inf, -Inf as Prometheus spells
 * them. Every helper returns 0, or -1 (invalid name, out of memory). */
typedef struct {
    const char *name;
    const char *value;
} prom_label_t;

/* type: "counter", "gauge", "summary", "histogram" or "untyped". */
int prom_write_family(msgpack_sbuffer *out, const char *name, const char *type,
                      const char *help);
int prom_write_u64(msgpack_sbuffer *out, const char *name, const prom_label_t *labels,
                   int n_labels, uint64_t value);
int prom_write_i64(msgpack_sbuffer *out, const char *name, const prom_label_t *labels,
                   int n_labels, int64_t value);
int prom_write_double(msgpack_sbuffer *out, const char *name, const prom_label_t *labels,
                      int n_labels, double value);

#endif
