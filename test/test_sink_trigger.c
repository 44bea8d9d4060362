/* test_sink_trigger: the trigger sink driven the way a worker drives it (write_batch with
 * events, flush when flush_at says), on a real config (config_load) with the shipped job
 * trigger shape and salt_jobs / salt_job_missing templates into SQLite. Timeouts use a short
 * expiry and wait for flush_at with a deadline (no fixed sleeps). */
#include "config.h"
#include "log.h"
#include "sink.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sink_events.h"

static char tmpdir[64];
static char conf[128], dbpath[128], state[128];

static void setup(void)
{
    strcpy(tmpdir, "/tmp/test_sink_trigger_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(conf, sizeof conf, "%s/eventsd.conf", tmpdir);
    snprintf(dbpath, sizeof dbpath, "%s/salt.db", tmpdir);
    snprintf(state, sizeof state, "%s/triggers.db", tmpdir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(trigger, .init = setup, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- config */

/* The shipped job trigger's shape, expiring first + expire_s, into the test's directory. */
static eventsd_config_t *load(int expire_s)
{
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
        "master_id = \"t_master\";\n"
        "runtime_dir = \"%s/run\";\n"
        "spool = { dir = \"%s/spool\"; };\n"
        "sql_dir = \"%s/sql\";\n"
        "workers = (\n"
        "  { name = \"jobs\"; sink = \"trigger\"; state = \"%s\"; triggers = [ \"salt_jobs\" ]; }\n"
        ");\n"
        "rules = ( { tag = \"^salt/job/\"; workers = \"jobs\"; } );\n"
        "triggers = (\n"
        "  { name = \"salt_jobs\";\n"
        "    match = ( { tag = \"^salt/job/[0-9]+/new$\"; }, { tag = \"^salt/job/[0-9]+/ret/\"; } );\n"
        "    distinguished_by = [ \"data.jid\" ];\n"
        "    all_expected = true;\n"
        "    expire = \"first + %ds\";\n"
        "    fire_pipeline = \"job_complete\";\n"
        "    expire_pipeline = \"job_timeout\"; }\n"
        ");\n"
        "pipelines = (\n"
        "  { name = \"job_complete\"; handlers = (\n"
        "      { type = \"sql\"; sink = \"sqlite\"; database = \"%s\"; template = \"sqlite/salt_jobs.sql\";\n"
        "        missing_template = \"sqlite/salt_job_missing.sql\"; },\n"
        "      { type = \"emit\"; tag = \"eventsd/job/{data.jid}/complete\"; } ); },\n"
        "  { name = \"job_timeout\"; handlers = (\n"
        "      { type = \"sql\"; sink = \"sqlite\"; database = \"%s\"; template = \"sqlite/salt_jobs.sql\";\n"
        "        missing_template = \"sqlite/salt_job_missing.sql\"; },\n"
        "      { type = \"emit\"; tag = \"eventsd/job/{data.jid}/timeout\"; },\n"
        "      { type = \"log\"; } ); }\n"
        ");\n",
        tmpdir, tmpdir, SRC_DIR, state, expire_s, dbpath, dbpath);
    fclose(f);
    char err[4096] = "";
    eventsd_config_t *cfg = config_load(conf, err, sizeof err);
    cr_assert_not_null(cfg, "config: %s", err);
    return cfg;
}

static const worker_config_t *jobs_worker(const eventsd_config_t *cfg)
{
    int i = config_worker_index(cfg, "jobs");
    cr_assert_geq(i, 0);
    cr_assert_eq(cfg->workers[i].root, cfg, "the loader sets worker_config_t.root");
    return &cfg->workers[i];
}

/* ---------------------------------------------------------------- emit capture */

typedef struct {
    int  calls, fail;        /* fail: the next `fail` calls return -1 */
    char tags[8][128];
} emitted_t;

static int capture(void *arg, const char *tag, size_t tag_len, const void *data, size_t len)
{
    emitted_t *e = arg;
    (void) data;
    cr_expect_gt(len, 0);
    if (e->fail > 0) {
        e->fail--;
        return -1;
    }
    if (e->calls < 8)
        snprintf(e->tags[e->calls], sizeof e->tags[0], "%.*s", (int) tag_len, tag);
    e->calls++;
    return 0;
}

static sink_t *open_sink(const worker_config_t *w, emitted_t *e)
{
    char err[2048] = "";
    sink_t *s = sink_trigger_ops.open(w, "t_master", err, sizeof err);
    cr_assert_not_null(s, "open: %s", err);
    sink_trigger_ops.set_emit(s, capture, e);
    return s;
}

/* ---------------------------------------------------------------- events */

static uint64_t seq;

static worker_event_t *job_new(const char *jid, const char *const *minions, int n)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    pk_key(&pk, "jid"); pk_key(&pk, jid);
    pk_key(&pk, "minions"); msgpack_pack_array(&pk, (size_t) n);
    for (int i = 0; i < n; i++)
        pk_key(&pk, minions[i]);
    pk_key(&pk, "fun"); pk_key(&pk, "test.ping");
    pk_key(&pk, "tgt"); pk_key(&pk, "*");
    pk_key(&pk, "user"); pk_key(&pk, "root");
    pk_key(&pk, "_stamp"); pk_key(&pk, "2026-11-29T10:00:00.000000");
    char tag[64];
    snprintf(tag, sizeof tag, "salt/job/%s/new", jid);
    worker_event_t *ev = event_from(tag, &sb, ++seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

static worker_event_t *job_ret(const char *jid, const char *minion, bool success)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    pk_key(&pk, "jid"); pk_key(&pk, jid);
    pk_key(&pk, "id"); pk_key(&pk, minion);
    pk_key(&pk, "fun"); pk_key(&pk, "test.ping");
    pk_key(&pk, "return"); msgpack_pack_true(&pk);
    pk_key(&pk, "retcode"); msgpack_pack_int(&pk, success ? 0 : 1);
    pk_key(&pk, "success"); success ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    pk_key(&pk, "_stamp"); pk_key(&pk, "2026-11-29T10:00:01.000000");
    char tag[96];
    snprintf(tag, sizeof tag, "salt/job/%s/ret/%s", jid, minion);
    worker_event_t *ev = event_from(tag, &sb, ++seq);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

/* Writes the events as one batch (the worker's write_batch) and frees them. */
static void write_events(sink_t *s, worker_event_t **evs, size_t n)
{
    size_t bad = 0;
    char err[1024] = "";
    cr_assert_eq(sink_trigger_ops.write_batch(s, evs, n, &bad, err, sizeof err), SINK_OK,
                 "write_batch: %s", err);
    for (size_t i = 0; i < n; i++)
        worker_event_destroy(&evs[i]);
}

/* What the worker does: wait for flush_at (at most deadline_ms), then flush. Returns the
 * time waited. */
static int64_t flush_when_due(sink_t *s, int64_t deadline_ms)
{
    int64_t start = clock_ms();
    while (sink_trigger_ops.flush_at(s) > clock_ms()) {
        cr_assert_lt(clock_ms() - start, deadline_ms, "nothing became due in %lld ms",
                     (long long) deadline_ms);
        struct timespec ts = { 0, 20 * 1000000 };
        nanosleep(&ts, NULL);
    }
    char err[1024] = "";
    cr_assert_eq(sink_trigger_ops.flush(s, err, sizeof err), SINK_OK, "flush: %s", err);
    return clock_ms() - start;
}

/* ---------------------------------------------------------------- reads */

static void query(const char *sql, char *out, size_t size)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0))
        snprintf(out, size, "%s", (const char *) sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void jobs(char *out, size_t size)
{
    query("SELECT group_concat(r, ';') FROM (SELECT jid || ',' || fun || ',' || expected || ','"
          " || returned || ',' || succeeded || ',' || failed || ',' || missing || ',' || status "
          "|| ',' || master_id AS r FROM salt_jobs ORDER BY jid)", out, size);
}

static void missing(char *out, size_t size)
{
    query("SELECT group_concat(r, ';') FROM (SELECT jid || '/' || minion AS r FROM "
          "salt_job_missing ORDER BY jid, minion)", out, size);
}

static const char *const three[] = { "m1", "m2", "m3" };

/* ---------------------------------------------------------------- tests */

Test(trigger, a_job_every_minion_answers_completes_at_once)
{
    eventsd_config_t *cfg = load(300);
    emitted_t e = { 0 };
    sink_t *s = open_sink(jobs_worker(cfg), &e);
    cr_expect_eq(sink_trigger_ops.flush_at(s), INT64_MAX, "no stream: no timer");
    worker_event_t *evs[] = { job_new("101", three, 3), job_ret("101", "m1", true),
                              job_ret("101", "m2", false), job_ret("101", "m3", true) };
    write_events(s, evs, 4);
    cr_expect_lt(flush_when_due(s, 2000), 1000, "due at once (no fire_delay)");
    char got[1024];
    jobs(got, sizeof got);
    cr_expect_str_eq(got, "101,test.ping,3,3,2,1,0,complete,t_master");
    missing(got, sizeof got);
    cr_expect_str_eq(got, "");
    cr_expect_eq(e.calls, 1);
    cr_expect_str_eq(e.tags[0], "eventsd/job/101/complete");
    cr_expect_eq(sink_trigger_ops.flush_at(s), INT64_MAX, "the stream is finished");
    sink_trigger_ops.close(&s);
    cr_expect_null(s);
    eventsd_config_destroy(&cfg);
}

/* Returns before their job's new event are kept and matched when it arrives. */
Test(trigger, returns_before_the_new_event_still_complete_the_job)
{
    eventsd_config_t *cfg = load(300);
    emitted_t e = { 0 };
    sink_t *s = open_sink(jobs_worker(cfg), &e);
    worker_event_t *first[] = { job_ret("102", "m2", true), job_ret("102", "m1", true) };
    write_events(s, first, 2);
    worker_event_t *then[] = { job_new("102", three, 3), job_ret("102", "m3", true) };
    write_events(s, then, 2);
    flush_when_due(s, 2000);
    char got[1024];
    jobs(got, sizeof got);
    cr_expect_str_eq(got, "102,test.ping,3,3,3,0,0,complete,t_master");
    sink_trigger_ops.close(&s);
    eventsd_config_destroy(&cfg);
}

Test(trigger, a_job_that_times_out_records_its_missing_minions)
{
    eventsd_config_t *cfg = load(1);
    emitted_t e = { 0 };
    sink_t *s = open_sink(jobs_worker(cfg), &e);
    worker_event_t *evs[] = { job_new("103", three, 3), job_ret("103", "m2", true) };
    write_events(s, evs, 2);
    int64_t waited = flush_when_due(s, 5000);
    cr_expect_geq(waited, 500, "expires first + 1 s, not before (waited %lld ms)",
                  (long long) waited);
    char got[1024];
    jobs(got, sizeof got);
    cr_expect_str_eq(got, "103,test.ping,3,1,1,0,2,timeout,t_master");
    missing(got, sizeof got);
    cr_expect_str_eq(got, "103/m1;103/m3");
    cr_expect_eq(e.calls, 1);
    cr_expect_str_eq(e.tags[0], "eventsd/job/103/timeout");
    sink_trigger_ops.close(&s);
    eventsd_config_destroy(&cfg);
}

/* The worker process restarts mid-job (the sink is closed and opened again on the same
 * state): the stream goes on where it was. */
Test(trigger, restart_mid_job_completes_it_correctly)
{
    eventsd_config_t *cfg = load(300);
    emitted_t e = { 0 };
    sink_t *s = open_sink(jobs_worker(cfg), &e);
    worker_event_t *evs[] = { job_new("104", three, 3), job_ret("104", "m1", true),
                              job_ret("104", "m2", false) };
    write_events(s, evs, 3);
    cr_expect_eq(sink_trigger_ops.flush_at(s) > clock_ms() + 60000, 1, "not due yet");
    sink_trigger_ops.close(&s);

    s = open_sink(jobs_worker(cfg), &e);
    worker_event_t *rest[] = { job_ret("104", "m3", true) };
    write_events(s, rest, 1);
    flush_when_due(s, 2000);
    char got[1024];
    jobs(got, sizeof got);
    cr_expect_str_eq(got, "104,test.ping,3,3,2,1,0,complete,t_master");
    cr_expect_eq(e.calls, 1);
    sink_trigger_ops.close(&s);
    eventsd_config_destroy(&cfg);
}

/* A pipeline that fails (the master cannot be reached for the emit) defers the stream with
 * a backoff; the SQL it already committed is written again, not twice; the stream finishes
 * when the pipeline goes through. */
Test(trigger, a_failed_pipeline_is_deferred_then_retried_idempotently)
{
    eventsd_config_t *cfg = load(1);
    emitted_t e = { .fail = 1 };
    sink_t *s = open_sink(jobs_worker(cfg), &e);
    worker_event_t *evs[] = { job_new("105", three, 3), job_ret("105", "m3", true) };
    write_events(s, evs, 2);
    flush_when_due(s, 5000);   /* expired; the emit fails */
    cr_expect_eq(e.calls, 0);
    char got[1024];
    jobs(got, sizeof got);
    cr_expect_str_eq(got, "105,test.ping,3,1,1,0,2,timeout,t_master", "sql came first");
    int64_t at = sink_trigger_ops.flush_at(s);
    cr_expect_gt(at, clock_ms() + 500, "deferred about 1 s");
    cr_expect_lt(at, clock_ms() + 1500, "deferred about 1 s");

    flush_when_due(s, 5000);
    cr_expect_eq(e.calls, 1);
    cr_expect_str_eq(e.tags[0], "eventsd/job/105/timeout");
    jobs(got, sizeof got);
    cr_expect_str_eq(got, "105,test.ping,3,1,1,0,2,timeout,t_master");
    missing(got, sizeof got);
    cr_expect_str_eq(got, "105/m1;105/m2");
    cr_expect_eq(sink_trigger_ops.flush_at(s), INT64_MAX);

    /* failed twice: the second wait is longer (2 s) */
    worker_event_t *more[] = { job_new("106", three, 1) };
    e.fail = 2;
    write_events(s, more, 1);
    flush_when_due(s, 5000);
    int64_t waited = flush_when_due(s, 5000);
    cr_expect_geq(waited, 500);
    cr_expect_gt(sink_trigger_ops.flush_at(s), clock_ms() + 1500, "the backoff doubled");

    /* and a restart while it is deferred keeps it: it runs at its time */
    sink_trigger_ops.close(&s);
    s = open_sink(jobs_worker(cfg), &e);
    flush_when_due(s, 5000);
    cr_expect_eq(e.calls, 2);
    cr_expect_str_eq(e.tags[1], "eventsd/job/106/timeout");
    missing(got, sizeof got);
    cr_expect_str_eq(got, "105/m1;105/m2;106/m1");
    sink_trigger_ops.close(&s);
    eventsd_config_destroy(&cfg);
}

/* The process dies in the middle of a pipeline (after the SQL committed, during the emit):
 * the stream was handed out and never finished. The next process runs it again at once. */
static int die(void *arg, const char *tag, size_t tag_len, const void *data, size_t len)
{
    (void) arg; (void) tag; (void) tag_len; (void) data; (void) len;
    _exit(3);
}

Test(trigger, a_process_killed_mid_pipeline_leaves_no_stream_stuck)
{
    eventsd_config_t *cfg = load(300);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char err[2048] = "";
        sink_t *s = sink_trigger_ops.open(jobs_worker(cfg), "t_master", err, sizeof err);
        if (!s)
            _exit(1);
        sink_trigger_ops.set_emit(s, die, NULL);
        worker_event_t *evs[] = { job_new("108", three, 2), job_ret("108", "m1", true),
                                  job_ret("108", "m2", true) };
        size_t bad;
        if (sink_trigger_ops.write_batch(s, evs, 3, &bad, err, sizeof err) != SINK_OK)
            _exit(2);
        sink_trigger_ops.flush(s, err, sizeof err);
        _exit(4);   /* not reached: the emit ends the process */
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3, "child status %d", status);
    char got[1024];
    jobs(got, sizeof got);
    cr_expect_str_eq(got, "108,test.ping,2,2,2,0,0,complete,t_master", "sql committed");

    emitted_t e = { 0 };
    sink_t *s = open_sink(jobs_worker(cfg), &e);
    cr_expect_lt(flush_when_due(s, 5000), 500, "due again at once");
    cr_expect_eq(e.calls, 1);
    cr_expect_str_eq(e.tags[0], "eventsd/job/108/complete");
    jobs(got, sizeof got);
    cr_expect_str_eq(got, "108,test.ping,2,2,2,0,0,complete,t_master");
    cr_expect_eq(sink_trigger_ops.flush_at(s), INT64_MAX);
    sink_trigger_ops.close(&s);
    eventsd_config_destroy(&cfg);
}

Test(trigger, check_accepts_the_config_and_refuses_two_processes)
{
    eventsd_config_t *cfg = load(60);
    char err[4096] = "";
    cr_expect_eq(sink_trigger_ops.check(jobs_worker(cfg), err, sizeof err), 0, "%s", err);
    worker_config_t two = *jobs_worker(cfg);
    two.processes = 2;
    cr_expect_eq(sink_trigger_ops.check(&two, err, sizeof err), -1);
    cr_expect(strstr(err, "processes = 1") != NULL, "%s", err);
    worker_config_t no_root = *jobs_worker(cfg);
    no_root.root = NULL;
    cr_expect_eq(sink_trigger_ops.check(&no_root, err, sizeof err), -1);
    cr_expect(strstr(err, "root") != NULL, "%s", err);
    eventsd_config_destroy(&cfg);
}

/* A template of a pipeline the worker uses is checked with the sink's dialect. */
Test(trigger, check_reports_a_broken_pipeline_template)
{
    eventsd_config_t *cfg = load(60);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/broken.sql", tmpdir);
    FILE *f = fopen(bad, "w");
    fputs("INSERT INTO salt_jobs (jid) VALUES (:data.jid|nosuchfilter);\n", f);
    fclose(f);
    const pipeline_config_t *p = config_pipeline(cfg, "job_timeout");
    cr_assert_not_null(p);
    char *saved = p->handlers[0].missing_template;
    p->handlers[0].missing_template = bad;
    char err[4096] = "";
    cr_expect_eq(sink_trigger_ops.check(jobs_worker(cfg), err, sizeof err), -1);
    cr_expect(strstr(err, "broken.sql:1:") != NULL, "%s", err);
    p->handlers[0].missing_template = saved;
    eventsd_config_destroy(&cfg);
}

Test(trigger, explain_names_the_trigger_and_the_key)
{
    eventsd_config_t *cfg = load(60);
    worker_event_t *ev = job_ret("107", "m1", true);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    sink_trigger_ops.explain(jobs_worker(cfg), "t_master", ev, out);
    fclose(out);
    cr_expect(strstr(text, "salt_jobs") != NULL, "%s", text);
    cr_expect(strstr(text, "107") != NULL, "%s", text);
    free(text);
    worker_event_destroy(&ev);
    eventsd_config_destroy(&cfg);
}
