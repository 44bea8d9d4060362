/* Tests for daemon/config_metrics.c: graphite and redis workers, rule throttles, the redis
 * connection, statistics and stats.listen: values and defaults of valid configs, and each kind
 * of error as an exact "FILE:LINE: message". */
#include "config.h"
#include "config_test_dir.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(config_metrics, .init = config_dir_setup, .fini = config_dir_teardown);

#define GRAPHITE_OK \
    "workers = ( { name = \"g\"; sink = \"graphite\";\n" \
    "  metrics = ( { name = \"jobs.{data.fun}\"; } ); } );\n"
#define RULE_G "rules = ( { tag = \"^\"; workers = \"g\"; } );\n"

Test(config_metrics, graphite_worker_values_and_defaults)
{
    char err[2048];
    eventsd_config_t *c = load_text(
        "workers = (\n"
        "  { name = \"g\"; sink = \"graphite\"; host = \"carbon\"; port = 2103;\n"
        "    protocol = \"udp\"; prefix = \"salt.prod\"; flush_interval = 60;\n"
        "    metrics = ( { name = \"jobs.{data.fun}.{data.success}\"; },\n"
        "                { name = \"dur.{data.fun}\"; value = \"data.duration\"; "
        "aggregate = \"mean\"; } );\n"
        "    rollups = ( { target = \"salt.prod.jobs.all.<r>\"; "
        "source = \"salt.prod.jobs.*.<r>\"; } ); },\n"
        "  { name = \"d\"; sink = \"graphite\"; metrics = ( { name = \"n\"; } ); }\n"
        ");\n" "rules = ( { tag = \"^\"; workers = [ \"g\", \"d\" ]; } );\n", err, sizeof err);
    cr_assert(c != NULL, "%s", err);
    const worker_config_t *g = &c->workers[0];
    cr_expect(eq(str, g->host, "carbon"));
    cr_expect(eq(int, g->port, 2103));
    cr_expect(g->udp);
    cr_expect(eq(str, g->prefix, "salt.prod"));
    cr_expect(eq(int, g->flush_interval_s, 60));
    cr_assert(eq(int, g->n_metrics, 2));
    cr_expect(eq(str, g->metrics[0].name, "jobs.{data.fun}.{data.success}"));
    cr_expect(g->metrics[0].value == NULL);
    cr_expect(eq(int, g->metrics[0].aggregate, METRIC_SUM));
    cr_expect(eq(str, g->metrics[1].value, "data.duration"));
    cr_expect(eq(int, g->metrics[1].aggregate, METRIC_MEAN));
    cr_expect(eq(int, g->metrics[1].line, 5));
    cr_assert(eq(int, g->n_rollups, 1));
    cr_expect(eq(str, g->rollups[0].source, "salt.prod.jobs.*.<r>"));
    const worker_config_t *d = &c->workers[1];
    cr_expect(eq(str, d->host, "127.0.0.1"));
    cr_expect(eq(int, d->port, 2003));
    cr_expect(d->udp == false);
    cr_expect(eq(int, d->flush_interval_s, 10));
    cr_expect(eq(int, d->max_inflight, 50000), "aggregating sinks hold a whole interval");
    cr_expect(strcmp(config_metric_agg_name(METRIC_LAST), "last") == 0);
    eventsd_config_destroy(&c);
}

Test(config_metrics, redis_worker_throttle_statistics_and_listen)
{
    char err[2048];
    eventsd_config_t *c = load_text(
        "stats = { interval = 10; event = true; listen = \"127.0.0.1:0\"; };\n"
        "redis = { host = \"r1\"; port = 6380; db = 2; password = \"pw\"; timeout_ms = 50; };\n"
        "workers = ( { name = \"c\"; sink = \"redis\"; group = \"salt\";\n"
        "  intervals = [ \"5s\", \"5m\", \"1h\", \"2d\" ]; counter = \"{data.fun}\";\n"
        "  events = [ \"test.ping\" ]; auto_declare = false; db = 3;\n"
        "  sync_interval_ms = 250; sync_limit = 10; } );\n"
        "rules = ( { tag = \"^salt/auth$\"; workers = \"c\";\n"
        "  throttle = { key = \"{data.id}\"; timeframe = 300; min_count = 5; shared = true; }; },\n"
        "  { tag = \"^\"; workers = \"c\"; throttle = { key = \"{tag}\"; }; } );\n"
        "statistics = ( { name = \"returns\"; tag = \"^salt/job/\"; "
        "fields = [ \"data.fun\", \"data.retcode\" ];\n"
        "  interval = 30; max_values = 7; }, { name = \"all\"; fields = [ \"tag\" ]; } );\n",
        err, sizeof err);
    cr_assert(c != NULL, "%s", err);
    cr_expect(c->stats_event);
    cr_expect(eq(str, c->stats_listen, "127.0.0.1:0"));
    cr_expect(eq(str, c->redis.host, "r1"));
    cr_expect(eq(int, c->redis.port, 6380));
    cr_expect(eq(int, c->redis.db, 2));
    cr_expect(eq(int, c->redis.timeout_ms, 50));
    const worker_config_t *w = &c->workers[0];
    cr_expect(eq(int, w->port, 6379));
    cr_expect(eq(str, w->group, "salt"));
    cr_assert(eq(int, w->n_intervals, 4));
    cr_expect(eq(int, w->intervals_s[0], 5));
    cr_expect(eq(int, w->intervals_s[1], 300));
    cr_expect(eq(int, w->intervals_s[2], 3600));
    cr_expect(eq(int, w->intervals_s[3], 172800));
    cr_expect(eq(str, w->interval_names[1], "5m"));
    cr_expect(eq(str, w->counter, "{data.fun}"));
    cr_assert(eq(int, w->n_events, 1));
    cr_expect(w->auto_declare == false);
    cr_expect(eq(int, w->db, 3));
    cr_expect(eq(int, w->sync_interval_ms, 250));
    cr_expect(eq(int, w->sync_limit, 10));
    const throttle_config_t *t = c->rules[0].throttle;
    cr_assert(t != NULL);
    cr_expect(eq(str, t->key, "{data.id}"));
    cr_expect(eq(int, t->timeframe_s, 300));
    cr_expect(eq(i64, t->min_count, 5));
    cr_expect(eq(i64, t->max_count, 5), "max_count defaults to min_count");
    cr_expect(t->shared);
    t = c->rules[1].throttle;
    cr_expect(eq(int, t->timeframe_s, 60));
    cr_expect(eq(i64, t->min_count, 1));
    cr_expect(eq(i64, t->max_count, 1));
    cr_assert(eq(int, c->n_statistics, 2));
    cr_expect(eq(str, c->statistics[0].tag, "^salt/job/"));
    cr_expect(eq(int, c->statistics[0].n_fields, 2));
    cr_expect(eq(str, c->statistics[0].fields[1], "data.retcode"));
    cr_expect(eq(int, c->statistics[0].interval_s, 30));
    cr_expect(eq(int, c->statistics[0].max_values, 7));
    cr_expect(c->statistics[1].tag == NULL);
    cr_expect(eq(int, c->statistics[1].interval_s, 60));
    cr_expect(eq(int, c->statistics[1].max_values, 100));
    eventsd_config_destroy(&c);
}

typedef struct {
    const char *text;
    const char *want[4];   /* "LINE: message" */
} error_case_t;

static const error_case_t cases[] = {
    { "workers = ( { name = \"g\"; sink = \"graphite\"; } );\n" RULE_G,
      { "1: missing key 'metrics' in worker 'g' (required by sink 'graphite')" } },
    { "workers = ( { name = \"g\"; sink = \"graphite\"; conninfo = \"x\";\n"
      "  metrics = ( { name = \"a.{data.x\"; } ); } );\n" RULE_G,
      { "1: key 'conninfo' in worker 'g' does not apply to sink 'graphite'",
        "2: 'name' in metric #1 of worker 'g': unclosed '{' at offset 2" } },
    { "workers = ( { name = \"g\"; sink = \"graphite\"; protocol = \"sctp\";\n"
      "  prefix = \"a..b\"; metrics = ( { name = \"{fun}\"; aggregate = \"mean\"; } ); } );\n"
      RULE_G,
      { "1: unknown value 'sctp' for 'protocol' (expected tcp or udp)",
        "2: 'prefix' in worker 'g' must be components of A-Z a-z 0-9 _ : - separated by "
        "single dots, got 'a..b'",
        "2: 'name' in metric #1 of worker 'g': unknown field '{fun}' at offset 0 (fields: tag, "
        "master_id, stamp, data, data.<path>)",
        "2: 'aggregate' in metric #1 of worker 'g' is 'mean' but there is no 'value' (a metric "
        "without a value counts events: sum)" } },
    { "workers = ( { name = \"c\"; sink = \"redis\"; group = \"a:b\"; counter = \"x\";\n"
      "  intervals = [ \"5x\", \"5m\", \"5m\" ]; } );\n"
      "rules = ( { tag = \"^\"; workers = \"c\"; } );\n",
      { "1: 'group' in worker 'c' must not contain ':' or whitespace (it is the first part of "
        "the Redis keys), got 'a:b'",
        "2: interval '5x' in worker 'c' must be a number and s, m, h or d, between 1s and 7d "
        "(\"5s\", \"5m\", \"1h\")",
        "2: interval '5m' in worker 'c' is listed twice" } },
    { GRAPHITE_OK "rules = ( { tag = \"^\"; workers = \"g\";\n"
      "  throttle = { key = \"{data.id}\"; min_count = 3; max_count = 2; shared = true; "
      "window = 1; }; } );\n",
      { "4: unknown key 'window' in 'throttle' in rule #1",
        "4: 'throttle.max_count' in rule #1 (2) must be >= 'throttle.min_count' (3)",
        "4: 'throttle.shared' in rule #1 needs a top-level 'redis' group (host, port, ...)" } },
    { GRAPHITE_OK RULE_G "statistics = ( { name = \"s\"; fields = [ \"fun\" ]; },\n"
      "  { name = \"s\"; fields = [ \"tag\" ]; interval = 0; } );\n",
      { "4: 'fields' in statistics #1: unknown field 'fun' (fields: tag, master_id, stamp, "
        "data, data.<path>)",
        "5: 'interval' in statistics #2 must be an integer between 1 and 86400",
        "5: duplicate statistics name 's' (first defined at line 4)" } },
    { GRAPHITE_OK RULE_G "stats = { listen = \"9108\"; };\n",
      { "4: 'stats.listen' must be HOST:PORT (e.g. \"127.0.0.1:9108\"), got '9108'" } },
};

Test(config_metrics, errors_name_file_line_and_key)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[8192], want[8192] = "";
        eventsd_config_t *c = load_text(cases[i].text, err, sizeof err);
        cr_expect(c == NULL, "case %zu loaded", i);
        for (int k = 0; k < 4 && cases[i].want[k]; k++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s:%s",
                     k ? "\n" : "", conf, cases[i].want[k]);
        cr_expect(eq(str, err, want), "case %zu", i);
        eventsd_config_destroy(&c);
    }
}

Test(config_metrics, fingerprint_follows_metric_settings)
{
    char err[1024];
    eventsd_config_t *a = load_text(GRAPHITE_OK RULE_G, err, sizeof err);
    cr_assert(a != NULL, "%s", err);
    eventsd_config_t *b = load_text(
        "workers = ( { name = \"g\"; sink = \"graphite\";\n"
        "  metrics = ( { name = \"jobs.{data.fun}\"; value = \"data.x\"; } ); } );\n" RULE_G,
        err, sizeof err);
    cr_assert(b != NULL, "%s", err);
    cr_expect(strcmp(a->workers[0].fingerprint, b->workers[0].fingerprint) != 0);
    eventsd_config_destroy(&a);
    eventsd_config_destroy(&b);
}
