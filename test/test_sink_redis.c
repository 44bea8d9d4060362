/* test_sink_redis: the redis (Event Count Logger) sink against a real redis-server: counts
 * per id after a sync, hostile ids, declared and auto-declared ids, rotation at interval
 * boundaries, two instances counting into one Redis, a Redis that stops or drops the
 * connection (RETRY, counts kept, then synced), a lost EXEC reply (never counted twice),
 * the id cap; and redis_conn's handshake and error wording. */
#include "ecl_group.h"
#include "ecl_key.h"
#include "ecl_read.h"
#include "ecl_rotate.h"
#include "log.h"
#include "name_template.h"
#include "redis_conn.h"
#include "sink.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sink_events.h"
#include "test_ecl_redis.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const sink_ops_t *ops = &sink_redis_ops;

/* ---------------------------------------------------------------- config and events */

typedef struct {
    worker_config_t w;
    char  group[96];
    char *interval_names[4];
    int   intervals_s[4];
    char *events[8];
} cfg_t;

/* A redis worker counting "{data.fun}" into group <unique>_name at port, intervals as given
 * ("5m" style names with their seconds). */
static void cfg_init(cfg_t *c, const char *name, int port, const char *const *intervals,
                     const int *seconds, int n)
{
    memset(c, 0, sizeof *c);
    test_group(c->group, sizeof c->group, name);
    for (int i = 0; i < n; i++) {
        c->interval_names[i] = (char *) intervals[i];
        c->intervals_s[i] = seconds[i];
    }
    c->w = (worker_config_t){ .name = "counts", .sink = "redis", .processes = 1,
                              .batch_size = 100, .host = (char *) test_redis_host(),
                              .port = port, .group = c->group,
                              .interval_names = c->interval_names,
                              .intervals_s = c->intervals_s, .n_intervals = n,
                              .counter = "{data.fun}", .events = c->events,
                              .auto_declare = true, .sync_interval_ms = 1000,
                              .sync_limit = 1000, .connect_timeout_ms = 2000 };
}

static const char *const LONG_IVS[] = { "5m", "1h" };
static const int LONG_SECS[] = { 300, 3600 };

/* An event whose data is { fun: <fun[0..len)> } (no fun when fun is NULL). */
static worker_event_t *fun_event(const char *fun, size_t len, uint64_t seq)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, fun ? 2 : 1);
    pk_key(&pk, "jid");
    pk_key(&pk, "20240101000000000000");
    if (fun) {
        pk_key(&pk, "fun");
        pk_str(&pk, fun, len);
    }
    worker_event_t *ev = event_from("salt/job/20240101000000000000/ret/m1", &sb, seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

static sink_t *open_sink(const cfg_t *c)
{
    char err[512] = "";
    cr_assert_eq(ops->check(&c->w, err, sizeof err), 0, "check: %s", err);
    sink_t *s = ops->open(&c->w, "m1_master", err, sizeof err);
    cr_assert_not_null(s, "open: %s", err);
    return s;
}

/* Counts each fun once (NULL entries: an event without fun). */
static void count(sink_t *s, const char *const *funs, size_t n)
{
    worker_event_t *evs[64];
    cr_assert_leq(n, N_ELEMS(evs));
    for (size_t i = 0; i < n; i++)
        evs[i] = fun_event(funs[i], funs[i] ? strlen(funs[i]) : 0, i + 1);
    size_t bad = 0;
    char err[256] = "";
    cr_assert_eq(ops->write_batch(s, evs, n, &bad, err, sizeof err), SINK_OK, "%s", err);
    for (size_t i = 0; i < n; i++)
        worker_event_destroy(&evs[i]);
}

static void count_one(sink_t *s, const char *fun, int times)
{
    for (int i = 0; i < times; i++)
        count(s, &fun, 1);
}

static void flush_ok(sink_t *s)
{
    char err[512] = "";
    cr_assert_eq(ops->flush(s, err, sizeof err), SINK_OK, "flush: %s", err);
}

static long long cur(redisContext *c, const cfg_t *cfg, const char *iv, const char *id)
{
    return test_getf(c, "%s:%s:cur:%s", cfg->group, iv, id);
}

static long long last(redisContext *c, const cfg_t *cfg, const char *iv, const char *id)
{
    return test_getf(c, "%s:%s:last:%s", cfg->group, iv, id);
}

/* ---------------------------------------------------------------- counting */

Test(sink_redis, counts_per_id_land_after_a_sync_in_every_interval)
{
    cfg_t c;
    cfg_init(&c, "basic", test_redis_port(), LONG_IVS, LONG_SECS, 2);
    redisContext *r = test_redis();
    sink_t *s = open_sink(&c);
    const char *funs[] = { "test.ping", "state.apply", "test.ping", NULL, "test.ping" };
    int64_t before = clock_ms();
    count(s, funs, N_ELEMS(funs));
    cr_expect_eq(cur(r, &c, "5m", "test.ping"), -1, "write_batch must not send anything");
    int64_t at = ops->flush_at(s);
    cr_expect_leq(at, before + 1000 + 50, "sync due within sync_interval_ms");
    flush_ok(s);
    for (size_t i = 0; i < N_ELEMS(LONG_IVS); i++) {
        cr_expect_eq(cur(r, &c, LONG_IVS[i], "test.ping"), 3);
        cr_expect_eq(cur(r, &c, LONG_IVS[i], "state.apply"), 1);
        cr_expect_geq(test_getf(r, "%s:%s:cur:@ts", c.group, LONG_IVS[i], ""), 1);
    }
    /* A second sync adds only what came since. */
    count_one(s, "test.ping", 2);
    flush_ok(s);
    cr_expect_eq(cur(r, &c, "1h", "test.ping"), 5);
    flush_ok(s);   /* nothing held: a no-op */
    cr_expect_eq(cur(r, &c, "1h", "test.ping"), 5);
    ops->close(&s);
    cr_expect_null(s);
    redis_conn_close(&r);
}

Test(sink_redis, hostile_ids_are_sanitised)
{
    cfg_t c;
    cfg_init(&c, "hostile", test_redis_port(), LONG_IVS, LONG_SECS, 1);
    redisContext *r = test_redis();
    sink_t *s = open_sink(&c);
    static char huge[100000];
    memset(huge, 'h', sizeof huge - 1);
    const char *funs[] = { "a b\nc\r\td", "@ts", "", "x\xff\xfey", huge, "{}*?[", "k:v" };
    count(s, funs, N_ELEMS(funs));
    flush_ok(s);
    cr_expect_eq(cur(r, &c, "5m", "a_b_c__d"), 1);
    cr_expect_eq(cur(r, &c, "5m", "_ts"), 1);
    /* Not UTF-8: payload_to_text renders it as eventsd renders bytes everywhere. */
    cr_expect_eq(cur(r, &c, "5m", "{\"$bin\":_\"eP/+eQ==\"}"), 1);
    cr_expect_eq(cur(r, &c, "5m", "{}*?["), 1);
    cr_expect_eq(cur(r, &c, "5m", "k:v"), 1);
    char cut[NAME_VALUE_MAX + 1];
    memset(cut, 'h', NAME_VALUE_MAX);
    cut[NAME_VALUE_MAX] = '\0';
    cr_expect_eq(cur(r, &c, "5m", cut), 1, "a huge value is cut at NAME_VALUE_MAX");
    /* @ts stayed a timestamp: the "@ts" event did not touch it. */
    cr_expect_gt(test_getf(r, "%s:%s:cur:@ts", c.group, "5m", ""), 1000000000);
    /* The empty id was not counted anywhere: ECL could not list it. */
    cr_expect_eq(test_getf(r, "%s:%s:cur:%s", c.group, "5m", ""), -1);
    ops->close(&s);
    redis_conn_close(&r);
}

Test(sink_redis, declared_ids_exist_at_zero_and_undeclared_ones_are_skipped)
{
    cfg_t c;
    cfg_init(&c, "declared", test_redis_port(), LONG_IVS, LONG_SECS, 1);
    c.events[0] = "test.ping";
    c.events[1] = "idle id";          /* sanitised like event ids: idle_id */
    c.w.n_events = 2;
    c.w.auto_declare = false;
    redisContext *r = test_redis();
    sink_t *s = open_sink(&c);
    const char *funs[] = { "test.ping", "other.fun", "test.ping" };
    count(s, funs, N_ELEMS(funs));
    flush_ok(s);
    cr_expect_eq(cur(r, &c, "5m", "test.ping"), 2);
    cr_expect_eq(cur(r, &c, "5m", "other.fun"), -1);
    cr_expect_eq(cur(r, &c, "5m", "idle_id"), 0, "declared ids exist from the first rotation");
    cr_expect_eq(last(r, &c, "5m", "idle_id"), 0);
    ops->close(&s);

    /* The same group auto-declaring: the new id appears, and the reader lists all. */
    c.w.auto_declare = true;
    s = open_sink(&c);
    count(s, funs, N_ELEMS(funs));
    flush_ok(s);
    cr_expect_eq(cur(r, &c, "5m", "other.fun"), 1);
    cr_expect_eq(cur(r, &c, "5m", "test.ping"), 4);
    char err[256];
    ecl_group_t *g = ecl_group_new(&c.w, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    ecl_row_t *rows;
    size_t n;
    cr_assert_eq(ecl_read(r, g, 0, ECL_CUR, &rows, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    cr_expect_str_eq(rows[0].id, "idle_id");
    cr_expect_eq(rows[0].count, 0);
    cr_expect_str_eq(rows[1].id, "other.fun");
    cr_expect_eq(rows[1].count, 1);
    cr_expect_str_eq(rows[2].id, "test.ping");
    cr_expect_eq(rows[2].count, 4);
    ecl_read_free(&rows, n);
    ecl_group_destroy(&g);
    ops->close(&s);
    redis_conn_close(&r);
}

/* ---------------------------------------------------------------- rotation */

static long long ts_of(redisContext *r, const cfg_t *c, const char *iv)
{
    return test_getf(r, "%s:%s:cur:@ts", c->group, iv, "");
}

Test(sink_redis, rotation_at_a_boundary_moves_cur_to_last)
{
    static const char *const ivs[] = { "2s" };
    static const int secs[] = { 2 };
    cfg_t c;
    cfg_init(&c, "rotate", test_redis_port(), ivs, secs, 1);
    redisContext *r = test_redis();
    sink_t *s = open_sink(&c);
    count_one(s, "a", 3);
    count_one(s, "gone", 1);
    flush_ok(s);
    long long ts0 = ts_of(r, &c, "2s");
    cr_assert_eq(ts0 % 2, 0, "@ts is an epoch-aligned boundary");
    cr_assert_eq(cur(r, &c, "2s", "a"), 3);

    /* Past the next boundary: the next sync rotates first, then adds. */
    test_wait_until_ms((ts0 + 2) * 1000 + 10);
    count_one(s, "a", 5);
    flush_ok(s);
    long long ts1 = ts_of(r, &c, "2s");
    cr_assert_gt(ts1, ts0);
    cr_expect_eq(cur(r, &c, "2s", "a"), 5, "counts synced after the boundary are in the new one");
    if (ts1 == ts0 + 2) {
        cr_expect_eq(last(r, &c, "2s", "a"), 3);
        cr_expect_eq(last(r, &c, "2s", "gone"), 1);
        cr_expect_eq(cur(r, &c, "2s", "gone"), -1, "an auto-declared id's cur is renamed away");
    } else {
        /* The machine was too slow to sync within the next interval: the old counts are
         * older than the last interval, so last is empty. */
        cr_expect_eq(last(r, &c, "2s", "a"), -1);
    }

    /* Another boundary with nothing counted (the sink is asked anyway: flush with nothing
     * held rotates). 'gone' saw no events for a whole interval: ECL forgets it. */
    test_wait_until_ms((ts1 + 2) * 1000 + 10);
    flush_ok(s);
    long long ts2 = ts_of(r, &c, "2s");
    cr_assert_gt(ts2, ts1);
    cr_expect_eq(last(r, &c, "2s", "gone"), -1);
    if (ts2 == ts1 + 2)
        cr_expect_eq(last(r, &c, "2s", "a"), 5);
    cr_expect_eq(cur(r, &c, "2s", "a"), -1);
    ops->close(&s);
    redis_conn_close(&r);
}

Test(sink_redis, flush_at_follows_sync_limit_interval_and_boundaries)
{
    static const char *const ivs[] = { "1h" };
    static const int secs[] = { 3600 };
    cfg_t c;
    cfg_init(&c, "schedule", test_redis_port(), ivs, secs, 1);
    c.w.sync_interval_ms = 60000;
    c.w.sync_limit = 3;
    sink_t *s = open_sink(&c);
    cr_expect_leq(ops->flush_at(s), clock_ms(), "fresh: a first rotation is due at once");
    flush_ok(s);
    int64_t now = clock_ms(), wall = test_now_ms();
    int64_t to_boundary = 3600000 - wall % 3600000;
    int64_t idle = ops->flush_at(s);
    cr_expect_geq(idle, now + to_boundary - 50, "idle: the next boundary");
    cr_expect_leq(idle, now + to_boundary + 100);
    count_one(s, "a", 2);
    cr_expect_leq(ops->flush_at(s), now + (to_boundary < 60000 ? to_boundary : 60000) + 100);
    count_one(s, "a", 1);
    cr_expect_leq(ops->flush_at(s), clock_ms(), "sync_limit reached: due now");
    flush_ok(s);
    cr_expect_gt(ops->flush_at(s), clock_ms() + 1000);
    ops->close(&s);
}

/* ---------------------------------------------------------------- two instances */

/* A child process: its own sink, n events over ids a..e, a sync whenever one is due, until
 * it has counted everything and the wall clock passed until_ms. Exit code 0 when all ok. */
static void instance(const cfg_t *c, int n, int64_t until_ms)
{
    char err[512];
    sink_t *s = ops->open(&c->w, "m1_master", err, sizeof err);
    if (!s)
        _exit(2);
    const char *ids[] = { "a", "b", "c", "d", "e" };
    int done = 0;
    while (done < n || test_now_ms() < until_ms) {
        worker_event_t *evs[50];
        size_t k = 0;
        for (; k < N_ELEMS(evs) && done < n; k++, done++)
            evs[k] = fun_event(ids[done % 5], 1, (uint64_t) done + 1);
        size_t bad;
        if (k && ops->write_batch(s, evs, k, &bad, err, sizeof err) != SINK_OK)
            _exit(3);
        for (size_t i = 0; i < k; i++)
            worker_event_destroy(&evs[i]);
        if (ops->flush_at(s) <= clock_ms() && ops->flush(s, err, sizeof err) != SINK_OK)
            _exit(4);
        if (done >= n)
            usleep(20000);
    }
    if (ops->flush(s, err, sizeof err) != SINK_OK)
        _exit(5);
    ops->close(&s);
    _exit(0);
}

Test(sink_redis, two_instances_give_the_exact_sum, .timeout = 60)
{
    static const char *const ivs[] = { "1s", "7d" };
    static const int secs[] = { 1, 604800 };
    cfg_t c;
    cfg_init(&c, "two", test_redis_port(), ivs, secs, 2);
    c.w.sync_interval_ms = 50;
    c.w.sync_limit = 500;
    redisContext *r = test_redis();
    const int n = 20000;
    long long ts7 = -1;
    /* Both run across at least two 1 s boundaries, rotating inside their syncs. */
    int64_t until = test_now_ms() + 2500;
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0)
            instance(&c, n, until);
    }
    for (int i = 0; i < 2; i++) {
        int status;
        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "instance %d: status %d", i,
                  status);
    }
    ts7 = ts_of(r, &c, "7d");
    const char *ids[] = { "a", "b", "c", "d", "e" };
    for (size_t i = 0; i < N_ELEMS(ids); i++) {
        long long total = cur(r, &c, "7d", ids[i]);
        /* A 7-day boundary inside the test (Thursday 00:00 UTC) moved part to last. */
        if (ts7 > (until - 3000) / 1000)
            total += last(r, &c, "7d", ids[i]);
        cr_expect_eq(total, 2 * n / 5, "%s: %lld", ids[i], total);
    }
    /* The 1 s interval rotated up to the end: @ts is the last boundary either one saw. */
    long long ts1 = ts_of(r, &c, "1s");
    cr_expect_geq(ts1, until / 1000 - 1);
    redis_conn_close(&r);
}

/* Of several callers racing through the same boundaries, at most one rotates each (a caller
 * that finds a later boundary rotated skips the earlier one: that interval was late). */
Test(sink_redis, concurrent_rotations_happen_at_most_once_per_boundary, .timeout = 60)
{
    static const char *const ivs[] = { "1s" };
    static const int secs[] = { 1 };
    cfg_t c;
    cfg_init(&c, "once", test_redis_port(), ivs, secs, 1);
    c.events[0] = "x";
    c.w.n_events = 1;
    char err[256];
    ecl_group_t *g = ecl_group_new(&c.w, err, sizeof err);
    cr_assert_not_null(g, "%s", err);
    enum { BOUNDARIES = 300, PROCS = 3 };
    int fds[PROCS][2];
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        cr_assert_eq(pipe(fds[p]), 0);
        if ((pids[p] = fork()) == 0) {
            redisContext *rc = redis_conn_open(test_redis_host(), test_redis_port(), NULL, 0,
                                               5000, err, sizeof err);
            char rotated[BOUNDARIES + 1] = { 0 };
            for (int b = 1; rc && b <= BOUNDARIES; b++) {
                int rr = ecl_rotate_run(rc, g, 0, 1000000 + b, err, sizeof err);
                if (rr < 0)
                    _exit(2);   /* the test fails: what leaks then does not matter */
                rotated[b] = (char) rr;
            }
            int code = !rc ? 4 : write(fds[p][1], rotated, sizeof rotated) != sizeof rotated;
            redis_conn_close(&rc);
            ecl_group_destroy(&g);
            _exit(code);
        }
        close(fds[p][1]);
    }
    int per_boundary[BOUNDARIES + 1] = { 0 }, total = 0;
    for (int p = 0; p < PROCS; p++) {
        char rotated[BOUNDARIES + 1];
        int status;
        cr_assert_eq(read(fds[p][0], rotated, sizeof rotated), sizeof rotated);
        close(fds[p][0]);
        waitpid(pids[p], &status, 0);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int b = 1; b <= BOUNDARIES; b++) {
            per_boundary[b] += rotated[b];
            total += rotated[b];
        }
    }
    for (int b = 1; b <= BOUNDARIES; b++)
        cr_expect_leq(per_boundary[b], 1, "boundary %d rotated %d times", b, per_boundary[b]);
    cr_expect_geq(total, BOUNDARIES / PROCS, "rotations: %d", total);
    redisContext *r = test_redis();
    cr_expect_eq(ts_of(r, &c, "1s"), 1000000 + BOUNDARIES);
    redis_conn_close(&r);
    ecl_group_destroy(&g);
}

/* ---------------------------------------------------------------- failures */

static test_private_redis_t priv;

static void priv_start(void) { test_private_start(&priv); }
static void priv_destroy(void) { test_private_destroy(&priv); }

TestSuite(sink_redis_down, .init = priv_start, .fini = priv_destroy, .timeout = 60);

Test(sink_redis_down, a_stopped_redis_gives_retry_and_keeps_the_counts)
{
    cfg_t c;
    cfg_init(&c, "down", priv.port, LONG_IVS, LONG_SECS, 1);
    sink_t *s = open_sink(&c);
    count_one(s, "a", 4);
    test_private_stop(&priv);
    char err[512] = "", want[64];
    cr_expect_eq(ops->flush(s, err, sizeof err), SINK_RETRY);
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: ", priv.port);
    cr_expect(strstr(err, want) != NULL, "error names the server: %s", err);
    cr_expect(strchr(err, '\n') == NULL, "one line: %s", err);
    /* Still down: still RETRY (the reconnect fails cleanly), still counting. */
    cr_expect_eq(ops->flush(s, err, sizeof err), SINK_RETRY);
    cr_expect(strstr(err, "Connection refused") != NULL, "%s", err);
    count_one(s, "a", 3);
    cr_expect_leq(ops->flush_at(s), clock_ms() + 1000);
    test_servers("start", &priv);   /* the same port again */
    flush_ok(s);
    redisContext *r = test_redis_at(priv.port);
    cr_expect_eq(cur(r, &c, "5m", "a"), 7, "every count kept and synced once");
    redis_conn_close(&r);
    ops->close(&s);
}

Test(sink_redis_down, a_closed_connection_gives_retry_then_syncs_once)
{
    cfg_t c;
    cfg_init(&c, "closed", priv.port, LONG_IVS, LONG_SECS, 1);
    sink_t *s = open_sink(&c);
    redisContext *r = test_redis_at(priv.port);
    count_one(s, "a", 2);
    flush_ok(s);
    const char *kill[] = { "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes" };
    freeReplyObject(test_cmd(r, N_ELEMS(kill), kill));
    count_one(s, "a", 3);
    char err[512] = "";
    sink_result_t rc = ops->flush(s, err, sizeof err);
    if (rc == SINK_RETRY)   /* the usual case: the dead socket shows on this sync */
        flush_ok(s);
    cr_expect_eq(cur(r, &c, "5m", "a"), 5, "%s", err);
    flush_ok(s);
    cr_expect_eq(cur(r, &c, "5m", "a"), 5);
    redis_conn_close(&r);
    ops->close(&s);
}

/* ---- a TCP proxy that breaks the connection around EXEC ---- */

typedef enum { PROXY_PASS, PROXY_CUT_BEFORE_EXEC, PROXY_CUT_AFTER_EXEC } proxy_mode_t;

typedef struct {
    int listen_fd, port, target_port;
    volatile proxy_mode_t mode;
    volatile int stop, cuts;
    int kept[16], n_kept;   /* server sides left open after a cut, so Redis runs EXEC */
    pthread_t thread;
} proxy_t;

static const char EXEC_CMD[] = "*1\r\n$4\r\nEXEC\r\n";

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Forwards client bytes; returns 1 when it cut the connection, 0 to go on, -1 on EOF. */
static int proxy_client_data(proxy_t *p, int cl, int sv)
{
    static char buf[1 << 20];
    ssize_t n = read(cl, buf, sizeof buf);
    if (n <= 0)
        return -1;
    char *exec = p->mode == PROXY_PASS ? NULL : memmem(buf, (size_t) n, EXEC_CMD, 14);
    if (!exec)
        return write_all(sv, buf, (size_t) n) == 0 ? 0 : -1;
    size_t upto = (size_t) (exec - buf) + (p->mode == PROXY_CUT_AFTER_EXEC ? 14 : 0);
    write_all(sv, buf, upto);
    p->mode = PROXY_PASS;
    p->cuts++;
    return 1;
}

static void proxy_relay(proxy_t *p, int cl, int sv)
{
    char buf[65536];
    for (;;) {
        struct pollfd fds[2] = { { cl, POLLIN, 0 }, { sv, POLLIN, 0 } };
        if (poll(fds, 2, 50) < 0 || p->stop)
            break;
        if (fds[0].revents) {
            int rc = proxy_client_data(p, cl, sv);
            if (rc == 1 && p->n_kept < 16) {
                p->kept[p->n_kept++] = sv;   /* Redis reads EXEC and runs it */
                close(cl);
                return;
            }
            if (rc != 0)
                break;
        }
        if (fds[1].revents) {
            ssize_t n = read(sv, buf, sizeof buf);
            if (n <= 0 || write_all(cl, buf, (size_t) n) < 0)
                break;
        }
    }
    close(cl);
    close(sv);
}

static void *proxy_run(void *arg)
{
    proxy_t *p = arg;
    while (!p->stop) {
        struct pollfd pfd = { p->listen_fd, POLLIN, 0 };
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int cl = accept(p->listen_fd, NULL, NULL);
        int sv = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(p->target_port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (cl < 0 || sv < 0 || connect(sv, (struct sockaddr *) &sa, sizeof sa) < 0) {
            close(cl);
            close(sv);
            continue;
        }
        proxy_relay(p, cl, sv);
    }
    return NULL;
}

static void proxy_start(proxy_t *p, int target_port)
{
    memset(p, 0, sizeof *p);
    p->target_port = target_port;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(p->listen_fd, (struct sockaddr *) &sa, sizeof sa), 0);
    cr_assert_eq(listen(p->listen_fd, 8), 0);
    cr_assert_eq(getsockname(p->listen_fd, (struct sockaddr *) &sa, &len), 0);
    p->port = ntohs(sa.sin_port);
    cr_assert_eq(pthread_create(&p->thread, NULL, proxy_run, p), 0);
}

static void proxy_stop(proxy_t *p)
{
    p->stop = 1;
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
    for (int i = 0; i < p->n_kept; i++)
        close(p->kept[i]);
}

/* Polls key until it holds want or 5 s pass. */
static long long wait_value(redisContext *r, const char *key, long long want)
{
    long long v = test_get(r, key);
    for (int64_t end = test_now_ms() + 5000; v != want && test_now_ms() < end;
         v = test_get(r, key))
        usleep(10000);
    return v;
}

static void lost_reply_case(proxy_mode_t mode)
{
    cfg_t c;
    proxy_t p;
    proxy_start(&p, test_redis_port());
    cfg_init(&c, mode == PROXY_CUT_AFTER_EXEC ? "lost_after" : "lost_before", p.port,
             LONG_IVS, LONG_SECS, 1);
    redisContext *r = test_redis();
    sink_t *s = open_sink(&c);
    count_one(s, "a", 2);
    flush_ok(s);
    count_one(s, "a", 3);
    p.mode = mode;
    char err[512] = "", key[160];
    cr_assert_eq(ops->flush(s, err, sizeof err), SINK_RETRY, "the reply is lost");
    cr_expect_eq(p.cuts, 1);
    snprintf(key, sizeof key, "%s:5m:cur:a", c.group);
    long long want = mode == PROXY_CUT_AFTER_EXEC ? 5 : 2;
    cr_assert_eq(wait_value(r, key, want), want, "Redis ran EXEC: %s", want == 5 ? "yes" : "no");
    count_one(s, "a", 1);   /* counted while the outcome is unknown */
    flush_ok(s);
    cr_expect_eq(test_get(r, key), 6, "each event counted once");
    ops->close(&s);
    redis_conn_close(&r);
    proxy_stop(&p);
}

Test(sink_redis, a_reply_lost_after_exec_is_not_counted_twice)
{
    lost_reply_case(PROXY_CUT_AFTER_EXEC);
}

Test(sink_redis, a_transaction_cut_before_exec_is_sent_again)
{
    lost_reply_case(PROXY_CUT_BEFORE_EXEC);
}

Test(sink_redis, open_fails_cleanly_when_redis_is_unreachable)
{
    cfg_t c;
    proxy_t p;
    proxy_start(&p, test_redis_port());
    int port = p.port;
    proxy_stop(&p);   /* a port nobody listens on now */
    cfg_init(&c, "unreachable", port, LONG_IVS, LONG_SECS, 1);
    char err[512] = "";
    sink_t *s = ops->open(&c.w, "m1_master", err, sizeof err);
    cr_expect_null(s);
    cr_expect(strstr(err, "redis 127.0.0.1:") && strstr(err, "connect"), "%s", err);
}

/* ---------------------------------------------------------------- limits */

Test(sink_redis, distinct_ids_are_capped_and_a_full_table_syncs_at_once, .timeout = 60)
{
    cfg_t c;
    cfg_init(&c, "cap", test_redis_port(), LONG_IVS, LONG_SECS, 1);
    c.w.sync_limit = 10000000;
    c.w.sync_interval_ms = 3600000;
    sink_t *s = open_sink(&c);
    enum { IDS = 10000 };
    char id[32];
    for (int i = 0; i <= IDS; i++) {
        snprintf(id, sizeof id, "id%05d", i);
        count_one(s, id, 1);
    }
    cr_expect_leq(ops->flush_at(s), clock_ms(), "a full table is due at once");
    flush_ok(s);
    redisContext *r = test_redis();
    cr_expect_eq(cur(r, &c, "5m", "id00000"), 1);
    cr_expect_eq(cur(r, &c, "5m", "id09999"), 1);
    cr_expect_eq(cur(r, &c, "5m", "id10000"), -1, "the overflowing id was not counted");
    count_one(s, "id10000", 1);   /* room again after the sync */
    flush_ok(s);
    cr_expect_eq(cur(r, &c, "5m", "id10000"), 1);
    redis_conn_close(&r);
    ops->close(&s);
}

Test(sink_redis, check_reports_config_problems)
{
    cfg_t c;
    char err[256] = "";
    cfg_init(&c, "check", test_redis_port(), LONG_IVS, LONG_SECS, 1);
    c.w.counter = "{nonsense}";
    c.w.file = "/etc/eventsd/eventsd.conf";
    c.w.line = 12;
    cr_expect_eq(ops->check(&c.w, err, sizeof err), -1);
    cr_expect(strncmp(err, "/etc/eventsd/eventsd.conf:12: ", 30) == 0, "%s", err);
    cr_expect(strstr(err, "counter") != NULL, "%s", err);
    cfg_init(&c, "check", test_redis_port(), LONG_IVS, LONG_SECS, 1);
    c.events[0] = "\n";
    c.w.n_events = 1;
    cr_expect_eq(ops->check(&c.w, err, sizeof err), 0, "a newline id becomes '_': %s", err);
    c.events[0] = "";
    cr_expect_eq(ops->check(&c.w, err, sizeof err), -1);
    cr_expect(strstr(err, "empty") != NULL, "%s", err);
    cfg_init(&c, "check", test_redis_port(), LONG_IVS, LONG_SECS, 0);
    cr_expect_eq(ops->check(&c.w, err, sizeof err), -1);
}

/* ---------------------------------------------------------------- redis_conn */

Test(sink_redis_down, redis_conn_auth_select_and_errors_without_the_password)
{
    redisContext *admin = test_redis_at(priv.port);
    const char *set[] = { "CONFIG", "SET", "requirepass", "s3cr3t-pw" };
    freeReplyObject(test_cmd(admin, 4, set));
    char err[512] = "";
    redisContext *c = redis_conn_open("127.0.0.1", priv.port, "wrong-pw", 0, 1000, err,
                                      sizeof err);
    cr_expect_null(c);
    cr_expect(strstr(err, "AUTH") != NULL, "%s", err);
    cr_expect(strstr(err, "wrong-pw") == NULL, "the password leaked: %s", err);
    c = redis_conn_open("127.0.0.1", priv.port, NULL, 0, 1000, err, sizeof err);
    cr_assert_not_null(c, "the handshake sends nothing without a password");
    const char *ping[] = { "PING" };
    cr_expect_null(redis_conn_command(c, 1, ping, NULL, "PING", err, sizeof err));
    cr_expect(strstr(err, "NOAUTH") != NULL, "%s", err);
    redis_conn_close(&c);
    c = redis_conn_open("127.0.0.1", priv.port, "s3cr3t-pw", 3, 1000, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    test_set(c, "in-db-3", "1");
    redis_conn_close(&c);
    cr_expect_null(c);
    c = redis_conn_open("127.0.0.1", priv.port, "s3cr3t-pw", 5000, 1000, err, sizeof err);
    cr_expect_null(c);
    cr_expect(strstr(err, "SELECT") != NULL && !strstr(err, "s3cr3t"), "%s", err);
    const char *auth[] = { "AUTH", "s3cr3t-pw" };
    freeReplyObject(test_cmd(admin, 2, auth));
    const char *sel[] = { "SELECT", "3" };
    freeReplyObject(test_cmd(admin, 2, sel));
    cr_expect_eq(test_get(admin, "in-db-3"), 1);
    redis_conn_close(&admin);
}

/* ---------------------------------------------------------------- explain, max_inflight */

static char *explain(const cfg_t *c, const char *fun)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cr_assert_not_null(out);
    worker_event_t *ev = fun_event(fun, fun ? strlen(fun) : 0, 1);
    ops->explain(&c->w, "m1_master", ev, out);
    worker_event_destroy(&ev);
    fclose(out);
    return text;
}

Test(sink_redis, explain_names_the_id_and_keys_or_why_not)
{
    cfg_t c;
    cfg_init(&c, "explain", 6399, LONG_IVS, LONG_SECS, 2);   /* nothing is connected */
    c.events[0] = "known";
    c.w.n_events = 1;
    char *t = explain(&c, "state apply");
    cr_expect(strstr(t, "counter id 'state_apply' (auto-declared)"), "%s", t);
    char want[256];
    snprintf(want, sizeof want, "INCRBY %s:5m:cur:state_apply\n    INCRBY %s:1h:cur:state_apply",
             c.group, c.group);
    cr_expect(strstr(t, want), "%s", t);
    free(t);
    t = explain(&c, "known");
    cr_expect(strstr(t, "'known' (declared)"), "%s", t);
    free(t);
    t = explain(&c, NULL);
    cr_expect(strstr(t, "not counted: the counter template needs a field"), "%s", t);
    free(t);
    c.w.auto_declare = false;
    t = explain(&c, "other");
    cr_expect(strstr(t, "not counted: id 'other' is not declared"), "%s", t);
    free(t);
}

Test(sink_redis, a_sync_is_due_by_half_of_max_inflight)
{
    cfg_t c;
    cfg_init(&c, "inflight", test_redis_port(), LONG_IVS, LONG_SECS, 1);
    c.w.sync_limit = 1000000;
    c.w.sync_interval_ms = 3600000;
    c.w.max_inflight = 10;
    sink_t *s = open_sink(&c);
    flush_ok(s);   /* the first rotation, due at once */
    count_one(s, "a", 4);
    cr_expect_gt(ops->flush_at(s), clock_ms());
    count_one(s, "a", 1);
    cr_expect_leq(ops->flush_at(s), clock_ms(), "the master would wait for these acks");
    flush_ok(s);
    ops->close(&s);
}
