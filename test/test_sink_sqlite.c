/* test_sink_sqlite: the sqlite sink against real database files in a temporary directory. */
#include "sink.h"
#include "template.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <msgpack.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sink_events.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define HOSTILE "O'Brien'); DROP TABLE salt_returns;--"

static char tmpdir[64];
static char dbpath[128];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/test_sink_sqlite_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof dbpath, "%s/events.db", tmpdir);
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(sqlite, .init = make_tmpdir, .fini = remove_tmpdir);

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static worker_config_t config_for(const char *template_path)
{
    return (worker_config_t) { .name = "db", .sink = "sqlite", .processes = 1,
                               .batch_size = 100, .template_path = (char *) template_path,
                               .database = dbpath, .busy_timeout_ms = 1000 };
}

/* A user template and its schema, in their own directory under tmpdir. */
static worker_config_t user_config(const char *schema, const char *template_sql, char *path,
                                   size_t size)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/sql", tmpdir);
    mkdir(dir, 0755);
    if (schema)
        write_file(dir, "schema.sql", schema);
    write_file(dir, "t.sql", template_sql);
    snprintf(path, size, "%s/t.sql", dir);
    return config_for(path);
}

static sink_t *open_sink(const worker_config_t *cfg)
{
    char err[512] = "";
    sink_t *s = sink_sqlite_ops.open(cfg, "m1_master", err, sizeof err);
    cr_assert_not_null(s, "open: %s", err);
    return s;
}

/* ---------------------------------------------------------------- events */

/* A minion's job return, as salt/job/<jid>/ret/<minion> carries it. `ret` is a str. */
static worker_event_t *return_event(uint64_t seq, const char *jid, const char *id,
                                    const char *fun, bool success, const char *ret, size_t ret_len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    pk_key(&pk, "cmd");     pk_key(&pk, "_return");
    pk_key(&pk, "id");      pk_key(&pk, id);
    pk_key(&pk, "success");
    if (success)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    pk_key(&pk, "return");  pk_str(&pk, ret, ret_len);
    pk_key(&pk, "retcode"); msgpack_pack_int(&pk, success ? 0 : 1);
    pk_key(&pk, "jid");     pk_key(&pk, jid);
    pk_key(&pk, "fun");     pk_key(&pk, fun);
    pk_key(&pk, "_stamp");  pk_key(&pk, "2024-01-04T12:00:00.123456");
    char tag[128];
    snprintf(tag, sizeof tag, "salt/job/%s/ret/%s", jid, id);
    worker_event_t *ev = event_from(tag, &sb, seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

/* {"n": <n or absent>, "k": <k>} for the user-template tests. */
static worker_event_t *nk_event(uint64_t seq, bool has_n, int64_t n, const char *k)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, has_n ? 2 : 1);
    if (has_n) {
        pk_key(&pk, "n");
        msgpack_pack_int64(&pk, n);
    }
    pk_key(&pk, "k");
    pk_key(&pk, k);
    worker_event_t *ev = event_from("custom/nk", &sb, seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

static void destroy_all(worker_event_t **evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        worker_event_destroy(&evs[i]);
}

/* ---------------------------------------------------------------- reading back */

static sqlite3 *reader(void)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    return db;
}

static int64_t count_rows(const char *table)
{
    sqlite3 *db = reader();
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Column i of st equals the bytes want[0..len), compared as stored (no NUL cut-off). */
static void expect_column(sqlite3_stmt *st, int i, const char *want, size_t len)
{
    cr_expect_eq(sqlite3_column_type(st, i), SQLITE_TEXT, "column %d type", i);
    const void *got = sqlite3_column_blob(st, i);
    size_t n = (size_t) sqlite3_column_bytes(st, i);
    cr_expect(n == len && memcmp(got, want, len) == 0, "column %d: got '%.*s', want '%.*s'", i,
              (int) n, (const char *) got, (int) len, want);
}

static void json_of(const worker_event_t *ev, const char *path, msgpack_sbuffer *out)
{
    out->size = 0;
    const msgpack_object *o = payload_lookup(payload_root(ev->data), path);
    cr_assert_not_null(o);
    cr_assert_eq(payload_to_json(o, out), 0);
}

/* Every row of salt_returns matches the event it came from. */
static void expect_returns(worker_event_t *const *evs, size_t n)
{
    sqlite3 *db = reader();
    sqlite3_stmt *st;
    const char *sql = "SELECT fun, jid, \"return\", id, success, full_ret, alter_time "
                      "FROM salt_returns WHERE jid = ? AND id = ?";
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    msgpack_sbuffer json;
    msgpack_sbuffer_init(&json);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *root = payload_root(evs[i]->data);
        const msgpack_object *jid = payload_lookup(root, "jid"), *id = payload_lookup(root, "id");
        const msgpack_object *fun = payload_lookup(root, "fun");
        sqlite3_bind_text(st, 1, jid->via.str.ptr, (int) jid->via.str.size, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id->via.str.ptr, (int) id->via.str.size, SQLITE_STATIC);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "row %zu missing", i);
        expect_column(st, 0, fun->via.str.ptr, fun->via.str.size);
        expect_column(st, 1, jid->via.str.ptr, jid->via.str.size);
        json_of(evs[i], "return", &json);
        expect_column(st, 2, json.data, json.size);
        expect_column(st, 3, id->via.str.ptr, id->via.str.size);
        bool ok = payload_lookup(root, "success")->via.boolean;
        expect_column(st, 4, ok ? "1" : "0", 1);
        json_of(evs[i], NULL, &json);
        expect_column(st, 5, json.data, json.size);
        cr_expect_eq(sqlite3_column_type(st, 6), SQLITE_TEXT, "alter_time defaulted");
        cr_expect_eq(sqlite3_step(st), SQLITE_DONE, "row %zu twice", i);
        sqlite3_reset(st);
    }
    msgpack_sbuffer_destroy(&json);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void write_ok(sink_t *s, worker_event_t *const *evs, size_t n)
{
    char err[512] = "";
    size_t bad = 99;
    cr_assert_eq(sink_sqlite_ops.write_batch(s, evs, n, &bad, err, sizeof err), SINK_OK, "%s",
                 err);
}

/* ---------------------------------------------------------------- shipped schema and templates */

static void shipped(const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/sql/sqlite/%s", SRC_DIR, name);
}

Test(sqlite, lookup_by_name)
{
    cr_expect_eq(sink_lookup("sqlite"), &sink_sqlite_ops);
    cr_expect_eq(sink_lookup("file"), &sink_file_ops);
    cr_expect_null(sink_lookup("pgsql-not-yet"));
    cr_expect_null(sink_lookup(NULL));
}

Test(sqlite, returns_are_stored_like_salts_mysql_returner)
{
    char tpl[256];
    shipped("salt_returns.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = {
        return_event(1, "20240104120000123456", "web1", "test.ping", true, "pong", 4),
        return_event(2, "20240104120000123456", "web2", "test.ping", false, "no", 2),
        return_event(3, "20240104120000999999", "web1", "cmd.run", true, "ok", 2),
    };
    write_ok(s, evs, N_ELEMS(evs));
    cr_expect_eq(count_rows("salt_returns"), 3);
    expect_returns(evs, N_ELEMS(evs));
    sink_sqlite_ops.close(&s);
    cr_expect_null(s);
    destroy_all(evs, N_ELEMS(evs));
}

Test(sqlite, database_is_in_wal_mode)
{
    char tpl[256];
    shipped("salt_events.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    sqlite3 *db = reader();
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_str_eq((const char *) sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    sink_sqlite_ops.close(&s);
}

typedef struct {
    char   table[16];
    char   template_file[24];
} replay_case_t;

static const replay_case_t replay_cases[] = {
    { "salt_returns", "salt_returns.sql" },
    { "salt_events", "salt_events.sql" },
    { "jids", "jids.sql" },
};

ParameterizedTestParameters(sqlite, replay_adds_no_rows)
{
    return cr_make_param_array(replay_case_t, replay_cases, N_ELEMS(replay_cases));
}

/* At-least-once delivery: the same batch twice (also reopened, as after a crash) stores once. */
ParameterizedTest(const replay_case_t *c, sqlite, replay_adds_no_rows)
{
    char tpl[256];
    shipped(c->template_file, tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    worker_event_t *evs[] = {
        return_event(1, "20240104120000000001", "a", "test.ping", true, "x", 1),
        return_event(2, "20240104120000000002", "b", "test.ping", true, "y", 1),
    };
    sink_t *s = open_sink(&cfg);
    write_ok(s, evs, N_ELEMS(evs));
    write_ok(s, evs, N_ELEMS(evs));
    sink_sqlite_ops.close(&s);
    s = open_sink(&cfg);
    write_ok(s, evs, N_ELEMS(evs));
    sink_sqlite_ops.close(&s);
    cr_expect_eq(count_rows(c->table), 2);
    destroy_all(evs, N_ELEMS(evs));
}

Test(sqlite, events_carry_tag_hash_and_master_id)
{
    char tpl[256];
    shipped("salt_events.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *ev = return_event(1, "20240104120000000001", "a", "test.ping", true, "x", 1);
    write_ok(s, &ev, 1);
    sqlite3 *db = reader();
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT tag, data, master_id, event_hash FROM salt_events",
                                    -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    expect_column(st, 0, ev->tag, ev->tag_len);
    msgpack_sbuffer json;
    msgpack_sbuffer_init(&json);
    json_of(ev, NULL, &json);
    expect_column(st, 1, json.data, json.size);
    expect_column(st, 2, "m1_master", 9);
    expect_column(st, 3, ev->hash, 40);
    msgpack_sbuffer_destroy(&json);
    sqlite3_finalize(st);
    sqlite3_close(db);
    sink_sqlite_ops.close(&s);
    worker_event_destroy(&ev);
}

/* ---------------------------------------------------------------- hostile values */

Test(sqlite, hostile_values_are_stored_byte_for_byte)
{
    char tpl[256];
    shipped("salt_returns.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = {
        return_event(1, "20240104120000000001", HOSTILE, "test.ping", true, HOSTILE,
                     strlen(HOSTILE)),
        return_event(2, "20240104120000000002", "nul", "test.echo", true, "a\0b", 3),
        return_event(3, "20240104120000000003", "\xf0\x9f\x98\x80-minion", "test.\xf0\x9f\x90\x8d",
                     true, "\xf0\x9f\x98\x80", 4),
    };
    write_ok(s, evs, N_ELEMS(evs));
    cr_expect_eq(count_rows("salt_returns"), 3);
    expect_returns(evs, N_ELEMS(evs));
    sink_sqlite_ops.close(&s);
    destroy_all(evs, N_ELEMS(evs));
}

/* A NUL inside a string bound as it is (no filter) reaches the column whole. */
Test(sqlite, nul_and_binary_bound_whole)
{
    char tpl[256];
    worker_config_t cfg = user_config("CREATE TABLE IF NOT EXISTS raw (v TEXT, b TEXT);",
                                      "INSERT INTO raw (v, b) VALUES (:data.v, :data.b)",
                                      tpl, sizeof tpl);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "v");
    pk_str(&pk, "x\0y\xf0\x9f\x98\x80", 7);
    pk_key(&pk, "b");
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "\0\xff\x01", 3);
    worker_event_t *ev = event_from("custom/raw", &sb, 1);
    msgpack_sbuffer_destroy(&sb);
    sink_t *s = open_sink(&cfg);
    write_ok(s, &ev, 1);
    sqlite3 *db = reader();
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT v, b FROM raw", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    expect_column(st, 0, "x\0y\xf0\x9f\x98\x80", 7);
    expect_column(st, 1, "{\"$bin\": \"AP8B\"}", 16);
    sqlite3_finalize(st);
    sqlite3_close(db);
    sink_sqlite_ops.close(&s);
    worker_event_destroy(&ev);
}

/* ---------------------------------------------------------------- rejected rows */

typedef struct {
    bool    has_n[4];
    int64_t n[4];
    char    k[4][8];
    size_t  bad;
} reject_case_t;

static const reject_case_t reject_cases[] = {
    /* CHECK (n >= 0) fails on the second event */
    { { true, true, true, true }, { 1, -1, 2, 3 }, { "a", "b", "c", "d" }, 1 },
    /* NOT NULL: the third event has no n */
    { { true, true, false, true }, { 1, 2, 0, 3 }, { "a", "b", "c", "d" }, 2 },
    /* k must be a known kind: a trigger's RAISE(ABORT) is a constraint error too */
    { { true, true, true, true }, { 1, 2, 3, 4 }, { "a", "b", "c", "BAD" }, 3 },
    /* the first event alone */
    { { true, true, true, true }, { -7, 2, 3, 4 }, { "a", "b", "c", "d" }, 0 },
};

#define NK_SCHEMA \
    "CREATE TABLE IF NOT EXISTS nk (n INTEGER NOT NULL CHECK (n >= 0), k TEXT UNIQUE);\n" \
    "CREATE TRIGGER IF NOT EXISTS nk_k BEFORE INSERT ON nk WHEN NEW.k = 'BAD'\n" \
    "BEGIN SELECT RAISE(ABORT, 'bad k'); END;\n"
#define NK_TEMPLATE "INSERT INTO nk (n, k) VALUES (:data.n|int, :data.k) ON CONFLICT DO NOTHING"

ParameterizedTestParameters(sqlite, constraint_rejects_the_right_row)
{
    return cr_make_param_array(reject_case_t, reject_cases, N_ELEMS(reject_cases));
}

ParameterizedTest(const reject_case_t *c, sqlite, constraint_rejects_the_right_row)
{
    char tpl[256], err[512] = "";
    worker_config_t cfg = user_config(NK_SCHEMA, NK_TEMPLATE, tpl, sizeof tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[4];
    for (int i = 0; i < 4; i++)
        evs[i] = nk_event((uint64_t) i + 10, c->has_n[i], c->n[i], c->k[i]);
    size_t bad = 99;
    cr_expect_eq(sink_sqlite_ops.write_batch(s, evs, 4, &bad, err, sizeof err), SINK_REJECT_ROW,
                 "%s", err);
    cr_expect_eq(bad, c->bad);
    char seq[32];
    snprintf(seq, sizeof seq, "seq=%zu", c->bad + 10);
    cr_expect(strstr(err, seq) != NULL, "error names the event: %s", err);
    cr_expect_eq(count_rows("nk"), 0, "nothing committed");
    /* what the worker does next: the others again, without the rejected one */
    worker_event_t *rest[3];
    for (size_t i = 0, j = 0; i < 4; i++)
        if (i != c->bad)
            rest[j++] = evs[i];
    write_ok(s, rest, 3);
    cr_expect_eq(count_rows("nk"), 3);
    sink_sqlite_ops.close(&s);
    destroy_all(evs, 4);
}

Test(sqlite, type_mismatch_rejects_row)
{
    char tpl[256], err[512] = "";
    worker_config_t cfg = user_config("CREATE TABLE IF NOT EXISTS r (id INTEGER PRIMARY KEY);",
                                      "INSERT INTO r (id) VALUES (:data.k)", tpl, sizeof tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = { nk_event(1, true, 0, "12"), nk_event(2, true, 0, "abc") };
    size_t bad = 99;
    cr_expect_eq(sink_sqlite_ops.write_batch(s, evs, 2, &bad, err, sizeof err), SINK_REJECT_ROW,
                 "%s", err);
    cr_expect_eq(bad, 1);
    cr_expect_eq(count_rows("r"), 0);
    sink_sqlite_ops.close(&s);
    destroy_all(evs, 2);
}

Test(sqlite, data_error_in_a_function_rejects_row)
{
    char tpl[256], err[512] = "";
    worker_config_t cfg = user_config("CREATE TABLE IF NOT EXISTS j (v TEXT);",
                                      "INSERT INTO j (v) VALUES (json(:data.k))", tpl, sizeof tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = { nk_event(1, true, 0, "[1]"), nk_event(2, true, 0, "{bad") };
    size_t bad = 99;
    cr_expect_eq(sink_sqlite_ops.write_batch(s, evs, 2, &bad, err, sizeof err), SINK_REJECT_ROW,
                 "%s", err);
    cr_expect_eq(bad, 1);
    cr_expect(strstr(err, "malformed JSON") != NULL, "%s", err);
    cr_expect_eq(count_rows("j"), 0);
    write_ok(s, evs, 1);
    cr_expect_eq(count_rows("j"), 1);
    sink_sqlite_ops.close(&s);
    destroy_all(evs, 2);
}

/* ---------------------------------------------------------------- transient failures */

Test(sqlite, locked_database_is_retried)
{
    char tpl[256], err[512] = "";
    shipped("salt_events.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    cfg.busy_timeout_ms = 50;
    sink_t *s = open_sink(&cfg);
    sqlite3 *other = reader();
    cr_assert_eq(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    worker_event_t *ev = return_event(1, "20240104120000000001", "a", "test.ping", true, "x", 1);
    size_t bad = 99;
    cr_expect_eq(sink_sqlite_ops.write_batch(s, &ev, 1, &bad, err, sizeof err), SINK_RETRY,
                 "%s", err);
    cr_expect(strstr(err, "locked") != NULL, "reason: %s", err);
    cr_assert_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    write_ok(s, &ev, 1);
    cr_expect_eq(count_rows("salt_events"), 1);
    sink_sqlite_ops.close(&s);
    worker_event_destroy(&ev);
}

Test(sqlite, empty_batch_is_ok)
{
    char tpl[256], err[64] = "";
    shipped("jids.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    size_t bad = 0;
    cr_expect_eq(sink_sqlite_ops.write_batch(s, NULL, 0, &bad, err, sizeof err), SINK_OK);
    sink_sqlite_ops.close(&s);
}

/* ---------------------------------------------------------------- open and check errors */

Test(sqlite, missing_table_is_named_on_open)
{
    char tpl[256], err[512] = "";
    worker_config_t cfg = user_config(NULL, "INSERT INTO nothere (a)\nVALUES (:tag)", tpl,
                                      sizeof tpl);
    cr_assert_null(sink_sqlite_ops.open(&cfg, "m", err, sizeof err));
    cr_expect(strstr(err, "table nothere missing") != NULL, "got %s", err);
    cr_expect(strstr(err, "sql/sqlite/schema.sql") != NULL, "got %s", err);
    cr_expect(strncmp(err, tpl, strlen(tpl)) == 0, "names the template: %s", err);
    /* check() cannot know the real database's tables: it accepts the template */
    cr_expect_eq(sink_sqlite_ops.check(&cfg, err, sizeof err), 0, "%s", err);
}

typedef struct {
    char sql[96];
    char err[64];   /* expected after "<template path>:" */
} check_case_t;

static const check_case_t check_cases[] = {
    { "INSERT INTO nk (n, k)\nVALUS (:tag, :tag)", "2: sqlite: near \"VALUS\": syntax error" },
    { "INSERT INTO nk (n, nope) VALUES (:tag, :tag)", "1: sqlite: table nk has no column named nope" },
    { "INSERT INTO nk (n, k) VALUES (:tag, :bogus)", "1: unknown placeholder ':bogus'" },
    { "INSERT INTO nk (n, k) VALUES (:tag, ?5)", "1: positional parameter '?'" },
    { "INSERT INTO nk (n, k) VALUES (:tag, @k)", " sqlite sees 2 parameters but the template has 1" },
};

ParameterizedTestParameters(sqlite, check_reports_template_errors)
{
    return cr_make_param_array(check_case_t, check_cases, N_ELEMS(check_cases));
}

ParameterizedTest(const check_case_t *c, sqlite, check_reports_template_errors)
{
    char tpl[256], err[512] = "", want[512];
    worker_config_t cfg = user_config(NK_SCHEMA, c->sql, tpl, sizeof tpl);
    cr_expect_eq(sink_sqlite_ops.check(&cfg, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:%s", tpl, c->err);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "got '%s', want '%s'", err, want);
    cr_expect(access(dbpath, F_OK) != 0, "check() must not create the database");
    /* open fails the same way */
    cr_expect_null(sink_sqlite_ops.open(&cfg, "m", err, sizeof err));
}

Test(sqlite, check_accepts_shipped_templates_without_touching_database)
{
    const char *files[] = { "salt_returns.sql", "jids.sql", "salt_events.sql" };
    for (size_t i = 0; i < N_ELEMS(files); i++) {
        char tpl[256], err[512] = "";
        shipped(files[i], tpl, sizeof tpl);
        worker_config_t cfg = config_for(tpl);
        cr_expect_eq(sink_sqlite_ops.check(&cfg, err, sizeof err), 0, "%s: %s", files[i], err);
    }
    cr_expect(access(dbpath, F_OK) != 0);
}

Test(sqlite, missing_settings_and_unopenable_database)
{
    char err[512] = "", tpl[256];
    worker_config_t cfg = { .name = "db" };
    cr_expect_eq(sink_sqlite_ops.check(&cfg, err, sizeof err), -1);
    cr_expect(strstr(err, "needs 'template' and 'database'") != NULL, "%s", err);
    shipped("jids.sql", tpl, sizeof tpl);
    cfg = config_for(tpl);
    cfg.database = "/nonexistent-dir/x.db";
    cr_expect_null(sink_sqlite_ops.open(&cfg, "m", err, sizeof err));
    cr_expect(strstr(err, "cannot open /nonexistent-dir/x.db") != NULL, "%s", err);
}

/* Workers start together on a fresh database: WAL switch, schema and writes must not fail. */
Test(sqlite, concurrent_workers_on_a_fresh_database)
{
    enum { WORKERS = 4, ROUNDS = 3 };
    char tpl[256];
    shipped("salt_events.sql", tpl, sizeof tpl);
    for (int round = 0; round < ROUNDS; round++) {
        unlink(dbpath);
        pid_t pids[WORKERS];
        for (int w = 0; w < WORKERS; w++) {
            pids[w] = fork();
            cr_assert_geq(pids[w], 0);
            if (pids[w] > 0)
                continue;
            worker_config_t cfg = config_for(tpl);
            char err[512] = "", jid[32];
            sink_t *s = sink_sqlite_ops.open(&cfg, "m", err, sizeof err);
            snprintf(jid, sizeof jid, "2024010412000000000%d", w);
            worker_event_t *ev = return_event(1, jid, "a", "test.ping", true, "x", 1);
            size_t bad;
            int rc = s && sink_sqlite_ops.write_batch(s, &ev, 1, &bad, err, sizeof err) == SINK_OK;
            if (!rc)
                fprintf(stderr, "worker %d: %s\n", w, err);
            sink_sqlite_ops.close(&s);
            worker_event_destroy(&ev);
            _exit(rc ? 0 : 1);
        }
        for (int w = 0; w < WORKERS; w++) {
            int status = -1;
            cr_assert_eq(waitpid(pids[w], &status, 0), pids[w]);
            cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d worker %d", round, w);
        }
        cr_expect_eq(count_rows("salt_events"), WORKERS);
        char wal[160];
        snprintf(wal, sizeof wal, "%s-wal", dbpath);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", dbpath);
        unlink(wal);
    }
}
