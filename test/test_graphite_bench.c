/* test_graphite_bench: throughput figures of the graphite sink for test/bench_graphite.sh.
 * Every test here is skipped unless EVENTSD_GRAPHITE_BENCH is set, so `make unit` runs it as
 * a no-op. Figures go to stdout as "key=value" lines:
 *   flush:  the sink's flush path (graphite_agg render + graphite_conn send) for NAMES x SLOTS
 *           lines to carbon (EVENTSD_CARBON_PORT), timed until carbon closed the half-closed
 *           connection, i.e. had read every line; the same bytes go to BENCH_LINES_FILE so the
 *           baseline writer can send exactly them;
 *   render: rendering alone (no socket);
 *   fold:   write_batch of BENCH_EVENTS job returns through the sink ops (names from templates,
 *           rollups, aggregation; nothing sent). */
#include "graphite_agg.h"
#include "graphite_conn.h"
#include "sink.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sink_events.h"

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : def;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void skip_unless_bench(void)
{
    if (!getenv("EVENTSD_GRAPHITE_BENCH"))
        cr_skip_test("EVENTSD_GRAPHITE_BENCH is not set (test/bench_graphite.sh sets it)");
}

/* NAMES x SLOTS points, one second apart, ending a few seconds ago (inside the bench
 * retention of test/servers.sh's carbon: ^bench\. keeps 1 s points for 10 min). */
static graphite_agg_t *bench_points(long names, long slots)
{
    graphite_agg_t *a = graphite_agg_new(1, (size_t) names);
    cr_assert(a != NULL);
    int64_t last = (int64_t) time(NULL) - 5;
    char name[64];
    for (long s = 0; s < slots; s++)
        for (long i = 0; i < names; i++) {
            int n = snprintf(name, sizeof name, "bench.graphite.m%05ld", i);
            cr_assert(graphite_agg_add(a, last - slots + s, name, (size_t) n, METRIC_SUM,
                                       (double) (i + s)) == 0);
        }
    return a;
}

Test(graphite_bench, flush)
{
    skip_unless_bench();
    long names = env_long("BENCH_NAMES", 1000), slots = env_long("BENCH_SLOTS", 300);
    int port = (int) env_long("EVENTSD_CARBON_PORT", 2003);
    graphite_agg_t *a = bench_points(names, slots);
    graphite_conn_t *conn = graphite_conn_new("127.0.0.1", port, false, 60000);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    char err[512] = "";
    double t0 = now_s();
    long lines = graphite_agg_render(a, &out);
    int rc = graphite_conn_send(conn, out.data, out.size, err, sizeof err);
    if (rc == 0)
        rc = graphite_conn_finish(conn, 60000, err, sizeof err);
    double secs = now_s() - t0;
    cr_assert(rc == 0, "%s", err);
    printf("flush_lines=%ld flush_bytes=%zu flush_s=%.3f flush_lines_per_s=%.0f\n", lines,
           out.size, secs, (double) lines / secs);
    const char *file = getenv("BENCH_LINES_FILE");
    if (file) {
        FILE *f = fopen(file, "w");
        cr_assert(f && fwrite(out.data, 1, out.size, f) == out.size && fclose(f) == 0);
    }
    msgpack_sbuffer_destroy(&out);
    graphite_conn_destroy(&conn);
    graphite_agg_destroy(&a);
}

Test(graphite_bench, render)
{
    skip_unless_bench();
    long names = env_long("BENCH_NAMES", 1000), slots = env_long("BENCH_SLOTS", 300);
    graphite_agg_t *a = bench_points(names, slots);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    double t0 = now_s();
    long lines = graphite_agg_render(a, &out);
    double secs = now_s() - t0;
    printf("render_lines=%ld render_s=%.3f render_lines_per_s=%.0f\n", lines, secs,
           (double) lines / secs);
    msgpack_sbuffer_destroy(&out);
    graphite_agg_destroy(&a);
}

/* A job return like eventsd-pub's: fun, id, success, retcode, a duration. */
static worker_event_t *bench_event(uint64_t seq)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char id[32];
    snprintf(id, sizeof id, "minion-%04llu", (unsigned long long) (seq % 100));
    msgpack_pack_map(&pk, 5);
    pk_key(&pk, "fun"); pk_key(&pk, seq % 3 ? "test.ping" : "state.apply");
    pk_key(&pk, "id"); pk_key(&pk, id);
    pk_key(&pk, "success");
    if (seq % 10)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    pk_key(&pk, "retcode"); msgpack_pack_int(&pk, seq % 10 ? 0 : 1);
    pk_key(&pk, "duration"); msgpack_pack_double(&pk, (double) (seq % 1000) / 10);
    worker_event_t *ev = event_from("salt/job/20261129000000000001/ret/minion", &sb, seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

Test(graphite_bench, fold)
{
    skip_unless_bench();
    long n = env_long("BENCH_EVENTS", 200000);
    metric_config_t m[] = {
        { .name = "jobs.{data.fun}.{data.success}" },
        { .name = "minions.{data.id}.returns" },
        { .name = "duration.{data.fun}", .value = "data.duration", .aggregate = METRIC_MEAN },
    };
    rollup_config_t r[] = {
        { .target = "bench.jobs.all.<r>", .source = "bench.jobs.*.<r>" },
        { .target = "bench.minions.all.returns", .source = "bench.minions.*.returns" },
    };
    worker_config_t cfg = { .name = "bench", .sink = "graphite", .processes = 1,
                            .host = "127.0.0.1", .port = 9, .prefix = "bench",
                            .flush_interval_s = 3600, .metrics = m, .n_metrics = 3,
                            .rollups = r, .n_rollups = 2 };
    char err[512] = "";
    sink_t *s = sink_graphite_ops.open(&cfg, "m", err, sizeof err);
    cr_assert(s != NULL, "%s", err);
    enum { BATCH = 500 };
    worker_event_t *evs[BATCH];
    double busy = 0;
    for (long done = 0; done < n; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            evs[i] = bench_event((uint64_t) (done + i));
        size_t bad;
        double t0 = now_s();
        cr_assert(sink_graphite_ops.write_batch(s, evs, BATCH, &bad, err, sizeof err) == SINK_OK);
        busy += now_s() - t0;
        for (int i = 0; i < BATCH; i++)
            worker_event_destroy(&evs[i]);
    }
    printf("fold_events=%ld fold_s=%.3f fold_events_per_s=%.0f\n", n, busy, (double) n / busy);
    sink_graphite_ops.close(&s);
}
