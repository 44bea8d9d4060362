/* test_ecl_key: Event Count Logger key names, id sanitising, glob escaping, boundaries. */
#include "ecl_key.h"

#include <criterion/criterion.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static char *text(msgpack_sbuffer *sb)
{
    msgpack_sbuffer_write(sb, "", 1);
    return sb->data;
}

Test(ecl_key, layout_matches_ecl)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(ecl_key_counter(&sb, "auth", "5m", ECL_CUR, "minion1", 7), 0);
    cr_expect_str_eq(text(&sb), "auth:5m:cur:minion1");
    sb.size = 0;
    cr_assert_eq(ecl_key_counter(&sb, "auth", "1h", ECL_LAST, "a:b", 3), 0);
    cr_expect_str_eq(text(&sb), "auth:1h:last:a:b");
    sb.size = 0;
    cr_assert_eq(ecl_key_ts(&sb, "auth", "5s"), 0);
    cr_expect_str_eq(text(&sb), "auth:5s:cur:@ts");
    sb.size = 0;
    cr_assert_eq(ecl_key_prefix(&sb, "g", "5s", ECL_LAST), 0);
    cr_expect_str_eq(text(&sb), "g:5s:last:");
    msgpack_sbuffer_destroy(&sb);
}

Test(ecl_key, scan_pattern_escapes_glob_characters)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(ecl_key_scan_pattern(&sb, "a*b?[c]\\", "5m", ECL_CUR), 0);
    cr_expect_str_eq(text(&sb), "a\\*b\\?\\[c\\]\\\\:5m:cur:*");
    msgpack_sbuffer_destroy(&sb);
}

typedef struct {
    const char *in;
    size_t      in_len;
    const char *out;
} sanitise_case_t;

static const sanitise_case_t sanitise_cases[] = {
        { "state.apply", 11, "state.apply" },
        { "with space\tand\nnewline", 22, "with_space_and_newline" },
        { "@ts", 3, "_ts" },                        /* ECL's own key, invisible to its SCAN */
        { "a@b", 3, "a@b" },
        { "nul\0byte", 8, "nul_byte" },
        { "bad\xff\xfeutf8", 9, "bad__utf8" },
        { "\xc3\xa9t\xc3\xa9", 5, "\xc3\xa9t\xc3\xa9" },   /* été stays */
        { "\xc0\xaf", 2, "__" },                    /* overlong '/' */
        { "\xed\xa0\x80", 3, "___" },               /* surrogate */
        { "\xe2\x82", 2, "__" },                    /* truncated sequence */
        { "", 0, "" },
        { "del\x7f", 4, "del_" },
};

Test(ecl_key, sanitise)
{
    for (size_t i = 0; i < N_ELEMS(sanitise_cases); i++) {
        const sanitise_case_t *c = &sanitise_cases[i];
        char buf[64];
        memcpy(buf, c->in, c->in_len);
        size_t n = ecl_id_sanitise(buf, c->in_len);
        cr_expect_eq(n, strlen(c->out), "case %zu: length %zu", i, n);
        cr_expect_eq(memcmp(buf, c->out, n), 0, "case %zu: got '%.*s'", i, (int) n, buf);
    }
}

Test(ecl_key, sanitise_caps_length_on_a_character_boundary)
{
    char buf[ECL_ID_MAX + 16];
    memset(buf, 'x', ECL_ID_MAX - 1);
    memcpy(buf + ECL_ID_MAX - 1, "\xc3\xa9\xc3\xa9", 4);   /* é straddles the cap */
    size_t n = ecl_id_sanitise(buf, ECL_ID_MAX + 3);
    cr_expect_eq(n, ECL_ID_MAX - 1);
    memset(buf, 'y', sizeof buf);
    cr_expect_eq(ecl_id_sanitise(buf, sizeof buf), ECL_ID_MAX);
}

Test(ecl_key, boundaries_are_epoch_aligned)
{
    cr_expect_eq(ecl_boundary(1000, 300), 900);
    cr_expect_eq(ecl_boundary(900, 300), 900);
    cr_expect_eq(ecl_boundary(1700000123, 3600), 1699999200);
    cr_expect_eq(ecl_boundary(7, 1), 7);
    cr_expect_eq(ecl_boundary(-1, 5), -5);
}

Test(ecl_key, ids_sort_like_python_strings)
{
    cr_expect_lt(ecl_id_compare("a", 1, "b", 1), 0);
    cr_expect_lt(ecl_id_compare("a", 1, "ab", 2), 0);
    cr_expect_gt(ecl_id_compare("B", 1, "A", 1), 0);
    cr_expect_lt(ecl_id_compare("Z", 1, "a", 1), 0);                 /* upper case first */
    cr_expect_lt(ecl_id_compare("z", 1, "\xc3\xa9", 2), 0);          /* é after z */
    cr_expect_eq(ecl_id_compare("same", 4, "same", 4), 0);
}
