/* test_pipeline: pipelines run over hand-made summaries (the shape trigger_engine hands out)
 * with the shipped salt_jobs / salt_job_missing templates against real SQLite files, and
 * against PostgreSQL when EVENTSD_PG_CONNINFO is set (test/with-servers.sh); a graphite
 * handler against a carbon stand-in listening on loopback. */
#include "pipeline.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sink_events.h"
#include "test_ecl_redis.h"

static char tmpdir[64];
static char dbpath[128];

static void setup(void)
{
    strcpy(tmpdir, "/tmp/test_pipeline_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof dbpath, "%s/jobs.db", tmpdir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- summaries */

typedef struct {
    const char *jid, *reason;
    int expected, returned, succeeded, failed;
    const char *missing[4];
} job_t;

static size_t n_missing(const job_t *j)
{
    size_t n = 0;
    while (n < 4 && j->missing[n])
        n++;
    return n;
}

/* A summary the way the engine makes one for a job trigger. */
static void job_summary(const job_t *j, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    size_t nm = n_missing(j);
    msgpack_pack_map(&pk, 17);
    pk_key(&pk, "trigger"); pk_key(&pk, "jobs");
    pk_key(&pk, "key"); pk_key(&pk, j->jid);
    pk_key(&pk, "reason"); pk_key(&pk, j->reason);
    pk_key(&pk, "events"); msgpack_pack_int(&pk, j->returned + 1);
    pk_key(&pk, "first_stamp"); pk_key(&pk, "2026-11-29T10:00:00.000000");
    pk_key(&pk, "last_stamp"); pk_key(&pk, "2026-11-29T10:00:02.500000");
    pk_key(&pk, "duration"); msgpack_pack_double(&pk, 2.5);
    pk_key(&pk, "jid"); pk_key(&pk, j->jid);
    pk_key(&pk, "fun"); pk_key(&pk, "test.ping");
    pk_key(&pk, "target"); pk_key(&pk, "web*");
    pk_key(&pk, "user"); pk_key(&pk, "root");
    pk_key(&pk, "expected"); msgpack_pack_int(&pk, j->expected);
    pk_key(&pk, "returned"); msgpack_pack_int(&pk, j->returned);
    pk_key(&pk, "succeeded"); msgpack_pack_int(&pk, j->succeeded);
    pk_key(&pk, "failed"); msgpack_pack_int(&pk, j->failed);
    pk_key(&pk, "missing"); msgpack_pack_array(&pk, nm);
    for (size_t i = 0; i < nm; i++)
        pk_key(&pk, j->missing[i]);
    pk_key(&pk, "missing_count"); msgpack_pack_uint64(&pk, nm);
}

static sink_result_t run_job(pipeline_t *p, const job_t *j, char *err, size_t errlen)
{
    msgpack_sbuffer sb;
    job_summary(j, &sb);
    char tag[128];
    snprintf(tag, sizeof tag, "eventsd/trigger/jobs/%s", j->reason);
    sink_result_t rc = pipeline_run(p, tag, sb.data, sb.size, (char *const *) j->missing,
                                    n_missing(j), err, errlen);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---------------------------------------------------------------- configs */

typedef struct {
    worker_config_t   sinks[4];
    handler_config_t  handlers[4];
    pipeline_config_t p;
    char              tpl[4][256], missing[4][256];
} setup_t;

static void shipped(const char *dialect, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/sql/%s/%s", SRC_DIR, dialect, name);
}

/* Handler i: sql on the shipped job templates into `db` (sqlite). */
static void sql_handler(setup_t *s, int i, const char *db)
{
    shipped("sqlite", "salt_jobs.sql", s->tpl[i], sizeof s->tpl[i]);
    shipped("sqlite", "salt_job_missing.sql", s->missing[i], sizeof s->missing[i]);
    s->sinks[i] = (worker_config_t){ .name = "jobs.1", .sink = "sqlite", .processes = 1,
                                     .batch_size = 100, .template_path = s->tpl[i],
                                     .database = (char *) db, .busy_timeout_ms = 2000 };
    s->handlers[i] = (handler_config_t){ .type = HANDLER_SQL, .sink = &s->sinks[i],
                                         .missing_template = s->missing[i], .line = 10 + i };
}

static void text_handler(setup_t *s, int i, handler_type_t type, const char *text)
{
    s->handlers[i] = (handler_config_t){ .type = type, .line = 10 + i };
    if (type == HANDLER_EMIT)
        s->handlers[i].tag = (char *) text;
    else
        s->handlers[i].message = (char *) text;
}

static void finish_setup(setup_t *s, int n)
{
    s->p = (pipeline_config_t){ .name = "job_done", .handlers = s->handlers, .n_handlers = n,
                                .line = 5 };
}

/* ---------------------------------------------------------------- emit capture */

typedef struct {
    int    calls, fail;   /* fail: the next `fail` calls return -1 */
    char   tag[256];
    msgpack_sbuffer data;
} emitted_t;

static int capture(void *arg, const char *tag, size_t tag_len, const void *data, size_t len)
{
    emitted_t *e = arg;
    e->calls++;
    if (e->fail > 0) {
        e->fail--;
        return -1;
    }
    snprintf(e->tag, sizeof e->tag, "%.*s", (int) tag_len, tag);
    e->data.size = 0;
    msgpack_sbuffer_write(&e->data, data, len);
    return 0;
}

static pipeline_t *new_pipeline(const setup_t *s, emitted_t *e)
{
    char err[1024] = "";
    pipeline_t *p = pipeline_new(&s->p, "m1_master", capture, e, err, sizeof err);
    cr_assert_not_null(p, "pipeline_new: %s", err);
    return p;
}

/* ---------------------------------------------------------------- sqlite reads */

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

static long long scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static void text_of(sqlite3 *db, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    out[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, size, "%s", (const char *) sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/* Every row of both tables as one text, to compare runs. */
static void dump_jobs(const char *path, char *out, size_t size)
{
    sqlite3 *db = open_db(path);
    text_of(db, "SELECT (SELECT group_concat(r, ';') FROM (SELECT jid || ',' || fun || ',' || "
                "target || ',' || expected || ',' || returned || ',' || succeeded || ',' || "
                "failed || ',' || missing || ',' || status || ',' || duration || ',' || "
                "master_id AS r FROM salt_jobs ORDER BY jid)) || ' | ' || (SELECT "
                "ifnull(group_concat(r, ';'), '') FROM (SELECT jid || '/' || minion AS r FROM "
                "salt_job_missing ORDER BY jid, minion))", out, size);
    sqlite3_close(db);
}

/* ---------------------------------------------------------------- sql: rows */

Test(pipeline, timed_out_job_writes_its_row_and_one_row_per_missing_minion)
{
    setup_t s;
    sql_handler(&s, 0, dbpath);
    finish_setup(&s, 1);
    pipeline_t *p = new_pipeline(&s, NULL);
    job_t j = { "20261129100000000001", "expire", 4, 2, 1, 1, { "db1", "web2" } };
    char err[1024] = "";
    cr_assert_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);

    char rows[2048];
    dump_jobs(dbpath, rows, sizeof rows);
    cr_expect_str_eq(rows, "20261129100000000001,test.ping,web*,4,2,1,1,2,timeout,2.5,"
                           "m1_master | 20261129100000000001/db1;20261129100000000001/web2");
    pipeline_destroy(&p);
    cr_expect_null(p);
}

Test(pipeline, completed_job_without_missing_minions_writes_only_its_row)
{
    setup_t s;
    sql_handler(&s, 0, dbpath);
    finish_setup(&s, 1);
    pipeline_t *p = new_pipeline(&s, NULL);
    job_t j = { "20261129100000000002", "fire", 3, 3, 3, 0, { NULL } };
    char err[1024] = "";
    cr_assert_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);
    char rows[2048];
    dump_jobs(dbpath, rows, sizeof rows);
    cr_expect_str_eq(rows, "20261129100000000002,test.ping,web*,3,3,3,0,0,complete,2.5,"
                           "m1_master | ");
    pipeline_destroy(&p);
}

/* A value that cannot be computed (the emit tag names a field the summary lacks) fails the
 * run before any handler wrote; the sql handler comes first in the config. */
Test(pipeline, compute_failure_writes_nothing)
{
    setup_t s;
    sql_handler(&s, 0, dbpath);
    text_handler(&s, 1, HANDLER_EMIT, "eventsd/job/{data.no_such_field}/complete");
    finish_setup(&s, 2);
    emitted_t e = { 0 };
    msgpack_sbuffer_init(&e.data);
    pipeline_t *p = new_pipeline(&s, &e);
    job_t j = { "20261129100000000003", "expire", 2, 1, 1, 0, { "db1" } };
    char err[1024] = "";
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_RETRY);
    cr_expect(strstr(err, "pipeline 'job_done' handler #2 (emit)") != NULL, "%s", err);
    cr_expect(strstr(err, "no_such_field") != NULL, "%s", err);
    cr_expect_eq(e.calls, 0);
    struct stat st;
    /* not even opened: the sql handler's sink opens in compute, after nothing failed... */
    if (stat(dbpath, &st) == 0) {
        sqlite3 *db = open_db(dbpath);
        cr_expect_eq(scalar(db, "SELECT count(*) FROM salt_jobs"), 0);
        cr_expect_eq(scalar(db, "SELECT count(*) FROM salt_job_missing"), 0);
        sqlite3_close(db);
    }
    pipeline_destroy(&p);
    msgpack_sbuffer_destroy(&e.data);
}

/* A sink that cannot open (its directory does not exist) fails the run in compute: the other
 * sql handler, first in the config, writes nothing either. */
Test(pipeline, a_sink_that_cannot_open_fails_the_run_before_any_write)
{
    setup_t s;
    char bad[200];
    snprintf(bad, sizeof bad, "%s/no/such/dir/jobs.db", tmpdir);
    sql_handler(&s, 0, dbpath);
    sql_handler(&s, 1, bad);
    finish_setup(&s, 2);
    pipeline_t *p = new_pipeline(&s, NULL);
    job_t j = { "20261129100000000004", "fire", 1, 1, 1, 0, { NULL } };
    char err[1024] = "";
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_RETRY);
    cr_expect(strstr(err, "handler #2 (sql): cannot open sink 'sqlite'") != NULL, "%s", err);
    sqlite3 *db = open_db(dbpath);
    cr_expect_eq(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'salt_jobs'") == 0 ||
                 scalar(db, "SELECT count(*) FROM salt_jobs") == 0, 1);
    sqlite3_close(db);
    pipeline_destroy(&p);
}

/* A second handler failing at commit (a database trigger refuses the row) makes the run
 * RETRY after the first handler committed; the rerun writes the same rows, no more. */
Test(pipeline, failing_second_handler_retries_and_the_rerun_is_idempotent)
{
    char dir[160], tpl[200], audit_db[200];
    snprintf(dir, sizeof dir, "%s/audit", tmpdir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(audit_db, sizeof audit_db, "%s/audit.db", tmpdir);
    snprintf(tpl, sizeof tpl, "%s/audit.sql", dir);
    FILE *f = fopen(tpl, "w");
    fputs("INSERT INTO audit (jid) VALUES (:data.jid) ON CONFLICT DO NOTHING;\n", f);
    fclose(f);
    snprintf(tpl, sizeof tpl, "%s/schema.sql", dir);
    f = fopen(tpl, "w");
    fputs("CREATE TABLE IF NOT EXISTS audit (jid TEXT PRIMARY KEY);\n"
          "CREATE TABLE IF NOT EXISTS gate (blocked INTEGER);\n"
          "INSERT INTO gate SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM gate);\n"
          "CREATE TRIGGER IF NOT EXISTS audit_gate BEFORE INSERT ON audit "
          "WHEN (SELECT blocked FROM gate) BEGIN SELECT RAISE(ABORT, 'gate closed'); END;\n", f);
    fclose(f);
    snprintf(tpl, sizeof tpl, "%s/audit.sql", dir);

    setup_t s;
    sql_handler(&s, 0, dbpath);
    s.sinks[1] = (worker_config_t){ .name = "job_done.2", .sink = "sqlite", .processes = 1,
                                    .template_path = tpl, .database = audit_db,
                                    .busy_timeout_ms = 2000 };
    s.handlers[1] = (handler_config_t){ .type = HANDLER_SQL, .sink = &s.sinks[1] };
    text_handler(&s, 2, HANDLER_EMIT, "eventsd/job/{data.jid}/timeout");
    finish_setup(&s, 3);
    emitted_t e = { 0 };
    msgpack_sbuffer_init(&e.data);
    pipeline_t *p = new_pipeline(&s, &e);
    job_t j = { "20261129100000000005", "expire", 3, 1, 0, 1, { "a", "b" } };
    char err[1024] = "";
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_RETRY);
    cr_expect(strstr(err, "pipeline 'job_done' handler #2 (sql)") != NULL, "%s", err);
    cr_expect(strstr(err, "gate closed") != NULL, "%s", err);
    cr_expect_eq(e.calls, 0, "emit comes last: nothing emitted for a failed run");
    char first[2048], second[2048];
    dump_jobs(dbpath, first, sizeof first);
    cr_expect(strstr(first, "20261129100000000005/a;20261129100000000005/b") != NULL, "%s",
              first);

    /* the same stream again (as the engine hands it out after a defer), still failing */
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_RETRY);
    sqlite3 *adb = open_db(audit_db);
    cr_assert_eq(sqlite3_exec(adb, "UPDATE gate SET blocked = 0", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(adb);
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);
    dump_jobs(dbpath, second, sizeof second);
    cr_expect_str_eq(second, first);
    adb = open_db(audit_db);
    cr_expect_eq(scalar(adb, "SELECT count(*) FROM audit"), 1);
    sqlite3_close(adb);
    cr_expect_eq(e.calls, 1);
    cr_expect_str_eq(e.tag, "eventsd/job/20261129100000000005/timeout");
    pipeline_destroy(&p);
    msgpack_sbuffer_destroy(&e.data);
}

/* ---------------------------------------------------------------- emit and log */

Test(pipeline, emit_gets_the_expanded_tag_and_the_summary_as_data)
{
    setup_t s;
    text_handler(&s, 0, HANDLER_EMIT, "eventsd/job/{data.jid}/{data.reason} by {data.user}");
    text_handler(&s, 1, HANDLER_LOG, "msg=\"job done\" jid={data.jid} fun={data.fun}");
    text_handler(&s, 2, HANDLER_LOG, NULL);
    finish_setup(&s, 3);
    emitted_t e = { 0 };
    msgpack_sbuffer_init(&e.data);
    pipeline_t *p = new_pipeline(&s, &e);
    job_t j = { "20261129100000000006", "fire", 1, 1, 1, 0, { NULL } };
    char err[1024] = "";
    cr_assert_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);
    cr_expect_eq(e.calls, 1);
    /* NAME_KEY: a space from a value would become '_', the literal one stays */
    cr_expect_str_eq(e.tag, "eventsd/job/20261129100000000006/fire by root");
    msgpack_sbuffer want;
    job_summary(&j, &want);
    cr_expect_eq(e.data.size, want.size);
    cr_expect(memcmp(e.data.data, want.data, want.size) == 0);
    msgpack_sbuffer_destroy(&want);

    /* the master is gone: the run fails and says so */
    e.fail = 1;
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_RETRY);
    cr_expect(strstr(err, "handler #1 (emit): cannot send") != NULL, "%s", err);
    pipeline_destroy(&p);
    msgpack_sbuffer_destroy(&e.data);
}

/* A log message naming a missing field still logs (the default line, marked). */
Test(pipeline, log_with_a_missing_field_falls_back_to_the_default_line)
{
    setup_t s;
    text_handler(&s, 0, HANDLER_LOG, "jid={data.nope}");
    finish_setup(&s, 1);
    pipeline_t *p = new_pipeline(&s, NULL);
    job_t j = { "20261129100000000007", "fire", 1, 1, 1, 0, { NULL } };
    char err[1024] = "";
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);
    pipeline_destroy(&p);
}

Test(pipeline, an_emit_handler_without_a_way_to_the_master_is_fatal)
{
    setup_t s;
    text_handler(&s, 0, HANDLER_EMIT, "eventsd/job/{data.jid}/complete");
    finish_setup(&s, 1);
    char err[1024] = "";
    pipeline_t *p = pipeline_new(&s.p, "m1", NULL, NULL, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    job_t j = { "1", "fire", 1, 1, 1, 0, { NULL } };
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_FATAL);
    pipeline_destroy(&p);
}

/* ---------------------------------------------------------------- new / check */

Test(pipeline, new_refuses_settings_no_run_could_satisfy)
{
    setup_t s;
    sql_handler(&s, 0, dbpath);
    s.sinks[0].sink = "graphite";   /* a sql handler on a graphite sink */
    finish_setup(&s, 1);
    char err[1024] = "";
    cr_expect_null(pipeline_new(&s.p, "m1", NULL, NULL, err, sizeof err));
    cr_expect(strstr(err, "handler #1 (sql): sink 'graphite' cannot serve a sql handler") != NULL,
              "%s", err);

    text_handler(&s, 0, HANDLER_EMIT, "eventsd/{data.jid");
    cr_expect_null(pipeline_new(&s.p, "m1", NULL, NULL, err, sizeof err));
    cr_expect(strstr(err, "unclosed '{'") != NULL, "%s", err);
}

Test(pipeline, check_compiles_every_template_and_reports_each_problem)
{
    setup_t s;
    sql_handler(&s, 0, dbpath);
    finish_setup(&s, 1);
    char err[2048] = "";
    cr_expect_eq(pipeline_check(&s.p, err, sizeof err), 0, "%s", err);

    char bad[200];
    snprintf(bad, sizeof bad, "%s/bad.sql", tmpdir);
    FILE *f = fopen(bad, "w");
    fputs("INSERT INTO salt_jobs (jid) VALUES (:data.jid|nofilter);\n", f);
    fclose(f);
    s.handlers[0].missing_template = bad;
    text_handler(&s, 1, HANDLER_EMIT, "eventsd/{data.jid");
    s.sinks[2] = (worker_config_t){ .name = "job_done.3", .sink = "redis", .file = "/etc/x.conf",
                                    .line = 40 };
    s.handlers[2] = (handler_config_t){ .type = HANDLER_GRAPHITE, .sink = &s.sinks[2],
                                        .line = 40 };
    finish_setup(&s, 3);
    cr_expect_eq(pipeline_check(&s.p, err, sizeof err), -1);
    cr_expect(strstr(err, "bad.sql:1:") != NULL, "%s", err);
    cr_expect(strstr(err, "handler #2: tag:") != NULL, "%s", err);
    cr_expect(strstr(err, "/etc/x.conf:40: pipeline 'job_done' handler #3: sink 'redis' cannot "
                          "serve a graphite handler") != NULL, "%s", err);
    cr_expect_eq(strchr(strchr(strchr(err, '\n') + 1, '\n') + 1, '\n'), NULL,
                 "three lines: %s", err);
}

/* ---------------------------------------------------------------- graphite */

/* A carbon stand-in: a listening socket on loopback; lines read with a deadline. */
static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Reads from conn until `want` newline-terminated lines arrived or 5 s passed. */
static size_t read_lines(int conn, char *buf, size_t size, int want)
{
    size_t got = 0;
    int lines = 0;
    while (lines < want && got + 1 < size) {
        struct pollfd pfd = { .fd = conn, .events = POLLIN };
        if (poll(&pfd, 1, 5000) <= 0)
            break;
        ssize_t n = read(conn, buf + got, size - 1 - got);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            lines += buf[got + (size_t) i] == '\n';
        got += (size_t) n;
    }
    buf[got] = '\0';
    return got;
}

/* The graphite handler sends at once; a rerun of the same stream after a later handler
 * failed does not fold the summary in again. */
Test(pipeline, graphite_handler_sends_now_and_a_rerun_does_not_count_twice)
{
    int port, lfd = listen_loopback(&port);
    metric_config_t metrics[] = {
        { .name = "jobs.{data.fun}.{data.reason}" },
        { .name = "duration.{data.fun}", .value = "data.duration", .aggregate = METRIC_MAX },
    };
    setup_t s;
    s.sinks[0] = (worker_config_t){ .name = "job_done.1", .sink = "graphite", .processes = 1,
                                    .host = "127.0.0.1", .port = port, .prefix = "salt",
                                    .flush_interval_s = 3600, .metrics = metrics,
                                    .n_metrics = 2, .connect_timeout_ms = 2000 };
    s.handlers[0] = (handler_config_t){ .type = HANDLER_GRAPHITE, .sink = &s.sinks[0] };
    text_handler(&s, 1, HANDLER_EMIT, "eventsd/job/{data.jid}/done");
    finish_setup(&s, 2);
    emitted_t e = { .fail = 1 };
    msgpack_sbuffer_init(&e.data);
    pipeline_t *p = new_pipeline(&s, &e);
    job_t j = { "20261129100000000008", "fire", 2, 2, 2, 0, { NULL } };
    char err[1024] = "";
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_RETRY);   /* emit failed after graphite */
    int conn = accept(lfd, NULL, NULL);
    cr_assert_geq(conn, 0);
    char lines[4096];
    read_lines(conn, lines, sizeof lines, 2);
    cr_expect(strstr(lines, "salt.jobs.test_ping.fire 1 ") != NULL, "%s", lines);
    cr_expect(strstr(lines, "salt.duration.test_ping 2.5 ") != NULL, "%s", lines);

    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);
    cr_expect_eq(e.calls, 2);

    /* another stream in the same slot adds to it: 2, not 3 (the rerun was not folded again) */
    job_t k = { "20261129100000000009", "fire", 1, 1, 1, 0, { NULL } };
    cr_expect_eq(run_job(p, &k, err, sizeof err), SINK_OK, "%s", err);
    read_lines(conn, lines, sizeof lines, 2);
    cr_expect(strstr(lines, "salt.jobs.test_ping.fire 2 ") != NULL, "next stream: %s", lines);
    close(conn);   /* carbon's side goes first: the sink's close waits for it */
    pipeline_destroy(&p);
    close(lfd);
    msgpack_sbuffer_destroy(&e.data);
}

/* ---------------------------------------------------------------- counter (redis) */

/* The counter handler syncs at once; a rerun after a later handler failed does not count the
 * summary again. */
Test(pipeline, counter_handler_counts_each_summary_once)
{
    if (!getenv("EVENTSD_REDIS_PORT"))
        cr_skip_test("EVENTSD_REDIS_PORT not set (run through test/with-servers.sh)");
    char group[96];
    test_group(group, sizeof group, "pipeline");
    char *names[] = { "1h" };
    int secs[] = { 3600 };
    setup_t s;
    s.sinks[0] = (worker_config_t){ .name = "job_done.1", .sink = "redis", .processes = 1,
                                    .host = (char *) test_redis_host(),
                                    .port = test_redis_port(), .group = group,
                                    .interval_names = names, .intervals_s = secs,
                                    .n_intervals = 1, .counter = "{data.fun}.{data.reason}",
                                    .auto_declare = true, .sync_interval_ms = 1000,
                                    .sync_limit = 1000, .connect_timeout_ms = 2000 };
    s.handlers[0] = (handler_config_t){ .type = HANDLER_COUNTER, .sink = &s.sinks[0] };
    text_handler(&s, 1, HANDLER_EMIT, "eventsd/job/{data.jid}/done");
    finish_setup(&s, 2);
    emitted_t e = { .fail = 1 };
    msgpack_sbuffer_init(&e.data);
    pipeline_t *p = new_pipeline(&s, &e);
    job_t j = { "20261129100000000011", "expire", 2, 1, 1, 0, { "db1" } };
    char err[1024] = "";
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_RETRY);
    redisContext *c = test_redis();
    cr_expect_eq(test_getf(c, "%s:%s:cur:%s", group, "1h", "test.ping.expire"), 1);
    cr_expect_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);
    cr_expect_eq(test_getf(c, "%s:%s:cur:%s", group, "1h", "test.ping.expire"), 1, "rerun");
    job_t k = { "20261129100000000012", "expire", 1, 0, 0, 0, { "db2" } };
    cr_expect_eq(run_job(p, &k, err, sizeof err), SINK_OK, "%s", err);
    cr_expect_eq(test_getf(c, "%s:%s:cur:%s", group, "1h", "test.ping.expire"), 2);
    cr_expect_lt(pipeline_flush_at(p), INT64_MAX, "the interval's rotation is a timer");
    redisFree(c);
    pipeline_destroy(&p);
    msgpack_sbuffer_destroy(&e.data);
}

/* ---------------------------------------------------------------- PostgreSQL */

static const char *pg_base(void)
{
    const char *c = getenv("EVENTSD_PG_CONNINFO");
    return c && *c ? c : NULL;
}

static void quiet(void *arg, const char *message)
{
    (void) arg;
    (void) message;
}

static PGconn *pg_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    PQsetNoticeProcessor(c, quiet, NULL);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

static void pg_exec(PGconn *c, const char *sql, char *out, size_t size)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    if (out)
        snprintf(out, size, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
}

/* The same job twice (a retried pipeline) on the shipped pgsql templates: one job row, one
 * row per missing minion. */
Test(pipeline, pgsql_job_and_missing_rows_idempotent)
{
    if (!pg_base())
        cr_skip_test("EVENTSD_PG_CONNINFO not set (run through test/with-servers.sh)");
    char schema[64], sql[256], conninfo[1024];
    snprintf(schema, sizeof schema, "tp_%d_%ld", (int) getpid(), (long) random() % 100000);
    PGconn *admin = pg_connect(pg_base());
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema,
             schema);
    pg_exec(admin, sql, NULL, 0);
    snprintf(conninfo, sizeof conninfo, "%s options='-c search_path=%s'", pg_base(), schema);

    setup_t s;
    shipped("pgsql", "salt_jobs.sql", s.tpl[0], sizeof s.tpl[0]);
    shipped("pgsql", "salt_job_missing.sql", s.missing[0], sizeof s.missing[0]);
    s.sinks[0] = (worker_config_t){ .name = "job_done.1", .sink = "pgsql", .processes = 1,
                                    .template_path = s.tpl[0], .conninfo = conninfo,
                                    .connect_timeout_ms = 3000 };
    s.handlers[0] = (handler_config_t){ .type = HANDLER_SQL, .sink = &s.sinks[0],
                                        .missing_template = s.missing[0] };
    finish_setup(&s, 1);
    char err[2048] = "";
    cr_expect_eq(pipeline_check(&s.p, err, sizeof err), 0, "%s", err);
    pipeline_t *p = new_pipeline(&s, NULL);
    job_t j = { "20261129100000000010", "expire", 4, 2, 1, 1, { "db1", "web'2" } };
    cr_assert_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);
    cr_assert_eq(run_job(p, &j, err, sizeof err), SINK_OK, "%s", err);

    PGconn *c = pg_connect(conninfo);
    char got[1024];
    pg_exec(c, "SELECT string_agg(jid || ',' || fun || ',' || expected || ',' || returned || ','"
               " || failed || ',' || missing || ',' || status || ',' || master_id, ';') FROM "
               "salt_jobs", got, sizeof got);
    cr_expect_str_eq(got, "20261129100000000010,test.ping,4,2,1,2,timeout,m1_master");
    pg_exec(c, "SELECT string_agg(jid || '/' || minion, ';' ORDER BY minion) FROM "
               "salt_job_missing", got, sizeof got);
    cr_expect_str_eq(got, "20261129100000000010/db1;20261129100000000010/web'2");
    PQfinish(c);
    pipeline_destroy(&p);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    pg_exec(admin, sql, NULL, 0);
    PQfinish(admin);
}
