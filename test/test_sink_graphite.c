/* test_sink_graphite: the graphite sink against a real carbon-cache (test/with-servers.sh
 * starts one and exports EVENTSD_CARBON_*): events go in through write_batch, flush sends
 * the aggregates, and the test polls (with a deadline, never a fixed sleep) until the whisper
 * files carbon writes hold the expected value at the expected timestamp, read back with
 * whisper-fetch. Each test writes under its own name prefix, so tests running in parallel and
 * reruns never read each other's points; the reconnect tests restart a carbon of their own. */
#include "graphite_agg.h"
#include "graphite_conn.h"
#include "log.h"
#include "sink.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "sink_events.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define DEADLINE_S 90   /* carbon on a busy 2-core machine (and under valgrind) */
#define INTERVAL_S 3600 /* one slot per test run: see fold() */

/* ---------------------------------------------------------------- carbon */

typedef struct {
    int  port;
    char whisper[512];
    char dir[256];        /* the servers.sh DIR the instance lives in */
} carbon_t;

static carbon_t shared_carbon(void)
{
    const char *port = getenv("EVENTSD_CARBON_PORT"), *wsp = getenv("EVENTSD_CARBON_WHISPER_DIR");
    cr_assert(port && wsp, "EVENTSD_CARBON_* are not set: run under test/with-servers.sh or "
              "eval \"$(test/servers.sh start carbon DIR)\"");
    carbon_t c = { .port = atoi(port) };
    snprintf(c.whisper, sizeof c.whisper, "%s", wsp);
    return c;
}

/* Runs servers.sh ACTION carbon dir; for start/restart, reads the port back. */
static void servers(carbon_t *c, const char *action)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s/test/servers.sh' %s carbon '%s' >'%s.exports'", SRC_DIR,
             action, c->dir, c->dir);
    cr_assert(eq(int, system(cmd), 0), "%s", cmd);
    if (strcmp(action, "stop") == 0)
        return;
    char path[600], line[1024];
    snprintf(path, sizeof path, "%s.exports", c->dir);
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL);
    while (fgets(line, sizeof line, f))
        sscanf(line, "export EVENTSD_CARBON_PORT=%d", &c->port);
    fclose(f);
    snprintf(c->whisper, sizeof c->whisper, "%s/carbon/whisper", c->dir);
}

/* A carbon-cache of this test's own, in a fresh directory. */
static carbon_t private_carbon(void)
{
    carbon_t c = { 0 };
    snprintf(c.dir, sizeof c.dir, "/tmp/test_sink_graphite_XXXXXX");
    cr_assert(mkdtemp(c.dir) != NULL);
    servers(&c, "start");
    return c;
}

static void private_carbon_end(carbon_t *c)
{
    servers(c, "stop");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.exports'", c->dir, c->dir);
    cr_expect(eq(int, system(cmd), 0));
}

static int64_t wall_s(void)
{
    return (int64_t) time(NULL);
}

/* A name prefix no other test or run uses: "t<pid>_<what>". */
static void unique_prefix(char *out, size_t n, const char *what)
{
    snprintf(out, n, "t%ld_%s_%ld", (long) getpid(), what, (long) (wall_s() % 100000));
}

static void whisper_path(const carbon_t *c, const char *metric, char *out, size_t n)
{
    snprintf(out, n, "%s/", c->whisper);
    size_t at = strlen(out);
    for (const char *p = metric; *p && at + 5 < n; p++)
        out[at++] = *p == '.' ? '/' : *p;
    snprintf(out + at, n - at, ".wsp");
}

/* The value whisper-fetch shows for metric at ts: 1 found, 0 no file or no point yet. */
static int fetch(const carbon_t *c, const char *metric, int64_t ts, double *v)
{
    char path[1024], cmd[1400], line[256];
    whisper_path(c, metric, path, sizeof path);
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    snprintf(cmd, sizeof cmd, "whisper-fetch --drop=nulls --from=%lld --until=%lld '%s' "
             "2>/dev/null", (long long) ts - 1, (long long) ts + 1, path);
    FILE *f = popen(cmd, "r");
    cr_assert(f != NULL);
    int found = 0;
    long long t;
    double val;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lld %lf", &t, &val) == 2 && t == ts) {
            *v = val;
            found = 1;
        }
    pclose(f);
    return found;
}

/* Polls until metric has a point at ts equal to want (whisper-fetch prints 6 decimals). */
static void expect_point(const carbon_t *c, const char *metric, int64_t ts, double want)
{
    time_t end = time(NULL) + DEADLINE_S;
    double got = NAN;
    int found;
    while (!(found = fetch(c, metric, ts, &got)) || fabs(got - want) > 1e-6) {
        if (time(NULL) > end)
            break;
        usleep(100 * 1000);
    }
    cr_expect(found, "%s: no point at %lld within %d s", metric, (long long) ts, DEADLINE_S);
    if (found)
        cr_expect(fabs(got - want) <= 1e-6, "%s at %lld: %f, want %f", metric, (long long) ts,
                  got, want);
}

/* Every metric file under DIR/<prefix>, as dotted names, sorted, one per line. */
static void list_metrics(const char *dir, const char *name, char *out, size_t n)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char *names[256];
    int k = 0;
    while ((e = readdir(d)) && k < 256)
        if (e->d_name[0] != '.')
            names[k++] = strdup(e->d_name);
    closedir(d);
    for (int i = 0; i < k; i++)   /* sorted, for a stable listing */
        for (int j = i + 1; j < k; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i]; names[i] = names[j]; names[j] = t;
            }
    for (int i = 0; i < k; i++) {
        char sub[2048], subname[1024];
        snprintf(sub, sizeof sub, "%s/%s", dir, names[i]);
        size_t len = strlen(names[i]);
        if (len > 4 && strcmp(names[i] + len - 4, ".wsp") == 0)
            snprintf(out + strlen(out), n - strlen(out), "%s.%.*s\n", name, (int) len - 4,
                     names[i]);
        else {
            snprintf(subname, sizeof subname, "%s.%s", name, names[i]);
            list_metrics(sub, subname, out, n);
        }
        free(names[i]);
    }
}

/* ---------------------------------------------------------------- events and the sink */

/* A job return: { fun, id, success, ms (a double, or absent when ms < 0), jid, _stamp }. */
static worker_event_t *ret_event(uint64_t seq, const char *fun, const char *id, bool success,
                                 double ms)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, ms >= 0 ? 6 : 5);
    pk_key(&pk, "fun"); pk_key(&pk, fun);
    pk_key(&pk, "id"); pk_key(&pk, id);
    pk_key(&pk, "success");
    if (success)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    if (ms >= 0) {
        pk_key(&pk, "ms");
        msgpack_pack_double(&pk, ms);
    }
    pk_key(&pk, "jid"); pk_key(&pk, "20261129000000000001");
    char stamp[64];
    snprintf(stamp, sizeof stamp, "2026-11-29T00:00:00.%06llu", (unsigned long long) seq);
    pk_key(&pk, "_stamp"); pk_key(&pk, stamp);
    char tag[300];
    snprintf(tag, sizeof tag, "salt/job/20261129000000000001/ret/%s", id);
    worker_event_t *ev = event_from(tag, &sb, seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

static worker_config_t config(const carbon_t *c, const char *prefix, metric_config_t *m,
                              int n_m, rollup_config_t *r, int n_r)
{
    return (worker_config_t){ .name = "graphite", .sink = "graphite", .processes = 1,
                              .batch_size = 500, .host = "127.0.0.1", .port = c->port,
                              .prefix = (char *) prefix, .flush_interval_s = INTERVAL_S,
                              .connect_timeout_ms = 5000, .metrics = m, .n_metrics = n_m,
                              .rollups = r, .n_rollups = n_r, .line = 1 };
}

static sink_t *open_sink(const worker_config_t *cfg)
{
    char err[512] = "";
    sink_t *s = sink_graphite_ops.open(cfg, "m1_master", err, sizeof err);
    cr_assert(s != NULL, "open: %s", err);
    return s;
}

/* The slot events folded now land in. Waits out the last 2 s of an interval so that a batch
 * never straddles two slots (with INTERVAL_S = 3600 this almost never waits). */
static int64_t stable_slot(void)
{
    while ((wall_s() + 2) / INTERVAL_S != wall_s() / INTERVAL_S)
        usleep(100 * 1000);
    return wall_s() / INTERVAL_S * INTERVAL_S;
}

/* Folds the events (and frees them). */
static void fold(sink_t *s, worker_event_t **evs, size_t n)
{
    char err[256] = "";
    size_t bad = 0;
    cr_assert(eq(int, sink_graphite_ops.write_batch(s, evs, n, &bad, err, sizeof err), SINK_OK),
              "%s", err);
    for (size_t i = 0; i < n; i++)
        worker_event_destroy(&evs[i]);
}

static sink_result_t flush(sink_t *s, char *err, size_t errlen)
{
    err[0] = '\0';
    return sink_graphite_ops.flush(s, err, errlen);
}

static void flush_ok(sink_t *s)
{
    char err[512];
    cr_assert(eq(int, flush(s, err, sizeof err), SINK_OK), "flush: %s", err);
}

/* ---------------------------------------------------------------- tests */

TestSuite(graphite, .timeout = 300);

Test(graphite, counts_and_value_aggregates_reach_whisper)
{
    carbon_t c = shared_carbon();
    char pre[64];
    unique_prefix(pre, sizeof pre, "agg");
    metric_config_t m[] = {
        { .name = "jobs.{data.fun}.{data.success}" },
        { .name = "ms.sum", .value = "data.ms", .aggregate = METRIC_SUM },
        { .name = "ms.min", .value = "data.ms", .aggregate = METRIC_MIN },
        { .name = "ms.max", .value = "data.ms", .aggregate = METRIC_MAX },
        { .name = "ms.mean", .value = "data.ms", .aggregate = METRIC_MEAN },
        { .name = "ms.last", .value = "data.ms", .aggregate = METRIC_LAST },
    };
    worker_config_t cfg = config(&c, pre, m, N_ELEMS(m), NULL, 0);
    sink_t *s = open_sink(&cfg);
    int64_t slot = stable_slot();
    worker_event_t *evs[] = {
        ret_event(1, "test.ping", "web1", true, 10),
        ret_event(2, "test.ping", "web2", true, 2.5),
        ret_event(3, "test.ping", "web3", false, 40),
        ret_event(4, "state.apply", "web1", true, -1),   /* no ms: only counted */
        ret_event(5, "state.apply", "web2", true, 7.5),
    };
    fold(s, evs, N_ELEMS(evs));
    flush_ok(s);
    char name[256];
    const struct { const char *suffix; double want; } points[] = {
        { "jobs.test_ping.True", 2 }, { "jobs.test_ping.False", 1 },
        { "jobs.state_apply.True", 2 }, { "ms.sum", 60 }, { "ms.min", 2.5 }, { "ms.max", 40 },
        { "ms.mean", 15 }, { "ms.last", 7.5 },
    };
    for (size_t i = 0; i < N_ELEMS(points); i++) {
        snprintf(name, sizeof name, "%s.%s", pre, points[i].suffix);
        expect_point(&c, name, slot, points[i].want);
    }
    /* A flush with nothing new sends nothing and succeeds. */
    flush_ok(s);
    sink_graphite_ops.close(&s);
    cr_expect(s == NULL);
}

Test(graphite, rollup_totals_count_each_event_once)
{
    carbon_t c = shared_carbon();
    char pre[64];
    unique_prefix(pre, sizeof pre, "rollup");
    metric_config_t m[] = {
        { .name = "jobs.{data.fun}.{data.success}" },
        { .name = "minion.{data.id}.{data.success}" },
    };
    char src1[128], tgt1[128], src2[128], tgt2[128], src3[128], tgt3[128];
    snprintf(src1, sizeof src1, "%s.jobs.*.<result>", pre);
    snprintf(tgt1, sizeof tgt1, "%s.all.<result>", pre);
    snprintf(src2, sizeof src2, "%s.minion.*.<result>", pre);   /* same target, other metric */
    snprintf(tgt2, sizeof tgt2, "%s.all.<result>", pre);
    snprintf(src3, sizeof src3, "%s.*.<what>.*", pre);
    snprintf(tgt3, sizeof tgt3, "%s.by.<what>", pre);
    rollup_config_t r[] = { { tgt1, src1, 5 }, { tgt2, src2, 6 }, { tgt3, src3, 7 } };
    worker_config_t cfg = config(&c, pre, m, N_ELEMS(m), r, N_ELEMS(r));
    char err[1024];
    cr_assert(eq(int, sink_graphite_ops.check(&cfg, err, sizeof err), 0), "%s", err);
    sink_t *s = open_sink(&cfg);
    int64_t slot = stable_slot();
    worker_event_t *evs[] = {
        ret_event(1, "test.ping", "web1", true, -1),
        ret_event(2, "test.ping", "web2", true, -1),
        ret_event(3, "cmd.run", "web1", false, -1),
        ret_event(4, "test.ping", "web1", true, -1),
    };
    fold(s, evs, N_ELEMS(evs));
    flush_ok(s);
    char name[256];
    const struct { const char *suffix; double want; } points[] = {
        { "all.True", 3 }, { "all.False", 1 },   /* not 6 and 2: two rollups, one count */
        { "by.test_ping", 3 }, { "by.cmd_run", 1 }, { "by.web1", 3 }, { "by.web2", 1 },
        { "jobs.test_ping.True", 3 }, { "minion.web1.True", 2 },
    };
    for (size_t i = 0; i < N_ELEMS(points); i++) {
        snprintf(name, sizeof name, "%s.%s", pre, points[i].suffix);
        expect_point(&c, name, slot, points[i].want);
    }
    sink_graphite_ops.close(&s);
}

Test(graphite, hostile_fields_never_add_components_or_break_lines)
{
    carbon_t c = shared_carbon();
    char pre[64];
    unique_prefix(pre, sizeof pre, "hostile");
    metric_config_t m[] = {
        { .name = "f.{data.fun}" },
        { .name = "id.{data.id}", .value = "data.ms", .aggregate = METRIC_MAX },
    };
    worker_config_t cfg = config(&c, pre, m, N_ELEMS(m), NULL, 0);
    sink_t *s = open_sink(&cfg);
    int64_t slot = stable_slot();
    char huge[4000];
    memset(huge, 'h', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    worker_event_t *evs[] = {
        ret_event(1, "my.fun name", "a\nb 1 0\nevil.metric 666", true, 1),
        ret_event(2, "my.fun name", "x/../../y", true, 2),
        ret_event(3, "ünï\tcode\r", "z", true, INFINITY),   /* inf: the value is skipped */
        ret_event(4, huge, huge, true, 3),                  /* too long: both skipped */
        ret_event(5, "", "", true, 4),                      /* empty component: skipped */
    };
    fold(s, evs, N_ELEMS(evs));
    flush_ok(s);
    char name[256];
    snprintf(name, sizeof name, "%s.f.my_fun_name", pre);
    expect_point(&c, name, slot, 2);
    snprintf(name, sizeof name, "%s.id.a_b_1_0_evil_metric_666", pre);
    expect_point(&c, name, slot, 1);
    snprintf(name, sizeof name, "%s.id.x_______y", pre);
    expect_point(&c, name, slot, 2);
    snprintf(name, sizeof name, "%s.f.__n___code_", pre);
    expect_point(&c, name, slot, 1);
    /* Nothing else exists under the prefix: no extra component, no line split in two. */
    char dir[1024], got[4096] = "", want[1024];
    snprintf(dir, sizeof dir, "%s/%s", c.whisper, pre);
    list_metrics(dir, pre, got, sizeof got);
    snprintf(want, sizeof want, "%s.f.__n___code_\n%s.f.my_fun_name\n"
             "%s.id.a_b_1_0_evil_metric_666\n%s.id.x_______y\n", pre, pre, pre, pre);
    cr_expect(eq(str, got, want));
    struct stat st;
    snprintf(dir, sizeof dir, "%s/evil", c.whisper);
    cr_expect(stat(dir, &st) != 0, "a field's newline made a line of its own");
    sink_graphite_ops.close(&s);
}

Test(graphite, udp_datagrams_carry_whole_lines)
{
    carbon_t c = shared_carbon();
    char pre[64];
    unique_prefix(pre, sizeof pre, "udp");
    metric_config_t m[] = { { .name = "minion.{data.id}" } };
    worker_config_t cfg = config(&c, pre, m, 1, NULL, 0);
    cfg.udp = true;
    sink_t *s = open_sink(&cfg);
    int64_t slot = stable_slot();
    enum { N = 150 };   /* ~7 KB of lines: several datagrams */
    worker_event_t *evs[N];
    char id[64];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "minion-with-a-longish-name-%03d", i);
        evs[i] = ret_event((uint64_t) i + 1, "test.ping", id, true, -1);
    }
    fold(s, evs, N);
    flush_ok(s);
    char name[256];
    for (int i = 0; i < N; i += 7) {
        snprintf(name, sizeof name, "%s.minion.minion-with-a-longish-name-%03d", pre, i);
        expect_point(&c, name, slot, 1);
    }
    sink_graphite_ops.close(&s);
}

Test(graphite, flush_at_follows_the_interval)
{
    carbon_t c = shared_carbon();
    metric_config_t m[] = { { .name = "x" } };
    worker_config_t cfg = config(&c, "flush_at", m, 1, NULL, 0);
    cfg.flush_interval_s = 10;
    sink_t *s = open_sink(&cfg);
    cr_expect(eq(i64, sink_graphite_ops.flush_at(s), INT64_MAX), "nothing held");
    worker_event_t *evs[] = { ret_event(1, "f", "a", true, -1) };
    int64_t before = clock_ms();
    fold(s, evs, 1);
    int64_t at = sink_graphite_ops.flush_at(s), after = clock_ms();
    cr_expect(at >= before && at <= after + 10000, "due when the 10 s interval ends: %lld",
              (long long) (at - before));
    sink_graphite_ops.close(&s);

    /* Events that make no metric at all are still held by the worker: due at once, so that
     * their acks do not wait forever. */
    metric_config_t none[] = { { .name = "x.{data.nope}" } };
    cfg.metrics = none;
    s = open_sink(&cfg);
    worker_event_t *skipped[] = { ret_event(2, "f", "a", true, -1) };
    fold(s, skipped, 1);
    cr_expect(sink_graphite_ops.flush_at(s) <= clock_ms(), "due now");
    flush_ok(s);
    cr_expect(eq(i64, sink_graphite_ops.flush_at(s), INT64_MAX), "nothing held");
    sink_graphite_ops.close(&s);
}

/* Carbon down: flush keeps everything and says retry; back up, the same flush delivers. */
Test(graphite, carbon_down_then_up_loses_nothing)
{
    carbon_t c = private_carbon();
    metric_config_t m[] = { { .name = "down.{data.fun}" } };
    worker_config_t cfg = config(&c, "t", m, 1, NULL, 0);
    cfg.connect_timeout_ms = 2000;
    sink_t *s = open_sink(&cfg);
    servers(&c, "stop");
    int64_t slot = stable_slot();
    worker_event_t *evs[] = { ret_event(1, "f", "a", true, -1), ret_event(2, "f", "b", true, -1) };
    fold(s, evs, 2);
    char err[512];
    cr_expect(eq(int, flush(s, err, sizeof err), SINK_RETRY));
    cr_expect(strstr(err, "cannot connect to 127.0.0.1:") != NULL, "%s", err);
    cr_expect(eq(int, flush(s, err, sizeof err), SINK_RETRY), "still down: %s", err);
    worker_event_t *more[] = { ret_event(3, "f", "c", true, -1) };
    fold(s, more, 1);
    servers(&c, "start");
    flush_ok(s);
    expect_point(&c, "t.down.f", slot, 3);
    sink_graphite_ops.close(&s);
    private_carbon_end(&c);
}

/* A kept connection to a carbon that restarted: the flush notices the old connection is dead
 * before writing into it, reconnects, and the aggregate held meanwhile arrives whole. */
Test(graphite, reconnects_after_a_carbon_restart_with_the_held_aggregate)
{
    carbon_t c = private_carbon();
    metric_config_t m[] = { { .name = "restart.{data.fun}" } };
    worker_config_t cfg = config(&c, "t", m, 1, NULL, 0);
    sink_t *s = open_sink(&cfg);
    int64_t slot = stable_slot();
    worker_event_t *evs[] = { ret_event(1, "f", "a", true, -1), ret_event(2, "f", "b", true, -1) };
    fold(s, evs, 2);
    flush_ok(s);   /* connects */
    expect_point(&c, "t.restart.f", slot, 2);
    worker_event_t *more[] = { ret_event(3, "f", "c", true, -1), ret_event(4, "f", "d", true, -1),
                               ret_event(5, "g", "e", true, -1) };
    fold(s, more, 3);   /* held while carbon restarts */
    servers(&c, "restart");
    flush_ok(s);
    expect_point(&c, "t.restart.f", slot, 4);   /* the whole interval, not just the new part */
    expect_point(&c, "t.restart.g", slot, 1);
    sink_graphite_ops.close(&s);
    private_carbon_end(&c);
}

Test(graphite, check_names_the_rollup_line)
{
    carbon_t c = shared_carbon();
    metric_config_t m[] = { { .name = "jobs.{data.fun}", .line = 4 } };
    rollup_config_t r[] = { { .target = "all.<res>", .source = "jobs.*", .line = 9 } };
    worker_config_t cfg = config(&c, NULL, m, 1, r, 1);
    char err[1024];
    cr_expect(eq(int, sink_graphite_ops.check(&cfg, err, sizeof err), -1));
    cr_expect(strstr(err, ":9: rollup 'all.<res>' <- 'jobs.*': target uses '<res>', which "
                     "the source does not capture") != NULL, "%s", err);
    char oerr[1024];
    cr_expect(sink_graphite_ops.open(&cfg, "m", oerr, sizeof oerr) == NULL);
    cr_expect(strstr(oerr, ":9: rollup") != NULL, "%s", oerr);
}

Test(graphite, check_refuses_several_processes)
{
    carbon_t c = shared_carbon();
    metric_config_t m[] = { { .name = "x" } };
    worker_config_t cfg = config(&c, NULL, m, 1, NULL, 0);
    cfg.processes = 2;
    char err[1024];
    cr_expect(eq(int, sink_graphite_ops.check(&cfg, err, sizeof err), -1));
    cr_expect(strstr(err, "must have processes = 1") != NULL, "%s", err);
    cr_expect(sink_graphite_ops.open(&cfg, "m", err, sizeof err) == NULL);
}

Test(graphite, explain_lists_names_values_and_skips)
{
    carbon_t c = shared_carbon();
    metric_config_t m[] = {
        { .name = "jobs.{data.fun}.{data.success}" },
        { .name = "ms", .value = "data.ms", .aggregate = METRIC_MEAN },
        { .name = "by.{data.nope}" },
    };
    rollup_config_t r[] = { { .target = "salt.all.<r>", .source = "salt.jobs.*.<r>" } };
    worker_config_t cfg = config(&c, "salt", m, 3, r, 1);
    worker_event_t *ev = ret_event(1, "test.ping", "web1", false, 2.5);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    sink_graphite_ops.explain(&cfg, "m1", ev, out);
    fclose(out);
    char want[512];
    snprintf(want, sizeof want, "    to 127.0.0.1:%d (tcp), one line per name every 3600 s\n"
             "    metric salt.jobs.test_ping.False 1 (sum)\n"
             "    rollup salt.all.False 1 (sum)\n"
             "    metric salt.ms 2.5 (mean)\n"
             "    skipped: 1 metric(s) whose name needs a field the event lacks\n", c.port);
    cr_expect(eq(str, text, want));
    free(text);
    worker_event_destroy(&ev);
}

/* A listener that accepts (the kernel does) but never reads nor closes: a stalled carbon. */
static int stalled_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    cr_assert(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    cr_assert(eq(int, bind(fd, (struct sockaddr *) &sa, sizeof sa), 0));
    cr_assert(eq(int, listen(fd, 4), 0));
    getsockname(fd, (struct sockaddr *) &sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

Test(graphite, finish_waits_until_carbon_has_read_everything)
{
    carbon_t c = shared_carbon();
    char err[512] = "", line[128];
    graphite_conn_t *conn = graphite_conn_new("127.0.0.1", c.port, false, 5000);
    snprintf(line, sizeof line, "t%ld_finish.x 1 %lld\n", (long) getpid(), (long long) wall_s());
    cr_assert(eq(int, graphite_conn_send(conn, line, strlen(line), err, sizeof err), 0), "%s", err);
    cr_expect(eq(int, graphite_conn_finish(conn, 10000, err, sizeof err), 0), "%s", err);
    cr_expect(eq(int, graphite_conn_finish(conn, 10000, err, sizeof err), 0), "nothing left");
    graphite_conn_destroy(&conn);
    cr_expect(conn == NULL);

    int port, lfd = stalled_listener(&port);
    conn = graphite_conn_new("127.0.0.1", port, false, 300);
    cr_assert(eq(int, graphite_conn_send(conn, line, strlen(line), err, sizeof err), 0), "%s", err);
    cr_expect(eq(int, graphite_conn_finish(conn, 300, err, sizeof err), -1));
    cr_expect(strstr(err, "did not confirm the end of the connection") != NULL, "%s", err);
    graphite_conn_destroy(&conn);
    close(lfd);
}

Test(graphite, a_stalled_carbon_fails_the_send_after_the_timeout)
{
    int port, lfd = stalled_listener(&port);
    graphite_conn_t *conn = graphite_conn_new("127.0.0.1", port, false, 300);
    size_t len = 64u << 20;   /* more than any socket buffer holds */
    char *big = malloc(len), err[512] = "";
    cr_assert(big != NULL);
    memset(big, 'x', len);
    big[len - 1] = '\n';
    cr_expect(eq(int, graphite_conn_send(conn, big, len, err, sizeof err), -1));
    cr_expect(strstr(err, "carbon took nothing within the timeout") != NULL, "%s", err);
    free(big);
    graphite_conn_destroy(&conn);
    close(lfd);
}

/* Half of max_inflight events waiting for acks make the flush due at once (the master would
 * otherwise stall until the interval ends); the open interval is sent complete so far. */
Test(graphite, many_waiting_events_make_the_flush_due_at_once)
{
    carbon_t c = shared_carbon();
    char pre[64];
    unique_prefix(pre, sizeof pre, "early");
    metric_config_t m[] = { { .name = "n" } };
    worker_config_t cfg = config(&c, pre, m, 1, NULL, 0);
    cfg.max_inflight = 6;
    sink_t *s = open_sink(&cfg);
    int64_t slot = stable_slot();
    worker_event_t *a[] = { ret_event(1, "f", "a", true, -1), ret_event(2, "f", "b", true, -1) };
    fold(s, a, 2);
    cr_expect(sink_graphite_ops.flush_at(s) > clock_ms() + 1000, "2 of 3: the interval's end");
    worker_event_t *b[] = { ret_event(3, "f", "c", true, -1) };
    fold(s, b, 1);
    cr_expect(sink_graphite_ops.flush_at(s) <= clock_ms(), "3 of 3: due now");
    flush_ok(s);
    char name[128];
    snprintf(name, sizeof name, "%s.n", pre);
    expect_point(&c, name, slot, 3);
    cr_expect(eq(i64, sink_graphite_ops.flush_at(s), INT64_MAX), "all sent");
    worker_event_t *more[] = { ret_event(4, "f", "d", true, -1) };
    fold(s, more, 1);
    cr_expect(sink_graphite_ops.flush_at(s) > clock_ms() + 1000, "counting starts again");
    flush_ok(s);
    expect_point(&c, name, slot, 4);   /* the later line of the slot is the complete one */
    sink_graphite_ops.close(&s);
}
