/* test_sink_mysql: the mysql sink against a real MariaDB server.
 *
 * The server comes from the environment: eval "$(test/servers.sh start mysql DIR)" exports
 * EVENTSD_MYSQL_HOST / PORT / SOCKET / USER / PASSWORD / DATABASE. Tests may run in parallel
 * (Criterion's default) against the one database, so they never drop shared tables: each uses
 * its own jids (unique per run) or its own table.
 */
#include "sink.h"
#include "template.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "sink_events.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define HOSTILE "O'Brien'); DROP TABLE salt_returns;--"

static char tmpdir[64];
static char run_id[24];   /* unique per test process: jids and table names */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void setup(void)
{
    cr_assert(env("EVENTSD_MYSQL_USER") && env("EVENTSD_MYSQL_DATABASE"),
              "EVENTSD_MYSQL_USER / EVENTSD_MYSQL_DATABASE unset: start a server with "
              "eval \"$(test/servers.sh start mysql DIR)\" first");
    strcpy(tmpdir, "/tmp/test_sink_mysql_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(run_id, sizeof run_id, "%06d%05d%03d", (int) (ts.tv_sec % 1000000),
             (int) getpid() % 100000, (int) (ts.tv_nsec / 1000000) % 1000);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(mysql, .init = setup, .fini = teardown, .timeout = 120);

/* ---------------------------------------------------------------- config and client */

static worker_config_t config_for(const char *template_path)
{
    const char *port = env("EVENTSD_MYSQL_PORT");
    return (worker_config_t) {
        .name = "db", .sink = "mysql", .processes = 1, .batch_size = 1000,
        .template_path = (char *) template_path,
        .host = (char *) (env("EVENTSD_MYSQL_HOST") ? env("EVENTSD_MYSQL_HOST") : "127.0.0.1"),
        .port = port ? atoi(port) : 3306,
        .socket = (char *) env("EVENTSD_MYSQL_SOCKET"),
        .user = (char *) env("EVENTSD_MYSQL_USER"),
        .password = (char *) env("EVENTSD_MYSQL_PASSWORD"),
        .database = (char *) env("EVENTSD_MYSQL_DATABASE"),
        .connect_timeout_ms = 5000,
    };
}

static void shipped(const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/sql/mysql/%s", SRC_DIR, name);
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

/* A user template and its schema in a directory of their own. */
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
    sink_t *s = sink_mysql_ops.open(cfg, "m1_master", err, sizeof err);
    cr_assert_not_null(s, "open: %s", err);
    return s;
}

/* A second connection, for reading back and for KILL. */
static MYSQL *client(void)
{
    worker_config_t c = config_for("unused");
    MYSQL *db = mysql_init(NULL);
    cr_assert_not_null(db);
    mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    cr_assert_not_null(mysql_real_connect(db, c.socket ? NULL : c.host, c.user, c.password,
                                          c.database, c.socket ? 0u : (unsigned) c.port,
                                          c.socket, 0),
                       "client connect: %s", mysql_error(db));
    return db;
}

static void exec(MYSQL *db, const char *sql)
{
    cr_assert_eq(mysql_query(db, sql), 0, "%s: %s", sql, mysql_error(db));
}

/* First column of the first row as a number (-1 when no row). */
static long long query_num(MYSQL *db, const char *sql)
{
    exec(db, sql);
    MYSQL_RES *r = mysql_store_result(db);
    cr_assert_not_null(r, "%s: %s", sql, mysql_error(db));
    MYSQL_ROW row = mysql_fetch_row(r);
    long long v = row && row[0] ? atoll(row[0]) : -1;
    mysql_free_result(r);
    return v;
}

static long long count_jid_prefix(const char *table, const char *prefix)
{
    MYSQL *db = client();
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE jid LIKE '%s%%'", table, prefix);
    long long n = query_num(db, sql);
    mysql_close(db);
    return n;
}

/* ---------------------------------------------------------------- events */

/* A minion's job return; id NULL leaves the id out. */
static worker_event_t *return_event(uint64_t seq, const char *jid, const char *id,
                                    const char *fun, bool success, const char *ret,
                                    size_t ret_len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, id ? 8 : 7);
    pk_key(&pk, "cmd");     pk_key(&pk, "_return");
    if (id) {
        pk_key(&pk, "id");
        pk_key(&pk, id);
    }
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
    char tag[512];
    snprintf(tag, sizeof tag, "salt/job/%s/ret/%.200s", jid, id ? id : "?");
    worker_event_t *ev = event_from(tag, &sb, seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

/* {"k": k, "v": v (v_len bytes)} */
static worker_event_t *kv_event(uint64_t seq, const char *k, const char *v, size_t v_len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "k");
    pk_key(&pk, k);
    pk_key(&pk, "v");
    pk_str(&pk, v, v_len);
    worker_event_t *ev = event_from("custom/kv", &sb, seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

static void destroy_all(worker_event_t **evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        worker_event_destroy(&evs[i]);
}

static void write_ok(sink_t *s, worker_event_t *const *evs, size_t n)
{
    char err[512] = "";
    size_t bad = 99;
    cr_assert_eq(sink_mysql_ops.write_batch(s, evs, n, &bad, err, sizeof err), SINK_OK, "%s",
                 err);
}

/* ---------------------------------------------------------------- reading back */

static void expect_bytes(const char *what, const char *got, unsigned long n, const char *want,
                         size_t len)
{
    cr_expect(got && n == len && memcmp(got, want, len) == 0,
              "%s: got %lu bytes '%.*s', want %zu bytes '%.*s'", what, n,
              (int) (n > 200 ? 200 : n), got ? got : "(null)", len,
              (int) (len > 200 ? 200 : len), want);
}

static void json_of(const worker_event_t *ev, const char *path, msgpack_sbuffer *out)
{
    out->size = 0;
    const msgpack_object *o = payload_lookup(payload_root(ev->data), path);
    cr_assert_not_null(o);
    cr_assert_eq(payload_to_json(o, out), 0);
}

/* Every event has exactly one row in salt_returns with the values Salt's returner writes. */
static void expect_returns(worker_event_t *const *evs, size_t n)
{
    MYSQL *db = client();
    msgpack_sbuffer json;
    msgpack_sbuffer_init(&json);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *root = payload_root(evs[i]->data);
        const msgpack_object *jid = payload_lookup(root, "jid"), *id = payload_lookup(root, "id");
        const msgpack_object *fun = payload_lookup(root, "fun");
        /* select by jid only (unique per test), then match id in C: binary-safe */
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT fun, jid, `return`, id, success, full_ret, "
                 "alter_time FROM salt_returns WHERE jid = '%.*s'", (int) jid->via.str.size,
                 jid->via.str.ptr);
        exec(db, sql);
        MYSQL_RES *r = mysql_store_result(db);
        cr_assert_not_null(r);
        int found = 0;
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(r))) {
            unsigned long *len = mysql_fetch_lengths(r);
            if (len[3] != id->via.str.size || memcmp(row[3], id->via.str.ptr, len[3]) != 0)
                continue;
            found++;
            expect_bytes("fun", row[0], len[0], fun->via.str.ptr, fun->via.str.size);
            expect_bytes("jid", row[1], len[1], jid->via.str.ptr, jid->via.str.size);
            json_of(evs[i], "return", &json);
            expect_bytes("return", row[2], len[2], json.data, json.size);
            bool ok = payload_lookup(root, "success")->via.boolean;
            expect_bytes("success", row[4], len[4], ok ? "1" : "0", 1);
            json_of(evs[i], NULL, &json);
            expect_bytes("full_ret", row[5], len[5], json.data, json.size);
            cr_expect_not_null(row[6], "alter_time defaulted");
        }
        cr_expect_eq(found, 1, "row %zu found %d times", i, found);
        mysql_free_result(r);
    }
    msgpack_sbuffer_destroy(&json);
    mysql_close(db);
}

static void jid_for(char *buf, size_t size, int n)
{
    snprintf(buf, size, "%.20s%03d", run_id, n % 1000);
}

/* ---------------------------------------------------------------- tests */

Test(mysql, returns_are_stored_like_salts_mysql_returner)
{
    char tpl[256], j1[32], j2[32];
    shipped("salt_returns.sql", tpl, sizeof tpl);
    jid_for(j1, sizeof j1, 1);
    jid_for(j2, sizeof j2, 2);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = {
        return_event(1, j1, "web1", "test.ping", true, "pong", 4),
        return_event(2, j1, "web2", "test.ping", false, "no", 2),
        return_event(3, j2, "web1", "cmd.run", true, "ok", 2),
    };
    write_ok(s, evs, N_ELEMS(evs));
    cr_expect_eq(count_jid_prefix("salt_returns", run_id), 3);
    expect_returns(evs, N_ELEMS(evs));
    sink_mysql_ops.close(&s);
    cr_expect_null(s);
    destroy_all(evs, N_ELEMS(evs));
}

/* 1000 rows go through the array-binding path; one by one in a batch of 1. */
Test(mysql, large_batch_and_single_rows)
{
    char tpl[256], jid[32];
    shipped("salt_returns.sql", tpl, sizeof tpl);
    jid_for(jid, sizeof jid, 7);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    enum { N = 1000 };
    static worker_event_t *evs[N + 1];
    char ret[1024];
    memset(ret, 'x', sizeof ret);
    for (int i = 0; i <= N; i++) {
        char id[32];
        snprintf(id, sizeof id, "minion-%04d", i);
        evs[i] = return_event((uint64_t) i + 1, jid, id, "test.echo", i % 3 != 0, ret,
                              sizeof ret);
    }
    write_ok(s, evs, N);
    write_ok(s, evs + N, 1);
    cr_expect_eq(count_jid_prefix("salt_returns", run_id), N + 1);
    expect_returns(evs + N - 3, 4);
    sink_mysql_ops.close(&s);
    destroy_all(evs, N + 1);
}

typedef struct {
    const char *template;
    const char *table;
} replay_case_t;

static replay_case_t replay_cases[] = {
    { "salt_returns.sql", "salt_returns" },
    { "jids.sql", "jids" },
    { "salt_events.sql", "salt_events" },
};

static void replay_case(const replay_case_t *c, int k)
{
    char tpl[256], j1[32], j2[32];
    shipped(c->template, tpl, sizeof tpl);
    jid_for(j1, sizeof j1, 10 * k + 1);
    jid_for(j2, sizeof j2, 10 * k + 2);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = {
        return_event(1, j1, "web1", "test.ping", true, "pong", 4),
        return_event(2, j2, "web2", "test.ping", true, "pong", 4),
    };
    write_ok(s, evs, N_ELEMS(evs));
    write_ok(s, evs, N_ELEMS(evs));     /* replayed batch */
    write_ok(s, evs + 1, 1);            /* replayed single row */
    MYSQL *db = client();
    char sql[512];
    if (strcmp(c->table, "salt_events") == 0)
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM salt_events WHERE event_hash IN "
                 "('%s', '%s') AND master_id = 'm1_master'", evs[0]->hash, evs[1]->hash);
    else
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE jid IN ('%s', '%s')",
                 c->table, j1, j2);
    cr_expect_eq(query_num(db, sql), 2, "%s", c->table);
    mysql_close(db);
    sink_mysql_ops.close(&s);
    destroy_all(evs, N_ELEMS(evs));
}

Test(mysql, replay_adds_no_rows)
{
    for (size_t i = 0; i < N_ELEMS(replay_cases); i++)
        replay_case(&replay_cases[i], (int) i);
}

Test(mysql, hostile_values_are_stored_byte_for_byte)
{
    char tpl[256], j[4][32];
    shipped("salt_returns.sql", tpl, sizeof tpl);
    for (int i = 0; i < 4; i++)
        jid_for(j[i], sizeof j[i], i + 1);
    size_t big_len = 1u << 20;
    char *big = malloc(big_len);
    cr_assert_not_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = "ab\\'\"\n\x01z"[i % 8];
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t *evs[] = {
        return_event(1, j[0], HOSTILE, "test.ping", true, HOSTILE, strlen(HOSTILE)),
        return_event(2, j[1], "back\\slash\\", "test.echo", true, "a\0b\\\\'", 6),
        return_event(3, j[2], "\xf0\x9f\x98\x80-minion", "test.\xf0\x9f\x90\x8d", true,
                     "\xf0\x9f\x98\x80", 4),
        return_event(4, j[3], "big", "test.echo", true, big, big_len),
    };
    write_ok(s, evs, N_ELEMS(evs));
    cr_expect_eq(count_jid_prefix("salt_returns", run_id), 4);
    expect_returns(evs, N_ELEMS(evs));
    sink_mysql_ops.close(&s);
    destroy_all(evs, N_ELEMS(evs));
    free(big);
}

/* A raw string (no JSON) keeps NUL bytes, backslashes and quotes, in both write paths. */
Test(mysql, nul_bytes_bound_whole)
{
    char tpl[256], schema[512], sql[512];
    snprintf(schema, sizeof schema, "CREATE TABLE IF NOT EXISTS raw_%s (k varchar(64) NOT NULL "
             "PRIMARY KEY, v mediumtext) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n", run_id);
    snprintf(sql, sizeof sql, "INSERT INTO raw_%s (k, v) VALUES (:data.k, :data.v) "
             "ON DUPLICATE KEY UPDATE k = k", run_id);
    worker_config_t cfg = user_config(schema, sql, tpl, sizeof tpl);
    static const char v[] = "x\0y'\\0\"\xf0\x9f\x98\x80\0";
    size_t vlen = sizeof v - 1;
    worker_event_t *evs[] = { kv_event(1, "a", v, vlen), kv_event(2, "b", v, vlen) };
    sink_t *s = open_sink(&cfg);
    write_ok(s, evs, 2);       /* array binding */
    write_ok(s, evs, 1);       /* row by row (replay) */
    MYSQL *db = client();
    snprintf(sql, sizeof sql, "SELECT k, v FROM raw_%s ORDER BY k", run_id);
    exec(db, sql);
    MYSQL_RES *r = mysql_store_result(db);
    cr_assert_not_null(r);
    cr_expect_eq(mysql_num_rows(r), 2);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r)))
        expect_bytes(row[0], row[1], mysql_fetch_lengths(r)[1], v, vlen);
    mysql_free_result(r);
    snprintf(sql, sizeof sql, "DROP TABLE raw_%s", run_id);
    exec(db, sql);
    mysql_close(db);
    sink_mysql_ops.close(&s);
    destroy_all(evs, 2);
}

typedef struct {
    const char *why;
    size_t n, bad;      /* batch size, index of the bad row */
} reject_case_t;

static const reject_case_t reject_cases[] = {
    { "fun too long", 3, 1 },
    { "missing id (NOT NULL)", 3, 2 },
    { "fun too long", 1, 0 },
    { "missing id (NOT NULL)", 50, 0 },
    { "fun too long", 500, 371 },
};

static void reject_case(const reject_case_t *c, int k)
{
    char tpl[256], jid[32];
    shipped("salt_returns.sql", tpl, sizeof tpl);
    jid_for(jid, sizeof jid, 100 + k);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    worker_event_t **evs = calloc(c->n, sizeof *evs);
    cr_assert_not_null(evs);
    bool too_long = strstr(c->why, "long") != NULL;
    char long_fun[80];
    memset(long_fun, 'f', sizeof long_fun - 1);
    long_fun[sizeof long_fun - 1] = '\0';
    for (size_t i = 0; i < c->n; i++) {
        char id[32];
        snprintf(id, sizeof id, "m%zu", i);
        bool bad = i == c->bad;
        evs[i] = return_event(i + 1, jid, bad && !too_long ? NULL : id,
                              bad && too_long ? long_fun : "test.ping", true, "pong", 4);
    }
    char err[512] = "";
    size_t bad = 9999;
    cr_assert_eq(sink_mysql_ops.write_batch(s, evs, c->n, &bad, err, sizeof err),
                 SINK_REJECT_ROW, "%s: %s", c->why, err);
    cr_expect_eq(bad, c->bad, "%s: %s", c->why, err);
    cr_expect(strstr(err, too_long ? "1406" : "1048") != NULL, "%s", err);
    cr_expect_eq(count_jid_prefix("salt_returns", jid), 0, "nothing committed");
    /* the worker writes the others again */
    worker_event_destroy(&evs[c->bad]);
    for (size_t i = c->bad; i + 1 < c->n; i++)
        evs[i] = evs[i + 1];
    if (c->n > 1)
        write_ok(s, evs, c->n - 1);
    cr_expect_eq(count_jid_prefix("salt_returns", jid), (long long) c->n - 1);
    sink_mysql_ops.close(&s);
    destroy_all(evs, c->n - 1);
    free(evs);
}

Test(mysql, bad_row_is_rejected_with_its_index)
{
    for (size_t i = 0; i < N_ELEMS(reject_cases); i++)
        reject_case(&reject_cases[i], (int) i);
}

Test(mysql, wrong_port_fails_open_without_the_password)
{
    char tpl[256];
    shipped("salt_returns.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    cfg.socket = NULL;
    cfg.host = "127.0.0.1";
    cfg.port = 1;
    cfg.password = "Sup3r-Secret-Pw";
    cfg.connect_timeout_ms = 1000;
    char err[512] = "";
    sink_t *s = sink_mysql_ops.open(&cfg, "m1_master", err, sizeof err);
    cr_assert_null(s);
    cr_expect(strstr(err, "127.0.0.1:1") != NULL, "%s", err);
    cr_expect_null(strstr(err, "Sup3r"), "%s", err);

    /* the right server, a wrong password: refused, still without the password */
    cfg = config_for(tpl);
    cfg.password = "Sup3r-Secret-Pw";
    err[0] = '\0';
    s = sink_mysql_ops.open(&cfg, "m1_master", err, sizeof err);
    cr_assert_null(s);
    cr_expect(strstr(err, "Access denied") != NULL, "%s", err);
    cr_expect_null(strstr(err, "Sup3r"), "%s", err);
}

/* KILL of the sink's connection: SINK_RETRY, then the next write reconnects and works. */
Test(mysql, killed_connection_is_retried_then_reconnected)
{
    char tpl[256], schema[512], sql[512];
    snprintf(schema, sizeof schema, "CREATE TABLE IF NOT EXISTS conn_%s (k varchar(64) NOT NULL "
             "PRIMARY KEY, cid bigint NOT NULL) ENGINE=InnoDB;\n", run_id);
    snprintf(sql, sizeof sql, "INSERT INTO conn_%s (k, cid) VALUES (:data.k, CONNECTION_ID()) "
             "ON DUPLICATE KEY UPDATE k = k", run_id);
    worker_config_t cfg = user_config(schema, sql, tpl, sizeof tpl);
    worker_event_t *evs[] = { kv_event(1, "a", "", 0), kv_event(2, "b", "", 0),
                              kv_event(3, "c", "", 0) };
    sink_t *s = open_sink(&cfg);
    write_ok(s, evs, 1);
    MYSQL *db = client();
    snprintf(sql, sizeof sql, "SELECT cid FROM conn_%s WHERE k = 'a'", run_id);
    long long cid = query_num(db, sql);
    cr_assert_gt(cid, 0);
    snprintf(sql, sizeof sql, "KILL %lld", cid);
    exec(db, sql);
    usleep(100 * 1000);
    char err[512] = "";
    size_t bad = 99;
    cr_expect_eq(sink_mysql_ops.write_batch(s, evs + 1, 2, &bad, err, sizeof err), SINK_RETRY,
                 "%s", err);
    cr_expect(err[0] != '\0');
    write_ok(s, evs + 1, 2);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM conn_%s WHERE cid <> %lld", run_id, cid);
    cr_expect_eq(query_num(db, sql), 2, "written on a new connection");
    snprintf(sql, sizeof sql, "DROP TABLE conn_%s", run_id);
    exec(db, sql);
    mysql_close(db);
    sink_mysql_ops.close(&s);
    destroy_all(evs, N_ELEMS(evs));
}

Test(mysql, check_compiles_shipped_templates_without_a_server)
{
    const char *names[] = { "salt_returns.sql", "jids.sql", "salt_events.sql" };
    for (size_t i = 0; i < N_ELEMS(names); i++) {
        char tpl[256], err[512] = "";
        shipped(names[i], tpl, sizeof tpl);
        worker_config_t cfg = config_for(tpl);
        cfg.port = 1;
        cfg.socket = NULL;
        cr_expect_eq(sink_mysql_ops.check(&cfg, err, sizeof err), 0, "%s: %s", names[i], err);
    }
    char tpl[256], err[512] = "";
    worker_config_t cfg = user_config(NULL, "INSERT INTO t (a) VALUES (:nope)", tpl, sizeof tpl);
    cr_expect_neq(sink_mysql_ops.check(&cfg, err, sizeof err), 0);
    cr_expect(strstr(err, "t.sql:1:") != NULL, "%s", err);
}

Test(mysql, empty_batch_is_ok)
{
    char tpl[256], err[64] = "";
    shipped("salt_returns.sql", tpl, sizeof tpl);
    worker_config_t cfg = config_for(tpl);
    sink_t *s = open_sink(&cfg);
    cr_expect_eq(sink_mysql_ops.write_batch(s, NULL, 0, NULL, err, sizeof err), SINK_OK);
    sink_mysql_ops.close(&s);
}
