/* test_trigger_match: trigger criteria (tag patterns and every condition operator, numbers
 * against text, booleans, missing fields) and distinguishing keys (fields, day and hour
 * buckets of the stamp, escaping, missing values), table-driven. The engine tests
 * (test_trigger_engine.c) use them through streams. */
#include "json_msgpack.h"
#include "trigger_key.h"
#include "trigger_match.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static worker_event_t *event(const char *tag, const char *json)
{
    char err[256] = "";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(json_to_msgpack(json, &sb, err, sizeof err), 0, "%s: %s", json, err);
    worker_event_t *ev = worker_event_new(1, false, tag, strlen(tag), sb.data, sb.size, 32, err,
                                          sizeof err);
    cr_assert_not_null(ev, "%s", err);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

/* ---- conditions ---- */

typedef struct {
    const char *field;
    cond_op_t   op;
    const char *value;
    const char *data;
    bool        holds;
} cond_case_t;

static const cond_case_t COND_CASES[] = {
    /* numbers compare as numbers when both sides are numbers */
    { "data.retcode", COND_EQ, "0", "{\"retcode\": 0}", true },
    { "data.retcode", COND_EQ, "0", "{\"retcode\": \"0\"}", true },
    { "data.retcode", COND_EQ, "0.0", "{\"retcode\": 0}", true },
    { "data.retcode", COND_EQ, "0", "{\"retcode\": 1}", false },
    { "data.retcode", COND_NE, "0", "{\"retcode\": 2}", true },
    { "data.retcode", COND_NE, "0", "{\"retcode\": 0}", false },
    { "data.n", COND_LT, "10", "{\"n\": 9}", true },
    { "data.n", COND_LT, "10", "{\"n\": \"9\"}", true },     /* text would say "9" > "10" */
    { "data.n", COND_LT, "10", "{\"n\": 10}", false },
    { "data.n", COND_LE, "10", "{\"n\": 10}", true },
    { "data.n", COND_LE, "10", "{\"n\": 10.5}", false },
    { "data.n", COND_GT, "10", "{\"n\": 10.5}", true },
    { "data.n", COND_GT, "10", "{\"n\": -11}", false },
    { "data.n", COND_GE, "10", "{\"n\": 10}", true },
    { "data.n", COND_GE, "-1.5", "{\"n\": -2}", false },
    /* otherwise as text, bytewise */
    { "data.fun", COND_EQ, "test.ping", "{\"fun\": \"test.ping\"}", true },
    { "data.fun", COND_EQ, "test.ping", "{\"fun\": \"test.pong\"}", false },
    { "data.fun", COND_NE, "test.ping", "{\"fun\": \"state.apply\"}", true },
    { "data.fun", COND_LT, "b", "{\"fun\": \"apple\"}", true },
    { "data.fun", COND_GT, "b", "{\"fun\": \"apple\"}", false },
    { "data.fun", COND_GE, "apple", "{\"fun\": \"apple\"}", true },
    { "data.fun", COND_LE, "apple", "{\"fun\": \"apples\"}", false },
    { "data.ver", COND_LT, "10", "{\"ver\": \"9a\"}", false },  /* "9a" is text: '9' > '1' */
    { "data.n", COND_EQ, "abc", "{\"n\": 5}", false },          /* value is text: "5" vs "abc" */
    { "data.n", COND_EQ, "5", "{\"n\": \"5\"}", true },
    /* booleans: "true"/"false", any case */
    { "data.success", COND_EQ, "true", "{\"success\": true}", true },
    { "data.success", COND_EQ, "True", "{\"success\": true}", true },
    { "data.success", COND_EQ, "false", "{\"success\": true}", false },
    { "data.success", COND_NE, "false", "{\"success\": true}", true },
    { "data.success", COND_EQ, "False", "{\"success\": false}", true },
    /* regular expressions: a search in the text */
    { "data.fun", COND_MATCH, "^state\\.", "{\"fun\": \"state.apply\"}", true },
    { "data.fun", COND_MATCH, "^state\\.", "{\"fun\": \"test.ping\"}", false },
    { "data.fun", COND_MATCH, "apply", "{\"fun\": \"state.apply\"}", true },
    { "data.fun", COND_NOMATCH, "^state\\.", "{\"fun\": \"test.ping\"}", true },
    { "data.fun", COND_NOMATCH, "^state\\.", "{\"fun\": \"state.sls\"}", false },
    { "data.retcode", COND_MATCH, "^[12]$", "{\"retcode\": 2}", true },
    { "data.return", COND_MATCH, "\"ok\": true", "{\"return\": {\"ok\": true}}", true },
    /* exists */
    { "data.x", COND_EXISTS, NULL, "{\"x\": 1}", true },
    { "data.x", COND_EXISTS, NULL, "{\"x\": false}", true },
    { "data.x", COND_EXISTS, NULL, "{\"x\": null}", false },
    { "data.x", COND_EXISTS, NULL, "{}", false },
    /* a missing or nil field: every condition is false */
    { "data.retcode", COND_NE, "0", "{}", false },
    { "data.retcode", COND_EQ, "0", "{\"retcode\": null}", false },
    { "data.fun", COND_NOMATCH, "x", "{}", false },
    { "data.n", COND_LT, "10", "{}", false },
    /* other fields of the grammar */
    { "data.return.ok", COND_EQ, "1", "{\"return\": {\"ok\": 1}}", true },
    { "data.minions.1", COND_EQ, "b", "{\"minions\": [\"a\", \"b\"]}", true },
    { "tag", COND_MATCH, "/ret/web01$", "{}", true },
    { "master_id", COND_EQ, "m1_master", "{}", true },
    { "stamp", COND_GE, "2024-01-04", "{\"_stamp\": \"2024-01-04T12:00:00\"}", true },
};

Test(trigger_match, conditions)
{
    trigger_scratch_t *sc = trigger_scratch_new();
    for (size_t i = 0; i < N_ELEMS(COND_CASES); i++) {
        const cond_case_t *c = &COND_CASES[i];
        condition_config_t cond = { .field = (char *) c->field, .op = c->op,
                                    .value = (char *) c->value };
        event_match_config_t m = { .tag = "^salt/", .where = &cond, .n_where = 1 };
        char err[256] = "";
        trigger_criterion_t *crit = trigger_criterion_new(&m, err, sizeof err);
        cr_assert_not_null(crit, "case %zu: %s", i, err);
        worker_event_t *ev = event("salt/job/1/ret/web01", c->data);
        cr_expect_eq(trigger_criterion_matches(crit, sc, ev, "m1_master"), c->holds,
                     "case %zu: %s op %d %s on %s", i, c->field, (int) c->op,
                     c->value ? c->value : "", c->data);
        worker_event_destroy(&ev);
        trigger_criterion_destroy(&crit);
        cr_assert_null(crit);
    }
    trigger_scratch_destroy(&sc);
}

Test(trigger_match, all_conditions_and_the_tag_must_hold)
{
    condition_config_t conds[] = {
        { .field = "data.fun", .op = COND_MATCH, .value = "^state\\." },
        { .field = "data.retcode", .op = COND_NE, .value = "0" },
    };
    event_match_config_t m = { .tag = "^salt/job/[0-9]+/ret/", .where = conds, .n_where = 2 };
    char err[256];
    trigger_criterion_t *crit = trigger_criterion_new(&m, err, sizeof err);
    trigger_scratch_t *sc = trigger_scratch_new();
    cr_assert_not_null(crit, "%s", err);
    struct { const char *tag, *data; bool holds; } cases[] = {
        { "salt/job/1/ret/a", "{\"fun\": \"state.apply\", \"retcode\": 2}", true },
        { "salt/job/1/ret/a", "{\"fun\": \"state.apply\", \"retcode\": 0}", false },
        { "salt/job/1/ret/a", "{\"fun\": \"test.ping\", \"retcode\": 2}", false },
        { "salt/job/1/new", "{\"fun\": \"state.apply\", \"retcode\": 2}", false },
        { "xsalt/job/1/ret/a", "{\"fun\": \"state.apply\", \"retcode\": 2}", false },
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        worker_event_t *ev = event(cases[i].tag, cases[i].data);
        cr_expect_eq(trigger_criterion_matches(crit, sc, ev, NULL), cases[i].holds, "case %zu",
                     i);
        worker_event_destroy(&ev);
    }
    trigger_criterion_destroy(&crit);
    trigger_scratch_destroy(&sc);
}

Test(trigger_match, compile_errors)
{
    char err[256];
    event_match_config_t bad_tag = { .tag = "^salt/(job" };
    cr_expect_null(trigger_criterion_new(&bad_tag, err, sizeof err));
    cr_expect(strstr(err, "tag pattern '^salt/(job': ") && strstr(err, "at offset 10"), "%s",
              err);
    condition_config_t cond = { .field = "data.fun", .op = COND_MATCH, .value = "[a-" };
    event_match_config_t bad_re = { .tag = "x", .where = &cond, .n_where = 1 };
    cr_expect_null(trigger_criterion_new(&bad_re, err, sizeof err));
    cr_expect(strstr(err, "condition 'data.fun =~ [a-': pattern '[a-': "), "%s", err);
    condition_config_t field = { .field = "fun", .op = COND_EQ, .value = "x" };
    event_match_config_t bad_field = { .tag = "x", .where = &field, .n_where = 1 };
    cr_expect_null(trigger_criterion_new(&bad_field, err, sizeof err));
    cr_expect_str_eq(err, "condition on unknown field 'fun'");
}

Test(trigger_match, invalid_utf8_subject_does_not_match)
{
    char err[256];
    trigger_pattern_t *p = trigger_pattern_new("^salt/.*$", err, sizeof err);
    trigger_scratch_t *sc = trigger_scratch_new();
    cr_assert_not_null(p, "%s", err);
    cr_expect(trigger_pattern_search(p, sc, "salt/job", 8));
    cr_expect_not(trigger_pattern_search(p, sc, "salt/\xff\xfe", 7));
    cr_expect(trigger_pattern_search(p, sc, "salt/", 5));
    trigger_pattern_destroy(&p);
    trigger_scratch_destroy(&sc);
}

/* ---- keys ---- */

typedef struct {
    const char *fields[3];
    const char *data;
    int         rc;
    const char *key_or_missing;
} key_case_t;

static const key_case_t KEY_CASES[] = {
    { { "data.jid" }, "{\"jid\": \"20240104120000123456\"}", 0, "20240104120000123456" },
    { { "data.id", "stamp|day" }, "{\"id\": \"web01\", \"_stamp\": \"2024-01-04T12:00:00.5\"}",
      0, "web01/2024-01-04" },
    { { "stamp|hour" }, "{\"_stamp\": \"2024-01-04T12:59:59\"}", 0, "2024-01-04T12" },
    { { "data._stamp|day" }, "{\"_stamp\": \"2024-01-04T00:00:00\"}", 0, "2024-01-04" },
    { { "stamp|hour" }, "{\"_stamp\": \"2024-01-04 07:00:00\"}", 0, "2024-01-04 07" },
    { { "data.id", "data.n" }, "{\"id\": \"a/b%c\", \"n\": 7}", 0, "a%2Fb%25c/7" },
    { { "data.id", "data.n" }, "{\"id\": \"a\", \"n\": \"b/7\"}", 0, "a/b%2F7" },
    { { "tag" }, "{}", 0, "salt%2Fauth" },
    { { "data.id", "data.jid" }, "{\"id\": \"web01\"}", 1, "data.jid" },
    { { "data.jid" }, "{\"jid\": null}", 1, "data.jid" },
    { { "stamp|day" }, "{\"_stamp\": \"yesterday\"}", 1, "stamp|day" },
    { { "stamp|hour" }, "{\"_stamp\": \"2024-01-04\"}", 1, "stamp|hour" },
    { { "data.id" }, "{\"id\": \"\"}", 0, "" },
};

Test(trigger_key, keys)
{
    msgpack_sbuffer text, key;
    msgpack_sbuffer_init(&text);
    msgpack_sbuffer_init(&key);
    for (size_t i = 0; i < N_ELEMS(KEY_CASES); i++) {
        const key_case_t *c = &KEY_CASES[i];
        int n = 0;
        while (n < 3 && c->fields[n])
            n++;
        char err[256];
        trigger_key_t *k = trigger_key_new((char *const *) c->fields, n, err, sizeof err);
        cr_assert_not_null(k, "case %zu: %s", i, err);
        worker_event_t *ev = event("salt/auth", c->data);
        const char *missing = NULL;
        int rc = trigger_key_build(k, ev, "m1", &text, &key, &missing);
        cr_expect_eq(rc, c->rc, "case %zu", i);
        if (rc == 0)
            cr_expect_str_eq(key.data, c->key_or_missing, "case %zu", i);
        else if (rc == 1)
            cr_expect_str_eq(missing, c->key_or_missing, "case %zu", i);
        worker_event_destroy(&ev);
        trigger_key_destroy(&k);
    }
    msgpack_sbuffer_destroy(&text);
    msgpack_sbuffer_destroy(&key);
}

Test(trigger_key, bad_entries)
{
    char err[256];
    const char *week[] = { "stamp|week" };
    cr_expect_null(trigger_key_new((char *const *) week, 1, err, sizeof err));
    cr_expect_str_eq(err, "distinguished_by 'stamp|week': not a field, or a field|day or "
                     "field|hour bucket");
    const char *field[] = { "jid" };
    cr_expect_null(trigger_key_new((char *const *) field, 1, err, sizeof err));
    cr_expect_null(trigger_key_new(NULL, 0, err, sizeof err));
    cr_expect_str_eq(err, "distinguished_by is empty");
}
