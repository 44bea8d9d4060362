/* Tests for workers/graphite_map.c: full names (prefix, sanitised fields), values, skips and
 * their counters, rollups applied with each name counted once per event, and check()'s
 * FILE:LINE messages. */
#include "graphite_map.h"
#include "payload.h"
#include "sink_events.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* data = { fun: <fun>, id: "web 1.example\nX", success: true, ms: <ms as given>, big: <a
 *          300-byte string>, empty: "" } ; ms is packed as a str when ms_str. */
static payload_t *event_data(const char *fun, const char *ms, bool ms_str)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, ms ? 6 : 5);
    pk_key(&pk, "fun"); pk_key(&pk, fun);
    pk_key(&pk, "id"); pk_key(&pk, "web 1.example\nX");
    pk_key(&pk, "success"); msgpack_pack_true(&pk);
    if (ms) {
        pk_key(&pk, "ms");
        if (ms_str)
            pk_key(&pk, ms);
        else
            msgpack_pack_double(&pk, strtod(ms, NULL));
    }
    char big[301];
    memset(big, 'b', 300);
    big[300] = '\0';
    pk_key(&pk, "big"); pk_key(&pk, big);
    pk_key(&pk, "empty"); pk_key(&pk, "");
    char err[128];
    payload_t *p = payload_new(sb.data, sb.size, true, 32, err, sizeof err);
    cr_assert(p != NULL, "%s", err);
    msgpack_sbuffer_destroy(&sb);
    return p;
}

static worker_config_t config(const char *prefix, metric_config_t *m, int n_m,
                              rollup_config_t *r, int n_r)
{
    return (worker_config_t){ .name = "g", .sink = "graphite", .prefix = (char *) prefix,
                              .port = 2003, .flush_interval_s = 10, .metrics = m,
                              .n_metrics = n_m, .rollups = r, .n_rollups = n_r, .line = 3 };
}

static graphite_map_t *map_new(const worker_config_t *cfg)
{
    char err[512] = "";
    graphite_map_t *m = graphite_map_new(cfg, "test.conf", err, sizeof err);
    cr_assert(m != NULL, "%s", err);
    return m;
}

/* Maps one event; "name=value;" per point into out, "^name=value;" for a rollup's target.
 * Returns the point count. */
static long map(graphite_map_t *m, payload_t *p, char *out, size_t outlen)
{
    const graphite_point_t *pts;
    const char *tag = "salt/job/1/ret/web1";
    long n = graphite_map_event(m, tag, strlen(tag), payload_root(p), "m1", &pts);
    cr_assert(n >= 0);
    out[0] = '\0';
    for (long i = 0; i < n; i++)
        snprintf(out + strlen(out), outlen - strlen(out), "%s%.*s=%g;",
                 pts[i].rollup ? "^" : "", (int) pts[i].len, pts[i].name, pts[i].value);
    return n;
}

Test(graphite_map, prefix_and_sanitised_fields)
{
    metric_config_t m[] = {
        { .name = "jobs.{data.fun}.{data.success}" },
        { .name = "minions.{data.id}.returns" },
        { .name = "by_master.{master_id}" },
    };
    worker_config_t cfg = config("salt", m, 3, NULL, 0);
    graphite_map_t *gm = map_new(&cfg);
    payload_t *p = event_data("test.ping", NULL, false);
    char out[1024];
    cr_expect(eq(long, map(gm, p, out, sizeof out), 3));
    cr_expect(eq(str, out, "salt.jobs.test_ping.True=1;"
                           "salt.minions.web_1_example_X.returns=1;"
                           "salt.by_master.m1=1;"),
              "'.', ' ' and '\\n' of values become '_': no extra component, no broken line");
    payload_destroy(&p);
    graphite_map_destroy(&gm);

    cfg.prefix = NULL;   /* no prefix: the name alone */
    gm = map_new(&cfg);
    p = event_data("a b", NULL, false);
    map(gm, p, out, sizeof out);
    cr_expect(eq(str, out, "jobs.a_b.True=1;minions.web_1_example_X.returns=1;by_master.m1=1;"));
    payload_destroy(&p);
    graphite_map_destroy(&gm);
}

typedef struct {
    const char *ms;
    bool        as_str;
    const char *want;   /* "" = skipped as bad_value */
} value_case_t;

static const value_case_t values[] = {
    { "12.5", false, "t.ms=12.5;" }, { "12.5", true, "t.ms=12.5;" }, { "-3", true, "t.ms=-3;" },
    { "NaN", true, "" }, { "inf", true, "" }, { "-inf", true, "" }, { "1e999", true, "" },
    { "12ms", true, "" }, { "", true, "" }, { " 1", true, "" }, { NULL, false, "" },
};

Test(graphite_map, values_must_be_finite_numbers)
{
    metric_config_t m[] = { { .name = "t.ms", .value = "data.ms", .aggregate = METRIC_MEAN } };
    worker_config_t cfg = config(NULL, m, 1, NULL, 0);
    graphite_map_t *gm = map_new(&cfg);
    uint64_t bad = 0;
    for (size_t i = 0; i < N_ELEMS(values); i++) {
        payload_t *p = event_data("f", values[i].ms, values[i].as_str);
        char out[256];
        map(gm, p, out, sizeof out);
        cr_expect(eq(str, out, (char *) values[i].want), "#%zu '%s'", i,
                  values[i].ms ? values[i].ms : "(absent)");
        bad += values[i].want[0] == '\0';
        payload_destroy(&p);
    }
    cr_expect(eq(u64, graphite_map_skips(gm).bad_value, bad));
    graphite_map_destroy(&gm);
}

Test(graphite_map, skips_are_per_metric_and_counted)
{
    metric_config_t m[] = {
        { .name = "a.{data.nope}" },          /* missing field */
        { .name = "b.{data.empty}.x" },       /* "" makes an empty component */
        { .name = "c.{data.big}" },           /* 256 bytes after the cut: too long */
        { .name = "d.{data.fun}" },           /* fine */
    };
    worker_config_t cfg = config(NULL, m, 4, NULL, 0);
    graphite_map_t *gm = map_new(&cfg);
    payload_t *p = event_data("f", NULL, false);
    char out[1024];
    cr_expect(eq(long, map(gm, p, out, sizeof out), 1));
    cr_expect(eq(str, out, "d.f=1;"));
    graphite_skips_t k = graphite_map_skips(gm);
    cr_expect(eq(u64, k.missing_field, 1));
    cr_expect(eq(u64, k.bad_name, 2));
    cr_expect(eq(u64, k.bad_value, 0));
    payload_destroy(&p);
    graphite_map_destroy(&gm);
}

Test(graphite_map, rollups_apply_and_each_name_counts_once_per_event)
{
    metric_config_t m[] = {
        { .name = "jobs.{data.fun}.{data.success}" },
        { .name = "jobs.{data.fun}.{data.success}" },           /* the same name twice */
        { .name = "time.{data.fun}", .value = "data.ms", .aggregate = METRIC_MAX },
    };
    rollup_config_t r[] = {
        { .target = "salt.jobs.all.<result>", .source = "salt.jobs.*.<result>" },
        { .target = "salt.jobs.all.<result>", .source = "salt.*.<fun>.<result>" },  /* same */
        { .target = "salt.jobs.by_result.<r>.<f>", .source = "salt.jobs.<f>.<r>" },
        { .target = "salt.jobs.test_ping.True", .source = "salt.jobs.*.*" },  /* = a metric */
        { .target = "salt.time.all", .source = "salt.time.*" },
        { .target = "never", .source = "other.*" },
    };
    worker_config_t cfg = config("salt", m, 3, r, 6);
    graphite_map_t *gm = map_new(&cfg);
    payload_t *p = event_data("test.ping", "7", false);
    char out[1024];
    cr_expect(eq(long, map(gm, p, out, sizeof out), 5));
    cr_expect(eq(str, out, "salt.jobs.test_ping.True=1;"
                           "^salt.jobs.all.True=1;"
                           "^salt.jobs.by_result.True.test_ping=1;"
                           "salt.time.test_ping=7;"
                           "^salt.time.all=7;"));
    payload_destroy(&p);
    /* the next event starts afresh */
    p = event_data("state.apply", "9", false);
    cr_expect(eq(long, map(gm, p, out, sizeof out), 6));
    cr_expect(eq(str, out, "salt.jobs.state_apply.True=1;"
                           "^salt.jobs.all.True=1;"
                           "^salt.jobs.by_result.True.state_apply=1;"
                           "^salt.jobs.test_ping.True=1;"
                           "salt.time.state_apply=9;"
                           "^salt.time.all=9;"));
    payload_destroy(&p);
    graphite_map_destroy(&gm);
}

Test(graphite_map, check_reports_every_problem_with_file_and_line)
{
    metric_config_t m[] = {
        { .name = "ok.{data.fun}", .line = 10 },
        { .name = "bad name.{data.fun}", .line = 11 },
        { .name = "x.{data.fun", .line = 12 },
        { .name = "y..{data.fun}", .line = 13 },
        { .name = "z", .value = "data.", .line = 14 },
        { .name = "{{x}}", .line = 15 },
    };
    rollup_config_t r[] = {
        { .target = "all.<x>", .source = "ok.*", .line = 20 },
        { .target = "all.<x>", .source = "ok.<x>", .line = 21 },
        { .target = "all", .source = "ok.*.", .line = 22 },
    };
    worker_config_t cfg = config("salt", m, 6, r, 3);
    char err[4096];
    cr_expect(eq(int, graphite_map_check(&cfg, "test.conf", err, sizeof err), 7));
    const char *want[] = {
        "test.conf:11: metric 'bad name.{data.fun}': character outside [A-Za-z0-9_:-]",
        "test.conf:12: metric 'x.{data.fun': unclosed '{' at offset 2",
        "test.conf:13: metric 'y..{data.fun}': empty component",
        "test.conf:14: metric 'z': value 'data.' is not a field",
        "test.conf:15: metric '{{x}}': character outside",
        ("test.conf:20: rollup 'all.<x>' <- 'ok.*': target uses '<x>', which the source does "
         "not capture"),
        "test.conf:22: rollup 'all' <- 'ok.*.': source component ''",
    };
    for (size_t i = 0; i < N_ELEMS(want); i++)
        cr_expect(strstr(err, want[i]) != NULL, "missing: %s\nin:\n%s", want[i], err);
    cr_expect(strstr(err, ":10:") == NULL && strstr(err, ":21:") == NULL, "%s", err);
    char one[512];
    graphite_map_t *gm = graphite_map_new(&cfg, "test.conf", one, sizeof one);
    cr_expect(gm == NULL);
    cr_expect(strchr(one, '\n') == NULL, "open reports the first problem: %s", one);

    cfg = config("bad..prefix", m, 1, NULL, 0);
    cr_expect(eq(int, graphite_map_check(&cfg, "test.conf", err, sizeof err), 1));
    cr_expect(strstr(err, "test.conf:3: worker 'g': prefix 'bad..prefix': empty component")
              != NULL, "%s", err);
    cfg = config(NULL, m, 0, NULL, 0);
    cr_expect(eq(int, graphite_map_check(&cfg, "test.conf", err, sizeof err), 1));
    cr_expect(strstr(err, "needs at least one metric") != NULL, "%s", err);
}
