/* test_ecl_counts: local counts between syncs: declared and auto-declared ids, the id cap,
 * and the sent / commit / forget bookkeeping that keeps counts exact across failed syncs. */
#include "ecl_counts.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static long find(const ecl_counts_t *c, const char *id)
{
    for (size_t i = 0; i < ecl_counts_len(c); i++) {
        size_t len;
        const char *s = ecl_counts_id(c, i, &len);
        if (len == strlen(id) && memcmp(s, id, len) == 0)
            return (long) i;
    }
    return -1;
}

static uint64_t value(const ecl_counts_t *c, const char *id)
{
    long i = find(c, id);
    cr_assert_geq(i, 0, "id %s not held", id);
    return ecl_counts_value(c, (size_t) i);
}

static void add(ecl_counts_t *c, const char *id, bool auto_declare, ecl_add_t want)
{
    cr_assert_eq(ecl_counts_add(c, id, strlen(id), auto_declare, 1), want, "%s", id);
}

Test(ecl_counts, declared_and_auto_declared)
{
    ecl_counts_t *c = ecl_counts_new(100);
    cr_assert_not_null(c);
    cr_assert_eq(ecl_counts_declare(c, "known", 5), 0);
    cr_assert_eq(ecl_counts_declare(c, "known", 5), 0);   /* twice is once */
    add(c, "known", false, ECL_ADD_OK);
    add(c, "other", false, ECL_ADD_UNDECLARED);
    add(c, "other", true, ECL_ADD_OK);
    add(c, "other", true, ECL_ADD_OK);
    cr_expect_eq(ecl_counts_len(c), 2);
    cr_expect_eq(ecl_counts_auto_len(c), 1);
    cr_expect_eq(value(c, "known"), 1);
    cr_expect_eq(value(c, "other"), 2);
    cr_expect_eq(ecl_counts_unsent(c), 3);
    ecl_counts_destroy(&c);
    cr_expect_null(c);
}

Test(ecl_counts, commit_drops_synced_auto_ids_and_keeps_declared)
{
    ecl_counts_t *c = ecl_counts_new(100);
    ecl_counts_declare(c, "known", 5);
    add(c, "a", true, ECL_ADD_OK);
    add(c, "known", true, ECL_ADD_OK);
    ecl_counts_mark_sent(c);
    cr_expect_eq(ecl_counts_unsent(c), 0);
    add(c, "b", true, ECL_ADD_OK);                          /* counted while the sync runs */
    ecl_counts_commit_sent(c);
    cr_expect_eq(find(c, "a"), -1);
    cr_expect_eq(value(c, "known"), 0);
    cr_expect_eq(value(c, "b"), 1);
    cr_expect_eq(ecl_counts_unsent(c), 1);
    add(c, "a", true, ECL_ADD_OK);                          /* the index survived the compaction */
    add(c, "b", true, ECL_ADD_OK);
    cr_expect_eq(value(c, "a"), 1);
    cr_expect_eq(value(c, "b"), 2);
    ecl_counts_destroy(&c);
}

Test(ecl_counts, forget_keeps_everything_for_the_next_sync)
{
    ecl_counts_t *c = ecl_counts_new(100);
    add(c, "a", true, ECL_ADD_OK);
    ecl_counts_mark_sent(c);
    add(c, "a", true, ECL_ADD_OK);
    ecl_counts_forget_sent(c);
    cr_expect_eq(value(c, "a"), 2);
    cr_expect_eq(ecl_counts_sent(c, (size_t) find(c, "a")), 0);
    cr_expect_eq(ecl_counts_unsent(c), 2);
    ecl_counts_mark_sent(c);
    cr_expect_eq(ecl_counts_sent(c, (size_t) find(c, "a")), 2);
    ecl_counts_commit_sent(c);
    cr_expect_eq(ecl_counts_len(c), 0);
    ecl_counts_destroy(&c);
}

Test(ecl_counts, cap_on_auto_declared_ids)
{
    ecl_counts_t *c = ecl_counts_new(3);
    ecl_counts_declare(c, "d1", 2);
    ecl_counts_declare(c, "d2", 2);
    add(c, "a", true, ECL_ADD_OK);
    add(c, "b", true, ECL_ADD_OK);
    cr_expect_not(ecl_counts_full(c));
    add(c, "c", true, ECL_ADD_OK);
    cr_expect(ecl_counts_full(c));
    add(c, "d", true, ECL_ADD_FULL);
    add(c, "a", true, ECL_ADD_OK);                          /* held ids still count */
    add(c, "d1", true, ECL_ADD_OK);                         /* declared ones always fit */
    ecl_counts_mark_sent(c);
    ecl_counts_commit_sent(c);
    cr_expect_not(ecl_counts_full(c));
    add(c, "d", true, ECL_ADD_OK);
    ecl_counts_destroy(&c);
}

Test(ecl_counts, many_ids_grow_the_index)
{
    ecl_counts_t *c = ecl_counts_new(100000);
    char id[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 20000; i++) {
            snprintf(id, sizeof id, "id-%d", i);
            add(c, id, true, ECL_ADD_OK);
        }
    cr_expect_eq(ecl_counts_len(c), 20000);
    cr_expect_eq(value(c, "id-0"), 3);
    cr_expect_eq(value(c, "id-19999"), 3);
    cr_expect_eq(ecl_counts_unsent(c), 60000);
    ecl_counts_destroy(&c);
}
