/* test_trigger_engine: the streams of a trigger worker against real SQLite files in a
 * temporary directory, with injected time: Salt jobs that complete, time out, get late,
 * duplicate and early returns and Salt's missing list; count criteria, expiry from the first
 * or last event, fire delays, day buckets, conditions, restarts (streams kept, streams left
 * in progress due again), defer/finish, max_streams eviction, the cost of a return in a
 * 10,000-minion job against a 10-minion one (statements and rows, not time), the summary's
 * exact contents, --explain, and errors at open.
 * The benchmark (events/s of returns) runs only with EVENTSD_TRIGGER_BENCH=1. */
#include "json_msgpack.h"
#include "payload.h"
#include "trigger_engine.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0     1704369600000LL   /* 2024-01-04T12:00:00Z */
#define SEC    1000LL
#define MINUTE (60 * SEC)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

static char tmpdir[64];
static char statepath[128];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/test_trigger_engine_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(statepath, sizeof statepath, "%s/streams.db", tmpdir);
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(trigger_engine, .init = make_tmpdir, .fini = remove_tmpdir);

/* ---------------------------------------------------------------- configs */

typedef struct {
    trigger_config_t t[4];
    char            *names[4];
    eventsd_config_t cfg;
    worker_config_t  w;
} setup_t;

static event_match_config_t JOB_MATCH[] = { { .tag = "^salt/job/[0-9]+/(new$|ret/)",
                                              .line = 12 } };
static char *JID_KEY[] = { "data.jid" };

/* The shipped job tracker: complete when every targeted minion returned, else a timeout. */
static trigger_config_t job_trigger(void)
{
    return (trigger_config_t) {
        .name = "jobs", .match = JOB_MATCH, .n_match = 1, .distinguished_by = JID_KEY,
        .n_distinguished_by = 1, .all_expected = true,
        .expected_tag = "^salt/job/[0-9]+/new$", .expected_field = "data.minions",
        .returned_tag = "^salt/job/[0-9]+/ret/", .returned_field = "data.id",
        .expire_from = EXPIRE_FROM_FIRST, .expire_s = 900, .fire_pipeline = "job_done",
        .expire_pipeline = "job_timeout", .line = 10,
    };
}

static condition_config_t PEND[] = { { .field = "data.act", .op = COND_EQ, .value = "pend" } };
static event_match_config_t AUTH_MATCH[] = { { .tag = "^salt/auth$", .where = PEND,
                                               .n_where = 1, .line = 31 } };
static event_match_config_t AUTH_FIRE[] = { { .tag = "^salt/auth$", .count = 3, .line = 33 } };
static char *ID_KEY[] = { "data.id" };

/* An auth storm: three pend events of one minion within five minutes. */
static trigger_config_t auth_trigger(void)
{
    return (trigger_config_t) {
        .name = "auth_storm", .match = AUTH_MATCH, .n_match = 1, .distinguished_by = ID_KEY,
        .n_distinguished_by = 1, .fire = AUTH_FIRE, .n_fire = 1,
        .expire_from = EXPIRE_FROM_FIRST, .expire_s = 300, .fire_pipeline = "storm",
        .expire_pipeline = "calm", .line = 30,
    };
}

static void init_setup(setup_t *s, const trigger_config_t *triggers, int n, int max_streams)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < n; i++) {
        s->t[i] = triggers[i];
        s->names[i] = s->t[i].name;
    }
    s->cfg = (eventsd_config_t) { .path = "/etc/eventsd/eventsd.conf", .master_id = "m1_master",
                                  .trigger_cfgs = s->t, .n_triggers = n };
    s->w = (worker_config_t) { .name = "tracker", .sink = "trigger", .processes = 1,
                               .state = statepath, .triggers = s->names, .n_triggers = n,
                               .max_streams = max_streams, .busy_timeout_ms = 1000,
                               .file = "/etc/eventsd/eventsd.conf", .line = 40 };
}

static void init_one(setup_t *s, trigger_config_t t)
{
    init_setup(s, &t, 1, 0);
}

static trigger_engine_t *open_engine(setup_t *s)
{
    char err[512] = "";
    trigger_engine_t *e = trigger_engine_open(&s->cfg, &s->w, err, sizeof err);
    cr_assert_not_null(e, "open: %s", err);
    return e;
}

/* ---------------------------------------------------------------- events */

static worker_event_t *make_event(const char *tag, const void *bytes, size_t len)
{
    char err[256] = "";
    worker_event_t *ev = worker_event_new(1, false, tag, strlen(tag), bytes, len, 32, err,
                                          sizeof err);
    cr_assert_not_null(ev, "%s", err);
    return ev;
}

static worker_event_t *json_event(const char *tag, const char *fmt, ...)
{
    va_list ap;
    char *json = NULL, err[256] = "";
    va_start(ap, fmt);
    cr_assert_geq(vasprintf(&json, fmt, ap), 0);
    va_end(ap);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(json_to_msgpack(json, &sb, err, sizeof err), 0, "%s", err);
    worker_event_t *ev = make_event(tag, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    free(json);
    return ev;
}

/* JSON array of n minion names "<prefix><i>". Caller frees. */
static char *minion_list(const char *prefix, int n)
{
    size_t cap = (size_t) n * (strlen(prefix) + 16) + 8, len = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    len += (size_t) sprintf(s + len, "[");
    for (int i = 0; i < n; i++)
        len += (size_t) sprintf(s + len, "%s\"%s%d\"", i ? ", " : "", prefix, i);
    sprintf(s + len, "]");
    return s;
}

/* salt/job/<jid>/new as a 3006 master sends it; minions and missing are JSON arrays. */
static worker_event_t *new_event(const char *jid, const char *minions, const char *missing,
                                 const char *stamp)
{
    char tag[128];
    snprintf(tag, sizeof tag, "salt/job/%s/new", jid);
    return json_event(tag, "{\"jid\": \"%s\", \"tgt_type\": \"glob\", \"tgt\": \"*\", "
                      "\"user\": \"root\", \"fun\": \"test.ping\", \"arg\": [], "
                      "\"minions\": %s, \"missing\": %s, \"_stamp\": \"%s\"}", jid, minions,
                      missing, stamp);
}

static void pk_kv(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
    msgpack_pack_str_with_body(pk, v, strlen(v));
}

/* salt/job/<jid>/ret/<minion>, packed by hand (the benchmark makes tens of thousands). */
static worker_event_t *ret_event(const char *jid, const char *minion, bool success,
                                 const char *stamp)
{
    char tag[160];
    snprintf(tag, sizeof tag, "salt/job/%s/ret/%s", jid, minion);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    pk_kv(&pk, "cmd", "_return");
    pk_kv(&pk, "id", minion);
    msgpack_pack_str_with_body(&pk, "success", 7);
    success ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    msgpack_pack_str_with_body(&pk, "retcode", 7);
    msgpack_pack_int(&pk, success ? 0 : 1);
    pk_kv(&pk, "jid", jid);
    pk_kv(&pk, "fun", "test.ping");
    pk_kv(&pk, "user", "root");
    pk_kv(&pk, "_stamp", stamp);
    worker_event_t *ev = make_event(tag, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

static worker_event_t *auth_event(const char *id, const char *act, const char *stamp)
{
    return json_event("salt/auth", "{\"result\": true, \"act\": \"%s\", \"id\": \"%s\", "
                      "\"pub\": \"-----BEGIN PUBLIC KEY-----\", \"_stamp\": \"%s\"}", act, id,
                      stamp);
}

/* Applies one event at now and destroys it. */
static void apply(trigger_engine_t *e, worker_event_t *ev, int64_t now)
{
    char err[512] = "";
    cr_assert_eq(trigger_engine_apply(e, &ev, 1, now, err, sizeof err), 0, "apply: %s", err);
    worker_event_destroy(&ev);
}

/* ---------------------------------------------------------------- due streams */

static int next(trigger_engine_t *e, int64_t now, trigger_due_t *due)
{
    char err[512] = "";
    int rc = trigger_engine_next(e, now, due, err, sizeof err);
    cr_assert_geq(rc, 0, "next: %s", err);
    return rc;
}

static void finish(trigger_engine_t *e, const trigger_due_t *due)
{
    char err[512] = "";
    cr_assert_eq(trigger_engine_finish(e, due->stream_id, err, sizeof err), 0, "%s", err);
}

static payload_t *summary_of(const trigger_due_t *due)
{
    char err[256] = "";
    payload_t *p = payload_new(due->summary.data, due->summary.size, true, 32, err, sizeof err);
    cr_assert_not_null(p, "summary: %s", err);
    return p;
}

static const msgpack_object *field(payload_t *p, const char *key)
{
    const msgpack_object *o = payload_lookup(payload_root(p), key);
    cr_assert_not_null(o, "summary has no '%s'", key);
    return o;
}

static int64_t s_int(payload_t *p, const char *key)
{
    const msgpack_object *o = field(p, key);
    cr_assert(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
              o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER, "'%s' is not an integer", key);
    return o->via.i64;
}

/* The string at key ("(nil)" for nil), in buf. */
static const char *s_str(payload_t *p, const char *key, char *buf, size_t size)
{
    const msgpack_object *o = field(p, key);
    if (o->type == MSGPACK_OBJECT_NIL)
        return "(nil)";
    cr_assert_eq(o->type, MSGPACK_OBJECT_STR, "'%s' is not a string", key);
    snprintf(buf, size, "%.*s", (int) o->via.str.size, o->via.str.ptr);
    return buf;
}

/* An array of strings or integers, joined with ','. */
static const char *s_list(payload_t *p, const char *key, char *buf, size_t size)
{
    const msgpack_object *o = field(p, key);
    cr_assert_eq(o->type, MSGPACK_OBJECT_ARRAY, "'%s' is not an array", key);
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < o->via.array.size && len < size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        len += (size_t) (e->type == MSGPACK_OBJECT_STR
            ? snprintf(buf + len, size - len, "%s%.*s", i ? "," : "", (int) e->via.str.size,
                       e->via.str.ptr)
            : snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long) e->via.i64));
    }
    return buf;
}

#define EXPECT_STR(p, key, want) do { char b_[256]; \
        cr_expect_str_eq(s_str(p, key, b_, sizeof b_), want, "%s", key); } while (0)
#define EXPECT_LIST(p, key, want) do { char b_[1024]; \
        cr_expect_str_eq(s_list(p, key, b_, sizeof b_), want, "%s", key); } while (0)

/* ---------------------------------------------------------------- jobs */

Test(trigger_engine, job_completes_when_every_minion_returned)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, new_event("20240104120000000001", "[\"a\", \"b\", \"c\"]", "[]",
                       "2024-01-04T12:00:00.000000"), T0);
    apply(e, ret_event("20240104120000000001", "a", true, "2024-01-04T12:00:01"), T0 + 1000);
    apply(e, ret_event("20240104120000000001", "b", false, "2024-01-04T12:00:02"), T0 + 2000);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 15 * MINUTE, "due at its expiry");
    cr_expect_eq(next(e, T0 + 2000, &due), 0, "not complete yet");

    apply(e, ret_event("20240104120000000001", "c", true, "2024-01-04T12:00:03"), T0 + 3000);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 3000, "complete: due at once");
    cr_assert_eq(next(e, T0 + 3000, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_FIRE);
    cr_expect_str_eq(due.pipeline, "job_done");
    cr_expect_eq(due.trigger, &s.t[0]);
    cr_expect_str_eq(due.tag.data, "eventsd/trigger/jobs/fire");
    cr_expect_eq(due.n_missing, 0);
    payload_t *p = summary_of(&due);
    EXPECT_STR(p, "reason", "fire");
    EXPECT_STR(p, "key", "20240104120000000001");
    cr_expect_eq(s_int(p, "expected"), 3);
    cr_expect_eq(s_int(p, "returned"), 3);
    cr_expect_eq(s_int(p, "succeeded"), 2);
    cr_expect_eq(s_int(p, "failed"), 1);
    cr_expect_eq(s_int(p, "events"), 4);
    EXPECT_LIST(p, "missing", "");
    payload_destroy(&p);

    trigger_due_t none;
    cr_expect_eq(next(e, T0 + 3000, &none), 0, "handed out once");
    finish(e, &due);
    trigger_due_free(&due);
    cr_expect_eq(trigger_engine_next_due(e), INT64_MAX);
    const trigger_engine_stats_t *st = trigger_engine_stats(e);
    cr_expect_eq(st->fired, 1);
    cr_expect_eq(st->expired, 0);
    cr_expect_eq(st->streams_open, 0);
    cr_expect_eq(st->joined, 4);
    trigger_engine_close(&e);
    cr_expect_null(e);
}

Test(trigger_engine, job_expires_with_the_silent_minion_missing)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, new_event("2", "[\"a\", \"b\", \"c\"]", "[]", "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("2", "a", true, "2024-01-04T12:00:01"), T0 + SEC);
    apply(e, ret_event("2", "c", true, "2024-01-04T12:00:02"), T0 + 2 * SEC);
    cr_expect_eq(next(e, T0 + 15 * MINUTE - 1, &due), 0);
    cr_assert_eq(next(e, T0 + 15 * MINUTE, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_EXPIRE);
    cr_expect_str_eq(due.pipeline, "job_timeout");
    cr_expect_str_eq(due.tag.data, "eventsd/trigger/jobs/expire");
    cr_assert_eq(due.n_missing, 1);
    cr_expect_str_eq(due.missing[0], "b");
    payload_t *p = summary_of(&due);
    EXPECT_LIST(p, "missing", "b");
    cr_expect_eq(s_int(p, "returned"), 2);
    EXPECT_STR(p, "reason", "expire");
    payload_destroy(&p);
    finish(e, &due);
    trigger_due_free(&due);
    cr_expect_eq(trigger_engine_stats(e)->expired, 1);
    trigger_engine_close(&e);
}

/* A return after the job's stream was handed out starts a new stream under the same key:
 * with no expected list it cannot complete, so it expires on its own, marked
 * expected_known = false (the shipped SQL keeps the job row's counts then). */
Test(trigger_engine, late_return_starts_a_new_stream)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due, late;
    apply(e, new_event("3", "[\"a\", \"b\"]", "[]", "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("3", "a", true, "2024-01-04T12:00:01"), T0 + SEC);
    cr_assert_eq(next(e, T0 + 15 * MINUTE, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_EXPIRE);

    /* b answers while the timeout pipeline runs */
    int64_t at = T0 + 15 * MINUTE + 500;
    apply(e, ret_event("3", "b", true, "2024-01-04T12:15:00.5"), at);
    cr_expect_eq(trigger_engine_stats(e)->streams_open, 1);
    finish(e, &due);
    trigger_due_free(&due);
    cr_expect_eq(trigger_engine_next_due(e), at + 15 * MINUTE);
    cr_assert_eq(next(e, at + 15 * MINUTE, &late), 1);
    cr_expect_eq(late.reason, TRIGGER_EXPIRE);
    cr_expect_neq(late.stream_id, due.stream_id);
    payload_t *p = summary_of(&late);
    EXPECT_STR(p, "key", "3");
    EXPECT_STR(p, "jid", "3");
    EXPECT_STR(p, "fun", "test.ping");
    EXPECT_STR(p, "target", "(nil)");
    cr_expect_eq(field(p, "expected_known")->via.boolean, false);
    cr_expect_eq(s_int(p, "expected"), 0);
    cr_expect_eq(s_int(p, "returned"), 1);
    cr_expect_eq(s_int(p, "unexpected"), 0);
    cr_expect_eq(s_int(p, "events"), 1);
    EXPECT_LIST(p, "missing", "");
    payload_destroy(&p);
    finish(e, &late);
    trigger_due_free(&late);
    trigger_engine_close(&e);
}

Test(trigger_engine, duplicate_returns_count_once)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, new_event("4", "[\"a\", \"b\"]", "[]", "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("4", "a", true, "2024-01-04T12:00:01"), T0 + 1);
    apply(e, ret_event("4", "a", false, "2024-01-04T12:00:02"), T0 + 2);  /* first one wins */
    apply(e, ret_event("4", "a", true, "2024-01-04T12:00:03"), T0 + 3);
    cr_expect_eq(next(e, T0 + 3, &due), 0, "b has not returned: two of a are not two minions");
    apply(e, ret_event("4", "b", true, "2024-01-04T12:00:04"), T0 + 4);
    cr_assert_eq(next(e, T0 + 4, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_FIRE);
    payload_t *p = summary_of(&due);
    cr_expect_eq(s_int(p, "returned"), 2);
    cr_expect_eq(s_int(p, "succeeded"), 2);
    cr_expect_eq(s_int(p, "failed"), 0);
    cr_expect_eq(s_int(p, "duplicates"), 2);
    cr_expect_eq(s_int(p, "events"), 5);
    payload_destroy(&p);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

Test(trigger_engine, returns_before_the_new_event_are_matched)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, ret_event("5", "b", true, "2024-01-04T12:00:02"), T0);
    apply(e, ret_event("5", "a", false, "2024-01-04T12:00:01"), T0 + 1);
    cr_expect_eq(next(e, T0 + 1, &due), 0, "no list yet: not complete");
    cr_expect_eq(trigger_engine_next_due(e), T0 + 15 * MINUTE);
    apply(e, new_event("5", "[\"a\", \"b\"]", "[]", "2024-01-04T12:00:00.25"), T0 + 2);
    cr_assert_eq(next(e, T0 + 2, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_FIRE);
    payload_t *p = summary_of(&due);
    cr_expect_eq(s_int(p, "expected"), 2);
    cr_expect_eq(s_int(p, "returned"), 2);
    cr_expect_eq(s_int(p, "succeeded"), 1);
    cr_expect_eq(s_int(p, "failed"), 1);
    cr_expect_eq(s_int(p, "unexpected"), 0);
    EXPECT_STR(p, "first_stamp", "2024-01-04T12:00:00.25");   /* by stamp, not arrival */
    EXPECT_STR(p, "last_stamp", "2024-01-04T12:00:02");
    cr_expect_float_eq(field(p, "duration")->via.f64, 1.75, 1e-9);
    EXPECT_STR(p, "target", "*");
    payload_destroy(&p);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

Test(trigger_engine, salt_missing_minions_are_recorded_at_once)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, new_event("6", "[\"a\", \"b\", \"off1\", \"off2\"]", "[\"off1\", \"off2\"]",
                       "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("6", "a", true, "2024-01-04T12:00:01"), T0 + 1);
    cr_expect_eq(next(e, T0 + 1, &due), 0);
    /* one minion Salt called missing answers after all: it returned, it is not missing */
    apply(e, ret_event("6", "off2", true, "2024-01-04T12:00:02"), T0 + 2);
    apply(e, ret_event("6", "b", true, "2024-01-04T12:00:03"), T0 + 3);
    cr_assert_eq(next(e, T0 + 3, &due), 1, "the rest returned: complete without off1");
    cr_expect_eq(due.reason, TRIGGER_FIRE);
    cr_assert_eq(due.n_missing, 1);
    cr_expect_str_eq(due.missing[0], "off1");
    payload_t *p = summary_of(&due);
    cr_expect_eq(s_int(p, "expected"), 4);
    cr_expect_eq(s_int(p, "returned"), 3);
    EXPECT_LIST(p, "missing", "off1");
    payload_destroy(&p);
    finish(e, &due);
    trigger_due_free(&due);

    /* every targeted minion missing: complete at the new event */
    apply(e, new_event("7", "[\"x\"]", "[\"x\"]", "2024-01-04T12:00:10"), T0 + 10);
    cr_assert_eq(next(e, T0 + 10, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_FIRE);
    cr_assert_eq(due.n_missing, 1);
    cr_expect_str_eq(due.missing[0], "x");
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

Test(trigger_engine, unexpected_returns_are_counted_not_waited_for)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, new_event("8", "[\"a\"]", "[]", "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("8", "z", true, "2024-01-04T12:00:01"), T0 + 1);
    cr_expect_eq(next(e, T0 + 1, &due), 0);
    apply(e, ret_event("8", "a", true, "2024-01-04T12:00:02"), T0 + 2);
    cr_assert_eq(next(e, T0 + 2, &due), 1);
    payload_t *p = summary_of(&due);
    cr_expect_eq(s_int(p, "expected"), 1);
    cr_expect_eq(s_int(p, "returned"), 2);
    cr_expect_eq(s_int(p, "unexpected"), 1);
    payload_destroy(&p);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

/* ---------------------------------------------------------------- criteria and timing */

Test(trigger_engine, count_criterion_fires_at_the_nth_matching_event)
{
    setup_t s;
    init_one(&s, auth_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, auth_event("web01", "pend", "2024-01-04T12:00:00"), T0);
    apply(e, auth_event("db01", "pend", "2024-01-04T12:00:01"), T0 + SEC);
    apply(e, auth_event("db01", "accept", "2024-01-04T12:00:02"), T0 + 2 * SEC); /* no match */
    apply(e, auth_event("db01", "pend", "2024-01-04T12:00:03"), T0 + 3 * SEC);
    apply(e, auth_event("web01", "pend", "2024-01-04T12:00:04"), T0 + 4 * SEC);
    cr_expect_eq(next(e, T0 + 4 * SEC, &due), 0);
    apply(e, auth_event("db01", "pend", "2024-01-04T12:00:05"), T0 + 5 * SEC);
    cr_assert_eq(next(e, T0 + 5 * SEC, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_FIRE);
    cr_expect_str_eq(due.pipeline, "storm");
    cr_expect_eq(due.n_missing, 0);
    payload_t *p = summary_of(&due);
    EXPECT_STR(p, "key", "db01");
    EXPECT_LIST(p, "counts", "3");
    cr_expect_eq(s_int(p, "events"), 3);
    cr_expect_null(payload_lookup(payload_root(p), "jid"), "no job fields without all_expected");
    payload_destroy(&p);
    finish(e, &due);
    trigger_due_free(&due);

    cr_assert_eq(next(e, T0 + 5 * MINUTE, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_EXPIRE);
    cr_expect_str_eq(due.pipeline, "calm");
    p = summary_of(&due);
    EXPECT_STR(p, "key", "web01");
    EXPECT_LIST(p, "counts", "2");
    payload_destroy(&p);
    trigger_due_free(&due);
    cr_expect_eq(trigger_engine_stats(e)->joined, 5);
    trigger_engine_close(&e);
}

Test(trigger_engine, every_fire_criterion_must_hold)
{
    static condition_config_t failed[] = { { .field = "data.retcode", .op = COND_NE,
                                             .value = "0" } };
    static event_match_config_t fire[] = {
        { .tag = "/ret/", .count = 2 },
        { .tag = "/ret/", .where = failed, .n_where = 1, .count = 1 },
    };
    trigger_config_t t = job_trigger();
    t.all_expected = false;
    t.fire = fire;
    t.n_fire = 2;
    setup_t s;
    init_one(&s, t);
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, ret_event("9", "a", true, "2024-01-04T12:00:01"), T0);
    apply(e, ret_event("9", "b", true, "2024-01-04T12:00:02"), T0 + 1);
    cr_expect_eq(next(e, T0 + 1, &due), 0, "two returns but none failed");
    apply(e, ret_event("9", "c", false, "2024-01-04T12:00:03"), T0 + 2);
    cr_assert_eq(next(e, T0 + 2, &due), 1);
    payload_t *p = summary_of(&due);
    EXPECT_LIST(p, "counts", "3,1");
    payload_destroy(&p);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

static event_match_config_t START_MATCH[] = { { .tag = "^salt/minion/[^/]+/start$" } };

static trigger_config_t restart_trigger(expire_from_t from)
{
    return (trigger_config_t) {
        .name = "restarts", .match = START_MATCH, .n_match = 1, .distinguished_by = ID_KEY,
        .n_distinguished_by = 1, .expire_from = from, .expire_s = 60,
        .expire_pipeline = "restart_summary", .line = 50,
    };
}

static worker_event_t *start_event(const char *id, const char *stamp)
{
    char tag[64];
    snprintf(tag, sizeof tag, "salt/minion/%s/start", id);
    return json_event(tag, "{\"id\": \"%s\", \"cmd\": \"_minion_event\", \"_stamp\": \"%s\"}",
                      id, stamp);
}

Test(trigger_engine, expiry_from_the_last_event_extends)
{
    setup_t s;
    init_one(&s, restart_trigger(EXPIRE_FROM_LAST));
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, start_event("web01", "2024-01-04T12:00:00"), T0);
    cr_expect_eq(trigger_engine_next_due(e), T0 + MINUTE);
    apply(e, start_event("web01", "2024-01-04T12:00:50"), T0 + 50 * SEC);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 110 * SEC);
    cr_expect_eq(next(e, T0 + MINUTE, &due), 0, "the second event moved the expiry");
    cr_assert_eq(next(e, T0 + 110 * SEC, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_EXPIRE);
    cr_expect_str_eq(due.pipeline, "restart_summary");
    payload_t *p = summary_of(&due);
    cr_expect_eq(s_int(p, "events"), 2);
    cr_expect_float_eq(field(p, "duration")->via.f64, 50.0, 1e-9);
    payload_destroy(&p);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

Test(trigger_engine, expiry_from_the_first_event_does_not_move)
{
    setup_t s;
    init_one(&s, restart_trigger(EXPIRE_FROM_FIRST));
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, start_event("web01", "2024-01-04T12:00:00"), T0);
    apply(e, start_event("web01", "2024-01-04T12:00:50"), T0 + 50 * SEC);
    cr_expect_eq(trigger_engine_next_due(e), T0 + MINUTE);
    cr_assert_eq(next(e, T0 + MINUTE, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_EXPIRE, "no fire criteria: it only expires");
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

Test(trigger_engine, fire_delay_waits_after_the_criteria_hold)
{
    trigger_config_t t = job_trigger();
    t.fire_delay_s = 30;
    setup_t s;
    init_one(&s, t);
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, new_event("10", "[\"a\"]", "[]", "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("10", "a", true, "2024-01-04T12:00:03"), T0 + 3 * SEC);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 33 * SEC);
    /* events during the delay still join; the delay counts from when the criteria held */
    apply(e, ret_event("10", "a", true, "2024-01-04T12:00:10"), T0 + 10 * SEC);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 33 * SEC);
    cr_expect_eq(next(e, T0 + 33 * SEC - 1, &due), 0);
    cr_assert_eq(next(e, T0 + 33 * SEC, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_FIRE);
    trigger_due_free(&due);

    /* a delay that outlasts the expiry: the stream expires */
    apply(e, new_event("11", "[\"a\"]", "[]", "2024-01-04T12:10:00"), T0 + 10 * MINUTE);
    apply(e, ret_event("11", "a", true, "2024-01-04T12:24:50"), T0 + 24 * MINUTE + 50 * SEC);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 25 * MINUTE);
    cr_assert_eq(next(e, T0 + 30 * MINUTE, &due), 1, "late look: still expired, not fired");
    cr_expect_eq(due.reason, TRIGGER_EXPIRE);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

static condition_config_t HIGHSTATE[] = { { .field = "data.fun", .op = COND_EQ,
                                            .value = "state.highstate" } };
static event_match_config_t HIGHSTATE_MATCH[] = { { .tag = "^salt/job/[0-9]+/ret/",
                                                    .where = HIGHSTATE, .n_where = 1 } };
static char *DAY_KEY[] = { "data.id", "stamp|day" };

static worker_event_t *highstate_event(const char *id, const char *stamp)
{
    char tag[64];
    snprintf(tag, sizeof tag, "salt/job/1/ret/%s", id);
    return json_event(tag, "{\"id\": \"%s\", \"fun\": \"state.highstate\", \"retcode\": 0, "
                      "\"_stamp\": \"%s\"}", id, stamp);
}

Test(trigger_engine, key_with_a_day_bucket_of_the_stamp)
{
    trigger_config_t t = {
        .name = "daily_highstate", .match = HIGHSTATE_MATCH, .n_match = 1,
        .distinguished_by = DAY_KEY, .n_distinguished_by = 2, .expire_from = EXPIRE_FROM_FIRST,
        .expire_s = 86400, .expire_pipeline = "daily", .line = 60,
    };
    setup_t s;
    init_one(&s, t);
    trigger_engine_t *e = open_engine(&s);
    apply(e, highstate_event("web01", "2024-01-04T10:00:00"), T0);
    apply(e, highstate_event("web01", "2024-01-04T23:59:59.999999"), T0 + 1);
    apply(e, highstate_event("web01", "2024-01-05T00:00:00"), T0 + 2);
    apply(e, highstate_event("db01", "2024-01-04T11:00:00"), T0 + 3);
    apply(e, json_event("salt/job/1/ret/db01", "{\"id\": \"db01\", \"fun\": \"test.ping\", "
                        "\"_stamp\": \"2024-01-04T11:00:00\"}"), T0 + 4);   /* no match */
    apply(e, json_event("salt/job/1/ret/x", "{\"id\": \"x\", \"fun\": \"state.highstate\"}"),
          T0 + 5);   /* no stamp: no key */
    const trigger_engine_stats_t *st = trigger_engine_stats(e);
    cr_expect_eq(st->streams_open, 3);
    cr_expect_eq(st->unkeyed, 1);
    const char *want[][2] = { { "web01/2024-01-04", "2" }, { "web01/2024-01-05", "1" },
                              { "db01/2024-01-04", "1" } };
    for (int i = 0; i < 3; i++) {
        trigger_due_t due;
        cr_assert_eq(next(e, T0 + DAY + 3, &due), 1);
        payload_t *p = summary_of(&due);
        EXPECT_STR(p, "key", want[i][0]);
        cr_expect_eq(s_int(p, "events"), atoi(want[i][1]));
        payload_destroy(&p);
        finish(e, &due);
        trigger_due_free(&due);
    }
    trigger_engine_close(&e);
}

/* Only failing returns join; the operators themselves are covered in test_trigger_match. */
Test(trigger_engine, field_conditions_decide_who_joins)
{
    static condition_config_t conds[] = {
        { .field = "data.retcode", .op = COND_GT, .value = "0" },
        { .field = "data.fun", .op = COND_NOMATCH, .value = "^saltutil\\." },
        { .field = "data.id", .op = COND_EXISTS },
    };
    static event_match_config_t match[] = { { .tag = "/ret/", .where = conds, .n_where = 3 } };
    static char *key[] = { "data.fun" };
    trigger_config_t t = { .name = "failures", .match = match, .n_match = 1,
                           .distinguished_by = key, .n_distinguished_by = 1,
                           .expire_from = EXPIRE_FROM_FIRST, .expire_s = 60,
                           .expire_pipeline = "p" };
    setup_t s;
    init_one(&s, t);
    trigger_engine_t *e = open_engine(&s);
    const char *events[] = {
        "{\"id\": \"a\", \"fun\": \"state.apply\", \"retcode\": 2}",        /* joins */
        "{\"id\": \"b\", \"fun\": \"state.apply\", \"retcode\": 0}",
        "{\"id\": \"c\", \"fun\": \"saltutil.find_job\", \"retcode\": 1}",
        "{\"fun\": \"state.apply\", \"retcode\": 1}",
        "{\"id\": \"d\", \"fun\": \"cmd.run\", \"retcode\": \"127\"}",      /* joins */
        "{\"id\": \"e\", \"fun\": \"cmd.run\"}",
    };
    for (size_t i = 0; i < sizeof events / sizeof *events; i++)
        apply(e, json_event("salt/job/1/ret/x", "%s", events[i]), T0);
    const trigger_engine_stats_t *st = trigger_engine_stats(e);
    cr_expect_eq(st->events, 6);
    cr_expect_eq(st->joined, 2);
    cr_expect_eq(st->streams_open, 2);
    trigger_engine_close(&e);
}

/* ---------------------------------------------------------------- persistence */

Test(trigger_engine, restart_keeps_streams)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, new_event("12", "[\"a\", \"b\"]", "[]", "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("12", "a", true, "2024-01-04T12:00:01"), T0 + 1);
    trigger_engine_close(&e);

    e = open_engine(&s);
    cr_expect_eq(trigger_engine_stats(e)->streams_open, 1);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 15 * MINUTE);
    apply(e, ret_event("12", "a", true, "2024-01-04T12:00:02"), T0 + 2);
    apply(e, ret_event("12", "b", false, "2024-01-04T12:00:03"), T0 + 3);
    cr_assert_eq(next(e, T0 + 3, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_FIRE);
    payload_t *p = summary_of(&due);
    cr_expect_eq(s_int(p, "events"), 4);
    cr_expect_eq(s_int(p, "returned"), 2);
    cr_expect_eq(s_int(p, "duplicates"), 1);
    EXPECT_STR(p, "first_stamp", "2024-01-04T12:00:00");
    payload_destroy(&p);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

Test(trigger_engine, streams_in_progress_are_due_again_after_a_restart)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t first, again;
    apply(e, new_event("13", "[\"a\", \"b\"]", "[]", "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("13", "a", true, "2024-01-04T12:00:01"), T0 + 1);
    cr_assert_eq(next(e, T0 + 15 * MINUTE, &first), 1);
    cr_expect_eq(trigger_engine_next_due(e), INT64_MAX, "handed out: not due by itself");
    trigger_engine_close(&e);   /* the pipeline never reported: a crash */

    e = open_engine(&s);
    cr_expect_eq(trigger_engine_next_due(e), 0, "due at once");
    cr_expect_eq(trigger_engine_stats(e)->streams_open, 0);
    cr_assert_eq(next(e, T0 + 15 * MINUTE + 5, &again), 1);
    cr_expect_eq(again.stream_id, first.stream_id);
    cr_expect_eq(again.reason, TRIGGER_EXPIRE);
    cr_expect_str_eq(again.tag.data, first.tag.data);
    cr_assert_eq(again.summary.size, first.summary.size);
    cr_expect_eq(memcmp(again.summary.data, first.summary.data, first.summary.size), 0,
                 "the same summary, byte for byte");
    cr_expect_eq(trigger_engine_stats(e)->expired, 0, "counted once, before the restart");
    finish(e, &again);
    trigger_due_free(&first);
    trigger_due_free(&again);
    trigger_engine_close(&e);
    e = open_engine(&s);
    cr_expect_eq(trigger_engine_next_due(e), INT64_MAX);
    trigger_engine_close(&e);
}

Test(trigger_engine, defer_and_finish)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due, retry;
    char err[256];
    apply(e, new_event("14", "[\"a\"]", "[]", "2024-01-04T12:00:00"), T0);
    apply(e, ret_event("14", "a", true, "2024-01-04T12:00:01"), T0 + 1);
    cr_assert_eq(next(e, T0 + 1, &due), 1);
    cr_assert_eq(trigger_engine_defer(e, due.stream_id, T0 + 5 * SEC, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 5 * SEC);
    cr_expect_eq(next(e, T0 + 5 * SEC - 1, &retry), 0);

    /* the retry time survives a restart */
    trigger_engine_close(&e);
    e = open_engine(&s);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 5 * SEC);
    cr_assert_eq(next(e, T0 + 5 * SEC, &retry), 1);
    cr_expect_eq(retry.stream_id, due.stream_id);
    cr_expect_eq(retry.reason, TRIGGER_FIRE, "the reason it was first handed out with");
    cr_expect_eq(trigger_engine_stats(e)->deferred, 0);
    cr_assert_eq(trigger_engine_defer(e, retry.stream_id, T0 + 9 * SEC, err, sizeof err), 0);
    cr_expect_eq(trigger_engine_stats(e)->deferred, 1);
    trigger_due_free(&retry);
    cr_assert_eq(next(e, T0 + 9 * SEC, &retry), 1);
    finish(e, &retry);
    cr_expect_eq(trigger_engine_next_due(e), INT64_MAX);
    cr_expect_eq(trigger_engine_finish(e, retry.stream_id, err, sizeof err), -1);
    cr_expect(strstr(err, "is not in progress"), "%s", err);
    cr_expect_eq(trigger_engine_defer(e, retry.stream_id, T0, err, sizeof err), -1);

    /* an open stream cannot be finished or deferred: only what next() handed out */
    apply(e, new_event("15", "[\"a\"]", "[]", "2024-01-04T12:00:10"), T0 + 10 * SEC);
    cr_expect_eq(trigger_engine_finish(e, retry.stream_id + 1, err, sizeof err), -1);
    cr_expect_eq(trigger_engine_defer(e, retry.stream_id + 1, T0, err, sizeof err), -1);
    cr_expect_eq(trigger_engine_stats(e)->streams_open, 1);
    trigger_due_free(&due);
    trigger_due_free(&retry);
    trigger_engine_close(&e);
}

Test(trigger_engine, max_streams_evicts_the_oldest)
{
    trigger_config_t t = auth_trigger();
    setup_t s;
    init_setup(&s, &t, 1, 2);
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, auth_event("a", "pend", "2024-01-04T12:00:00"), T0);
    apply(e, auth_event("b", "pend", "2024-01-04T12:00:01"), T0 + 1);
    apply(e, auth_event("a", "pend", "2024-01-04T12:00:02"), T0 + 2);   /* a is open: joins */
    cr_expect_eq(trigger_engine_stats(e)->evicted, 0);
    apply(e, auth_event("c", "pend", "2024-01-04T12:00:03"), T0 + 3);
    const trigger_engine_stats_t *st = trigger_engine_stats(e);
    cr_expect_eq(st->evicted, 1);
    cr_expect_eq(st->streams_open, 2);
    cr_expect_eq(trigger_engine_next_due(e), 0);
    cr_assert_eq(next(e, T0 + 3, &due), 1);
    cr_expect_eq(due.reason, TRIGGER_EVICTED);
    cr_expect_str_eq(due.pipeline, "calm");
    cr_expect_str_eq(due.tag.data, "eventsd/trigger/auth_storm/expire");
    payload_t *p = summary_of(&due);
    EXPECT_STR(p, "key", "a");
    EXPECT_STR(p, "reason", "evicted");
    cr_expect_eq(s_int(p, "events"), 2);
    payload_destroy(&p);
    finish(e, &due);
    trigger_due_free(&due);
    cr_expect_eq(next(e, T0 + 3, &due), 0);
    /* a new event of a starts a new stream and evicts b, the oldest open one now */
    apply(e, auth_event("a", "pend", "2024-01-04T12:00:04"), T0 + 4);
    cr_assert_eq(next(e, T0 + 4, &due), 1);
    p = summary_of(&due);
    EXPECT_STR(p, "key", "b");
    payload_destroy(&p);
    trigger_due_free(&due);
    cr_expect_eq(trigger_engine_stats(e)->evicted, 2);
    trigger_engine_close(&e);
}

/* A trigger the worker no longer runs: its streams are set aside, not handed out with a
 * missing config, and come back when a config runs it again. */
Test(trigger_engine, streams_of_a_removed_trigger_wait)
{
    trigger_config_t both[] = { job_trigger(), auth_trigger() };
    setup_t s;
    init_setup(&s, both, 2, 0);
    trigger_engine_t *e = open_engine(&s);
    trigger_due_t due;
    apply(e, auth_event("a", "pend", "2024-01-04T12:00:00"), T0);
    trigger_engine_close(&e);

    setup_t jobs_only;
    init_one(&jobs_only, job_trigger());
    e = open_engine(&jobs_only);
    cr_expect_eq(next(e, T0 + HOUR, &due), 0);
    cr_expect_eq(trigger_engine_stats(e)->orphaned, 1);
    cr_expect_eq(trigger_engine_next_due(e), INT64_MAX);
    trigger_engine_close(&e);

    e = open_engine(&s);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 5 * MINUTE);
    cr_assert_eq(next(e, T0 + HOUR, &due), 1);
    cr_expect_eq(due.trigger, &s.t[1]);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

Test(trigger_engine, reopening_with_a_new_expiry_reschedules)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    apply(e, new_event("16", "[\"a\"]", "[]", "2024-01-04T12:00:00"), T0);
    cr_expect_eq(trigger_engine_next_due(e), T0 + 15 * MINUTE);
    trigger_engine_close(&e);
    s.t[0].expire_s = 60;
    e = open_engine(&s);
    cr_expect_eq(trigger_engine_next_due(e), T0 + MINUTE);
    trigger_engine_close(&e);
}

/* A batch that fails half-way (here a constraint planted in the file rejects one member)
 * leaves no trace: rows, counters and due times are as before, and the retried batch
 * applies in full. */
Test(trigger_engine, a_failed_batch_applies_nothing)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(statepath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TRIGGER boom BEFORE INSERT ON members "
                              "WHEN NEW.minion = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
                              NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    worker_event_t *batch[3] = {
        new_event("17", "[\"a\", \"boom\"]", "[]", "2024-01-04T12:00:00"),
        ret_event("17", "a", true, "2024-01-04T12:00:01"),
        ret_event("17", "boom", true, "2024-01-04T12:00:02"),
    };
    const trigger_engine_stats_t before = *trigger_engine_stats(e);
    char err[512] = "";
    cr_expect_eq(trigger_engine_apply(e, batch, 3, T0, err, sizeof err), -1);
    cr_expect(strstr(err, "boom"), "%s", err);
    const trigger_engine_stats_t *st = trigger_engine_stats(e);
    cr_expect_eq(st->events, before.events);
    cr_expect_eq(st->joined, before.joined);
    cr_expect_eq(st->streams_open, 0);
    cr_expect_eq(trigger_engine_next_due(e), INT64_MAX);

    cr_assert_eq(sqlite3_exec(db, "DROP TRIGGER boom", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(trigger_engine_apply(e, batch, 3, T0, err, sizeof err), 0, "%s", err);
    cr_expect_eq(st->streams_open, 1);
    trigger_due_t due;
    cr_assert_eq(next(e, T0, &due), 1);
    payload_t *p = summary_of(&due);
    cr_expect_eq(s_int(p, "events"), 3);
    cr_expect_eq(s_int(p, "returned"), 2);
    payload_destroy(&p);
    trigger_due_free(&due);
    for (int i = 0; i < 3; i++)
        worker_event_destroy(&batch[i]);
    trigger_engine_close(&e);
}

/* ---------------------------------------------------------------- cost per event */

typedef struct {
    uint64_t statements, rows;
} cost_t;

static cost_t cost_of(trigger_engine_t *e, worker_event_t *ev, int64_t now)
{
    const trigger_engine_stats_t *st = trigger_engine_stats(e);
    cost_t before = { st->statements, st->rows_changed };
    apply(e, ev, now);
    return (cost_t) { st->statements - before.statements, st->rows_changed - before.rows };
}

/* Applies n returns of job jid (minions "m<i>" from `from`) in batches of `batch`. */
static void apply_returns(trigger_engine_t *e, const char *jid, int from, int n, int batch,
                          int64_t now)
{
    worker_event_t **evs = calloc((size_t) batch, sizeof *evs);
    char err[512] = "";
    for (int i = 0; i < n; i += batch) {
        int k = n - i < batch ? n - i : batch;
        for (int j = 0; j < k; j++) {
            char minion[32];
            snprintf(minion, sizeof minion, "m%d", from + i + j);
            evs[j] = ret_event(jid, minion, true, "2024-01-04T12:00:05");
        }
        cr_assert_eq(trigger_engine_apply(e, evs, (size_t) k, now, err, sizeof err), 0, "%s",
                     err);
        for (int j = 0; j < k; j++)
            worker_event_destroy(&evs[j]);
    }
    free(evs);
}

Test(trigger_engine, a_return_costs_the_same_in_a_10000_minion_job)
{
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    char *small = minion_list("m", 10), *big = minion_list("m", 10000);
    cost_t new_small = cost_of(e, new_event("100", small, "[]", "2024-01-04T12:00:00"), T0);
    cost_t new_big = cost_of(e, new_event("200", big, "[]", "2024-01-04T12:00:00"), T0);
    /* the new event: one upsert per listed minion */
    cr_expect_eq(new_big.statements - new_small.statements, 10000 - 10);
    cr_expect_eq(new_big.rows - new_small.rows, 10000 - 10);

    for (int i = 0; i < 5; i++) {
        char minion[16];
        snprintf(minion, sizeof minion, "m%d", i);
        cost_t a = cost_of(e, ret_event("100", minion, true, "2024-01-04T12:00:01"), T0 + 1);
        cost_t b = cost_of(e, ret_event("200", minion, true, "2024-01-04T12:00:01"), T0 + 1);
        /* BEGIN, find the stream, upsert the member, update the stream, COMMIT */
        cr_expect_eq(a.statements, 5, "return %d: %llu statements", i,
                     (unsigned long long) a.statements);
        cr_expect_eq(b.statements, a.statements, "return %d in the big job", i);
        /* the member row and the stream row */
        cr_expect_eq(a.rows, 2);
        cr_expect_eq(b.rows, a.rows, "return %d in the big job", i);
    }
    /* a duplicate costs the same */
    cost_t dup = cost_of(e, ret_event("200", "m0", true, "2024-01-04T12:00:02"), T0 + 2);
    cr_expect_eq(dup.statements, 5);

    /* the big job completes when its last minion returns, and only then */
    trigger_due_t due;
    apply_returns(e, "200", 5, 9994, 500, T0 + 3);
    cr_expect_eq(next(e, T0 + 3, &due), 0);
    cost_t last = cost_of(e, ret_event("200", "m9999", true, "2024-01-04T12:00:06"), T0 + 4);
    cr_expect_eq(last.statements, 5);
    cr_assert_eq(next(e, T0 + 4, &due), 1);
    payload_t *p = summary_of(&due);
    EXPECT_STR(p, "jid", "200");
    cr_expect_eq(s_int(p, "expected"), 10000);
    cr_expect_eq(s_int(p, "returned"), 10000);
    cr_expect_eq(s_int(p, "duplicates"), 1);
    EXPECT_LIST(p, "missing", "");
    payload_destroy(&p);
    finish(e, &due);
    trigger_due_free(&due);
    free(small);
    free(big);
    trigger_engine_close(&e);
}

/* ---------------------------------------------------------------- summary */

static const char *const JOB_KEYS[] = {
    "trigger", "key", "reason", "events", "first_stamp", "last_stamp", "duration", "counts",
    "jid", "fun", "target", "user", "expected_known", "expected", "returned", "succeeded",
    "failed", "missing", "missing_count", "duplicates", "unexpected",
};

Test(trigger_engine, summary_contents)
{
    static event_match_config_t fire[] = { { .tag = "/ret/", .count = 1 } };
    trigger_config_t t = job_trigger();
    t.fire = fire;
    t.n_fire = 1;
    setup_t s;
    init_one(&s, t);
    trigger_engine_t *e = open_engine(&s);
    apply(e, json_event("salt/job/20240104120000123456/new",
                        "{\"jid\": \"20240104120000123456\", \"tgt_type\": \"list\", "
                        "\"tgt\": [\"a\", \"b\", \"c\"], \"user\": \"sudo_ops\", "
                        "\"fun\": \"state.apply\", \"arg\": [\"web\"], "
                        "\"minions\": [\"a\", \"b\", \"c\"], \"missing\": [], "
                        "\"_stamp\": \"2024-01-04T12:00:00.500000\"}"), T0);
    apply(e, ret_event("20240104120000123456", "b", true, "2024-01-04T12:00:02"), T0 + 2000);
    apply(e, ret_event("20240104120000123456", "a", false, "2024-01-04T12:00:03.25"), T0 + 3000);
    trigger_due_t due;
    cr_assert_eq(next(e, T0 + 15 * MINUTE, &due), 1);
    payload_t *p = summary_of(&due);
    const msgpack_object *root = payload_root(p);
    cr_assert_eq(root->via.map.size, sizeof JOB_KEYS / sizeof *JOB_KEYS);
    for (uint32_t i = 0; i < root->via.map.size; i++)
        cr_expect(payload_str_equals(&root->via.map.ptr[i].key, JOB_KEYS[i]), "key %u is not %s",
                  i, JOB_KEYS[i]);
    EXPECT_STR(p, "trigger", "jobs");
    EXPECT_STR(p, "key", "20240104120000123456");
    EXPECT_STR(p, "reason", "expire");
    cr_expect_eq(s_int(p, "events"), 3);
    EXPECT_STR(p, "first_stamp", "2024-01-04T12:00:00.500000");
    EXPECT_STR(p, "last_stamp", "2024-01-04T12:00:03.25");
    cr_expect_eq(field(p, "duration")->type, MSGPACK_OBJECT_FLOAT64);
    cr_expect_float_eq(field(p, "duration")->via.f64, 2.75, 1e-9);
    EXPECT_LIST(p, "counts", "2");
    EXPECT_STR(p, "jid", "20240104120000123456");
    EXPECT_STR(p, "fun", "state.apply");
    EXPECT_LIST(p, "target", "a,b,c");   /* the list as Salt sent it */
    EXPECT_STR(p, "user", "sudo_ops");
    cr_expect_eq(field(p, "expected_known")->type, MSGPACK_OBJECT_BOOLEAN);
    cr_expect(field(p, "expected_known")->via.boolean);
    cr_expect_eq(s_int(p, "expected"), 3);
    cr_expect_eq(s_int(p, "returned"), 2);
    cr_expect_eq(s_int(p, "succeeded"), 1);
    cr_expect_eq(s_int(p, "failed"), 1);
    EXPECT_LIST(p, "missing", "c");
    cr_expect_eq(s_int(p, "missing_count"), 1);
    cr_expect_eq(s_int(p, "duplicates"), 0);
    cr_expect_eq(s_int(p, "unexpected"), 0);
    payload_destroy(&p);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

Test(trigger_engine, summary_without_all_expected)
{
    setup_t s;
    init_one(&s, restart_trigger(EXPIRE_FROM_FIRST));
    trigger_engine_t *e = open_engine(&s);
    apply(e, json_event("salt/minion/web01/start", "{\"id\": \"web01\"}"), T0);
    apply(e, json_event("salt/minion/web01/start", "{\"id\": \"web01\"}"), T0 + 1500);
    trigger_due_t due;
    cr_assert_eq(next(e, T0 + MINUTE, &due), 1);
    payload_t *p = summary_of(&due);
    const msgpack_object *root = payload_root(p);
    cr_assert_eq(root->via.map.size, 8);
    for (uint32_t i = 0; i < 8; i++)
        cr_expect(payload_str_equals(&root->via.map.ptr[i].key, JOB_KEYS[i]));
    EXPECT_STR(p, "first_stamp", "(nil)");
    EXPECT_STR(p, "last_stamp", "(nil)");
    cr_expect_float_eq(field(p, "duration")->via.f64, 1.5, 1e-9, "by arrival without stamps");
    EXPECT_LIST(p, "counts", "");
    cr_expect_eq(due.missing, NULL);
    payload_destroy(&p);
    trigger_due_free(&due);
    trigger_engine_close(&e);
}

/* ---------------------------------------------------------------- explain and errors */

static char *explain(setup_t *s, worker_event_t *ev)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    trigger_engine_explain(&s->cfg, &s->w, ev, out);
    fclose(out);
    worker_event_destroy(&ev);
    return text;
}

Test(trigger_engine, explain_says_which_stream)
{
    trigger_config_t both[] = { job_trigger(), auth_trigger() };
    setup_t s;
    init_setup(&s, both, 2, 0);
    char *text = explain(&s, ret_event("42", "web01", true, "2024-01-04T12:00:00"));
    cr_expect_str_eq(text, "    trigger 'jobs': joins stream '42'; return of minion 'web01'\n"
                           "    trigger 'auth_storm': does not match\n");
    free(text);
    text = explain(&s, new_event("42", "[\"a\", \"b\"]", "[]", "2024-01-04T12:00:00"));
    cr_expect(strstr(text, "    trigger 'jobs': joins stream '42'; expected list of 2 "
                           "minions\n"), "%s", text);
    free(text);
    text = explain(&s, auth_event("db01", "pend", "2024-01-04T12:00:00"));
    cr_expect(strstr(text, "    trigger 'auth_storm': joins stream 'db01'; counts for fire "
                           "#1\n"), "%s", text);
    free(text);
    text = explain(&s, json_event("salt/auth", "{\"act\": \"pend\"}"));
    cr_expect(strstr(text, "    trigger 'auth_storm': matches but joins no stream: no value "
                           "for distinguished_by\n      (missing: 'data.id'; counted as "
                           "unkeyed)\n"), "%s", text);
    free(text);
    cr_expect_neq(access(statepath, F_OK), 0, "explain reads no state");
}

Test(trigger_engine, errors_at_open_name_the_file_and_line)
{
    char err[512];
    static event_match_config_t bad[] = { { .tag = "^salt/(job", .line = 77 } };
    trigger_config_t t = job_trigger();
    t.match = bad;
    setup_t s;
    init_one(&s, t);
    cr_expect_null(trigger_engine_open(&s.cfg, &s.w, err, sizeof err));
    cr_expect(strstr(err, "/etc/eventsd/eventsd.conf:77: trigger 'jobs' match #1 tag pattern "
                          "'^salt/(job': ") == err, "%s", err);

    t = job_trigger();
    t.expected_tag = "[";
    init_one(&s, t);
    cr_expect_null(trigger_engine_open(&s.cfg, &s.w, err, sizeof err));
    cr_expect(strstr(err, "/etc/eventsd/eventsd.conf:10: trigger 'jobs' expected_tag pattern "
                          "'[': ") == err, "%s", err);

    init_one(&s, job_trigger());
    s.names[0] = "nope";
    cr_expect_null(trigger_engine_open(&s.cfg, &s.w, err, sizeof err));
    cr_expect_str_eq(err, "/etc/eventsd/eventsd.conf:40: worker 'tracker' names unknown "
                          "trigger 'nope'");

    init_one(&s, job_trigger());
    char dir_path[160];
    snprintf(dir_path, sizeof dir_path, "%s/no/such/dir/streams.db", tmpdir);
    s.w.state = dir_path;
    cr_expect_null(trigger_engine_open(&s.cfg, &s.w, err, sizeof err));
    cr_expect(strstr(err, "sqlite: cannot open ") == err, "%s", err);
}

/* ---------------------------------------------------------------- benchmark */

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Applies evs in batches of `batch` (as a worker commits them); destroys them. Seconds. */
static double timed_apply(trigger_engine_t *e, worker_event_t **evs, int n, int batch,
                          int64_t now)
{
    char err[512] = "";
    double t = seconds();
    for (int i = 0; i < n; i += batch) {
        size_t k = (size_t) (n - i < batch ? n - i : batch);
        cr_assert_eq(trigger_engine_apply(e, evs + i, k, now, err, sizeof err), 0, "%s", err);
    }
    t = seconds() - t;
    for (int i = 0; i < n; i++)
        worker_event_destroy(&evs[i]);
    return t;
}

/* events/s of returns: 1000 jobs of 10 minions against one job of 10,000 (10,000 returns
 * each, batches of 500). Prints, asserts nothing. */
Test(trigger_engine, bench_returns, .timeout = 600)
{
    if (!getenv("EVENTSD_TRIGGER_BENCH"))
        cr_skip_test("set EVENTSD_TRIGGER_BENCH=1 to run");
    enum { N = 10000, BATCH = 500 };
    setup_t s;
    init_one(&s, job_trigger());
    trigger_engine_t *e = open_engine(&s);
    char *small = minion_list("m", 10), *big = minion_list("m", N);
    worker_event_t **evs = calloc(N + N / 10, sizeof *evs);
    for (int j = 0; j < N / 10; j++) {
        char jid[32], minion[32];
        snprintf(jid, sizeof jid, "%d", 1000 + j);
        evs[j] = new_event(jid, small, "[]", "2024-01-04T12:00:00");
        for (int m = 0; m < 10; m++) {   /* a job's returns come close together */
            snprintf(minion, sizeof minion, "m%d", m);
            evs[N / 10 + j * 10 + m] = ret_event(jid, minion, true, "2024-01-04T12:00:01");
        }
    }
    double small_new = timed_apply(e, evs, N / 10, BATCH, T0);
    uint64_t st0 = trigger_engine_stats(e)->statements;
    double small_s = timed_apply(e, evs + N / 10, N, BATCH, T0 + 1);
    uint64_t small_st = trigger_engine_stats(e)->statements - st0;

    evs[0] = new_event("9", big, "[]", "2024-01-04T12:00:00");
    double big_new = timed_apply(e, evs, 1, 1, T0 + 2);
    for (int m = 0; m < N; m++) {
        char minion[32];
        snprintf(minion, sizeof minion, "m%d", m);
        evs[m] = ret_event("9", minion, true, "2024-01-04T12:00:05");
    }
    st0 = trigger_engine_stats(e)->statements;
    double big_s = timed_apply(e, evs, N, BATCH, T0 + 3);
    uint64_t big_st = trigger_engine_stats(e)->statements - st0;
    printf("bench: returns, 1000 jobs of 10 minions: %.0f events/s (%.3f statements/return)\n",
           N / small_s, (double) small_st / N);
    printf("bench: returns, 1 job of 10,000 minions: %.0f events/s (%.3f statements/return)\n",
           N / big_s, (double) big_st / N);
    printf("bench: new events: 10-minion %.3f ms each, 10,000-minion %.1f ms\n",
           small_new * 1e3 / (N / 10), big_new * 1e3);
    free(evs);
    free(small);
    free(big);
    trigger_engine_close(&e);
}
