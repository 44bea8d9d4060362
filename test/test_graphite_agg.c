/* Tests for workers/graphite_agg.c: interval slots, each aggregate, rendering, the repeatable
 * flush (render / sent), the names cap, values that are not finite, number formatting. */
#include "graphite_agg.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void add(graphite_agg_t *a, int64_t start, const char *name, metric_agg_t how, double v)
{
    cr_assert(eq(int, graphite_agg_add(a, start, name, strlen(name), how, v), 0), "%s", name);
}

/* sb's bytes equal want. */
static bool sb_is(const msgpack_sbuffer *sb, const char *want)
{
    return sb->size == strlen(want) && memcmp(sb->data, want, sb->size) == 0;
}

/* want occurs in sb's bytes. */
static bool sb_has(const msgpack_sbuffer *sb, const char *want)
{
    return memmem(sb->data, sb->size, want, strlen(want)) != NULL;
}

static int cmp_lines(const void *x, const void *y)
{
    return strcmp(*(char *const *) x, *(char *const *) y);
}

/* The rendered lines, sorted (a hash table has no order), into out. Returns the line count. */
static long render_sorted(graphite_agg_t *a, char *out, size_t outlen)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    long n = graphite_agg_render(a, &sb);
    cr_assert(n >= 0);
    cr_assert(sb.size == 0 || sb.data[sb.size - 1] == '\n', "whole lines only");
    char *text = strndup(sb.data ? sb.data : "", sb.size), *lines[256], *save;
    long k = 0;
    for (char *l = strtok_r(text, "\n", &save); l && k < 256; l = strtok_r(NULL, "\n", &save))
        lines[k++] = l;
    cr_assert(eq(long, k, n), "one line per count");
    qsort(lines, (size_t) k, sizeof *lines, cmp_lines);
    out[0] = '\0';
    for (long i = 0; i < k; i++)
        snprintf(out + strlen(out), outlen - strlen(out), "%s\n", lines[i]);
    free(text);
    msgpack_sbuffer_destroy(&sb);
    return n;
}

typedef struct {
    int     interval_s;
    int64_t epoch_ms, start;
} slot_case_t;

static const slot_case_t slots[] = {
    { 10, 1700000000000, 1700000000 }, { 10, 1700000009999, 1700000000 },
    { 10, 1700000010000, 1700000010 }, { 60, 1700000059000, 1700000040 },
    { 1, 1700000000999, 1700000000 },  { 7, 20999, 14 }, { 10, -1, -10 },
};

Test(graphite_agg, slot_is_the_interval_start)
{
    for (size_t i = 0; i < N_ELEMS(slots); i++) {
        graphite_agg_t *a = graphite_agg_new(slots[i].interval_s, 10);
        cr_expect(eq(i64, graphite_agg_slot(a, slots[i].epoch_ms), slots[i].start), "#%zu", i);
        graphite_agg_destroy(&a);
    }
}

Test(graphite_agg, each_aggregate_in_one_line_per_name)
{
    graphite_agg_t *a = graphite_agg_new(10, 100);
    double vals[] = { 4, -2.5, 10, 0.5 };
    for (size_t i = 0; i < N_ELEMS(vals); i++) {
        add(a, 100, "v.sum", METRIC_SUM, vals[i]);
        add(a, 100, "v.min", METRIC_MIN, vals[i]);
        add(a, 100, "v.max", METRIC_MAX, vals[i]);
        add(a, 100, "v.mean", METRIC_MEAN, vals[i]);
        add(a, 100, "v.last", METRIC_LAST, vals[i]);
        add(a, 100, "count", METRIC_SUM, 1);
    }
    char out[1024];
    cr_expect(eq(long, render_sorted(a, out, sizeof out), 6));
    cr_expect(eq(str, out, "count 4 100\n"
                           "v.last 0.5 100\n"
                           "v.max 10 100\n"
                           "v.mean 3 100\n"
                           "v.min -2.5 100\n"
                           "v.sum 12 100\n"));
    cr_expect(eq(sz, graphite_agg_held(a), 6));
    graphite_agg_destroy(&a);
}

Test(graphite_agg, the_first_aggregate_of_a_name_wins)
{
    graphite_agg_t *a = graphite_agg_new(10, 100);
    add(a, 0, "x", METRIC_MAX, 3);
    add(a, 0, "x", METRIC_SUM, 5);
    char out[256];
    render_sorted(a, out, sizeof out);
    cr_expect(eq(str, out, "x 5 0\n"));
    graphite_agg_destroy(&a);
}

Test(graphite_agg, intervals_render_oldest_first_and_sent_frees_ended_ones)
{
    graphite_agg_t *a = graphite_agg_new(10, 100);
    cr_expect(eq(i64, graphite_agg_due_ms(a), INT64_MAX), "nothing held");
    add(a, 20, "n", METRIC_SUM, 1);
    add(a, 10, "n", METRIC_SUM, 1);
    add(a, 10, "n", METRIC_SUM, 1);
    cr_expect(eq(i64, graphite_agg_due_ms(a), 20000), "the end of the oldest interval");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_expect(eq(long, graphite_agg_render(a, &sb), 2));
    cr_expect(sb_is(&sb, "n 2 10\nn 1 20\n"));
    /* a failed send: nothing changes, the same lines render again */
    sb.size = 0;
    cr_expect(eq(long, graphite_agg_render(a, &sb), 2));
    cr_expect(sb_is(&sb, "n 2 10\nn 1 20\n"));
    /* sent at 25 s: [10, 20) is over and freed, [20, 30) is kept (clean) */
    graphite_agg_sent(a, 25000);
    cr_expect(eq(i64, graphite_agg_due_ms(a), INT64_MAX), "nothing dirty");
    cr_expect(eq(sz, graphite_agg_held(a), 1));
    sb.size = 0;
    cr_expect(eq(long, graphite_agg_render(a, &sb), 0), "nothing to send again");
    /* more in the open interval: it is sent complete, not just the new part */
    add(a, 20, "n", METRIC_SUM, 1);
    add(a, 20, "m", METRIC_SUM, 1);
    cr_expect(eq(i64, graphite_agg_due_ms(a), 30000));
    char out[256];
    render_sorted(a, out, sizeof out);
    cr_expect(eq(str, out, "m 1 20\nn 2 20\n"));
    graphite_agg_sent(a, 30000);
    cr_expect(eq(sz, graphite_agg_held(a), 0), "ended at 30 s");
    msgpack_sbuffer_destroy(&sb);
    graphite_agg_destroy(&a);
}

Test(graphite_agg, names_beyond_the_cap_are_dropped_and_counted)
{
    graphite_agg_t *a = graphite_agg_new(10, 3);
    char name[32];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "n%d", i);
        int rc = graphite_agg_add(a, 0, name, strlen(name), METRIC_SUM, 1);
        cr_expect(eq(int, rc, i < 3 ? 0 : 1), "%s", name);
    }
    add(a, 0, "n1", METRIC_SUM, 1);   /* a name already held still counts */
    add(a, 10, "n4", METRIC_SUM, 1);  /* the cap is per interval */
    cr_expect(eq(u64, graphite_agg_dropped(a), 2));
    char out[256];
    cr_expect(eq(long, render_sorted(a, out, sizeof out), 4));
    cr_expect(eq(str, out, "n0 1 0\nn1 2 0\nn2 1 0\nn4 1 10\n"));
    graphite_agg_destroy(&a);
}

Test(graphite_agg, many_names_grow_the_table)
{
    graphite_agg_t *a = graphite_agg_new(10, 100000);
    char name[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 20000; i++) {
            snprintf(name, sizeof name, "m.%d", i);
            add(a, 0, name, METRIC_SUM, i);
        }
    cr_expect(eq(sz, graphite_agg_held(a), 20000));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_expect(eq(long, graphite_agg_render(a, &sb), 20000));
    cr_expect(sb_has(&sb, "\nm.12345 37035 0\n"));
    msgpack_sbuffer_destroy(&sb);
    graphite_agg_destroy(&a);
}

Test(graphite_agg, a_sum_that_overflows_is_left_out)
{
    graphite_agg_t *a = graphite_agg_new(10, 10);
    add(a, 0, "big", METRIC_SUM, 1e308);
    add(a, 0, "big", METRIC_SUM, 1e308);
    add(a, 0, "ok", METRIC_MAX, 1e308);
    char out[256];
    cr_expect(eq(long, render_sorted(a, out, sizeof out), 1));
    cr_expect(eq(str, out, "ok 1e+308 0\n"));
    cr_expect(eq(u64, graphite_agg_nonfinite(a), 1));
    graphite_agg_destroy(&a);
}

typedef struct {
    double      v;
    const char *text;
} fmt_case_t;

static const fmt_case_t fmts[] = {
    { 0, "0" }, { 3, "3" }, { -42, "-42" }, { 0.1, "0.1" }, { 2.5, "2.5" },
    { 123456789012345, "123456789012345" }, { 1e15, "1e+15" }, { 1e300, "1e+300" },
    { 1.0 / 3, NULL }, { 1e-7, NULL }, { 0.1 + 0.2, NULL }, { 5e-324, NULL }, { -1.7e308, NULL },
};

/* Exact when read back, and in the shortest form where there is an obvious one. */
Test(graphite_agg, numbers_read_back_exactly)
{
    for (size_t i = 0; i < N_ELEMS(fmts); i++) {
        char buf[32];
        int n = graphite_format_value(fmts[i].v, buf);
        cr_expect(eq(int, n, (int) strlen(buf)));
        cr_expect(eq(dbl, strtod(buf, NULL), fmts[i].v), "#%zu %s", i, buf);
        if (fmts[i].text)
            cr_expect(eq(str, buf, (char *) fmts[i].text), "#%zu", i);
    }
}
