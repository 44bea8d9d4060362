/* rules: tag and fun matching, fun fallback to data.data.fun, de-duplication per worker,
 * priority, pattern errors with file and line. */
#include "rules.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>

static char *w_names[] = { "returns", "jobs", "events" };

static worker_config_t workers[3] = {
    { .name = "returns" }, { .name = "jobs" }, { .name = "events" },
};

static eventsd_config_t make_config(rule_config_t *rules, int n)
{
    return (eventsd_config_t){ .path = "test.conf", .workers = workers, .n_workers = 3,
                               .rules = rules, .n_rules = n };
}

/* msgpack of {"fun": fun} or {"data": {"fun": fun}} or {} */
static void pack_data(msgpack_sbuffer *buf, const char *fun, bool nested)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    if (!fun) {
        msgpack_pack_map(&pk, 0);
        return;
    }
    msgpack_pack_map(&pk, 1);
    if (nested) {
        msgpack_pack_str_with_body(&pk, "data", 4);
        msgpack_pack_map(&pk, 1);
    }
    msgpack_pack_str_with_body(&pk, "fun", 3);
    msgpack_pack_str_with_body(&pk, fun, strlen(fun));
}

typedef struct {
    const char *tag;
    const char *fun;
    bool        nested;
    uint8_t     want[3];
    int         hits;
} match_case_t;

static rule_config_t standard_rules[] = {
    { .tag = "^salt/job/[0-9]+/ret/", .workers = &w_names[0], .n_workers = 1, .line = 1 },
    { .tag = "^salt/job/[0-9]+/new$", .workers = &w_names[1], .n_workers = 1, .line = 2 },
    { .tag = "^salt/job/", .fun = "^state\\.", .workers = &w_names[0], .n_workers = 1,
      .priority = true, .line = 3 },
    { .tag = ".*", .workers = &w_names[2], .n_workers = 1, .line = 4 },
    { .tag = "^custom/", .fun = "^deploy\\.", .workers = &w_names[1], .n_workers = 2,
      .line = 5 },   /* jobs and events: events is also matched by ".*" */
};

static const match_case_t match_cases[] = {
    { "salt/job/1/ret/m1", "test.ping", false, { 1, 0, 1 }, 2 },
        { "salt/job/1/ret/m1", "state.apply", false, { 3, 0, 1 }, 2 },
        { "salt/job/1/new", "state.apply", false, { 3, 1, 1 }, 3 },
        { "salt/job/1/new", NULL, false, { 0, 1, 1 }, 2 },
        { "salt/auth", NULL, false, { 0, 0, 1 }, 1 },
        { "custom/app", "deploy.release", true, { 0, 1, 1 }, 2 },   /* data.data.fun */
        { "custom/app", "other.fun", true, { 0, 0, 1 }, 1 },
        { "custom/app", NULL, false, { 0, 0, 1 }, 1 },              /* no fun: fun rule fails */
};

/* Criterion runs each test in a fresh process: tables with pointers stay in plain loops. */
static void check_match(const match_case_t *c)
{
    eventsd_config_t cfg = make_config(standard_rules, 5);
    char err[256];
    rules_t *rules = rules_new(&cfg, err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    pack_data(&buf, c->fun, c->nested);
    uint8_t targets[3];
    int hits = rules_match(rules, c->tag, strlen(c->tag), buf.data, buf.size, targets);
    cr_expect_eq(hits, c->hits, "%s: hits %d, want %d", c->tag, hits, c->hits);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(targets[i], c->want[i], "%s fun=%s worker %d: %d, want %d", c->tag,
                     c->fun ? c->fun : "-", i, targets[i], c->want[i]);
    msgpack_sbuffer_destroy(&buf);
    rules_destroy(&rules);
}

Test(rules, match_table)
{
    for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++)
        check_match(&match_cases[i]);
}

Test(rules, unmatched_event_targets_nobody)
{
    rule_config_t only[] = { { .tag = "^salt/auth$", .workers = &w_names[2], .n_workers = 1 } };
    eventsd_config_t cfg = make_config(only, 1);
    char err[256];
    rules_t *rules = rules_new(&cfg, err, sizeof err);
    cr_assert_not_null(rules);
    uint8_t targets[3] = { 9, 9, 9 };
    cr_expect_eq(rules_match(rules, "salt/key", 8, "\x80", 1, targets), 0);
    cr_expect(targets[0] == 0 && targets[1] == 0 && targets[2] == 0);
    rules_destroy(&rules);
}

Test(rules, bad_pattern_reports_file_line_and_offset)
{
    rule_config_t bad[] = {
        { .tag = "^ok$", .workers = &w_names[0], .n_workers = 1, .line = 7 },
        { .tag = "^salt/(job", .workers = &w_names[0], .n_workers = 1, .line = 9, .tag_line = 10 },
    };
    eventsd_config_t cfg = make_config(bad, 2);
    char err[256] = "";
    cr_assert_null(rules_new(&cfg, err, sizeof err));
    cr_expect(strstr(err, "test.conf:10: rule tag pattern '^salt/(job'") != NULL, "%s", err);
    cr_expect(strstr(err, "at offset 10") != NULL, "%s", err);
}

Test(rules, bad_fun_pattern_names_fun_line)
{
    rule_config_t bad[] = {
        { .tag = ".*", .fun = "[unclosed", .workers = &w_names[0], .n_workers = 1, .line = 3,
          .fun_line = 4 },
    };
    eventsd_config_t cfg = make_config(bad, 1);
    char err[256] = "";
    cr_assert_null(rules_new(&cfg, err, sizeof err));
    cr_expect(strstr(err, "test.conf:4: rule fun pattern") != NULL, "%s", err);
}

Test(rules, unknown_worker_is_an_error)
{
    char *ghost[] = { "ghost" };
    rule_config_t bad[] = { { .tag = ".*", .workers = ghost, .n_workers = 1, .line = 5 } };
    eventsd_config_t cfg = make_config(bad, 1);
    char err[256] = "";
    cr_assert_null(rules_new(&cfg, err, sizeof err));
    cr_expect(strstr(err, "test.conf:5: rule names unknown worker 'ghost'") != NULL, "%s", err);
}

/* A throttled rule (key = the event's fun, de-duplicating) next to a plain one: only the first
 * event of each fun passes the throttled rule; the plain rule sees every event; --explain
 * reports the key and the count without counting. */
Test(rules, throttle_limits_only_its_own_rule)
{
    throttle_config_t dedupe = { .key = "{data.fun}", .timeframe_s = 3600, .min_count = 1,
                                 .max_count = 1, .line = 7 };
    rule_config_t r[] = {
        { .tag = "^salt/auth$", .workers = &w_names[0], .n_workers = 1, .line = 7,
          .throttle = &dedupe },
        { .tag = "^salt/", .workers = &w_names[2], .n_workers = 1, .line = 8 },
    };
    eventsd_config_t cfg = make_config(r, 2);
    char err[256] = "";
    rules_t *rules = rules_new(&cfg, err, sizeof err);
    cr_assert_not_null(rules, "%s", err);
    const char *funs[] = { "a", "a", "b", "a", "b", "c" };
    const uint8_t want_returns[] = { 1, 0, 1, 0, 0, 1 };
    for (size_t i = 0; i < sizeof funs / sizeof *funs; i++) {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        pack_data(&buf, funs[i], false);
        uint8_t t[3];
        rules_match(rules, "salt/auth", 9, buf.data, buf.size, t);
        cr_expect_eq(t[0], want_returns[i], "event %zu (fun %s)", i, funs[i]);
        cr_expect_eq(t[2], 1, "the plain rule sees event %zu", i);
        msgpack_sbuffer_destroy(&buf);
    }
    const throttle_stats_t *st = rules_throttle_stats(rules, 0);
    cr_assert_not_null(st);
    cr_expect_eq(st->passed, 3);
    cr_expect_eq(st->blocked, 3);
    cr_expect_null(rules_throttle_stats(rules, 1));

    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    pack_data(&buf, "a", false);
    rule_explain_t x[2];
    cr_assert_eq(rules_explain(rules, "salt/auth", 9, buf.data, buf.size, x), 0);
    cr_expect(x[0].selected && x[0].has_throttle);
    cr_expect_str_eq(x[0].throttle_key, "a");
    cr_expect_eq(x[0].throttle_count, 3);
    cr_expect(!x[0].throttle_passes);
    cr_expect(x[1].selected && !x[1].has_throttle);
    cr_expect_eq(rules_throttle_stats(rules, 0)->passed + rules_throttle_stats(rules, 0)->blocked,
                 6, "explain counts nothing");
    msgpack_sbuffer_destroy(&buf);
    rules_destroy(&rules);
}
