/* sink_redis: Event Count Logger interval counters in Redis (issue 6). Each event gives one
 * id through the worker's `counter` name template; the sink counts ids locally and adds them
 * to Redis in one MULTI/EXEC per sync: an INCRBY of <group>:<interval>:cur:<id> per id and
 * interval (key layout: ecl_key.h). The same transaction first rotates every interval whose
 * epoch-aligned boundary passed since this instance last saw it rotated (ecl_rotate.h: a Lua
 * script, idempotent per boundary, so instances sharing a group rotate once and need no
 * lock). Counts therefore land in the interval that is current when they are synced: an
 * event counted just before a boundary and synced just after it is in the new interval, at
 * most one sync period off, never lost and never rotated twice.
 *
 * Aggregating sink (sink.h): write_batch only counts; flush_at says when a sync is due
 * (sync_interval_ms after the first event held, at once after sync_limit events (at most half
 * of max_inflight, or the master would stop sending while the acks wait) or when the
 * id table is full, and at the next interval boundary so rotation is on time); flush syncs.
 * A failed sync returns SINK_RETRY and keeps every count; the worker's backoff retries it.
 *
 * A lost EXEC reply (the connection broke after EXEC was sent) leaves the outcome unknown.
 * Sending the counts again could count them twice, dropping them could lose them, so the
 * transaction also sets <group>:@sync:<instance> to its sequence number (random instance id,
 * 1 day expiry; outside ECL's key pattern, so ecl_reader never sees it). Before the next sync
 * the sink reads that key back: if it holds the sequence of the unknown transaction, the
 * counts were applied and are dropped, otherwise they are sent again. What remains:
 *   - a worker killed between EXEC and its ack: the master re-delivers those events to the
 *     next worker process, which counts them again (a window of microseconds);
 *   - an outage longer than the key's expiry with an unknown outcome: sent again.
 * An INCRBY that Redis refuses inside an applied transaction (someone stored text in one of
 * our keys) loses that count: it is logged with the totals, never retried, since the other
 * commands of the transaction were applied.
 *
 * Memory: at most MAX_IDS auto-declared ids per sync period; a further new id is not counted
 * (overflow, logged with the totals), and a full table triggers a sync at once.
 * Owns: its Redis connection, the compiled counter template, the counts, the group copy.
 */
#include "ecl_counts.h"
#include "ecl_group.h"
#include "ecl_key.h"
#include "ecl_rotate.h"
#include "log.h"
#include "name_template.h"
#include "redis_conn.h"
#include "sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAX_IDS 10000
#define TOKEN_TTL_MS "86400000"
/* flush_at aims this far past a boundary: the worker's monotonic clock and the wall clock
 * the boundary is computed from need not tick together. */
#define BOUNDARY_SLACK_MS 5

typedef enum { SYNC_APPLIED, SYNC_NOT_APPLIED, SYNC_UNKNOWN } sync_outcome_t;

typedef struct {
    const char *worker;          /* cfg->name, for log lines (the config outlives the sink) */
    ecl_group_t *group;
    name_template_t *counter;
    ecl_counts_t *counts;
    char *master_id;
    /* connection */
    redisContext *redis;
    char *host, *password;
    int port, db, timeout_ms;
    /* sync schedule */
    int sync_interval_ms, sync_limit;
    uint64_t held_events;        /* events absorbed since the last successful sync */
    int64_t first_held_ms;       /* clock_ms() of the first of them */
    int64_t *rotated;            /* per interval: newest boundary known rotated */
    /* lost-reply detection */
    char token_key[160];
    uint64_t seq;                /* sequence of the last transaction sent */
    bool unknown;                /* its outcome is unknown (reply lost) */
    /* events not counted, and counts Redis refused, since the start (logged as totals) */
    uint64_t missing, empty, undeclared, overflow, refused;
    uint64_t reported;           /* their sum when last logged */
    bool report;                 /* a new error to log */
    char refused_error[256];
    log_complaint_t skip_complaint;
    msgpack_sbuffer name, key;   /* scratch */
} redis_sink_t;

/* ---------------------------------------------------------------- setup */

static void redis_close(sink_t **self_p)
{
    redis_sink_t *s = (redis_sink_t *) *self_p;
    if (!s)
        return;
    redis_conn_close(&s->redis);
    ecl_group_destroy(&s->group);
    name_template_destroy(&s->counter);
    ecl_counts_destroy(&s->counts);
    msgpack_sbuffer_destroy(&s->name);
    msgpack_sbuffer_destroy(&s->key);
    free(s->rotated);
    free(s->master_id);
    free(s->host);
    free(s->password);
    free(s);
    *self_p = NULL;
}

/* Group and counter template: what check() can verify without a connection. */
static int load_group(redis_sink_t *s, const worker_config_t *cfg, char *err, size_t errlen)
{
    if (!(s->group = ecl_group_new(cfg, err, errlen)))
        return -1;
    char why[256];
    if (!cfg->counter || !(s->counter = name_template_compile(cfg->counter, why, sizeof why))) {
        snprintf(err, errlen, "worker '%s': 'counter': %s", s->worker,
                 cfg->counter ? why : "missing");
        return -1;
    }
    return 0;
}

/* Problems as "FILE:LINE: message" (the worker's line), as --check-config prints them. */
static int redis_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    redis_sink_t s = { .worker = cfg->name ? cfg->name : "?" };
    char why[512];
    int rc = load_group(&s, cfg, why, sizeof why);
    if (rc < 0)
        snprintf(err, errlen, "%s:%d: %s", config_worker_file(cfg), cfg->line, why);
    ecl_group_destroy(&s.group);
    name_template_destroy(&s.counter);
    return rc;
}

/* "<group>:@sync:<32 hex digits>": random, so instances never share one. */
static int make_token_key(redis_sink_t *s, char *err, size_t errlen)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t) sizeof r) {
        snprintf(err, errlen, "getrandom failed");
        return -1;
    }
    int n = snprintf(s->token_key, sizeof s->token_key, "%s:@sync:", s->group->name);
    for (size_t i = 0; i < sizeof r && n > 0 && (size_t) n + 2 < sizeof s->token_key; i++)
        n += snprintf(s->token_key + n, sizeof s->token_key - (size_t) n, "%02x", r[i]);
    if (n <= 0 || (size_t) n + 1 >= sizeof s->token_key) {
        snprintf(err, errlen, "worker '%s': group name too long", s->worker);
        return -1;
    }
    return 0;
}

static int load_counts(redis_sink_t *s, char *err, size_t errlen)
{
    if (!(s->counts = ecl_counts_new(MAX_IDS)))
        return snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < s->group->n_declared; i++)
        if (ecl_counts_declare(s->counts, s->group->declared[i], s->group->declared_len[i]) < 0)
            return snprintf(err, errlen, "out of memory"), -1;
    return 0;
}

static int copy_settings(redis_sink_t *s, const worker_config_t *cfg, const char *master_id)
{
    s->port = cfg->port ? cfg->port : 6379;
    s->db = cfg->db;
    s->timeout_ms = cfg->connect_timeout_ms;
    s->sync_interval_ms = cfg->sync_interval_ms > 0 ? cfg->sync_interval_ms : 1000;
    s->sync_limit = cfg->sync_limit > 0 ? cfg->sync_limit : 1000;
    /* The master sends at most max_inflight events before the worker acks, and the acks
     * wait for the sync: syncing by half of it keeps events flowing whatever sync_limit
     * and sync_interval_ms say. */
    if (cfg->max_inflight > 1 && s->sync_limit > cfg->max_inflight / 2)
        s->sync_limit = cfg->max_inflight / 2;
    s->skip_complaint.interval_ms = 60000;
    s->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    s->password = cfg->password ? strdup(cfg->password) : NULL;
    s->master_id = master_id ? strdup(master_id) : NULL;
    return s->host && (s->password || !cfg->password) && (s->master_id || !master_id) ? 0 : -1;
}

static sink_t *redis_open(const worker_config_t *cfg, const char *master_id, char *err,
                          size_t errlen)
{
    redis_sink_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->worker = cfg->name ? cfg->name : "?";
    msgpack_sbuffer_init(&s->name);
    msgpack_sbuffer_init(&s->key);
    sink_t *self = (sink_t *) s;
    if (copy_settings(s, cfg, master_id) < 0) {
        snprintf(err, errlen, "out of memory");
        redis_close(&self);
        return NULL;
    }
    if (load_group(s, cfg, err, errlen) < 0 || load_counts(s, err, errlen) < 0 ||
        make_token_key(s, err, errlen) < 0) {
        redis_close(&self);
        return NULL;
    }
    if (!(s->rotated = calloc((size_t) s->group->n_intervals, sizeof *s->rotated))) {
        snprintf(err, errlen, "out of memory");
        redis_close(&self);
        return NULL;
    }
    /* Connect now, so a wrong address or password shows when the worker starts. */
    s->redis = redis_conn_open(s->host, s->port, s->password, s->db, s->timeout_ms, err, errlen);
    if (!s->redis)
        redis_close(&self);
    return self;
}

/* ---------------------------------------------------------------- counting */

typedef enum { ID_OK, ID_MISSING, ID_EMPTY, ID_NOMEM } id_result_t;

/* The event's counter id, expanded and sanitised into name (name.data[0..*len)). */
static id_result_t event_id(const name_template_t *counter, const worker_event_t *ev,
                            const char *master_id, msgpack_sbuffer *name, size_t *len)
{
    name->size = 0;
    const msgpack_object *data = ev->data ? payload_root(ev->data) : NULL;
    int rc = name_template_expand(counter, ev->tag, ev->tag_len, data, master_id, NAME_KEY,
                                  name);
    if (rc != 0)
        return rc < 0 ? ID_NOMEM : ID_MISSING;
    *len = name->size ? ecl_id_sanitise(name->data, name->size) : 0;
    return *len ? ID_OK : ID_EMPTY;
}

/* Counts one event. 0, or -1 when out of memory. */
static int count_event(redis_sink_t *s, const worker_event_t *ev)
{
    size_t len = 0;
    switch (event_id(s->counter, ev, s->master_id, &s->name, &len)) {
    case ID_OK:      break;
    case ID_MISSING: s->missing++; return 0;
    case ID_EMPTY:   s->empty++; return 0;
    default:         return -1;
    }
    switch (ecl_counts_add(s->counts, s->name.data, len, s->group->auto_declare, 1)) {
    case ECL_ADD_OK:         return 0;
    case ECL_ADD_UNDECLARED: s->undeclared++; return 0;
    case ECL_ADD_FULL:       s->overflow++; return 0;
    default:                 return -1;
    }
}

static sink_result_t redis_write_batch(sink_t *self, worker_event_t *const *events, size_t n,
                                       size_t *bad_index, char *err, size_t errlen)
{
    redis_sink_t *s = (redis_sink_t *) self;
    (void) bad_index;
    for (size_t i = 0; i < n; i++) {
        /* Fatal, not retry: some events of the batch are counted already, and a retry would
         * count them twice. The worker exits without acking; the next one counts them all. */
        if (count_event(s, events[i]) < 0) {
            snprintf(err, errlen, "out of memory while counting");
            return SINK_FATAL;
        }
    }
    if (n && s->held_events == 0)
        s->first_held_ms = clock_ms();
    s->held_events += n;
    return SINK_OK;
}

/* ---------------------------------------------------------------- schedule */

/* clock_ms() of the next interval boundary of any of the group's intervals. */
/* The clock_ms() at which a rotation is next due: the end of the interval each was last
 * rotated into, or now for one this process has not rotated yet. Computed from what was
 * rotated, not from now, so a time that has come stays due until the flush rotated it. */
static int64_t next_boundary_at(const redis_sink_t *s)
{
    int64_t wall = wall_ms(), soonest = INT64_MAX;
    for (int i = 0; i < s->group->n_intervals; i++) {
        int64_t due = s->rotated[i] ? (s->rotated[i] + s->group->intervals_s[i]) * 1000 +
                                          BOUNDARY_SLACK_MS : wall;
        if (due - wall < soonest)
            soonest = due - wall;
    }
    if (soonest < 0)
        soonest = 0;
    return clock_ms() + soonest;
}

/* The worker asks also when nothing is held, so idle intervals rotate on time too. */
static int64_t redis_flush_at(sink_t *self)
{
    redis_sink_t *s = (redis_sink_t *) self;
    int64_t boundary = next_boundary_at(s);
    if (s->held_events == 0 && !s->unknown)
        return boundary;
    if (s->unknown || s->held_events >= (uint64_t) s->sync_limit || ecl_counts_full(s->counts))
        return clock_ms();
    int64_t due = s->first_held_ms + s->sync_interval_ms;
    return due < boundary ? due : boundary;
}

/* ---------------------------------------------------------------- sync */

/* Appends INCRBY <key> <n> for every id with sent counts and every interval. 0 or -1. */
static int append_increments(redis_sink_t *s, size_t *n_cmds)
{
    char num[24];
    for (size_t e = 0; e < ecl_counts_len(s->counts); e++) {
        uint64_t n = ecl_counts_sent(s->counts, e);
        if (n == 0)
            continue;
        size_t len;
        const char *id = ecl_counts_id(s->counts, e, &len);
        snprintf(num, sizeof num, "%" PRIu64, n);
        for (int i = 0; i < s->group->n_intervals; i++) {
            s->key.size = 0;
            if (ecl_key_counter(&s->key, s->group->name, s->group->interval_names[i], ECL_CUR,
                                id, len) < 0)
                return -1;
            const char *argv[] = { "INCRBY", s->key.data, num };
            size_t lens[] = { 6, s->key.size, strlen(num) };
            if (redisAppendCommandArgv(s->redis, 3, argv, lens) != REDIS_OK)
                return -1;
            (*n_cmds)++;
        }
    }
    return 0;
}

/* MULTI, the due rotations, the increments, the token, EXEC: all into the output buffer. */
static int append_transaction(redis_sink_t *s, const int64_t *due, size_t *n_cmds)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%" PRIu64, s->seq);
    if (redisAppendCommand(s->redis, "MULTI") != REDIS_OK)
        return -1;
    *n_cmds = 1;
    for (int i = 0; i < s->group->n_intervals; i++) {
        if (due[i] && ecl_rotate_append(s->redis, s->group, i, due[i]) < 0)
            return -1;
        *n_cmds += due[i] != 0;
    }
    if (append_increments(s, n_cmds) < 0)
        return -1;
    const char *argv[] = { "SET", s->token_key, seq, "PX", TOKEN_TTL_MS };
    if (redisAppendCommandArgv(s->redis, 5, argv, NULL) != REDIS_OK ||
        redisAppendCommand(s->redis, "EXEC") != REDIS_OK)
        return -1;
    *n_cmds += 2;
    return 0;
}

/* What an applied transaction says per command: rotations done, increments refused. */
static void apply_results(redis_sink_t *s, const redisReply *exec, const int64_t *due)
{
    size_t k = 0;
    for (int i = 0; i < s->group->n_intervals; i++) {
        if (!due[i] || k >= exec->elements)
            continue;
        const redisReply *r = exec->element[k++];
        if (r->type == REDIS_REPLY_INTEGER)
            s->rotated[i] = due[i];
        else if (r->type == REDIS_REPLY_ERROR) {
            snprintf(s->refused_error, sizeof s->refused_error, "rotate: %s", r->str);
            s->report = true;   /* retried by the next sync: the boundary stays due */
        }
    }
    for (size_t e = 0; e < ecl_counts_len(s->counts); e++) {
        uint64_t n = ecl_counts_sent(s->counts, e);
        for (int i = 0; n && i < s->group->n_intervals && k < exec->elements; i++) {
            const redisReply *r = exec->element[k++];
            if (r->type != REDIS_REPLY_ERROR)
                continue;
            s->refused += n;
            snprintf(s->refused_error, sizeof s->refused_error, "INCRBY: %s", r->str);
            s->report = true;
        }
    }
}

/* Reads every reply of the transaction (so the connection stays in step even after an
 * error). The outcome, with err set unless applied: unknown after an I/O error, and after a
 * refused MULTI, since the commands then ran outside a transaction (or did not): the sync
 * token, set by the last of them, tells later. */
static sync_outcome_t read_transaction(redis_sink_t *s, size_t n_cmds, const int64_t *due,
                                       char *err, size_t errlen)
{
    sync_outcome_t outcome = SYNC_NOT_APPLIED;
    char first_error[256] = "";
    for (size_t k = 0; k < n_cmds; k++) {
        void *r = NULL;
        if (redisGetReply(s->redis, &r) != REDIS_OK) {
            redis_conn_check(s->redis, NULL, "EXEC", err, errlen);
            return SYNC_UNKNOWN;   /* EXEC may have run: the token tells later */
        }
        redisReply *reply = r;
        if (reply->type == REDIS_REPLY_ERROR && !first_error[0])
            redis_conn_check(s->redis, reply, k == 0 ? "MULTI" : k + 1 == n_cmds ? "EXEC" :
                             "queueing", first_error, sizeof first_error);
        if (k == 0 && reply->type == REDIS_REPLY_ERROR)
            outcome = SYNC_UNKNOWN;   /* without MULTI the commands ran one by one, or not */
        if (k + 1 == n_cmds && reply->type == REDIS_REPLY_ARRAY) {
            apply_results(s, reply, due);
            outcome = SYNC_APPLIED;
        }
        freeReplyObject(reply);
    }
    if (outcome != SYNC_APPLIED)
        snprintf(err, errlen, "%s", first_error[0] ? first_error : "EXEC: transaction aborted");
    return outcome;
}

/* The rotation boundary due per interval (0 when not due). true when any is due. */
static bool due_rotations(const redis_sink_t *s, int64_t *due)
{
    int64_t now_s = wall_ms() / 1000;
    bool any = false;
    for (int i = 0; i < s->group->n_intervals; i++) {
        int64_t b = ecl_boundary(now_s, s->group->intervals_s[i]);
        due[i] = b > s->rotated[i] ? b : 0;
        any = any || due[i];
    }
    return any;
}

/* One transaction. SINK_OK, or SINK_RETRY with err (counts kept or, when the outcome is
 * unknown, marked for the check in resolve_unknown). */
static sink_result_t sync_counts(redis_sink_t *s, char *err, size_t errlen)
{
    int64_t *due = calloc((size_t) s->group->n_intervals, sizeof *due);
    if (!due)
        return snprintf(err, errlen, "out of memory"), SINK_RETRY;
    sink_result_t rc = SINK_OK;
    if (due_rotations(s, due) || ecl_counts_unsent(s->counts) > 0) {
        size_t n_cmds = 0;
        s->seq++;
        ecl_counts_mark_sent(s->counts);
        if (append_transaction(s, due, &n_cmds) < 0) {
            /* Half a transaction may sit in the output buffer: drop the connection. */
            snprintf(err, errlen, "out of memory building the transaction");
            ecl_counts_forget_sent(s->counts);
            redis_conn_close(&s->redis);
            rc = SINK_RETRY;
        } else {
            sync_outcome_t o = read_transaction(s, n_cmds, due, err, errlen);
            if (o == SYNC_APPLIED)
                ecl_counts_commit_sent(s->counts);
            else if (o == SYNC_NOT_APPLIED)
                ecl_counts_forget_sent(s->counts);
            s->unknown = o == SYNC_UNKNOWN;
            rc = o == SYNC_APPLIED ? SINK_OK : SINK_RETRY;
        }
    }
    free(due);
    return rc;
}

/* After a lost reply: was that transaction applied? 0 (counts settled) or -1 with err. */
static int resolve_unknown(redis_sink_t *s, char *err, size_t errlen)
{
    const char *argv[] = { "GET", s->token_key };
    redisReply *r = redis_conn_command(s->redis, 2, argv, NULL, "GET sync token", err, errlen);
    if (!r)
        return -1;
    char seq[24];
    snprintf(seq, sizeof seq, "%" PRIu64, s->seq);
    bool applied = r->type == REDIS_REPLY_STRING && strcmp(r->str, seq) == 0;
    freeReplyObject(r);
    if (applied)
        ecl_counts_commit_sent(s->counts);
    else
        ecl_counts_forget_sent(s->counts);
    s->unknown = false;
    log_info("msg=\"redis sync with a lost reply checked\" worker=%s applied=%s", s->worker,
             applied ? "yes" : "no");
    return 0;
}

/* Totals of what was not counted, once per sync at most (rate-limited). */
static void report_skipped(redis_sink_t *s)
{
    uint64_t total = s->missing + s->empty + s->undeclared + s->overflow + s->refused;
    if (total == s->reported && !s->report)
        return;
    s->reported = total;
    log_complain(&s->skip_complaint, LOG_LVL_WARNING,
                 "msg=\"redis counters: events not counted (totals since start)\" worker=%s "
                 "group=%s missing_field=%" PRIu64 " empty_id=%" PRIu64 " undeclared=%" PRIu64
                 " overflow=%" PRIu64 " refused=%" PRIu64 " last_error=\"%s\"", s->worker,
                 s->group->name, s->missing, s->empty, s->undeclared, s->overflow, s->refused,
                 s->refused_error);
    s->report = false;
}

static sink_result_t redis_flush(sink_t *self, char *err, size_t errlen)
{
    redis_sink_t *s = (redis_sink_t *) self;
    if (!redis_conn_usable(s->redis)) {
        redis_conn_close(&s->redis);
        s->redis = redis_conn_open(s->host, s->port, s->password, s->db, s->timeout_ms, err,
                                   errlen);
        if (!s->redis)
            return SINK_RETRY;
    }
    if (s->unknown && resolve_unknown(s, err, errlen) < 0) {
        redis_conn_close(&s->redis);
        return SINK_RETRY;
    }
    sink_result_t rc = sync_counts(s, err, errlen);
    if (rc != SINK_OK) {
        /* After an error reply the connection still works; after an I/O error or a timeout
         * it does not. Closing in both cases costs one reconnect and rules out a stale
         * reply arriving for the next command. */
        redis_conn_close(&s->redis);
        return rc;
    }
    s->held_events = 0;
    report_skipped(s);
    return SINK_OK;
}

/* ---------------------------------------------------------------- explain */

/* The id line and the keys it would add to. */
static void explain_id(redis_sink_t *s, const worker_event_t *ev, const char *master_id,
                       FILE *out)
{
    size_t len = 0;
    id_result_t r = event_id(s->counter, ev, master_id, &s->name, &len);
    if (r != ID_OK) {
        fprintf(out, "    not counted: %s\n", r == ID_MISSING ? "the counter template needs "
                "a field the event lacks" : r == ID_EMPTY ? "the counter id is empty" :
                "out of memory");
        return;
    }
    bool declared = ecl_group_is_declared(s->group, s->name.data, len);
    if (!declared && !s->group->auto_declare) {
        fprintf(out, "    not counted: id '%.*s' is not declared (auto_declare = false)\n",
                (int) len, s->name.data);
        return;
    }
    fprintf(out, "    counter id '%.*s' (%s)\n", (int) len, s->name.data,
            declared ? "declared" : "auto-declared");
    for (int i = 0; i < s->group->n_intervals; i++)
        fprintf(out, "    INCRBY %s:%s:cur:%.*s\n", s->group->name,
                s->group->interval_names[i], (int) len, s->name.data);
}

/* What the event would count, and where; nothing is connected. */
static void redis_explain(const worker_config_t *cfg, const char *master_id,
                          const worker_event_t *ev, FILE *out)
{
    char err[512];
    redis_sink_t s = { .worker = cfg->name ? cfg->name : "?" };
    msgpack_sbuffer_init(&s.name);
    if (load_group(&s, cfg, err, sizeof err) < 0) {
        fprintf(out, "    cannot count: %s\n", err);
    } else {
        fprintf(out, "    to redis %s:%d db %d, group '%s', synced every %d ms or %d events\n",
                cfg->host ? cfg->host : "127.0.0.1", cfg->port, cfg->db, s.group->name,
                cfg->sync_interval_ms, cfg->sync_limit);
        explain_id(&s, ev, master_id, out);
    }
    msgpack_sbuffer_destroy(&s.name);
    ecl_group_destroy(&s.group);
    name_template_destroy(&s.counter);
}

const sink_ops_t sink_redis_ops = {
    .defers_acks = true,
    .name = "redis",
    .check = redis_check,
    .open = redis_open,
    .write_batch = redis_write_batch,
    .close = redis_close,
    .flush_at = redis_flush_at,
    .flush = redis_flush,
    .explain = redis_explain,
};
