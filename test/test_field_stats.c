/* field_stats: counts per value, the "*" event, max_values overflow into __other__, epoch-
 * aligned interval boundaries with injected time, empty and skipped intervals, the emitted
 * payload (unpacked with payload_new: every documented field), tag pattern filtering, events
 * without the field, value texts of non-strings and long values, several statistics, a closed
 * interval never taken, next_due_ms, and pattern/field errors with file and line. */
#include "field_stats.h"
#include "name_template.h"
#include "payload.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1800000000000LL   /* epoch ms on a minute (and hour) boundary */

/* ---- building events ---------------------------------------------------------------------- */

typedef struct {
    msgpack_sbuffer  buf;
    msgpack_unpacked unpacked;
} event_t;

/* {"fun": fun, "retcode": retcode, "id": "m1"}; fun NULL leaves it out. */
static const msgpack_object *make_ret(event_t *ev, const char *fun, int retcode)
{
    msgpack_sbuffer_init(&ev->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ev->buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, fun ? 3 : 2);
    if (fun) {
        msgpack_pack_str_with_body(&pk, "fun", 3);
        msgpack_pack_str_with_body(&pk, fun, strlen(fun));
    }
    msgpack_pack_str_with_body(&pk, "retcode", 7);
    msgpack_pack_int(&pk, retcode);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "m1", 2);
    msgpack_unpacked_init(&ev->unpacked);
    cr_assert_eq(msgpack_unpack_next(&ev->unpacked, ev->buf.data, ev->buf.size, NULL),
                 MSGPACK_UNPACK_SUCCESS);
    return &ev->unpacked.data;
}

static void free_event(event_t *ev)
{
    msgpack_unpacked_destroy(&ev->unpacked);
    msgpack_sbuffer_destroy(&ev->buf);
}

static void add_ret(field_stats_t *fs, const char *tag, const char *fun, int retcode,
                    int64_t now_ms)
{
    event_t ev;
    const msgpack_object *data = make_ret(&ev, fun, retcode);
    field_stats_add(fs, tag, strlen(tag), data, "master", now_ms);
    free_event(&ev);
}

/* ---- reading what comes out --------------------------------------------------------------- */

typedef struct {
    char     tag[128];
    char     name[80], field[80], value[400], stamp[40];
    uint64_t count;
    int64_t  interval, start, end;
} out_t;

static void text_of(const msgpack_object *root, const char *key, char *out, size_t n)
{
    const msgpack_object *o = payload_lookup(root, key);
    cr_assert_not_null(o, "no '%s' in the payload", key);
    cr_assert_eq(o->type, MSGPACK_OBJECT_STR, "'%s' is not a string", key);
    snprintf(out, n, "%.*s", (int) o->via.str.size, o->via.str.ptr);
}

static int64_t int_of(const msgpack_object *root, const char *key)
{
    const msgpack_object *o = payload_lookup(root, key);
    cr_assert_not_null(o, "no '%s' in the payload", key);
    cr_assert_eq(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "'%s' is not an integer", key);
    return (int64_t) o->via.u64;
}

/* Pops every due event (at most max) into out; returns how many. */
static int pop_all(field_stats_t *fs, int64_t now_ms, out_t *out, int max)
{
    msgpack_sbuffer tag, payload;
    msgpack_sbuffer_init(&tag);
    msgpack_sbuffer_init(&payload);
    int n = 0, rc;
    while ((rc = field_stats_pop(fs, now_ms, &tag, &payload)) == 1) {
        cr_assert_lt(n, max, "more events than expected");
        out_t *o = &out[n++];
        snprintf(o->tag, sizeof o->tag, "%.*s", (int) tag.size, tag.data);
        char err[256];
        payload_t *p = payload_new(payload.data, payload.size, true, 32, err, sizeof err);
        cr_assert_not_null(p, "%s", err);
        const msgpack_object *root = payload_root(p);
        cr_assert_eq(root->via.map.size, 8, "8 keys, not %u", root->via.map.size);
        text_of(root, "name", o->name, sizeof o->name);
        text_of(root, "field", o->field, sizeof o->field);
        text_of(root, "value", o->value, sizeof o->value);
        text_of(root, "_stamp", o->stamp, sizeof o->stamp);
        o->count = (uint64_t) int_of(root, "count");
        o->interval = int_of(root, "interval");
        o->start = int_of(root, "start");
        o->end = int_of(root, "end");
        payload_destroy(&p);
    }
    cr_assert_eq(rc, 0);
    msgpack_sbuffer_destroy(&tag);
    msgpack_sbuffer_destroy(&payload);
    return n;
}

typedef struct {
    const char *field, *value;
    uint64_t    count;
} want_t;

static void expect_items(const out_t *got, int n, const want_t *want, int n_want)
{
    cr_assert_eq(n, n_want, "%d events, want %d", n, n_want);
    for (int i = 0; i < n; i++) {
        cr_expect_str_eq(got[i].field, want[i].field, "event %d", i);
        cr_expect_str_eq(got[i].value, want[i].value, "event %d", i);
        cr_expect_eq(got[i].count, want[i].count, "event %d (%s=%s): count %llu, want %llu", i,
                     want[i].field, want[i].value, (unsigned long long) got[i].count,
                     (unsigned long long) want[i].count);
    }
}

static char *ret_fields[] = { "data.fun", "data.retcode" };

static field_stats_t *one_stat(const char *tag, int interval_s, int max_values)
{
    statistic_config_t c = { .name = "returns", .tag = (char *) tag, .fields = ret_fields,
                             .n_fields = 2, .interval_s = interval_s, .max_values = max_values,
                             .line = 4, .tag_line = 5 };
    char err[256];
    field_stats_t *fs = field_stats_new(&c, 1, "test.conf", err, sizeof err);
    cr_assert_not_null(fs, "%s", err);
    return fs;
}

#define RET "salt/job/20261129213000123456/ret/m1"
#define N(a) ((int) (sizeof(a) / sizeof((a)[0])))

/* ---- tests -------------------------------------------------------------------------------- */

Test(field_stats, counts_per_value_with_the_documented_payload)
{
    field_stats_t *fs = one_stat("^salt/job/[0-9]+/ret/", 60, 100);
    add_ret(fs, RET, "test.ping", 0, T0 + 1000);
    add_ret(fs, RET, "test.echo", 0, T0 + 2000);
    add_ret(fs, RET, "test.ping", 0, T0 + 3000);
    add_ret(fs, RET, "state.apply", 1, T0 + 4000);
    add_ret(fs, "salt/job/1/new", "test.ping", 0, T0 + 4500);   /* tag does not match */
    add_ret(fs, RET, "test.ping", 0, T0 + 5000);
    add_ret(fs, RET, "state.apply", 2, T0 + 59999);
    out_t out[16];
    cr_expect_eq(pop_all(fs, T0 + 59999, out, N(out)), 0, "the interval has not ended");
    int n = pop_all(fs, T0 + 60000, out, N(out));
    const want_t want[] = {
        { "*", "*", 6 },
        { "data.fun", "test.ping", 3 }, { "data.fun", "test.echo", 1 },
        { "data.fun", "state.apply", 2 },
        { "data.retcode", "0", 4 }, { "data.retcode", "1", 1 }, { "data.retcode", "2", 1 },
    };
    expect_items(out, n, want, N(want));
    for (int i = 0; i < n; i++) {
        cr_expect_str_eq(out[i].tag, "eventsd/stats/returns");
        cr_expect_str_eq(out[i].name, "returns");
        cr_expect_eq(out[i].interval, 60);
        cr_expect_eq(out[i].start, T0 / 1000);
        cr_expect_eq(out[i].end, T0 / 1000 + 60);
        cr_expect_str_eq(out[i].stamp, "2027-01-15T08:01:00.000000");   /* the end, UTC */
    }
    cr_expect_eq(pop_all(fs, T0 + 60001, out, N(out)), 0, "handed out once");
    const field_stats_counters_t *c = field_stats_counters(fs);
    cr_expect_eq(c->matched, 6);
    cr_expect_eq(c->emitted, 7);
    field_stats_destroy(&fs);
    cr_expect_null(fs);
}

Test(field_stats, max_values_overflow_into_other)
{
    field_stats_t *fs = one_stat(NULL, 60, 2);
    const char *funs[] = { "a", "b", "c", "a", "d", "c", "b" };
    for (int i = 0; i < N(funs); i++)
        add_ret(fs, RET, funs[i], i % 2, T0 + i);
    out_t out[16];
    int n = pop_all(fs, T0 + 60000, out, N(out));
    const want_t want[] = {
        { "*", "*", 7 },
        { "data.fun", "a", 2 }, { "data.fun", "b", 2 }, { "data.fun", FIELD_STATS_OTHER, 3 },
        { "data.retcode", "0", 4 }, { "data.retcode", "1", 3 },   /* no __other__: zero */
    };
    expect_items(out, n, want, N(want));
    cr_expect_eq(field_stats_counters(fs)->other, 3);
    field_stats_destroy(&fs);
}

Test(field_stats, many_distinct_values_stay_bounded)
{
    field_stats_t *fs = one_stat(NULL, 60, 10);
    char fun[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(fun, sizeof fun, "mod.fun%d", i);
        add_ret(fs, RET, fun, 0, T0 + i);
    }
    out_t out[16];
    int n = pop_all(fs, T0 + 60000, out, N(out));
    cr_assert_eq(n, 1 + 10 + 1 + 1);
    cr_expect_str_eq(out[11].value, FIELD_STATS_OTHER);
    cr_expect_eq(out[11].count, 20000 - 10);
    cr_expect_str_eq(out[12].value, "0");
    cr_expect_eq(out[12].count, 20000);
    field_stats_destroy(&fs);
}

/* Intervals are epoch-aligned: an event 30 s into a minute counts in the interval that
 * started on the minute; the boundary instant belongs to the next interval. */
Test(field_stats, interval_boundaries)
{
    field_stats_t *fs = one_stat(NULL, 60, 100);
    add_ret(fs, RET, "a", 0, T0 + 30000);
    add_ret(fs, RET, "a", 0, T0 + 59999);
    add_ret(fs, RET, "b", 0, T0 + 60000);   /* closes [T0, T0+60) and counts in the next */
    add_ret(fs, RET, "b", 0, T0 + 119999);
    out_t out[16];
    int n = pop_all(fs, T0 + 60000, out, N(out));
    const want_t first[] = { { "*", "*", 2 }, { "data.fun", "a", 2 }, { "data.retcode", "0", 2 } };
    expect_items(out, n, first, N(first));
    cr_expect_eq(out[0].start, T0 / 1000);
    cr_expect_eq(pop_all(fs, T0 + 119999, out, N(out)), 0);
    n = pop_all(fs, T0 + 120000, out, N(out));
    const want_t second[] = { { "*", "*", 2 }, { "data.fun", "b", 2 }, { "data.retcode", "0", 2 } };
    expect_items(out, n, second, N(second));
    cr_expect_eq(out[0].start, T0 / 1000 + 60);
    cr_expect_eq(out[0].end, T0 / 1000 + 120);
    cr_expect_eq(pop_all(fs, T0 + 600000, out, N(out)), 0, "empty intervals emit nothing");
    cr_expect_eq(field_stats_next_due_ms(fs, T0 + 600000), -1);
    field_stats_destroy(&fs);
}

/* An interval with a gap of empty ones after it: closed by the next event, which starts the
 * interval of its own time. */
Test(field_stats, skipped_intervals)
{
    field_stats_t *fs = one_stat(NULL, 10, 100);
    add_ret(fs, RET, "a", 0, T0 + 1000);
    add_ret(fs, RET, "b", 0, T0 + 95000);
    out_t out[16];
    int n = pop_all(fs, T0 + 95000, out, N(out));
    cr_assert_eq(n, 3);
    cr_expect_eq(out[0].start, T0 / 1000);
    cr_expect_eq(out[0].end, T0 / 1000 + 10);
    n = pop_all(fs, T0 + 100000, out, N(out));
    cr_assert_eq(n, 3);
    cr_expect_str_eq(out[1].value, "b");
    cr_expect_eq(out[0].start, T0 / 1000 + 90);
    field_stats_destroy(&fs);
}

Test(field_stats, next_due_ms)
{
    field_stats_t *fs = one_stat(NULL, 60, 100);
    cr_expect_eq(field_stats_next_due_ms(fs, T0), -1, "nothing counted");
    add_ret(fs, RET, "a", 0, T0 + 15000);
    cr_expect_eq(field_stats_next_due_ms(fs, T0 + 15000), 45000);
    cr_expect_eq(field_stats_next_due_ms(fs, T0 + 59000), 1000);
    cr_expect_eq(field_stats_next_due_ms(fs, T0 + 70000), 0);
    msgpack_sbuffer tag, payload;
    msgpack_sbuffer_init(&tag);
    msgpack_sbuffer_init(&payload);
    cr_expect_eq(field_stats_pop(fs, T0 + 70000, &tag, &payload), 1);
    cr_expect_eq(field_stats_next_due_ms(fs, T0 + 70000), 0, "more to hand out");
    while (field_stats_pop(fs, T0 + 70000, &tag, &payload) == 1)
        ;
    cr_expect_eq(field_stats_next_due_ms(fs, T0 + 70000), -1);
    msgpack_sbuffer_destroy(&tag);
    msgpack_sbuffer_destroy(&payload);
    field_stats_destroy(&fs);
}

Test(field_stats, tag_pattern_filters_and_own_events_are_never_counted)
{
    char *fun_only[] = { "data.fun" };
    statistic_config_t c[] = {
        { .name = "auth", .tag = "^salt/auth$", .fields = fun_only, .n_fields = 1,
          .interval_s = 60, .max_values = 10 },
        { .name = "all", .fields = fun_only, .n_fields = 1, .interval_s = 60,
          .max_values = 10 },
    };
    char err[256];
    field_stats_t *fs = field_stats_new(c, 2, "test.conf", err, sizeof err);
    cr_assert_not_null(fs, "%s", err);
    add_ret(fs, "salt/auth", "x", 0, T0);
    add_ret(fs, "salt/auth/extra", "y", 0, T0);
    add_ret(fs, RET, "z", 0, T0);
    add_ret(fs, "eventsd/stats/all", "w", 0, T0);   /* our own: never counted */
    out_t out[16];
    int n = pop_all(fs, T0 + 60000, out, N(out));
    cr_assert_eq(n, 2 + 4);
    cr_expect_str_eq(out[0].tag, "eventsd/stats/auth");
    cr_expect_eq(out[0].count, 1);
    cr_expect_str_eq(out[1].value, "x");
    cr_expect_str_eq(out[2].tag, "eventsd/stats/all");
    cr_expect_eq(out[2].count, 3);
    cr_expect_str_eq(out[3].value, "x");
    cr_expect_str_eq(out[4].value, "y");
    cr_expect_str_eq(out[5].value, "z");
    cr_expect_eq(field_stats_counters(fs)->matched, 3);
    field_stats_destroy(&fs);
}

Test(field_stats, events_without_the_field_count_only_in_star)
{
    field_stats_t *fs = one_stat(NULL, 60, 100);
    add_ret(fs, RET, NULL, 0, T0);
    add_ret(fs, RET, "a", 0, T0);
    field_stats_add(fs, RET, strlen(RET), NULL, NULL, T0);   /* no data at all */
    out_t out[16];
    int n = pop_all(fs, T0 + 60000, out, N(out));
    const want_t want[] = { { "*", "*", 3 }, { "data.fun", "a", 1 }, { "data.retcode", "0", 2 } };
    expect_items(out, n, want, N(want));
    field_stats_destroy(&fs);
}

/* Values are payload_to_text's text; tag and master_id are fields too; long values are cut
 * at NAME_VALUE_MAX bytes without splitting a UTF-8 character. */
Test(field_stats, value_texts)
{
    char *fields[] = { "data.ok", "data.ret", "data.long", "tag", "master_id" };
    statistic_config_t c = { .name = "v", .fields = fields, .n_fields = 5, .interval_s = 60,
                             .max_values = 10 };
    char err[256];
    field_stats_t *fs = field_stats_new(&c, 1, "test.conf", err, sizeof err);
    cr_assert_not_null(fs, "%s", err);
    char longv[NAME_VALUE_MAX + 10];
    memset(longv, 'x', NAME_VALUE_MAX - 1);
    memcpy(longv + NAME_VALUE_MAX - 1, "\xc3\xa9tail", 6);   /* an é across the cut */
    longv[NAME_VALUE_MAX + 5] = '\0';
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "ok", 2);
    msgpack_pack_true(&pk);
    msgpack_pack_str_with_body(&pk, "ret", 3);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_str_with_body(&pk, "long", 4);
    msgpack_pack_str_with_body(&pk, longv, strlen(longv));
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, buf.data, buf.size, NULL), MSGPACK_UNPACK_SUCCESS);
    field_stats_add(fs, "my/tag", 6, &u.data, "mid", T0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&buf);
    out_t out[16];
    int n = pop_all(fs, T0 + 60000, out, N(out));
    cr_assert_eq(n, 6);
    cr_expect_str_eq(out[1].value, "True");
    cr_expect_str_eq(out[2].value, "{\"a\": 1.5}");
    cr_expect_eq(strlen(out[3].value), NAME_VALUE_MAX - 1, "cut before the é");
    cr_expect_str_eq(out[4].value, "my/tag");
    cr_expect_str_eq(out[5].value, "mid");
    field_stats_destroy(&fs);
}

/* A closed interval nobody took before the next one closed is dropped and counted; one that
 * was taken completely is not. */
Test(field_stats, untaken_interval_is_dropped_and_counted)
{
    field_stats_t *fs = one_stat(NULL, 60, 100);
    add_ret(fs, RET, "a", 0, T0);
    add_ret(fs, RET, "b", 0, T0 + 60000);    /* closes the first */
    add_ret(fs, RET, "c", 0, T0 + 120000);   /* closes the second; the first was not taken */
    cr_expect_eq(field_stats_counters(fs)->dropped, 1);
    out_t out[16];
    int n = pop_all(fs, T0 + 120000, out, N(out));
    cr_assert_eq(n, 3);
    cr_expect_str_eq(out[1].value, "b");
    add_ret(fs, RET, "d", 0, T0 + 180000);   /* closes the third; the second was taken */
    cr_expect_eq(field_stats_counters(fs)->dropped, 1);
    n = pop_all(fs, T0 + 180000, out, N(out));
    cr_assert_eq(n, 3);
    cr_expect_str_eq(out[1].value, "c");
    field_stats_destroy(&fs);
}

Test(field_stats, errors_name_file_line_and_statistic)
{
    char err[256] = "";
    statistic_config_t bad_re = { .name = "s1", .tag = "^salt/(job", .fields = ret_fields,
                                  .n_fields = 2, .interval_s = 60, .max_values = 10,
                                  .line = 20, .tag_line = 21 };
    cr_expect_null(field_stats_new(&bad_re, 1, "eventsd.conf", err, sizeof err));
    cr_expect(strncmp(err, "eventsd.conf:21: statistics 's1' tag pattern: missing closing "
                           "parenthesis at offset 10", 200) == 0, "%s", err);
    char *bad_fields[] = { "data.fun", "fun" };
    statistic_config_t bad_field = { .name = "s2", .fields = bad_fields, .n_fields = 2,
                                     .interval_s = 60, .max_values = 10, .line = 30 };
    cr_expect_null(field_stats_new(&bad_field, 1, "eventsd.conf", err, sizeof err));
    cr_expect(strncmp(err, "eventsd.conf:30: statistics 's2' field 'fun': unknown field", 58) == 0,
              "%s", err);
    field_stats_t *none = field_stats_new(NULL, 0, "eventsd.conf", err, sizeof err);
    cr_assert_not_null(none, "no statistics is fine");
    add_ret(none, RET, "a", 0, T0);
    cr_expect_eq(field_stats_next_due_ms(none, T0), -1);
    field_stats_destroy(&none);
}
