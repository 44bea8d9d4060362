/* metrics_http: real sockets on 127.0.0.1 against a listener driven by zmq_poll + handle in a
 * loop with a deadline: GET/HEAD /metrics (status, headers, Content-Length, the rendered
 * body), /, 404, 405, 400 variants, an oversized head (431), a request in pieces, a slow client
 * not blocking another, the per-connection timeout, more connections than slots (503/closed,
 * then served again), listen address errors; and the Prometheus writer: HELP/TYPE, labels and
 * their escaping, value formats, invalid names. */
#include "metrics_http.h"
#include "log.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- harness ------------------------------------------------------------------------------ */

typedef struct {
    int calls;
    int lines;   /* render_big: samples to write */
} render_ctx_t;

static const char BODY[] =
    "# HELP eventsd_received_total Events read from the bus.\n"
    "# TYPE eventsd_received_total counter\n"
    "eventsd_received_total 42\n";

static void render(void *arg, msgpack_sbuffer *out)
{
    ((render_ctx_t *) arg)->calls++;
    msgpack_sbuffer_write(out, BODY, strlen(BODY));
}

static metrics_http_t *start(void)
{
    char err[256];
    metrics_http_t *mh = metrics_http_new("127.0.0.1:0", err, sizeof err);
    cr_assert_not_null(mh, "%s", err);
    cr_assert_gt(metrics_http_port(mh), 0);
    return mh;
}

/* One turn of the master's loop: poll our items for up to ms, then handle them. */
static void pump(metrics_http_t *mh, render_ctx_t *ctx, int ms)
{
    zmq_pollitem_t items[1 + METRICS_HTTP_MAX_CONNS];
    int n = metrics_http_pollitems(mh, items, metrics_http_n_pollitems(mh));
    cr_assert_leq(n, metrics_http_n_pollitems(mh));
    int rc = zmq_poll(items, n, ms);
    cr_assert(rc >= 0 || errno == EINTR, "zmq_poll: %s", strerror(errno));
    metrics_http_handle(mh, items, n, render, ctx);
}

static int client(const metrics_http_t *mh)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(metrics_http_port(mh)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert(connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0, "connect: %s",
              strerror(errno));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        s += w;
        n -= (size_t) w;
    }
}

typedef struct {
    char   data[65536];
    size_t len;
    bool   eof;
    bool   reset;
} resp_t;

/* Reads what is there without waiting; sets eof/reset when the server closed. */
static void read_some(int fd, resp_t *r)
{
    for (;;) {
        ssize_t n = recv(fd, r->data + r->len, sizeof r->data - 1 - r->len, 0);
        if (n > 0) {
            r->len += (size_t) n;
            r->data[r->len] = '\0';
            continue;
        }
        if (n == 0)
            r->eof = true;
        else if (errno == ECONNRESET)
            r->reset = true;
        return;
    }
}

/* Pumps the server until the client sees the connection closed. The deadlines in these
 * tests only catch a hang: generous, because valgrind runs them 20-50 times slower. */
static void until_closed(metrics_http_t *mh, render_ctx_t *ctx, int fd, resp_t *r)
{
    int64_t deadline = clock_ms() + 30000;
    while (!r->eof && !r->reset) {
        cr_assert_lt(clock_ms(), deadline, "no complete response within 30 s (got %zu bytes)",
                     r->len);
        pump(mh, ctx, 10);
        read_some(fd, r);
    }
}

/* Sends req on a new connection and returns the whole response. */
static void exchange(metrics_http_t *mh, render_ctx_t *ctx, const char *req, size_t len,
                     resp_t *r)
{
    memset(r, 0, sizeof *r);
    int fd = client(mh);
    send_all(fd, req, len);
    until_closed(mh, ctx, fd, r);
    close(fd);
}

static int status_of(const resp_t *r)
{
    int status = 0;
    cr_assert_eq(sscanf(r->data, "HTTP/1.1 %d ", &status), 1, "no status line: '%s'", r->data);
    return status;
}

static const char *body_of(const resp_t *r)
{
    const char *b = strstr(r->data, "\r\n\r\n");
    cr_assert_not_null(b, "no end of head: '%s'", r->data);
    return b + 4;
}

static long content_length(const resp_t *r)
{
    const char *h = strstr(r->data, "\r\nContent-Length: ");
    cr_assert_not_null(h, "no Content-Length: '%s'", r->data);
    return strtol(h + 18, NULL, 10);
}

#define REQ(s) s, sizeof(s) - 1

/* ---- routes ------------------------------------------------------------------------------- */

Test(metrics_http, get_metrics)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    resp_t r;
    exchange(mh, &ctx, REQ("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"), &r);
    cr_expect_eq(status_of(&r), 200);
    cr_expect(strstr(r.data, "\r\nContent-Type: text/plain; version=0.0.4") != NULL, "%s", r.data);
    cr_expect(strstr(r.data, "\r\nConnection: close\r\n") != NULL);
    cr_expect_str_eq(body_of(&r), BODY);
    cr_expect_eq(content_length(&r), (long) strlen(BODY));
    cr_expect(r.eof, "closed with FIN, not reset");
    cr_expect_eq(ctx.calls, 1);
    cr_expect_eq(metrics_http_stats(mh)->requests, 1);
    metrics_http_destroy(&mh);
    cr_expect_null(mh);
}

Test(metrics_http, head_and_query_string_and_http10)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    resp_t r;
    exchange(mh, &ctx, REQ("HEAD /metrics HTTP/1.1\r\n\r\n"), &r);
    cr_expect_eq(status_of(&r), 200);
    cr_expect_eq(content_length(&r), (long) strlen(BODY));
    cr_expect_str_eq(body_of(&r), "", "HEAD has no body");
    exchange(mh, &ctx, REQ("GET /metrics?name[]=x HTTP/1.0\n\n"), &r);   /* bare LF too */
    cr_expect_eq(status_of(&r), 200);
    cr_expect_str_eq(body_of(&r), BODY);
    metrics_http_destroy(&mh);
}

Test(metrics_http, index_points_at_metrics)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    resp_t r;
    exchange(mh, &ctx, REQ("GET / HTTP/1.1\r\n\r\n"), &r);
    cr_expect_eq(status_of(&r), 200);
    cr_expect(strstr(body_of(&r), "/metrics") != NULL);
    cr_expect_eq(content_length(&r), (long) strlen(body_of(&r)));
    cr_expect_eq(ctx.calls, 0, "rendered only for /metrics");
    metrics_http_destroy(&mh);
}

typedef struct {
    const char *req;
    int         status;
} route_case_t;

Test(metrics_http, errors)
{
    static const route_case_t cases[] = {
        { "GET /nope HTTP/1.1\r\n\r\n", 404 },
        { "GET /metrics/x HTTP/1.1\r\n\r\n", 404 },
        { "GET /metricsx HTTP/1.1\r\n\r\n", 404 },
        { "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405 },
        { "DELETE / HTTP/1.1\r\n\r\n", 405 },
        { "garbage\r\n\r\n", 400 },
        { "GET metrics HTTP/1.1\r\n\r\n", 400 },
        { "GET /metrics HTTP/2.0\r\n\r\n", 400 },
        { "GET /metrics\r\n\r\n", 400 },
        { "GET  /metrics HTTP/1.1\r\n\r\n", 400 },
        { "GET /met\x01rics HTTP/1.1\r\n\r\n", 400 },
        { "G(T /metrics HTTP/1.1\r\n\r\n", 400 },
        { "\r\n\r\n", 400 },
    };
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    resp_t r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        exchange(mh, &ctx, cases[i].req, strlen(cases[i].req), &r);
        cr_expect_eq(status_of(&r), cases[i].status, "'%s': %d, want %d", cases[i].req,
                     status_of(&r), cases[i].status);
        cr_expect_eq(content_length(&r), (long) strlen(body_of(&r)), "'%s'", cases[i].req);
        if (cases[i].status == 405)
            cr_expect(strstr(r.data, "\r\nAllow: GET, HEAD\r\n") != NULL);
    }
    cr_expect_eq(ctx.calls, 0);
    metrics_http_destroy(&mh);
}

/* A head over METRICS_HTTP_MAX_HEAD: 431, and the rest of what the client sent is drained so
 * the response is not lost to a reset. */
Test(metrics_http, oversized_request)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    size_t n = METRICS_HTTP_MAX_HEAD + 4000;
    char *req = malloc(n);
    memcpy(req, "GET /metrics HTTP/1.1\r\nX-Big: ", 30);
    memset(req + 30, 'a', n - 30);
    resp_t r;
    exchange(mh, &ctx, req, n, &r);
    cr_expect_eq(status_of(&r), 431);
    cr_expect(r.eof, "FIN, not reset");
    free(req);
    metrics_http_destroy(&mh);
}

Test(metrics_http, request_in_pieces)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    int fd = client(mh);
    const char *parts[] = { "GE", "T /metr", "ics HTTP/1.1\r", "\nHost: a\r\n", "\r", "\n" };
    resp_t r = { 0 };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        send_all(fd, parts[i], strlen(parts[i]));
        for (int k = 0; k < 3; k++)
            pump(mh, &ctx, 5);
        read_some(fd, &r);
        if (i + 1 < sizeof parts / sizeof parts[0])
            cr_expect_eq(r.len, 0, "answered before the head was complete (part %zu)", i);
    }
    until_closed(mh, &ctx, fd, &r);
    cr_expect_eq(status_of(&r), 200);
    cr_expect_str_eq(body_of(&r), BODY);
    close(fd);
    metrics_http_destroy(&mh);
}

/* ---- slots and time ----------------------------------------------------------------------- */

Test(metrics_http, slow_client_does_not_block_another)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    int slow = client(mh);
    send_all(slow, REQ("GET /met"));
    for (int k = 0; k < 5; k++)
        pump(mh, &ctx, 5);
    resp_t fast;
    exchange(mh, &ctx, REQ("GET /metrics HTTP/1.1\r\n\r\n"), &fast);
    cr_expect_eq(status_of(&fast), 200);
    resp_t r = { 0 };
    read_some(slow, &r);
    cr_expect_eq(r.len, 0);
    cr_expect_not(r.eof);
    send_all(slow, REQ("rics HTTP/1.1\r\n\r\n"));
    until_closed(mh, &ctx, slow, &r);
    cr_expect_eq(status_of(&r), 200);
    close(slow);
    metrics_http_destroy(&mh);
}

Test(metrics_http, idle_connection_times_out)
{
    metrics_http_t *mh = start();
    metrics_http_set_timeout_ms(mh, 200);
    render_ctx_t ctx = { 0 };
    cr_expect_eq(metrics_http_timeout_ms(mh, clock_ms()), -1, "no connection: no deadline");
    int fd = client(mh);
    send_all(fd, REQ("GET /metrics HTTP/1.1\r\n"));   /* never finished */
    pump(mh, &ctx, 50);
    int t = metrics_http_timeout_ms(mh, clock_ms());
    cr_expect(t >= 0 && t <= 200, "timeout %d", t);
    int64_t start_ms = clock_ms();
    resp_t r = { 0 };
    until_closed(mh, &ctx, fd, &r);
    int64_t took = clock_ms() - start_ms;
    cr_expect(took >= 100 && took < 2000, "closed after %lld ms", (long long) took);
    cr_expect_eq(r.len, 0, "no response to an unfinished request");
    cr_expect_eq(metrics_http_stats(mh)->timeouts, 1);
    cr_expect_eq(metrics_http_timeout_ms(mh, clock_ms()), -1);
    close(fd);
    metrics_http_destroy(&mh);
}

Test(metrics_http, more_connections_than_slots)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    int idle[METRICS_HTTP_MAX_CONNS];
    for (int i = 0; i < METRICS_HTTP_MAX_CONNS; i++)
        idle[i] = client(mh);
    for (int k = 0; k < 10; k++)
        pump(mh, &ctx, 5);
    cr_expect_eq(metrics_http_stats(mh)->rejected, 0);
    resp_t extra;
    exchange(mh, &ctx, REQ("GET /metrics HTTP/1.1\r\n\r\n"), &extra);
    cr_expect(extra.len == 0 || status_of(&extra) == 503, "the 17th: '%s'", extra.data);
    cr_expect_eq(metrics_http_stats(mh)->rejected, 1);
    /* One of the held slots still works ... */
    send_all(idle[0], REQ("GET /metrics HTTP/1.1\r\n\r\n"));
    resp_t r = { 0 };
    until_closed(mh, &ctx, idle[0], &r);
    cr_expect_eq(status_of(&r), 200);
    close(idle[0]);
    /* ... and its freed slot takes a new connection. */
    for (int k = 0; k < 5; k++)
        pump(mh, &ctx, 5);
    exchange(mh, &ctx, REQ("GET /metrics HTTP/1.1\r\n\r\n"), &r);
    cr_expect_eq(status_of(&r), 200);
    cr_expect_eq(metrics_http_stats(mh)->rejected, 1);
    for (int i = 1; i < METRICS_HTTP_MAX_CONNS; i++)
        close(idle[i]);
    metrics_http_destroy(&mh);
}

/* A client that hangs up mid-request frees its slot. */
Test(metrics_http, client_gone_frees_the_slot)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    for (int i = 0; i < 3 * METRICS_HTTP_MAX_CONNS; i++) {
        int fd = client(mh);
        send_all(fd, REQ("GET /me"));
        close(fd);
        pump(mh, &ctx, 5);
        pump(mh, &ctx, 5);
    }
    resp_t r;
    exchange(mh, &ctx, REQ("GET /metrics HTTP/1.1\r\n\r\n"), &r);
    cr_expect_eq(status_of(&r), 200);
    cr_expect_eq(metrics_http_stats(mh)->rejected, 0);
    metrics_http_destroy(&mh);
}

/* A body far larger than the socket buffers goes out in pieces as the client reads. */
#define BIG_LINES 60000

static void render_big(void *arg, msgpack_sbuffer *out)
{
    ((render_ctx_t *) arg)->calls++;
    prom_write_family(out, "eventsd_big", "gauge", "Many samples.");
    char v[16];
    for (int i = 0; i < ((render_ctx_t *) arg)->lines; i++) {
        snprintf(v, sizeof v, "%d", i);
        prom_label_t l[] = { { "i", v } };
        prom_write_u64(out, "eventsd_big", l, 1, (uint64_t) i);
    }
}

static void pump_big(metrics_http_t *mh, render_ctx_t *ctx, int ms)
{
    zmq_pollitem_t items[1 + METRICS_HTTP_MAX_CONNS];
    int n = metrics_http_pollitems(mh, items, metrics_http_n_pollitems(mh));
    zmq_poll(items, n, ms);
    metrics_http_handle(mh, items, n, render_big, ctx);
}

Test(metrics_http, large_body_in_pieces)
{
    metrics_http_t *mh = start();
    render_ctx_t ctx = { .lines = BIG_LINES };
    int fd = client(mh);
    send_all(fd, REQ("GET /metrics HTTP/1.1\r\n\r\n"));
    size_t cap = 8 << 20, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = clock_ms() + 60000;
    for (;;) {
        cr_assert_lt(clock_ms(), deadline, "incomplete after 60 s: %zu bytes", len);
        pump_big(mh, &ctx, 5);
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n == 0)
            break;
        if (n > 0)
            len += (size_t) n;
    }
    buf[len] = '\0';
    const char *body = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(body);
    body += 4;
    long clen = strtol(strstr(buf, "Content-Length: ") + 16, NULL, 10);
    cr_expect_eq((long) (len - (size_t) (body - buf)), clen);
    cr_expect_gt(clen, 1 << 20);
    cr_expect(strstr(body, "eventsd_big{i=\"59999\"} 59999\n") != NULL);
    cr_expect_eq(ctx.calls, 1);
    free(buf);
    close(fd);
    metrics_http_destroy(&mh);
}

/* A client that asks and never reads cannot hold its slot past the timeout either. The body
 * (about 10 MB) is more than the kernel buffers on both sides of a loopback connection
 * (tcp_wmem max 4 MiB, a 4 KiB receive buffer set before connect). */
Test(metrics_http, client_that_never_reads_times_out)
{
    metrics_http_t *mh = start();
    metrics_http_set_timeout_ms(mh, 300);
    render_ctx_t ctx = { .lines = 300000 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(metrics_http_port(mh)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert(connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    send_all(fd, REQ("GET /metrics HTTP/1.1\r\n\r\n"));
    int64_t deadline = clock_ms() + 60000;
    do
        pump_big(mh, &ctx, 20);
    while (metrics_http_timeout_ms(mh, clock_ms()) >= 0 && clock_ms() < deadline);
    cr_expect_eq(metrics_http_timeout_ms(mh, clock_ms()), -1, "the slot is free");
    cr_expect_eq(metrics_http_stats(mh)->timeouts, 1, "closed at the write deadline");
    close(fd);
    metrics_http_destroy(&mh);
}

/* Out of descriptors: accept fails, the connection stays queued; the listener rests instead
 * of making every poll return at once, and the connection is served once fds are back. */
static bool under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload");
}

Test(metrics_http, accept_without_descriptors_rests)
{
    /* valgrind keeps its own descriptor table and takes a lowered limit as making our open
     * descriptors invalid. */
    if (under_valgrind())
        cr_skip_test("RLIMIT_NOFILE games do not work under valgrind");
    metrics_http_t *mh = start();
    render_ctx_t ctx = { 0 };
    int fd = client(mh);
    send_all(fd, REQ("GET /metrics HTTP/1.1\r\n\r\n"));
    struct rlimit old, low;
    cr_assert(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = (rlim_t) fd + 1;   /* no descriptor above the client's */
    cr_assert(setrlimit(RLIMIT_NOFILE, &low) == 0);
    pump(mh, &ctx, 50);
    cr_expect_eq(metrics_http_stats(mh)->accept_errors, 1);
    zmq_pollitem_t items[1 + METRICS_HTTP_MAX_CONNS];
    cr_expect_eq(metrics_http_pollitems(mh, items, 1 + METRICS_HTTP_MAX_CONNS), 0,
                 "the listener is left out while it rests");
    int t = metrics_http_timeout_ms(mh, clock_ms());
    cr_expect(t > 0 && t <= 250, "timeout %d", t);
    cr_assert(setrlimit(RLIMIT_NOFILE, &old) == 0);
    resp_t r = { 0 };
    until_closed(mh, &ctx, fd, &r);
    cr_expect_eq(status_of(&r), 200);
    close(fd);
    metrics_http_destroy(&mh);
}

/* ---- listen addresses --------------------------------------------------------------------- */

Test(metrics_http, listen_errors)
{
    const char *bad[] = { "nonsense", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:8a",
                          "::1:9100", ":", "" };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_null(metrics_http_new(bad[i], err, sizeof err), "'%s' accepted", bad[i]);
        char want[128];
        snprintf(want, sizeof want, "stats.listen '%s': expected HOST:PORT", bad[i]);
        cr_expect_str_eq(err, want);
    }
    cr_expect_null(metrics_http_new("no-such-host.invalid:9100", err, sizeof err));
    cr_expect(strncmp(err, "stats.listen 'no-such-host.invalid:9100': ", 41) == 0, "%s", err);
    metrics_http_t *a = start();
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", metrics_http_port(a));
    cr_expect_null(metrics_http_new(taken, err, sizeof err));
    char want[128];
    snprintf(want, sizeof want, "stats.listen '%s': bind: Address already in use", taken);
    cr_expect_str_eq(err, want);
    metrics_http_destroy(&a);
}

Test(metrics_http, any_address_and_ipv6)
{
    char err[256];
    metrics_http_t *mh = metrics_http_new("*:0", err, sizeof err);
    cr_assert_not_null(mh, "%s", err);
    render_ctx_t ctx = { 0 };
    resp_t r;
    exchange(mh, &ctx, REQ("GET /metrics HTTP/1.1\r\n\r\n"), &r);   /* over 127.0.0.1 */
    cr_expect_eq(status_of(&r), 200);
    metrics_http_destroy(&mh);
    mh = metrics_http_new("[::1]:0", err, sizeof err);
    if (!mh)
        cr_log_warn("no IPv6 loopback here: %s", err);
    else
        cr_expect_gt(metrics_http_port(mh), 0);
    metrics_http_destroy(&mh);
}

/* ---- the Prometheus writer ---------------------------------------------------------------- */

static char *text_of(msgpack_sbuffer *b)
{
    msgpack_sbuffer_write(b, "", 1);
    b->size--;
    return b->data;
}

Test(prom, family_and_samples_with_escaped_labels)
{
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    cr_assert_eq(prom_write_family(&b, "eventsd_written_total", "counter",
                                   "Rows a sink\ncommitted (C:\\x)."), 0);
    prom_label_t l1[] = { { "worker", "returns" } };
    cr_assert_eq(prom_write_u64(&b, "eventsd_written_total", l1, 1, 18446744073709551615ull), 0);
    prom_label_t l2[] = { { "worker", "a\"b\\c\nd" }, { "sink", "pgsql" } };
    cr_assert_eq(prom_write_u64(&b, "eventsd_written_total", l2, 2, 7), 0);
    cr_assert_eq(prom_write_i64(&b, "eventsd_delta", NULL, 0, -5), 0);
    cr_expect_str_eq(text_of(&b),
                     "# HELP eventsd_written_total Rows a sink\\ncommitted (C:\\\\x).\n"
                     "# TYPE eventsd_written_total counter\n"
                     "eventsd_written_total{worker=\"returns\"} 18446744073709551615\n"
                     "eventsd_written_total{worker=\"a\\\"b\\\\c\\nd\",sink=\"pgsql\"} 7\n"
                     "eventsd_delta -5\n");
    msgpack_sbuffer_destroy(&b);
}

typedef struct {
    double      v;
    const char *text;
} value_case_t;

Test(prom, double_values)
{
    const value_case_t cases[] = {
        { 0.0, "0" }, { -0.0, "0" }, { 42.0, "42" }, { -1.0, "-1" }, { 1.5, "1.5" },
        { 0.1, "0.10000000000000001" }, { 9007199254740991.0, "9007199254740991" },
        { 1e300, "1.0000000000000001e+300" }, { NAN, "NaN" }, { INFINITY, "+Inf" },
        { -INFINITY, "-Inf" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer b;
        msgpack_sbuffer_init(&b);
        cr_assert_eq(prom_write_double(&b, "x", NULL, 0, cases[i].v), 0);
        char want[64];
        snprintf(want, sizeof want, "x %s\n", cases[i].text);
        cr_expect_str_eq(text_of(&b), want);
        msgpack_sbuffer_destroy(&b);
    }
}

Test(prom, invalid_names_write_nothing)
{
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    prom_label_t bad_label[] = { { "a-b", "v" } };
    prom_label_t reserved[] = { { "__name__", "v" } };
    prom_label_t colon[] = { { "a:b", "v" } };
    prom_label_t null_value[] = { { "a", NULL } };
    cr_expect_eq(prom_write_u64(&b, "1abc", NULL, 0, 1), -1);
    cr_expect_eq(prom_write_u64(&b, "a b", NULL, 0, 1), -1);
    cr_expect_eq(prom_write_u64(&b, "", NULL, 0, 1), -1);
    cr_expect_eq(prom_write_u64(&b, "ok", bad_label, 1, 1), -1);
    cr_expect_eq(prom_write_u64(&b, "ok", reserved, 1, 1), -1);
    cr_expect_eq(prom_write_u64(&b, "ok", colon, 1, 1), -1);
    cr_expect_eq(prom_write_u64(&b, "ok", null_value, 1, 1), -1);
    cr_expect_eq(prom_write_family(&b, "ok", "counters", "x"), -1);
    cr_expect_eq(prom_write_family(&b, "o k", "counter", "x"), -1);
    cr_expect_eq(b.size, 0);
    cr_expect_eq(prom_write_u64(&b, "ns:sub_total", NULL, 0, 1), 0, "colons are fine in names");
    cr_expect_eq(prom_write_family(&b, "g", "gauge", NULL), 0);
    cr_expect_str_eq(text_of(&b), "ns:sub_total 1\n# TYPE g gauge\n");
    msgpack_sbuffer_destroy(&b);
}
