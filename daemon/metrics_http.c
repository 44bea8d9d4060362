/* metrics_http: a non-blocking /metrics listener and the Prometheus text writer.
 * See metrics_http.h. */
#include "metrics_http.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DRAIN_MS      1000   /* how long a closing connection waits for the client's FIN */
#define ACCEPT_BURST  32     /* connections accepted per handle call */
#define ACCEPT_PAUSE_MS 250  /* listener left out of the poll after accept ran out of fds */

typedef enum { C_FREE = 0, C_READ, C_WRITE, C_DRAIN } conn_state_t;

typedef struct {
    int             fd;
    conn_state_t    state;
    int64_t         deadline_ms;
    char            head[METRICS_HTTP_MAX_HEAD];
    size_t          head_len;
    msgpack_sbuffer out;       /* the response */
    size_t          out_off;   /* bytes of it sent */
} conn_t;

struct metrics_http {
    int                  fd;
    int                  port;
    int                  timeout_ms;
    int64_t              accept_paused_until_ms;
    conn_t               conns[METRICS_HTTP_MAX_CONNS];
    metrics_http_stats_t stats;
    msgpack_sbuffer      body;  /* the rendered body, reused */
};

/* ---- listening ---------------------------------------------------------------------------- */

/* Splits "HOST:PORT" / "[V6]:PORT" into host (NULL = any) and port text. */
static int split_listen(const char *listen, char *host, size_t hostlen, char *port,
                        size_t portlen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) >= portlen || strtol(colon + 1, NULL, 10) > 65535)
        return -1;
    const char *h = listen;
    size_t n = (size_t) (colon - listen);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    } else if (memchr(h, ':', n))
        return -1;   /* an IPv6 address needs brackets */
    if (n >= hostlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

static int bind_first(const struct addrinfo *ai, char *why, size_t whylen)
{
    int saved = 0;
    for (; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            return fd;
        saved = errno;
        close(fd);
    }
    snprintf(why, whylen, "bind: %s", strerror(saved));
    return -1;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
    return ntohs(((struct sockaddr_in *) &ss)->sin_port);
}

static int open_listener(const char *listen, int *port, char *err, size_t errlen)
{
    char host[256], portstr[8], why[256];
    if (split_listen(listen, host, sizeof host, portstr, sizeof portstr) < 0) {
        snprintf(err, errlen, "stats.listen '%s': expected HOST:PORT", listen);
        return -1;
    }
    bool any = host[0] == '\0' || strcmp(host, "*") == 0;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
    int rc = getaddrinfo(any ? NULL : host, portstr, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "stats.listen '%s': %s", listen, gai_strerror(rc));
        return -1;
    }
    int fd = bind_first(ai, why, sizeof why);
    freeaddrinfo(ai);
    if (fd < 0) {
        snprintf(err, errlen, "stats.listen '%s': %s", listen, why);
        return -1;
    }
    *port = bound_port(fd);
    return fd;
}

metrics_http_t *metrics_http_new(const char *listen, char *err, size_t errlen)
{
    metrics_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->timeout_ms = METRICS_HTTP_TIMEOUT_MS;
    msgpack_sbuffer_init(&self->body);
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
        self->conns[i].fd = -1;
        msgpack_sbuffer_init(&self->conns[i].out);
    }
    self->fd = open_listener(listen ? listen : "", &self->port, err, errlen);
    if (self->fd < 0) {
        metrics_http_destroy(&self);
        return NULL;
    }
    return self;
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_FREE;
    c->head_len = 0;
    c->out_off = 0;
    /* Keep the usual response's memory; give back a big one. */
    if (c->out.alloc > 65536) {
        msgpack_sbuffer_destroy(&c->out);
        msgpack_sbuffer_init(&c->out);
    }
    c->out.size = 0;
}

void metrics_http_destroy(metrics_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    metrics_http_t *self = *self_p;
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
        conn_close(&self->conns[i]);
        msgpack_sbuffer_destroy(&self->conns[i].out);
    }
    if (self->fd >= 0)
        close(self->fd);
    msgpack_sbuffer_destroy(&self->body);
    free(self);
    *self_p = NULL;
}

int metrics_http_port(const metrics_http_t *self)
{
    return self->port;
}

void metrics_http_set_timeout_ms(metrics_http_t *self, int timeout_ms)
{
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : METRICS_HTTP_TIMEOUT_MS;
}

const metrics_http_stats_t *metrics_http_stats(const metrics_http_t *self)
{
    return &self->stats;
}

/* ---- responses ---------------------------------------------------------------------------- */

typedef struct {
    int         status;
    const char *reason;
    const char *body;          /* NULL: the rendered metrics */
    const char *extra_header;  /* "" or "Allow: GET, HEAD\r\n" */
} reply_t;

static const char CONTENT_TYPE_TEXT[] = "text/plain; charset=utf-8";
static const char CONTENT_TYPE_PROM[] = "text/plain; version=0.0.4; charset=utf-8";

/* Builds the whole response in c->out; head_only for HEAD requests. */
static int build_response(metrics_http_t *self, conn_t *c, const reply_t *r, bool head_only,
                          metrics_render_fn render, void *arg)
{
    const char *body = r->body;
    size_t len = body ? strlen(body) : 0;
    if (!body) {
        self->body.size = 0;
        if (render)
            render(arg, &self->body);
        body = self->body.data ? self->body.data : "";
        len = self->body.size;
    }
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n", r->status, r->reason,
                     r->body ? CONTENT_TYPE_TEXT : CONTENT_TYPE_PROM, len, r->extra_header);
    c->out.size = 0;
    c->out_off = 0;
    if (msgpack_sbuffer_write(&c->out, head, (size_t) n) < 0 ||
        (!head_only && len && msgpack_sbuffer_write(&c->out, body, len) < 0))
        return -1;
    return 0;
}

static const reply_t R_METRICS = { 200, "OK", NULL, "" };
static const reply_t R_INDEX = { 200, "OK", "eventsd: Prometheus metrics are at /metrics\n", "" };
static const reply_t R_NOT_FOUND = { 404, "Not Found", "not found; try /metrics\n", "" };
static const reply_t R_METHOD = { 405, "Method Not Allowed", "method not allowed\n",
                                  "Allow: GET, HEAD\r\n" };
static const reply_t R_BAD = { 400, "Bad Request", "bad request\n", "" };
static const reply_t R_TOO_BIG = { 431, "Request Header Fields Too Large",
                                   "request head too large\n", "" };
static const reply_t R_BUSY = { 503, "Service Unavailable", "busy, try again\n", "" };

/* ---- requests ----------------------------------------------------------------------------- */

static bool is_tchar(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The route for a complete head; *head_only for HEAD. */
static const reply_t *route(const char *head, size_t len, bool *head_only)
{
    const char *end = memchr(head, '\n', len);
    size_t line = (size_t) (end - head);
    if (line > 0 && head[line - 1] == '\r')
        line--;
    size_t m = 0;
    while (m < line && is_tchar(head[m]))
        m++;
    const char *target = head + m + 1;
    const char *sp = m > 0 && m < line && head[m] == ' ' ? memchr(target, ' ', line - m - 1) : NULL;
    if (!sp || target[0] != '/')
        return &R_BAD;
    const char *version = sp + 1;
    size_t vlen = (size_t) (head + line - version);
    if (vlen != 8 || (memcmp(version, "HTTP/1.1", 8) != 0 && memcmp(version, "HTTP/1.0", 8) != 0))
        return &R_BAD;
    for (const char *p = target; p < sp; p++)
        if ((unsigned char) *p <= ' ' || *p == 0x7f)
            return &R_BAD;
    *head_only = m == 4 && memcmp(head, "HEAD", 4) == 0;
    if (!*head_only && !(m == 3 && memcmp(head, "GET", 3) == 0))
        return &R_METHOD;
    const char *q = memchr(target, '?', (size_t) (sp - target));
    size_t plen = (size_t) ((q ? q : sp) - target);
    if (plen == 8 && memcmp(target, "/metrics", 8) == 0)
        return &R_METRICS;
    if (plen == 1)
        return &R_INDEX;
    return &R_NOT_FOUND;
}

/* The end of the head ("\r\n\r\n" or "\n\n") within the bytes read, or 0. */
static size_t head_end(const conn_t *c)
{
    for (size_t i = 1; i < c->head_len; i++) {
        if (c->head[i] != '\n')
            continue;
        if (c->head[i - 1] == '\n')
            return i + 1;
        if (i >= 3 && c->head[i - 1] == '\r' && c->head[i - 2] == '\n' && c->head[i - 3] == '\r')
            return i + 1;
    }
    return 0;
}

static void start_reply(metrics_http_t *self, conn_t *c, const reply_t *r, bool head_only,
                        metrics_render_fn render, void *arg, int64_t now_ms)
{
    self->stats.requests++;
    if (build_response(self, c, r, head_only, render, arg) < 0) {
        conn_close(c);
        return;
    }
    c->state = C_WRITE;
    c->deadline_ms = now_ms + self->timeout_ms;
}

/* ---- the connection state machine --------------------------------------------------------- */

static void conn_read(metrics_http_t *self, conn_t *c, metrics_render_fn render, void *arg,
                      int64_t now_ms)
{
    for (;;) {
        if (c->head_len == sizeof c->head) {
            start_reply(self, c, &R_TOO_BIG, false, render, arg, now_ms);
            return;
        }
        ssize_t n = recv(c->fd, c->head + c->head_len, sizeof c->head - c->head_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_close(c);   /* gone before asking anything */
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        c->head_len += (size_t) n;
        size_t end = head_end(c);
        if (end) {
            bool head_only = false;
            const reply_t *r = route(c->head, end, &head_only);
            start_reply(self, c, r, head_only, render, arg, now_ms);
            return;
        }
    }
}

static void conn_write(metrics_http_t *self, conn_t *c, int64_t now_ms)
{
    while (c->out_off < c->out.size) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.size - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            conn_close(c);
            return;
        }
        c->out_off += (size_t) n;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = C_DRAIN;
    c->deadline_ms = now_ms + (self->timeout_ms < DRAIN_MS ? self->timeout_ms : DRAIN_MS);
}

static void conn_drain(conn_t *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_close(c);   /* the client closed (or failed): done */
        return;
    }
}

static void conn_step(metrics_http_t *self, conn_t *c, metrics_render_fn render, void *arg,
                      int64_t now_ms)
{
    if (c->state == C_READ)
        conn_read(self, c, render, arg, now_ms);
    /* A response built just now is sent at once: it usually fits the socket buffer. */
    if (c->state == C_WRITE)
        conn_write(self, c, now_ms);
    else if (c->state == C_DRAIN)
        conn_drain(c);
}

/* No free slot: answer 503 if the socket takes it at once, and close. */
static void reject(metrics_http_t *self, int fd)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", R_BUSY.status,
                     R_BUSY.reason, CONTENT_TYPE_TEXT, strlen(R_BUSY.body), R_BUSY.body);
    ssize_t ignored = send(fd, msg, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void) ignored;
    close(fd);
    self->stats.rejected++;
}

static void accept_all(metrics_http_t *self, int64_t now_ms)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        int fd = accept4(self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                       errno == ENOMEM)) {
            /* The pending connection stays queued and the listener stays readable: polling
             * it again at once would spin the master. */
            self->accept_paused_until_ms = now_ms + ACCEPT_PAUSE_MS;
            self->stats.accept_errors++;
        }
        if (fd < 0)
            return;   /* EAGAIN, or an error of that one connection: nothing to do */
        conn_t *c = NULL;
        for (int k = 0; k < METRICS_HTTP_MAX_CONNS && !c; k++)
            if (self->conns[k].state == C_FREE)
                c = &self->conns[k];
        if (!c) {
            reject(self, fd);
            continue;
        }
        c->fd = fd;
        c->state = C_READ;
        c->head_len = 0;
        c->deadline_ms = now_ms + self->timeout_ms;
    }
}

/* ---- poll integration --------------------------------------------------------------------- */

int metrics_http_n_pollitems(const metrics_http_t *self)
{
    (void) self;
    return 1 + METRICS_HTTP_MAX_CONNS;
}

int metrics_http_pollitems(metrics_http_t *self, zmq_pollitem_t *items, int max)
{
    int n = 0;
    if (n < max && clock_ms() >= self->accept_paused_until_ms)
        items[n++] = (zmq_pollitem_t){ .fd = self->fd, .events = ZMQ_POLLIN };
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS && n < max; i++) {
        const conn_t *c = &self->conns[i];
        if (c->state != C_FREE)
            items[n++] = (zmq_pollitem_t){ .fd = c->fd,
                                           .events = c->state == C_WRITE ? ZMQ_POLLOUT
                                                                         : ZMQ_POLLIN };
    }
    return n;
}

static conn_t *conn_by_fd(metrics_http_t *self, int fd)
{
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS; i++)
        if (self->conns[i].state != C_FREE && self->conns[i].fd == fd)
            return &self->conns[i];
    return NULL;
}

static void close_expired(metrics_http_t *self, int64_t now_ms)
{
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
        conn_t *c = &self->conns[i];
        if (c->state == C_FREE || now_ms < c->deadline_ms)
            continue;
        if (c->state != C_DRAIN)   /* a drain that ends at its deadline is a normal close */
            self->stats.timeouts++;
        conn_close(c);
    }
}

void metrics_http_handle(metrics_http_t *self, const zmq_pollitem_t *items, int n,
                         metrics_render_fn render, void *arg)
{
    int64_t now_ms = clock_ms();
    bool listener_ready = false;
    /* Connections first, the listener last: a descriptor closed here and reused by accept
     * must not receive another connection's revents. */
    for (int i = 0; i < n; i++) {
        if (!items[i].revents)
            continue;
        if (items[i].fd == self->fd) {
            listener_ready = true;
            continue;
        }
        conn_t *c = conn_by_fd(self, items[i].fd);
        if (c)
            conn_step(self, c, render, arg, now_ms);
    }
    if (listener_ready)
        accept_all(self, now_ms);
    close_expired(self, now_ms);
}

int metrics_http_timeout_ms(const metrics_http_t *self, int64_t now_ms)
{
    int64_t best = -1;
    if (self->accept_paused_until_ms > now_ms)
        best = self->accept_paused_until_ms - now_ms;
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
        const conn_t *c = &self->conns[i];
        if (c->state == C_FREE)
            continue;
        int64_t left = c->deadline_ms > now_ms ? c->deadline_ms - now_ms : 0;
        if (best < 0 || left < best)
            best = left;
    }
    return best > 0x7fffffff ? 0x7fffffff : (int) best;
}

/* ---- Prometheus text format --------------------------------------------------------------- */

static bool valid_name(const char *s, bool colons)
{
    if (!s || !*s || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || (colons && ch == ':')))
            return false;
    }
    return true;
}

static int put(msgpack_sbuffer *out, const char *s, size_t n)
{
    return n ? msgpack_sbuffer_write(out, s, n) : 0;
}

static int puts_(msgpack_sbuffer *out, const char *s)
{
    return put(out, s, strlen(s));
}

/* s with '\\' and newline escaped, and '"' too when quote (label values). */
static int put_escaped(msgpack_sbuffer *out, const char *s, bool quote)
{
    int rc = 0;
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n"
                        : (quote && *s == '"') ? "\\\"" : NULL;
        if (!esc)
            continue;
        rc |= put(out, run, (size_t) (s - run));
        rc |= puts_(out, esc);
        run = s + 1;
    }
    rc |= put(out, run, (size_t) (s - run));
    return rc;
}

int prom_write_family(msgpack_sbuffer *out, const char *name, const char *type,
                      const char *help)
{
    static const char *const types[] = { "counter", "gauge", "summary", "histogram", "untyped" };
    bool known = false;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        known |= type && strcmp(type, types[i]) == 0;
    if (!valid_name(name, true) || !known)
        return -1;
    int rc = 0;
    if (help) {
        rc |= puts_(out, "# HELP ");
        rc |= puts_(out, name);
        rc |= puts_(out, " ");
        rc |= put_escaped(out, help, false);
        rc |= puts_(out, "\n");
    }
    rc |= puts_(out, "# TYPE ");
    rc |= puts_(out, name);
    rc |= puts_(out, " ");
    rc |= puts_(out, type);
    rc |= puts_(out, "\n");
    return rc ? -1 : 0;
}

/* name{l1="v1",...} value\n with the value already formatted. */
static int write_sample(msgpack_sbuffer *out, const char *name, const prom_label_t *labels,
                        int n_labels, const char *value)
{
    if (!valid_name(name, true))
        return -1;
    for (int i = 0; i < n_labels; i++)
        if (!valid_name(labels[i].name, false) || strncmp(labels[i].name, "__", 2) == 0 ||
            !labels[i].value)
            return -1;
    int rc = puts_(out, name);
    for (int i = 0; i < n_labels; i++) {
        rc |= puts_(out, i == 0 ? "{" : ",");
        rc |= puts_(out, labels[i].name);
        rc |= puts_(out, "=\"");
        rc |= put_escaped(out, labels[i].value, true);
        rc |= puts_(out, "\"");
    }
    if (n_labels > 0)
        rc |= puts_(out, "}");
    rc |= puts_(out, " ");
    rc |= puts_(out, value);
    rc |= puts_(out, "\n");
    return rc ? -1 : 0;
}

int prom_write_u64(msgpack_sbuffer *out, const char *name, const prom_label_t *labels,
                   int n_labels, uint64_t value)
{
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long) value);
    return write_sample(out, name, labels, n_labels, v);
}

int prom_write_i64(msgpack_sbuffer *out, const char *name, const prom_label_t *labels,
                   int n_labels, int64_t value)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long) value);
    return write_sample(out, name, labels, n_labels, v);
}

int prom_write_double(msgpack_sbuffer *out, const char *name, const prom_label_t *labels,
                      int n_labels, double value)
{
    char v[40];
    if (isnan(value))
        snprintf(v, sizeof v, "NaN");
    else if (isinf(value))
        snprintf(v, sizeof v, "%s", value > 0 ? "+Inf" : "-Inf");
    else if (value == trunc(value) && fabs(value) < 9007199254740992.0)
        snprintf(v, sizeof v, "%lld", (long long) value);   /* also turns -0 into 0 */
    else
        snprintf(v, sizeof v, "%.17g", value);
    return write_sample(out, name, labels, n_labels, v);
}
