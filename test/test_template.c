/* test_template: the template compiler (markers, scanner, errors) and value computation. */
#include "template.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- compile: SQL and markers */

typedef struct {
    sql_dialect_t dialect;
    char          in[96];
    char          sql[96];
    int           n_params;
} compile_case_t;   /* arrays, not pointers: Criterion may run the test in a fresh process */

static const compile_case_t compile_cases[] = {
    { SQL_DIALECT_SQLITE, "INSERT INTO t VALUES (:tag, :data.fun)", "INSERT INTO t VALUES (?, ?)", 2 },
    { SQL_DIALECT_MYSQL,  "INSERT INTO t VALUES (:tag, :data.fun)", "INSERT INTO t VALUES (?, ?)", 2 },
    { SQL_DIALECT_PGSQL,  "INSERT INTO t VALUES (:tag, :data.fun, :stamp)",
      "INSERT INTO t VALUES ($1, $2, $3)", 3 },
    { SQL_DIALECT_SQLITE, "VALUES (:master_id,:event_hash,:stamp,:data)", "VALUES (?,?,?,?)", 4 },
    /* literals, quoted identifiers and comments are never scanned for placeholders */
    { SQL_DIALECT_SQLITE, "SELECT ':tag', \":tag\", `:tag`, :tag", "SELECT ':tag', \":tag\", `:tag`, ?", 1 },
    { SQL_DIALECT_SQLITE, "SELECT 'it''s :tag', \"a\"\":tag\", :tag", "SELECT 'it''s :tag', \"a\"\":tag\", ?", 1 },
    { SQL_DIALECT_SQLITE, "-- :tag\nSELECT :tag /* :tag */", "-- :tag\nSELECT ? /* :tag */", 1 },
    { SQL_DIALECT_SQLITE, "SELECT 1 --1 :tag", "SELECT 1 --1 :tag", 0 },
    { SQL_DIALECT_MYSQL,  "SELECT 1 --1 :tag", "SELECT 1 --1 ?", 1 },
    { SQL_DIALECT_MYSQL,  "SELECT 'a\\' :tag', :tag # :tag", "SELECT 'a\\' :tag', ? # :tag", 1 },
    { SQL_DIALECT_MYSQL,  "SELECT \"a\\\" :tag\", :tag", "SELECT \"a\\\" :tag\", ?", 1 },
    { SQL_DIALECT_SQLITE, "SELECT 'a\\', :tag", "SELECT 'a\\', ?", 1 },
    /* PostgreSQL: casts, E'' strings, dollar quoting, nested comments, the ? operator */
    { SQL_DIALECT_PGSQL,  "SELECT :data.x::int, '1'::jsonb", "SELECT $1::int, '1'::jsonb", 1 },
    { SQL_DIALECT_PGSQL,  "SELECT E'\\' :tag', :tag", "SELECT E'\\' :tag', $1", 1 },
    { SQL_DIALECT_PGSQL,  "SELECT $$ :tag $$, $q$ :tag $q$, :tag", "SELECT $$ :tag $$, $q$ :tag $q$, $1", 1 },
    { SQL_DIALECT_PGSQL,  "/* a /* :tag */ :tag */ SELECT :tag", "/* a /* :tag */ :tag */ SELECT $1", 1 },
    { SQL_DIALECT_PGSQL,  "SELECT :data ? 'k'", "SELECT $1 ? 'k'", 1 },
    { SQL_DIALECT_SQLITE, "SELECT a::text", "SELECT a::text", 0 },
    /* "||" is concatenation, "|4" bitwise or: neither is a filter */
    { SQL_DIALECT_SQLITE, "SELECT :tag||'x'", "SELECT ?||'x'", 1 },
    { SQL_DIALECT_SQLITE, "SELECT :data.x|4, :data.y | 4", "SELECT ?|4, ? | 4", 2 },
    { SQL_DIALECT_SQLITE, "SELECT :data.x|json||'x'", "SELECT ?||'x'", 1 },
    { SQL_DIALECT_SQLITE, "SELECT :data.x|default('a|b'':c')|int", "SELECT ?", 1 },
    { SQL_DIALECT_SQLITE, "SELECT :data.x|default( 'a' )", "SELECT ?", 1 },
    { SQL_DIALECT_SQLITE, "SELECT :tag|default('x')5", "SELECT ? 5", 1 },
    { SQL_DIALECT_SQLITE, "SELECT :data.a-b.@c.$d.0", "SELECT ?", 1 },
    /* one statement: the terminating ';' and trailing comments are dropped */
    { SQL_DIALECT_SQLITE, "SELECT 1;", "SELECT 1", 0 },
    { SQL_DIALECT_SQLITE, "SELECT 1; -- done\n/* c */\n", "SELECT 1", 0 },
    { SQL_DIALECT_SQLITE, "SELECT ';' ; ", "SELECT ';' ", 0 },
    { SQL_DIALECT_SQLITE, "SELECT :tag|default('a\nb'), x", "SELECT ?\n, x", 1 },
};

ParameterizedTestParameters(compile, markers)
{
    return cr_make_param_array(compile_case_t, compile_cases, N_ELEMS(compile_cases));
}

ParameterizedTest(const compile_case_t *c, compile, markers)
{
    char err[256] = "";
    template_t *t = template_compile(c->in, "t.sql", c->dialect, err, sizeof err);
    cr_assert_not_null(t, "%s: %s", c->in, err);
    cr_expect_str_eq(template_sql(t), c->sql, "input: %s", c->in);
    cr_expect_eq(template_n_params(t), c->n_params, "input: %s", c->in);
    template_destroy(&t);
    cr_expect_null(t);
}

/* ---------------------------------------------------------------- compile: errors */

typedef struct {
    sql_dialect_t dialect;
    char          in[64];
    char          err[96];  /* expected prefix of the message */
} error_case_t;

static const error_case_t error_cases[] = {
    { SQL_DIALECT_SQLITE, "SELECT\n  :foo", "t.sql:2: unknown placeholder ':foo'" },
    { SQL_DIALECT_SQLITE, "SELECT :tag.x", "t.sql:1: unknown placeholder ':tag.x'" },
    { SQL_DIALECT_SQLITE, "SELECT :datax", "t.sql:1: unknown placeholder ':datax'" },
    { SQL_DIALECT_SQLITE, "SELECT x:y", "t.sql:1: unknown placeholder ':y'" },
    { SQL_DIALECT_SQLITE, "SELECT 1,\n\n:data.x|bogus", "t.sql:3: unknown filter 'bogus' in placeholder ':data.x|bogus'" },
    { SQL_DIALECT_SQLITE, "SELECT :data.x|json|Int", "t.sql:1: unknown filter 'Int'" },
    { SQL_DIALECT_SQLITE, "SELECT :data.", "t.sql:1: empty path component in placeholder ':data.'" },
    { SQL_DIALECT_SQLITE, "SELECT :data.a..b", "t.sql:1: empty path component" },
    { SQL_DIALECT_SQLITE, "SELECT\n\n 'abc\n", "t.sql:3: unterminated string literal" },
    { SQL_DIALECT_SQLITE, "SELECT \"abc", "t.sql:1: unterminated quoted identifier" },
    { SQL_DIALECT_SQLITE, "SELECT `abc", "t.sql:1: unterminated quoted identifier" },
    { SQL_DIALECT_SQLITE, "SELECT 1\n/* x", "t.sql:2: unterminated /* comment" },
    { SQL_DIALECT_PGSQL,  "/* a /* b */ SELECT 1", "t.sql:1: unterminated /* comment" },
    { SQL_DIALECT_PGSQL,  "SELECT $x$ abc", "t.sql:1: unterminated dollar-quoted string $x$" },
    { SQL_DIALECT_SQLITE, "SELECT :data.x|default(x)", "t.sql:1: default needs one quoted argument" },
    { SQL_DIALECT_SQLITE, "SELECT :data.x|default('x'", "t.sql:1: default needs one quoted argument" },
    { SQL_DIALECT_SQLITE, "SELECT :data.x|default", "t.sql:1: default needs one quoted argument" },
    { SQL_DIALECT_SQLITE, "SELECT 1; SELECT 2", "t.sql:1: only one SQL statement per template" },
    { SQL_DIALECT_SQLITE, "SELECT 1;\n\nDROP TABLE t", "t.sql:3: only one SQL statement" },
    { SQL_DIALECT_SQLITE, "", "t.sql:1: empty template" },
    { SQL_DIALECT_SQLITE, "-- nothing\n/* here */\n;", "t.sql:1: empty template" },
    { SQL_DIALECT_SQLITE, "SELECT ?", "t.sql:1: positional parameter '?'" },
    { SQL_DIALECT_MYSQL,  "SELECT\n?", "t.sql:2: positional parameter '?'" },
    { SQL_DIALECT_PGSQL,  "SELECT $1", "t.sql:1: positional parameter '$1'" },
};

ParameterizedTestParameters(compile, errors)
{
    return cr_make_param_array(error_case_t, error_cases, N_ELEMS(error_cases));
}

ParameterizedTest(const error_case_t *c, compile, errors)
{
    char err[256] = "";
    template_t *t = template_compile(c->in, "t.sql", c->dialect, err, sizeof err);
    cr_assert_null(t, "compiled: %s", c->in);
    cr_expect(strncmp(err, c->err, strlen(c->err)) == 0, "input %s: got '%s', want '%s...'",
              c->in, err, c->err);
}

Test(compile, error_buffer_too_small_is_safe)
{
    char err[8];
    memset(err, 'x', sizeof err);
    cr_assert_null(template_compile("SELECT :nope", "a-long-origin.sql", SQL_DIALECT_SQLITE,
                                    err, sizeof err));
    cr_expect_eq(err[sizeof err - 1], '\0');
    cr_assert_null(template_compile("SELECT :nope", "x", SQL_DIALECT_SQLITE, NULL, 0));
}

/* ---------------------------------------------------------------- loading files */

static char *write_temp(const char *content, size_t len)
{
    char *path = strdup("/tmp/test_template_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, len), (ssize_t) len);
    close(fd);
    return path;
}

Test(load, reads_file_and_names_it_in_errors)
{
    char err[256];
    char *path = write_temp("SELECT 1,\n:bad", 14);
    cr_assert_null(template_load(path, SQL_DIALECT_SQLITE, err, sizeof err));
    char want[300];
    snprintf(want, sizeof want, "%s:2: unknown placeholder ':bad'", path);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "got %s", err);
    unlink(path);
    free(path);
}

Test(load, missing_file_and_nul_byte)
{
    char err[256];
    cr_assert_null(template_load("/nonexistent/t.sql", SQL_DIALECT_SQLITE, err, sizeof err));
    cr_expect(strstr(err, "/nonexistent/t.sql: cannot read template") == err, "got %s", err);
    char *path = write_temp("SELECT 1\0:tag", 13);
    cr_assert_null(template_load(path, SQL_DIALECT_SQLITE, err, sizeof err));
    cr_expect(strstr(err, "NUL byte") != NULL, "got %s", err);
    unlink(path);
    free(path);
}

typedef struct {
    char file[32];
    int  n_params;
} shipped_case_t;

static const shipped_case_t shipped_cases[] = {
    { "salt_returns.sql", 6 }, { "jids.sql", 2 }, { "salt_events.sql", 4 },
};

ParameterizedTestParameters(load, shipped_templates)
{
    return cr_make_param_array(shipped_case_t, shipped_cases, N_ELEMS(shipped_cases));
}

ParameterizedTest(const shipped_case_t *c, load, shipped_templates)
{
    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/sql/sqlite/%s", SRC_DIR, c->file);
    template_t *t = template_load(path, SQL_DIALECT_SQLITE, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_expect_eq(template_n_params(t), c->n_params);
    int markers = 0;
    for (const char *p = template_sql(t); *p; p++)
        markers += *p == '?';
    cr_expect_eq(markers, c->n_params, "markers in %s", template_sql(t));
    template_destroy(&t);
}

/* ---------------------------------------------------------------- values */

static void pk_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pk_key(msgpack_packer *pk, const char *k)
{
    pk_str(pk, k, strlen(k));
}

#define HOSTILE "O'Brien'); DROP TABLE salt_returns;--"

/* One event with a field of every kind the values table needs. */
static worker_event_t *value_event(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 27);
    pk_key(&pk, "fun");     pk_key(&pk, "test.ping");
    pk_key(&pk, "success"); msgpack_pack_true(&pk);
    pk_key(&pk, "failed");  msgpack_pack_false(&pk);
    pk_key(&pk, "retcode"); msgpack_pack_int(&pk, 0);
    pk_key(&pk, "neg");     msgpack_pack_int64(&pk, -5);
    pk_key(&pk, "big");     msgpack_pack_uint64(&pk, UINT64_MAX);
    pk_key(&pk, "pi");      msgpack_pack_double(&pk, 3.5);
    pk_key(&pk, "nil");     msgpack_pack_nil(&pk);
    pk_key(&pk, "return");
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "a"); msgpack_pack_array(&pk, 2); msgpack_pack_int(&pk, 1); msgpack_pack_int(&pk, 2);
    pk_key(&pk, "b"); pk_key(&pk, "x");
    pk_key(&pk, "numstr");  pk_key(&pk, " 42 ");
    pk_key(&pk, "fstr");    pk_key(&pk, "2.5e0");
    pk_key(&pk, "bad");     pk_key(&pk, "4.0");
    pk_key(&pk, "hexstr");  pk_key(&pk, "0x10");
    pk_key(&pk, "quote");   pk_key(&pk, HOSTILE);
    pk_key(&pk, "nul");     pk_str(&pk, "a\0b", 3);
    pk_key(&pk, "emoji");   pk_key(&pk, "\xf0\x9f\x98\x80");
    pk_key(&pk, "bin");     msgpack_pack_bin(&pk, 2); msgpack_pack_bin_body(&pk, "\0\1", 2);
    pk_key(&pk, "_stamp");  pk_key(&pk, "2024-01-04T12:00:00.123456");
    msgpack_pack_int(&pk, 5); pk_key(&pk, "intkey");
    pk_key(&pk, "list");
    msgpack_pack_array(&pk, 2); pk_key(&pk, "zero"); pk_key(&pk, "one");
    pk_key(&pk, "nested");
    msgpack_pack_map(&pk, 1); pk_key(&pk, "deep");
    msgpack_pack_map(&pk, 1); pk_key(&pk, "x"); msgpack_pack_int(&pk, 1);
    pk_key(&pk, "dt");      msgpack_pack_ext(&pk, 19, 78);
    msgpack_pack_ext_body(&pk, "2024-01-01T00:00:00", 19);
    pk_key(&pk, "ctl");     pk_key(&pk, "a\"b\n");
    pk_key(&pk, "with-dash"); pk_key(&pk, "dash");
    pk_key(&pk, "empty");   pk_key(&pk, "");
    pk_key(&pk, "fint");    msgpack_pack_double(&pk, 1e300);
    pk_key(&pk, "tru");     pk_key(&pk, "True");
    char err[256] = "";
    worker_event_t *ev = worker_event_new(7, false, "salt/job/1/ret/m", 16, sb.data, sb.size,
                                          64, err, sizeof err);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(ev, "%s", err);
    return ev;
}

typedef struct {
    char        ph[48];
    tval_kind_t kind;
    char        text[64];   /* TVAL_TEXT, compared with text_len */
    size_t      len;    /* 0: strlen(text) */
    int64_t     i;
    double      r;
} value_case_t;

#define T(ph, s)       { ph, TVAL_TEXT, s, 0, 0, 0 }
#define TL(ph, s, n)   { ph, TVAL_TEXT, s, n, 0, 0 }
#define I(ph, v)       { ph, TVAL_INT, "", 0, v, 0 }
#define R(ph, v)       { ph, TVAL_REAL, "", 0, 0, v }
#define NUL_(ph)       { ph, TVAL_NULL, "", 0, 0, 0 }

static const value_case_t value_cases[] = {
    T(":tag", "salt/job/1/ret/m"),
    T(":master_id", "m1_master"),
    T(":stamp", "2024-01-04T12:00:00.123456"),
    T(":data.fun", "test.ping"),
    T(":data.success", "True"),
    T(":data.failed", "False"),
    T(":data.retcode", "0"),
    T(":data.neg", "-5"),
    T(":data.big", "18446744073709551615"),
    T(":data.pi", "3.5"),
    T(":data.dt", "2024-01-01T00:00:00"),
    T(":data.return", "{\"a\": [1, 2], \"b\": \"x\"}"),
    T(":data.return.a.1", "2"),
    T(":data.list.0", "zero"),
    T(":data.5", "intkey"),
    T(":data.with-dash", "dash"),
    T(":data.empty", ""),
    T(":data.bin", "{\"$bin\": \"AAE=\"}"),
    /* hostile and binary strings pass through byte for byte: they are bound, never pasted */
    T(":data.quote", HOSTILE),
    TL(":data.nul", "a\0b", 3),
    T(":data.emoji", "\xf0\x9f\x98\x80"),
    NUL_(":data.missing"),
    NUL_(":data.return.zz"),
    NUL_(":data.list.2"),
    NUL_(":data.nil"),
    /* json */
    T(":data.return|json", "{\"a\": [1, 2], \"b\": \"x\"}"),
    T(":data.fun|json", "\"test.ping\""),
    T(":tag|json", "\"salt/job/1/ret/m\""),
    T(":data.success|json", "true"),
    T(":data.nil|json", "null"),
    T(":data.ctl|json", "\"a\\\"b\\n\""),
    T(":data.quote|json", "\"O'Brien'); DROP TABLE salt_returns;--\""),
    T(":data.dt|json", "\"2024-01-01T00:00:00\""),
    NUL_(":data.missing|json"),
    /* default */
    T(":data.missing|default('x')", "x"),
    T(":data.nil|default('it''s')", "it's"),
    T(":data.fun|default('x')", "test.ping"),
    T(":data.missing|default('')", ""),
    T(":data.missing|default('x')|json", "\"x\""),
    T(":data.empty|default('x')", ""),
    T(":data.missing|default('')|json", "\"\""),
    NUL_(":data.missing|default('')|int"),
    NUL_(":data.missing|default('')|float"),
    /* int */
    I(":data.retcode|int", 0),
    I(":data.neg|int", -5),
    I(":data.pi|int", 3),
    I(":data.success|int", 1),
    I(":data.failed|int", 0),
    I(":data.numstr|int", 42),
    I(":data.nested.deep.x|int", 1),
    I(":data.missing|default('7')|int", 7),
    NUL_(":data.big|int"),
    NUL_(":data.bad|int"),
    NUL_(":data.fun|int"),
    NUL_(":data.tru|int"),
    NUL_(":data.fint|int"),
    NUL_(":data.return|int"),
    NUL_(":data.missing|int"),
    NUL_(":data.nil|int"),
    NUL_(":data.empty|int"),
    T(":data.missing|int|default('0')", "0"),
    T(":data.fun|int|default('0')", "0"),
    I(":data.success|int|default('0')", 1),
    /* float */
    R(":data.pi|float", 3.5),
    R(":data.fstr|float", 2.5),
    R(":data.bad|float", 4.0),
    R(":data.retcode|float", 0.0),
    R(":data.big|float", 18446744073709551615.0),
    R(":data.neg|float", -5.0),
    R(":data.success|float", 1.0),
    NUL_(":data.hexstr|float"),
    NUL_(":data.fun|float"),
    NUL_(":data.list|float"),
    /* numbers back to JSON text */
    T(":data.retcode|int|json", "0"),
    T(":data.numstr|int|json", "42"),
    T(":data.pi|float|json", "3.5"),
    T(":data.fun|int|json", "null"),
};

ParameterizedTestParameters(values, each_field_kind_and_filter)
{
    return cr_make_param_array(value_case_t, value_cases, N_ELEMS(value_cases));
}

ParameterizedTest(const value_case_t *c, values, each_field_kind_and_filter)
{
    char sql[256], err[256] = "";
    snprintf(sql, sizeof sql, "SELECT %s", c->ph);
    template_t *t = template_compile(sql, "t.sql", SQL_DIALECT_SQLITE, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_assert_eq(template_n_params(t), 1);
    worker_event_t *ev = value_event();
    msgpack_sbuffer scratch;
    msgpack_sbuffer_init(&scratch);
    tval_t v;
    cr_assert_eq(template_values(t, ev, "m1_master", &scratch, &v), 0);
    cr_assert_eq(v.kind, c->kind, "%s: kind %d, want %d", c->ph, v.kind, c->kind);
    if (c->kind == TVAL_TEXT) {
        size_t len = c->len ? c->len : strlen(c->text);
        cr_assert_not_null(v.text);
        cr_expect_eq(v.text_len, len, "%s: length %zu, want %zu ('%.*s')", c->ph, v.text_len,
                     len, (int) v.text_len, v.text);
        cr_expect(v.text_len == len && memcmp(v.text, c->text, len) == 0, "%s: got '%.*s'",
                  c->ph, (int) v.text_len, v.text);
    } else if (c->kind == TVAL_INT) {
        cr_expect_eq(v.i, c->i, "%s: got %lld", c->ph, (long long) v.i);
    } else if (c->kind == TVAL_REAL) {
        cr_expect_eq(v.r, c->r, "%s: got %.17g", c->ph, v.r);
    }
    msgpack_sbuffer_destroy(&scratch);
    worker_event_destroy(&ev);
    template_destroy(&t);
}

Test(values, event_hash_and_missing_master_id)
{
    char err[256] = "";
    template_t *t = template_compile("SELECT :event_hash, :master_id, :master_id|default('m')",
                                     "t.sql", SQL_DIALECT_SQLITE, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    worker_event_t *ev = value_event();
    msgpack_sbuffer scratch;
    msgpack_sbuffer_init(&scratch);
    tval_t v[3];
    cr_assert_eq(template_values(t, ev, NULL, &scratch, v), 0);
    cr_assert_eq(v[0].kind, TVAL_TEXT);
    cr_expect_eq(v[0].text_len, 40);
    cr_expect(memcmp(v[0].text, ev->hash, 40) == 0);
    cr_expect_eq(v[1].kind, TVAL_NULL);
    cr_expect_eq(v[2].kind, TVAL_TEXT);
    msgpack_sbuffer_destroy(&scratch);
    worker_event_destroy(&ev);
    template_destroy(&t);
}

Test(values, whole_data_is_json_of_the_map)
{
    char err[256] = "";
    template_t *t = template_compile("SELECT :data, :data|json", "t.sql", SQL_DIALECT_SQLITE,
                                     err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    worker_event_t *ev = value_event();
    msgpack_sbuffer scratch, want;
    msgpack_sbuffer_init(&scratch);
    msgpack_sbuffer_init(&want);
    cr_assert_eq(payload_to_json(payload_root(ev->data), &want), 0);
    tval_t v[2];
    cr_assert_eq(template_values(t, ev, "m", &scratch, v), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(v[i].kind, TVAL_TEXT);
        cr_expect_eq(v[i].text_len, want.size);
        cr_expect(memcmp(v[i].text, want.data, want.size) == 0);
    }
    cr_expect(strncmp(v[0].text, "{\"fun\": \"test.ping\", ", 21) == 0);
    msgpack_sbuffer_destroy(&scratch);
    msgpack_sbuffer_destroy(&want);
    worker_event_destroy(&ev);
    template_destroy(&t);
}

/* Every text pointer stays valid although scratch grows (reallocates) after it is written. */
Test(values, pointers_survive_scratch_growth)
{
    size_t big_len = 1 << 20;
    char *big = malloc(big_len);
    cr_assert_not_null(big);
    memset(big, 'z', big_len);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "small"); pk_key(&pk, "first");
    pk_key(&pk, "big");   pk_str(&pk, big, big_len);
    char err[256] = "";
    worker_event_t *ev = worker_event_new(1, false, "t", 1, sb.data, sb.size, 64, err, sizeof err);
    cr_assert_not_null(ev, "%s", err);
    template_t *t = template_compile("SELECT :data.small, :data.big, :data.small|json, :tag",
                                     "t.sql", SQL_DIALECT_SQLITE, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    msgpack_sbuffer scratch;
    msgpack_sbuffer_init(&scratch);
    tval_t v[4];
    cr_assert_eq(template_values(t, ev, "m", &scratch, v), 0);
    cr_expect(v[0].text_len == 5 && memcmp(v[0].text, "first", 5) == 0);
    cr_expect(v[1].text_len == big_len && memcmp(v[1].text, big, big_len) == 0);
    cr_expect(v[2].text_len == 7 && memcmp(v[2].text, "\"first\"", 7) == 0);
    cr_expect(v[3].text_len == 1 && v[3].text[0] == 't');
    for (int i = 0; i < 4; i++)
        cr_expect(v[i].text >= scratch.data && v[i].text + v[i].text_len <= scratch.data + scratch.size,
                  "value %d is not in scratch", i);
    msgpack_sbuffer_destroy(&scratch);
    msgpack_sbuffer_destroy(&sb);
    worker_event_destroy(&ev);
    template_destroy(&t);
    free(big);
}
