/* Unit tests for proto/payload.c: unpack limits, lookup, JSON and text rendering. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

/* ---------------------------------------------------------------- helpers */

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void pack_begin(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void pack_cstr(const char *s)
{
    msgpack_pack_str_with_body(&pk, s, strlen(s));
}

static void pack_raw(const char *s, size_t n)
{
    msgpack_pack_str_with_body(&pk, s, n);
}

/* Parses what was packed (any top-level type) and keeps it for the test. */
static payload_t *pack_end(void)
{
    char err[128] = "";
    payload_t *p = payload_new(sb.data, sb.size, false, 0, err, sizeof err);
    cr_assert_not_null(p, "payload_new: %s", err);
    msgpack_sbuffer_destroy(&sb);
    return p;
}

/* JSON (or text) of the root of p, as a NUL-terminated heap string; frees p. */
static char *render(payload_t *p, bool text, int *rc_out)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    int rc = text ? payload_to_text(payload_root(p), &out)
                  : payload_to_json(payload_root(p), &out);
    if (rc_out)
        *rc_out = rc;
    else
        cr_assert_eq(rc, 0);
    char *s = strndup(out.data ? out.data : "", out.size);
    msgpack_sbuffer_destroy(&out);
    payload_destroy(&p);
    return s;
}

static void expect_json(payload_t *p, const char *want)
{
    char *got = render(p, false, NULL);
    cr_expect_str_eq(got, want);
    free(got);
}

static void expect_text(payload_t *p, const char *want)
{
    char *got = render(p, true, NULL);
    cr_expect_str_eq(got, want);
    free(got);
}

static bool parses(const void *bytes, size_t len, bool require_map, int depth)
{
    char err[128];
    payload_t *p = payload_new(bytes, len, require_map, depth, err, sizeof err);
    bool ok = p != NULL;
    if (!ok)
        cr_assert_neq(err[0], '\0', "a failure must say why");
    payload_destroy(&p);
    return ok;
}

/* ---------------------------------------------------------------- floats */

typedef struct {
    double      value;
    bool        as_float32;
    const char *json;
} float_case_t;

static const float_case_t float_cases[] = {
    { 1e-300, false, "1e-300" },
    { 1.7976931348623157e+308, false, "1.7976931348623157e+308" },
    { 2.0, false, "2.0" },
    { 0.1, false, "0.1" },
    { 1e16, false, "1e+16" },
    { 123456789012345678.0, false, "1.2345678901234568e+17" },
    { -0.0, false, "-0.0" },
    { 0.0, false, "0.0" },
    { 1e15, false, "1000000000000000.0" },
    { 0.0001, false, "0.0001" },
    { 0.00001, false, "1e-05" },
    { 5e-324, false, "5e-324" },
    { 100.0, false, "100.0" },
    { 1e22, false, "1e+22" },
    { 12345.678, false, "12345.678" },
    { -1.5e-7, false, "-1.5e-07" },
    { 3.141592653589793, false, "3.141592653589793" },
    { 9007199254740993.0, false, "9007199254740992.0" },
    { 0.1, true, "0.10000000149011612" },
    { 1.5, true, "1.5" },
    { INFINITY, false, "Infinity" },
    { -INFINITY, false, "-Infinity" },
    { NAN, false, "NaN" },
};

Test(payload_float, python_repr_table)
{
    for (size_t i = 0; i < sizeof float_cases / sizeof float_cases[0]; i++) {
        const float_case_t *c = &float_cases[i];
        pack_begin();
        if (c->as_float32)
            msgpack_pack_float(&pk, (float) c->value);
        else
            msgpack_pack_double(&pk, c->value);
        char *got = render(pack_end(), false, NULL);
        cr_expect_str_eq(got, c->json, "case %zu", i);
        free(got);
    }
}

Test(payload_float, text_uses_python_repr_spelling)
{
    pack_begin();
    msgpack_pack_double(&pk, INFINITY);
    expect_text(pack_end(), "inf");
    pack_begin();
    msgpack_pack_double(&pk, 2.0);
    expect_text(pack_end(), "2.0");
}

/* ---------------------------------------------------------------- JSON */

Test(payload_json, string_escapes_like_python)
{
    pack_begin();
    pack_cstr("a\"b\\c\n\r\t\b\f\x01\x1f\x7f \xc3\xa9 \xf0\x9f\x98\x80\xe2\x80\xa8");
    expect_json(pack_end(),
                "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f \xc3\xa9 \xf0\x9f\x98\x80"
                "\xe2\x80\xa8\"");
}

Test(payload_json, nul_inside_string)
{
    pack_begin();
    pack_raw("before\0after", 12);
    expect_json(pack_end(), "\"before\\u0000after\"");
}

typedef struct {
    const char *bytes;
    size_t      len;
    const char *json;
} raw_case_t;

/* Strings Python would refuse to decode as UTF-8 must become $bin, nothing else. */
static const raw_case_t raw_cases[] = {
    { "Gr\xfc\xdf" "e", 5, "{\"$bin\": \"R3L832U=\"}" },            /* latin-1 */
    { "\xc0\x80", 2, "{\"$bin\": \"wIA=\"}" },                      /* overlong NUL */
    { "\xed\xa0\x80", 3, "{\"$bin\": \"7aCA\"}" },                  /* surrogate */
    { "\xf4\x90\x80\x80", 4, "{\"$bin\": \"9JCAgA==\"}" },          /* > U+10FFFF */
    { "\xe2\x82", 2, "{\"$bin\": \"4oI=\"}" },                      /* truncated */
    { "\xf0\x9d\x84\x9e", 4, "\"\xf0\x9d\x84\x9e\"" },              /* U+1D11E ok */
    { "", 0, "\"\"" },
};

Test(payload_json, non_utf8_raw_becomes_bin)
{
    for (size_t i = 0; i < sizeof raw_cases / sizeof raw_cases[0]; i++) {
        pack_begin();
        pack_raw(raw_cases[i].bytes, raw_cases[i].len);
        char *got = render(pack_end(), false, NULL);
        cr_expect_str_eq(got, raw_cases[i].json, "case %zu", i);
        free(got);
    }
}

Test(payload_json, bin_and_empty_bin)
{
    pack_begin();
    msgpack_pack_array(&pk, 2);
    msgpack_pack_bin_with_body(&pk, "\0\xff\xfe\x80\n\n", 6);
    msgpack_pack_bin(&pk, 0);
    expect_json(pack_end(), "[{\"$bin\": \"AP/+gAoK\"}, {\"$bin\": \"\"}]");
}

Test(payload_json, ext_types)
{
    pack_begin();
    msgpack_pack_array(&pk, 3);
    msgpack_pack_ext_with_body(&pk, "20251118T09:50:00.123456", 24, 78);
    msgpack_pack_ext_with_body(&pk, "\x01\x02", 2, 5);
    msgpack_pack_ext_with_body(&pk, "\xff", 1, -1);
    expect_json(pack_end(), "[\"20251118T09:50:00.123456\", {\"$ext\": 5, \"$bin\": \"AQI=\"}, "
                            "{\"$ext\": -1, \"$bin\": \"/w==\"}]");
}

Test(payload_json, scalars_and_64bit_integers)
{
    pack_begin();
    msgpack_pack_array(&pk, 7);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_int(&pk, -42);
    msgpack_pack_map(&pk, 0);
    expect_json(pack_end(),
                "[null, true, false, 18446744073709551615, -9223372036854775808, -42, {}]");
}

Test(payload_json, map_keys_become_strings)
{
    pack_begin();
    msgpack_pack_map(&pk, 8);
    msgpack_pack_int(&pk, 1);
    pack_cstr("one");
    msgpack_pack_int(&pk, -7);
    pack_cstr("minus seven");
    msgpack_pack_uint64(&pk, 4294967296u);
    pack_cstr("2**32");
    msgpack_pack_true(&pk);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_int(&pk, 3);
    msgpack_pack_bin_with_body(&pk, "\xff", 1);
    msgpack_pack_int(&pk, 4);
    pack_cstr("k\"ey");
    msgpack_pack_int(&pk, 5);
    expect_json(pack_end(), "{\"1\": \"one\", \"-7\": \"minus seven\", \"4294967296\": \"2**32\", "
                            "\"true\": 1, \"null\": 2, \"1.5\": 3, "
                            "\"{\\\"$bin\\\": \\\"/w==\\\"}\": 4, \"k\\\"ey\": 5}");
}

/* ---------------------------------------------------------------- text */

typedef enum { T_NIL, T_TRUE, T_FALSE, T_INT, T_NEG, T_STR, T_RAW8, T_BIN, T_EXT78, T_MAP,
               T_ARRAY, T_FLOAT } text_kind_t;

typedef struct {
    text_kind_t kind;
    int         rc;
    const char *text;
} text_case_t;

static const text_case_t text_cases[] = {
    { T_NIL, 1, "" },
    { T_TRUE, 0, "True" },
    { T_FALSE, 0, "False" },
    { T_INT, 0, "18446744073709551615" },
    { T_NEG, 0, "-7" },
    { T_STR, 0, "sudo_j\xc3\xbcrgen \"q\"\n" },
    { T_RAW8, 0, "{\"$bin\": \"/w==\"}" },
    { T_BIN, 0, "{\"$bin\": \"YWI=\"}" },
    { T_EXT78, 0, "20251101T00:00:00.000000" },
    { T_MAP, 0, "{\"a\": [1, \"x\"]}" },
    { T_ARRAY, 0, "[]" },
    { T_FLOAT, 0, "0.5" },
};

static void pack_text_case(text_kind_t kind)
{
    switch (kind) {
    case T_NIL: msgpack_pack_nil(&pk); break;
    case T_TRUE: msgpack_pack_true(&pk); break;
    case T_FALSE: msgpack_pack_false(&pk); break;
    case T_INT: msgpack_pack_uint64(&pk, UINT64_MAX); break;
    case T_NEG: msgpack_pack_int(&pk, -7); break;
    case T_STR: pack_cstr("sudo_j\xc3\xbcrgen \"q\"\n"); break;
    case T_RAW8: pack_raw("\xff", 1); break;
    case T_BIN: msgpack_pack_bin_with_body(&pk, "ab", 2); break;
    case T_EXT78: msgpack_pack_ext_with_body(&pk, "20251101T00:00:00.000000", 24, 78); break;
    case T_MAP:
        msgpack_pack_map(&pk, 1);
        pack_cstr("a");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int(&pk, 1);
        pack_cstr("x");
        break;
    case T_ARRAY: msgpack_pack_array(&pk, 0); break;
    case T_FLOAT: msgpack_pack_double(&pk, 0.5); break;
    }
}

Test(payload_text, each_type)
{
    for (size_t i = 0; i < sizeof text_cases / sizeof text_cases[0]; i++) {
        pack_begin();
        pack_text_case(text_cases[i].kind);
        int rc;
        char *got = render(pack_end(), true, &rc);
        cr_expect_eq(rc, text_cases[i].rc, "case %zu", i);
        cr_expect_str_eq(got, text_cases[i].text, "case %zu", i);
        free(got);
    }
}

/* ---------------------------------------------------------------- lookup */

static payload_t *lookup_fixture(void)
{
    pack_begin();
    msgpack_pack_map(&pk, 4);
    pack_cstr("data");
    msgpack_pack_map(&pk, 2);
    pack_cstr("fun");
    pack_cstr("deploy.release");
    pack_cstr("with space");
    msgpack_pack_int(&pk, 1);
    pack_cstr("return");
    msgpack_pack_map(&pk, 2);
    msgpack_pack_int(&pk, 1);
    pack_cstr("one");
    msgpack_pack_int(&pk, -7);
    msgpack_pack_map(&pk, 1);
    pack_cstr("deep");
    msgpack_pack_true(&pk);
    pack_cstr("list");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, 10);
    msgpack_pack_int(&pk, 20);
    msgpack_pack_map(&pk, 1);
    pack_cstr("x");
    pack_cstr("y");
    pack_cstr("");
    pack_cstr("empty key");
    return pack_end();
}

typedef struct {
    const char *path;
    const char *json;   /* NULL: lookup must fail */
} lookup_case_t;

static const lookup_case_t lookup_cases[] = {
    { "data.fun", "\"deploy.release\"" },
    { "data.with space", "1" },
    { "return.1", "\"one\"" },
    { "return.-7.deep", "true" },
    { "list.0", "10" },
    { "list.2.x", "\"y\"" },
    { "list.3", NULL },
    { "list.-1", NULL },
    { "list.01x", NULL },
    { "return.2", NULL },
    { "data.fun.more", NULL },
    { "missing", NULL },
    { "data.", NULL },
};

Test(payload_lookup, table)
{
    payload_t *p = lookup_fixture();
    for (size_t i = 0; i < sizeof lookup_cases / sizeof lookup_cases[0]; i++) {
        const msgpack_object *o = payload_lookup(payload_root(p), lookup_cases[i].path);
        if (!lookup_cases[i].json) {
            cr_expect_null(o, "path %s", lookup_cases[i].path);
            continue;
        }
        cr_assert_not_null(o, "path %s", lookup_cases[i].path);
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        cr_assert_eq(payload_to_json(o, &out), 0);
        char *got = strndup(out.data, out.size);
        cr_expect_str_eq(got, lookup_cases[i].json, "path %s", lookup_cases[i].path);
        free(got);
        msgpack_sbuffer_destroy(&out);
    }
    cr_expect_eq(payload_lookup(payload_root(p), ""), payload_root(p));
    cr_expect_eq(payload_lookup(payload_root(p), NULL), payload_root(p));
    cr_expect(payload_str_equals(payload_lookup(payload_root(p), "data.fun"), "deploy.release"));
    cr_expect_not(payload_str_equals(payload_lookup(payload_root(p), "data.fun"), "deploy"));
    cr_expect_not(payload_str_equals(payload_lookup(payload_root(p), "list.0"), "10"));
    payload_destroy(&p);
    cr_expect_null(p);
}

/* ---------------------------------------------------------------- unpack limits */

static void pack_nested(int levels)
{
    for (int i = 0; i < levels; i++) {
        msgpack_pack_map(&pk, 1);
        pack_cstr("k");
    }
    msgpack_pack_int(&pk, 1);
}

Test(payload_new, depth_limit)
{
    pack_begin();
    pack_nested(5);
    cr_expect(parses(sb.data, sb.size, true, 5));
    cr_expect_not(parses(sb.data, sb.size, true, 4));
    msgpack_sbuffer_destroy(&sb);

    /* msgpack-c cannot go past 32 levels whatever max_depth says */
    pack_begin();
    pack_nested(32);
    cr_expect(parses(sb.data, sb.size, true, 64));
    msgpack_sbuffer_destroy(&sb);
    pack_begin();
    pack_nested(33);
    cr_expect_not(parses(sb.data, sb.size, true, 64));
    msgpack_sbuffer_destroy(&sb);
}

typedef struct {
    const char *bytes;
    size_t      len;
    bool        require_map;
    bool        ok;
} parse_case_t;

static const parse_case_t parse_cases[] = {
    { "\x80", 1, true, true },
    { "\x90", 1, true, false },                 /* not a map */
    { "\x90", 1, false, true },
    { "", 0, false, false },                    /* empty */
    { "\x81\xa1" "a", 3, true, false },         /* truncated */
    { "\x80\x80", 2, true, false },             /* trailing bytes */
    { "\xc1", 1, false, false },                /* never valid */
    { "\xdd\xff\xff\xff\xff", 5, false, false },   /* 4G items declared, none present */
    { "\xdf\xff\xff\xff\xff\xc0", 6, true, false },
    { "\xc6\xff\xff\xff\xff" "abc", 8, false, false },
    { "\x81\xc7\x01\x4e" "x\xc0", 6, true, true }, /* ext key */
};

Test(payload_new, malformed_table)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const parse_case_t *c = &parse_cases[i];
        cr_expect_eq(parses(c->bytes, c->len, c->require_map, 0), c->ok, "case %zu", i);
    }
}

Test(payload_new, keeps_own_copy)
{
    pack_begin();
    msgpack_pack_map(&pk, 1);
    pack_cstr("k");
    pack_cstr("value");
    char err[64];
    payload_t *p = payload_new(sb.data, sb.size, true, 8, err, sizeof err);
    memset(sb.data, 0, sb.size);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(p);
    cr_expect(payload_str_equals(payload_lookup(payload_root(p), "k"), "value"));
    payload_destroy(&p);
    payload_destroy(&p);   /* second call is a no-op */
}

/* Empty str, bin and ext straight off the wire: msgpack-c leaves their pointer NULL, and
 * rendering must never offset it (found by test/fuzz/fuzz_payload_json: clang's UBSan
 * reports NULL + 0 in put_json_string; seed payload_json/empty_str_null_ptr.msgpack). */
typedef struct {
    const char *bytes;
    size_t      len;
    const char *json;
} wire_json_case_t;

static const wire_json_case_t empty_cases[] = {
    { "\xa0", 1, "\"\"" },
    { "\xd9\x00", 2, "\"\"" },
    { "\x81\xa0\xa0", 3, "{\"\": \"\"}" },
    { "\x91\xa0", 2, "[\"\"]" },
    { "\xc7\x00\x4e", 3, "\"\"" },                        /* empty Salt datetime */
    { "\x81\xc7\x00\x4e\x01", 5, "{\"\": 1}" },            /* ... as a key */
    { "\xc4\x00", 2, "{\"$bin\": \"\"}" },
    { "\xc7\x00\x05", 3, "{\"$ext\": 5, \"$bin\": \"\"}" },
};

Test(payload_json, empty_values_off_the_wire)
{
    for (size_t i = 0; i < sizeof empty_cases / sizeof empty_cases[0]; i++) {
        char err[128] = "";
        payload_t *p = payload_new(empty_cases[i].bytes, empty_cases[i].len, false, 0, err,
                                   sizeof err);
        cr_assert_not_null(p, "case %zu: %s", i, err);
        char *got = render(p, false, NULL);
        cr_expect_str_eq(got, empty_cases[i].json, "case %zu", i);
        free(got);
    }
}

/* ---------------------------------------------------------------- payload_json_string */

typedef struct {
    const char *in;
    size_t      len;
    const char *json;
} json_string_case_t;

static const json_string_case_t json_string_cases[] = {
    { "worker \"db\"/0\n", 14, "\"worker \\\"db\\\"/0\\n\"" },
    { "", 0, "\"\"" },
    { "nul\0x", 5, "\"nul\\u0000x\"" },
    { "j\xc3\xbcrgen", 7, "\"j\xc3\xbcrgen\"" },
    { "Gr\xfc\xdf" "e", 5, "\"Gr\xef\xbf\xbd\xef\xbf\xbd" "e\"" },   /* not UTF-8 */
};

Test(payload_json, json_string_literal)
{
    for (size_t i = 0; i < sizeof json_string_cases / sizeof json_string_cases[0]; i++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        cr_assert_eq(payload_json_string(&out, json_string_cases[i].in, json_string_cases[i].len),
                     0);
        char *got = strndup(out.data, out.size);
        cr_expect_str_eq(got, json_string_cases[i].json, "case %zu", i);
        free(got);
        msgpack_sbuffer_destroy(&out);
    }
}
