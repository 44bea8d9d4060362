/* test_sink_pgsql: the pgsql sink against a real PostgreSQL server.
 *
 * Needs EVENTSD_PG_CONNINFO (test/servers.sh start pgsql DIR exports it). Every test works in
 * a schema of its own (search_path set through the conninfo's options), dropped afterwards,
 * so tests can run in parallel against one server.
 */
#include "sink.h"
#include "template.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <libpq-fe.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "sink_events.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
/* until workers/sink.h declares it */

#define HOSTILE "O'Brien'); DROP TABLE salt_returns;--"

static char tmpdir[64];
static char schema[64];
static char conninfo[1024];

static const char *base_conninfo(void)
{
    const char *c = getenv("EVENTSD_PG_CONNINFO");
    cr_assert(c && *c, "EVENTSD_PG_CONNINFO is not set: start a server with "
              "eval \"$(test/servers.sh start pgsql DIR)\"");
    return c;
}

static void quiet(void *arg, const char *message)
{
    (void) arg;
    (void) message;
}

static PGconn *admin(void)
{
    PGconn *c = PQconnectdb(base_conninfo());
    PQsetNoticeProcessor(c, quiet, NULL);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

static void exec_admin(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* A fresh schema per test, and a conninfo whose search_path points at it. */
static void setup(void)
{
    strcpy(tmpdir, "/tmp/test_sink_pgsql_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(schema, sizeof schema, "t_%d_%ld", (int) getpid(), (long) random() % 100000);
    PGconn *c = admin();
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema,
             schema);
    exec_admin(c, sql);
    PQfinish(c);
    snprintf(conninfo, sizeof conninfo, "%s options='-c search_path=%s'", base_conninfo(),
             schema);
}

static void teardown(void)
{
    PGconn *c = admin();
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    exec_admin(c, sql);
    PQfinish(c);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(pgsql, .init = setup, .fini = teardown, .timeout = 60);

/* A connection for reading back, in the test's schema. */
static PGconn *reader(void)
{
    PGconn *c = PQconnectdb(conninfo);
    PQsetNoticeProcessor(c, quiet, NULL);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

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
    return (worker_config_t) { .name = "pg", .sink = "pgsql", .processes = 1,
                               .batch_size = 1000, .template_path = (char *) template_path,
                               .conninfo = conninfo, .connect_timeout_ms = 3000 };
}

static worker_config_t user_config(const char *schema_sql, const char *template_sql, char *path,
                                   size_t size)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/sql", tmpdir);
    mkdir(dir, 0755);
    if (schema_sql)
        write_file(dir, "schema.sql", schema_sql);
    write_file(dir, "t.sql", template_sql);
    snprintf(path, size, "%s/t.sql", dir);
    return config_for(path);
}

static void shipped(const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/sql/pgsql/%s", SRC_DIR, name);
}

static sink_t *open_sink(const worker_config_t *cfg)
{
    char err[512] = "";
    sink_t *s = sink_pgsql_ops.open(cfg, "m1_master", err, sizeof err);
    cr_assert_not_null(s, "open: %s", err);
    return s;
}

static void write_ok(sink_t *s, worker_event_t *const *evs, size_t n)
{
    char err[1024] = "";
    size_t bad = 99;
    cr_assert_eq(sink_pgsql_ops.write_batch(s, evs, n, &bad, err, sizeof err), SINK_OK, "%s",
                 err);
}

/* ---------------------------------------------------------------- events */

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
    char tag[256];
    snprintf(tag, sizeof tag, "salt/job/%s/ret/%s", jid, id);
    worker_event_t *ev = event_from(tag, &sb, seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

static worker_event_t *nk_event(uint64_t seq, int64_t n, const char *k)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "n");
    msgpack_pack_int64(&pk, n);
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

static long count_rows(const char *table)
{
    PGconn *c = reader();
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

static void expect_value(PGresult *r, int col, const char *want, size_t len)
{
    cr_expect(!PQgetisnull(r, 0, col), "column %d is NULL", col);
    const char *got = PQgetvalue(r, 0, col);
    size_t n = (size_t) PQgetlength(r, 0, col);
    cr_expect(n == len && memcmp(got, want, len) == 0, "column %d: got '%.*s' (%zu bytes), "
              "want '%.*s' (%zu bytes)", col, n > 300 ? 300 : (int) n, got, n,
              len > 300 ? 300 : (int) len, want, len);
}

static void json_of(const worker_event_t *ev, const char *path, msgpack_sbuffer *out)
{
    out->size = 0;
    const msgpack_object *o = payload_lookup(payload_root(ev->data), path);
    cr_assert_not_null(o);
    cr_assert_eq(payload_to_json(o, out), 0);
    msgpack_sbuffer_write(out, "", 1);   /* NUL-terminated for PQexecParams */
    out->size--;
}

/* Every row of salt_returns matches the event it came from. jsonb normalises JSON text
 * (key order, spacing), so JSON columns are compared as jsonb on the server: ret = $3::jsonb;
 * the string value of a string return is also compared byte for byte through ->> ''. */
static void expect_returns(worker_event_t *const *evs, size_t n)
{
    PGconn *c = reader();
    msgpack_sbuffer ret, full;
    msgpack_sbuffer_init(&ret);
    msgpack_sbuffer_init(&full);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *root = payload_root(evs[i]->data);
        const msgpack_object *jid = payload_lookup(root, "jid"), *id = payload_lookup(root, "id");
        const msgpack_object *fun = payload_lookup(root, "fun");
        const msgpack_object *rv = payload_lookup(root, "return");
        char *jids = strndup(jid->via.str.ptr, jid->via.str.size);
        char *ids = strndup(id->via.str.ptr, id->via.str.size);
        json_of(evs[i], "return", &ret);
        json_of(evs[i], NULL, &full);
        const char *params[] = { jids, ids, ret.data, full.data };
        PGresult *r = PQexecParams(c,
            "SELECT fun, jid, return #>> '{}', id, success, return = $3::jsonb, "
            "full_ret = $4::jsonb, alter_time IS NOT NULL, "
            "(SELECT count(*) FROM salt_returns WHERE jid = $1 AND id = $2) "
            "FROM salt_returns WHERE jid = $1 AND id = $2", 4, NULL, params, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
        cr_assert_eq(PQntuples(r), 1, "row %zu missing", i);
        expect_value(r, 0, fun->via.str.ptr, fun->via.str.size);
        expect_value(r, 1, jid->via.str.ptr, jid->via.str.size);
        if (rv->type == MSGPACK_OBJECT_STR)
            expect_value(r, 2, rv->via.str.ptr, rv->via.str.size);
        expect_value(r, 3, id->via.str.ptr, id->via.str.size);
        bool ok = payload_lookup(root, "success")->via.boolean;
        expect_value(r, 4, ok ? "1" : "0", 1);
        expect_value(r, 5, "t", 1);
        expect_value(r, 6, "t", 1);
        expect_value(r, 7, "t", 1);
        expect_value(r, 8, "1", 1);
        PQclear(r);
        free(jids);
        free(ids);
    }
    msgpack_sbuffer_destroy(&ret);
    msgpack_sbuffer_destroy(&full);
    PQfinish(c);
}

/* ---------------------------------------------------------------- shipped templates */

Test(pgsql, returns_are_stored_like_salts_pgjsonb_returner)
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
    /* the pgjsonb returner's own queries work: full_ret is a jsonb object */
    PGconn *c = reader();
    PGresult *r = PQexec(c, "SELECT full_ret->>'cmd', full_ret->'retcode' FROM salt_returns "
                            "WHERE id = 'web2'");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    expect_value(r, 0, "_return", 7);
    expect_value(r, 1, "1", 1);
    PQclear(r);
    PQfinish(c);
    sink_pgsql_ops.close(&s);
    cr_expect_null(s);
    destroy_all(evs, N_ELEMS(evs));
}

typedef struct {
    char table[16];
    char template_file[24];
} replay_case_t;

static const replay_case_t replay_cases[] = {
    { "salt_returns", "salt_returns.sql" },
    { "salt_events", "salt_events.sql" },
    { "jids", "jids.sql" },
};

ParameterizedTestParameters(pgsql, replay_adds_no_rows)
{
    return cr_make_param_array(replay_case_t, replay_cases, N_ELEMS(replay_cases));
}

ParameterizedTest(const replay_case_t *c, pgsql, replay_adds_no_rows)
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
    sink_pgsql_ops.close(&s);
    s = open_sink(&cfg);
    write_ok(s, evs, N_ELEMS(evs));
    sink_pgsql_ops.close(&s);
    cr_expect_eq(count_rows(c->table), 2);
    destroy_all(evs, N_ELEMS(evs));
}

Test(pgsql, events_carry_tag_hash_and_master_id)
{
    char tpl[256];
    shipped("salt_events.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *ev = return_event(1, "20240104120000000001", "a", "test.ping", true, "x", 1);
    write_ok(s, &ev, 1);
    PGconn *c = reader();
    PGresult *r = PQexec(c, "SELECT tag, master_id, event_hash, data->>'id' FROM salt_events");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    cr_assert_eq(PQntuples(r), 1);
    expect_value(r, 0, ev->tag, ev->tag_len);
    expect_value(r, 1, "m1_master", 9);
    expect_value(r, 2, ev->hash, 40);
    expect_value(r, 3, "a", 1);
    PQclear(r);
    PQfinish(c);
    sink_pgsql_ops.close(&s);
    worker_event_destroy(&ev);
}

/* ---------------------------------------------------------------- hostile values */

Test(pgsql, hostile_values_are_stored_byte_for_byte)
{
    char tpl[256];
    shipped("salt_returns.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    size_t big_len = 1024 * 1024;
    char *big = malloc(big_len);
    cr_assert_not_null(big);
    static const char pattern[] = "abc\\\"'\n\t{}$1 \xc3\xa9";
    for (size_t i = 0; i < big_len; i++)
        big[i] = pattern[i % (sizeof pattern - 1)];
    const char *bs = "C:\\Windows\\System32 \\\\server\\share \\x41 \\u0041 \\'";
    worker_event_t *evs[] = {
        return_event(1, "20240104120000000001", HOSTILE, "test.ping", true, HOSTILE,
                     strlen(HOSTILE)),
        return_event(2, "20240104120000000002", "back\\slash", "test.echo", true, bs,
                     strlen(bs)),
        return_event(3, "20240104120000000003", "\xf0\x9f\x98\x80-minion", "test.\xf0\x9f\x90\x8d",
                     true, "\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xa9", 11),
        return_event(4, "20240104120000000004", "big", "cmd.run", true, big, big_len),
        return_event(5, "20240104120000000005", "$1", ":data.id", true, "$2 :tag ?", 9),
    };
    write_ok(s, evs, N_ELEMS(evs));
    cr_expect_eq(count_rows("salt_returns"), 5);
    expect_returns(evs, N_ELEMS(evs));
    sink_pgsql_ops.close(&s);
    destroy_all(evs, N_ELEMS(evs));
    free(big);
}

/* jsonb cannot hold \u0000 (22P05) and text cannot hold a NUL byte: such an event is rejected
 * on its own (the worker dead-letters it) and the rest of the batch is stored. */
Test(pgsql, nul_in_json_rejects_only_that_row)
{
    char tpl[256], err[1024] = "";
    shipped("salt_returns.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = {
        return_event(1, "20240104120000000001", "a", "test.echo", true, "ok", 2),
        return_event(2, "20240104120000000002", "b", "test.echo", true, "before\0after", 12),
        return_event(3, "20240104120000000003", "c", "test.echo", true, "ok", 2),
    };
    size_t bad = 99;
    cr_expect_eq(sink_pgsql_ops.write_batch(s, evs, 3, &bad, err, sizeof err), SINK_REJECT_ROW,
                 "%s", err);
    cr_expect_eq(bad, 1);
    cr_expect(strstr(err, "seq=2") && strstr(err, "22P05"), "%s", err);
    cr_log_info("NUL in JSON: %s", err);
    cr_expect_eq(count_rows("salt_returns"), 0);
    worker_event_t *rest[] = { evs[0], evs[2] };
    write_ok(s, rest, 2);
    cr_expect_eq(count_rows("salt_returns"), 2);
    sink_pgsql_ops.close(&s);
    destroy_all(evs, N_ELEMS(evs));
}

Test(pgsql, raw_nul_in_text_param_rejects_row)
{
    char tpl[256], err[1024] = "";
    worker_config_t cfg = user_config("CREATE TABLE IF NOT EXISTS raw (k text);",
                                      "INSERT INTO raw (k) VALUES (:data.k)", tpl, sizeof tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = { nk_event(1, 0, "fine"), nk_event(2, 0, "fine"),
                              nk_event(3, 0, "fine") };
    worker_event_destroy(&evs[1]);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "k");
    pk_str(&pk, "x\0y", 3);
    evs[1] = event_from("custom/raw", &sb, 2);
    msgpack_sbuffer_destroy(&sb);
    size_t bad = 99;
    cr_expect_eq(sink_pgsql_ops.write_batch(s, evs, 3, &bad, err, sizeof err), SINK_REJECT_ROW,
                 "%s", err);
    cr_expect_eq(bad, 1);
    cr_expect(strstr(err, "NUL") != NULL, "%s", err);
    cr_expect_eq(count_rows("raw"), 0);
    worker_event_t *rest[] = { evs[0], evs[2] };
    write_ok(s, rest, 2);
    cr_expect_eq(count_rows("raw"), 2);
    sink_pgsql_ops.close(&s);
    destroy_all(evs, N_ELEMS(evs));
}

/* ---------------------------------------------------------------- rejected rows */

#define NK_SCHEMA "CREATE TABLE IF NOT EXISTS nk (n bigint NOT NULL CHECK (n >= 0), k text UNIQUE);"
#define NK_TEMPLATE "INSERT INTO nk (n, k) VALUES (:data.n|int, :data.k) ON CONFLICT DO NOTHING"

typedef struct {
    int64_t n[4];
    size_t  bad;
} reject_case_t;

static const reject_case_t reject_cases[] = {
    { { 1, -1, 2, 3 }, 1 },
    { { -7, 2, 3, 4 }, 0 },
    { { 1, 2, 3, -4 }, 3 },
    { { 1, -2, 3, -4 }, 1 },   /* the first failing row is named */
};

ParameterizedTestParameters(pgsql, check_violation_rejects_the_right_row)
{
    return cr_make_param_array(reject_case_t, reject_cases, N_ELEMS(reject_cases));
}

ParameterizedTest(const reject_case_t *c, pgsql, check_violation_rejects_the_right_row)
{
    char tpl[256], err[1024] = "";
    worker_config_t cfg = user_config(NK_SCHEMA, NK_TEMPLATE, tpl, sizeof tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[4];
    const char *ks[] = { "a", "b", "c", "d" };
    for (int i = 0; i < 4; i++)
        evs[i] = nk_event((uint64_t) i + 10, c->n[i], ks[i]);
    size_t bad = 99;
    cr_expect_eq(sink_pgsql_ops.write_batch(s, evs, 4, &bad, err, sizeof err), SINK_REJECT_ROW,
                 "%s", err);
    cr_expect_eq(bad, c->bad);
    char seq[32];
    snprintf(seq, sizeof seq, "seq=%zu", c->bad + 10);
    cr_expect(strstr(err, seq) != NULL && strstr(err, "23514") != NULL, "error: %s", err);
    cr_expect_eq(count_rows("nk"), 0, "nothing committed");
    worker_event_t *rest[3];
    size_t m = 0;
    for (size_t i = 0; i < 4; i++)
        if (i != c->bad && c->n[i] >= 0)
            rest[m++] = evs[i];
    write_ok(s, rest, m);
    cr_expect_eq(count_rows("nk"), (long) m);
    sink_pgsql_ops.close(&s);
    destroy_all(evs, 4);
}

/* ---------------------------------------------------------------- template errors */

Test(pgsql, template_errors_are_fatal_and_name_the_file)
{
    char tpl[256], err[1024] = "";
    worker_config_t cfg = user_config(NK_SCHEMA, "INSERT INTO nk (n, k)\nVALUS (:tag, :tag)",
                                      tpl, sizeof tpl);
    cr_expect_eq(sink_pgsql_ops.check(&cfg, err, sizeof err), 0, "check has no server: %s", err);
    cr_expect_null(sink_pgsql_ops.open(&cfg, "m", err, sizeof err));
    char want[300];
    snprintf(want, sizeof want, "%s:2: pgsql: 42601", tpl);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "got '%s', want '%s'", err, want);

    cfg = user_config(NULL, "INSERT INTO nothere (a) VALUES (:tag)", tpl, sizeof tpl);
    cr_expect_null(sink_pgsql_ops.open(&cfg, "m", err, sizeof err));
    cr_log_info("missing table: %s", err);
    cr_expect(strstr(err, "42P01") && strstr(err, "sql/pgsql/schema.sql") &&
              strncmp(err, tpl, strlen(tpl)) == 0, "got '%s'", err);

    cfg = user_config(NULL, "INSERT INTO nk (n) VALUES (:bogus)", tpl, sizeof tpl);
    cr_expect_eq(sink_pgsql_ops.check(&cfg, err, sizeof err), -1);
    cr_expect(strstr(err, "unknown placeholder ':bogus'") != NULL, "got '%s'", err);
}

Test(pgsql, check_accepts_shipped_templates_without_a_server)
{
    const char *files[] = { "salt_returns.sql", "jids.sql", "salt_events.sql" };
    for (size_t i = 0; i < N_ELEMS(files); i++) {
        char tpl[256], err[512] = "";
        shipped(files[i], tpl, sizeof tpl);
        worker_config_t cfg = config_for(tpl);
        cfg.conninfo = "host=127.0.0.1 port=1 password=hunter2";
        cr_expect_eq(sink_pgsql_ops.check(&cfg, err, sizeof err), 0, "%s: %s", files[i], err);
    }
}

/* ---------------------------------------------------------------- connection trouble */

Test(pgsql, unreachable_server_fails_open_without_the_password)
{
    char tpl[256], err[1024] = "";
    shipped("jids.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    cfg.conninfo = "host=127.0.0.1 port=1 user=eventsd password=Sup3rSecretPw dbname=x";
    cr_expect_null(sink_pgsql_ops.open(&cfg, "m", err, sizeof err));
    cr_expect(strstr(err, "cannot connect") != NULL, "%s", err);
    cr_log_info("unreachable: %s", err);
    cr_expect(strstr(err, "Sup3rSecretPw") == NULL, "password leaked: %s", err);
    cfg.conninfo = "postgresql://eventsd:Sup3rSecretPw@127.0.0.1:1/x";
    cr_expect_null(sink_pgsql_ops.open(&cfg, "m", err, sizeof err));
    cr_expect(strstr(err, "Sup3rSecretPw") == NULL, "password leaked: %s", err);
    cfg.conninfo = "host=127.0.0.1 password=Sup3rSecretPw bogus";
    cr_expect_null(sink_pgsql_ops.open(&cfg, "m", err, sizeof err));
    cr_expect(strstr(err, "Sup3rSecretPw") == NULL, "password leaked: %s", err);
    cr_expect_eq(sink_pgsql_ops.check(&cfg, err, sizeof err), -1);
    cr_expect(strstr(err, "Sup3rSecretPw") == NULL, "password leaked: %s", err);
}

/* A listener that never answers (the kernel completes the TCP handshake, nobody reads): the
 * connect is abandoned at connect_timeout_ms. */
Test(pgsql, connect_timeout_is_honoured)
{
    char tpl[256], err[1024] = "", ci[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=u password=pw123456 dbname=x",
             ntohs(sa.sin_port));
    shipped("jids.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    cfg.conninfo = ci;
    cfg.connect_timeout_ms = 300;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_expect_null(sink_pgsql_ops.open(&cfg, "m", err, sizeof err));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double) (b.tv_sec - a.tv_sec) * 1e3 + (double) (b.tv_nsec - a.tv_nsec) / 1e6;
    cr_expect(ms >= 250 && ms < 2000, "took %.0f ms: %s", ms, err);
    cr_expect(strstr(err, "no answer within 300 ms") != NULL, "%s", err);
    cr_expect(strstr(err, "pw123456") == NULL, "%s", err);
    cr_log_info("timeout after %.0f ms: %s", ms, err);
    close(fd);
}

Test(pgsql, terminated_backend_is_retried_then_reconnected)
{
    char tpl[256], err[1024] = "";
    shipped("salt_returns.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    /* a distinct application_name to find this sink's backend among parallel tests */
    char ci[1200];
    snprintf(ci, sizeof ci, "%s application_name=eventsd_%s", conninfo, schema);
    cfg.conninfo = ci;
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = {
        return_event(1, "20240104120000000001", "a", "test.ping", true, "x", 1),
        return_event(2, "20240104120000000002", "b", "test.ping", true, "y", 1),
    };
    write_ok(s, evs, 1);
    PGconn *c = admin();
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE application_name = 'eventsd_%s'", schema);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    cr_assert_eq(PQntuples(r), 1, "the sink's backend is found");
    expect_value(r, 0, "t", 1);
    PQclear(r);
    PQfinish(c);
    usleep(200 * 1000);
    size_t bad = 99;
    cr_expect_eq(sink_pgsql_ops.write_batch(s, evs + 1, 1, &bad, err, sizeof err), SINK_RETRY,
                 "%s", err);
    cr_expect(strstr(err, "57P01") || strstr(err, "connection"), "%s", err);
    cr_log_info("terminated backend: %s", err);
    write_ok(s, evs + 1, 1);   /* reconnects */
    cr_expect_eq(count_rows("salt_returns"), 2);
    sink_pgsql_ops.close(&s);
    destroy_all(evs, N_ELEMS(evs));
}

Test(pgsql, empty_batch_is_ok)
{
    char tpl[256], err[64] = "";
    shipped("jids.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    size_t bad = 0;
    cr_expect_eq(sink_pgsql_ops.write_batch(s, NULL, 0, &bad, err, sizeof err), SINK_OK);
    sink_pgsql_ops.close(&s);
}

Test(pgsql, missing_settings)
{
    char err[512] = "";
    worker_config_t cfg = { .name = "pg" };
    cr_expect_eq(sink_pgsql_ops.check(&cfg, err, sizeof err), -1);
    cr_expect(strstr(err, "needs 'template' and 'conninfo'") != NULL, "%s", err);
    cr_expect_null(sink_pgsql_ops.open(&cfg, "m", err, sizeof err));
}
