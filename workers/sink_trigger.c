/* sink_trigger: the sink of a trigger worker (issue 7). Events join streams in the trigger
 * engine (trigger_engine.h, one SQLite state file); due streams run their pipelines
 * (pipeline.h).
 *
 * write_batch applies the batch to the engine in one transaction (wall-clock time): SINK_OK
 * means committed, so the worker acks at once (defers_acks false). flush_at / flush are the
 * sink's timer: the worker calls flush when a stream is due (or a handler sink has timed
 * work, see pipeline_flush_at), even with no event held. flush runs each due stream's
 * pipeline and then finishes the stream, or defers it with a backoff of its own (1 s doubling
 * to 5 min, logged rate-limited); a stream without a pipeline is finished at once.
 * A pipeline that failed is also held for the same time (1 s .. 5 min, reset by a success):
 * its other due streams are deferred to the end of the hold without being run, so a dead
 * database costs one connection attempt per hold, not one per stream. At most
 * FLUSH_MAX_STREAMS streams run per flush call, so the worker keeps taking events in between.
 *
 * The emit handler's events go to the master through the worker (set_emit: ENVELOPE_EMIT).
 * The sink needs the whole config (its triggers and their pipelines): worker_config_t.root.
 * One process per trigger worker (check refuses more): the streams live in one state file
 * and every stream must be run by one owner.
 * Owns: the engine, one pipeline per distinct pipeline its triggers name, the backoffs.
 */
#include "log.h"
#include "pipeline.h"
#include "sink.h"
#include "trigger_engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MIN_MS      1000
#define RETRY_MAX_MS      300000
#define FLUSH_MAX_STREAMS 256

typedef struct {
    const char *name;        /* the config's */
    pipeline_t *p;
    int64_t     hold_until;  /* wall ms: not run before (after a failure) */
    int         hold_ms;     /* next hold */
} named_pipeline_t;

typedef struct {
    int64_t stream_id;
    int     delay_ms;        /* the next defer's delay */
} backoff_t;

typedef struct {
    const worker_config_t *cfg;
    trigger_engine_t *engine;
    named_pipeline_t *pipelines;
    size_t            n_pipelines;
    sink_emit_fn      emit;
    void             *emit_arg;
    backoff_t        *backoffs;  /* sorted by stream_id */
    size_t            n_backoffs, cap_backoffs;
    log_complaint_t   complaint;
    uint64_t          runs, failures;
} trigger_sink_t;

static const char *reason_name(trigger_reason_t r)
{
    return r == TRIGGER_FIRE ? "fire" : r == TRIGGER_EXPIRE ? "expire" : "evicted";
}

/* ---------------------------------------------------------------- settings and check */

static int check_settings(const worker_config_t *cfg, char *err, size_t errlen)
{
    const char *name = cfg->name ? cfg->name : "?";
    if (cfg->processes > 1)
        snprintf(err, errlen, "%s:%d: worker '%s': a trigger worker must have processes = 1 "
                 "(its streams live in one state file and each must have one owner)",
                 config_worker_file(cfg), cfg->line, name);
    else if (!cfg->state || cfg->n_triggers < 1)
        snprintf(err, errlen, "%s:%d: worker '%s': the trigger sink needs 'state' and "
                 "'triggers'", config_worker_file(cfg), cfg->line, name);
    else if (!cfg->root)
        snprintf(err, errlen, "%s:%d: worker '%s': the trigger sink needs the whole config "
                 "(worker_config_t.root)", config_worker_file(cfg), cfg->line, name);
    else
        return 0;
    return -1;
}

/* The distinct pipelines the worker's triggers name, into *out (malloc'd, the caller frees).
 * The count, or -1 when out of memory. */
static int used_pipelines(const worker_config_t *cfg, const pipeline_config_t ***out)
{
    const pipeline_config_t **v = calloc((size_t) cfg->n_triggers * 2 + 1, sizeof *v);
    int n = 0;
    for (int i = 0; v && i < cfg->n_triggers; i++) {
        const trigger_config_t *t = config_trigger(cfg->root, cfg->triggers[i]);
        const char *names[2] = { t ? t->fire_pipeline : NULL, t ? t->expire_pipeline : NULL };
        for (int k = 0; k < 2; k++) {
            const pipeline_config_t *p = config_pipeline(cfg->root, names[k]);
            bool seen = false;
            for (int j = 0; p && j < n; j++)
                seen |= v[j] == p;
            if (p && !seen)
                v[n++] = p;
        }
    }
    *out = v;
    return v ? n : -1;
}

/* Settings, and every pipeline the worker's triggers use (handler settings, templates
 * compiled for their sinks, name templates), every problem on a line of its own. The
 * config loader checks trigger and pipeline names; the engine compiles the patterns. */
static int trigger_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (check_settings(cfg, err, errlen) != 0)
        return -1;
    if (trigger_engine_check(cfg->root, cfg, err, errlen) != 0)
        return -1;
    const pipeline_config_t **used;
    int n = used_pipelines(cfg, &used), bad = n < 0;
    if (n < 0)
        snprintf(err, errlen, "out of memory");
    for (int i = 0; i < n; i++) {
        size_t at = strlen(err);
        if (at && at + 1 < errlen)
            err[at++] = '\n';
        if (at + 1 >= errlen)
            break;
        if (pipeline_check(used[i], err + at, errlen - at) != 0)
            bad = 1;
        else if (at)
            err[at - 1] = '\0';   /* nothing after the separator */
    }
    free(used);
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- open / close */

static void log_totals(const trigger_sink_t *s)
{
    const trigger_engine_stats_t *st = trigger_engine_stats(s->engine);
    log_info("msg=\"trigger sink closed\" worker=%s events=%" PRIu64 " joined=%" PRIu64
             " unkeyed=%" PRIu64 " streams_open=%" PRIu64 " fired=%" PRIu64 " expired=%"
             PRIu64 " evicted=%" PRIu64 " pipeline_runs=%" PRIu64 " pipeline_failures=%"
             PRIu64, s->cfg->name ? s->cfg->name : "?", st->events, st->joined, st->unkeyed,
             st->streams_open, st->fired, st->expired, st->evicted, s->runs, s->failures);
}

static void trigger_close(sink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trigger_sink_t *s = (trigger_sink_t *) *self_p;
    if (s->engine)
        log_totals(s);
    for (size_t i = 0; i < s->n_pipelines; i++)
        pipeline_destroy(&s->pipelines[i].p);
    free(s->pipelines);
    free(s->backoffs);
    trigger_engine_close(&s->engine);
    free(s);
    *self_p = NULL;
}

/* The pipelines' emit function: through the worker, once it told us how (set_emit). */
static int emit_to_master(void *arg, const char *tag, size_t tag_len, const void *data,
                          size_t data_len)
{
    trigger_sink_t *s = arg;
    return s->emit ? s->emit(s->emit_arg, tag, tag_len, data, data_len) : -1;
}

static int open_pipelines(trigger_sink_t *s, const char *master_id, char *err,
                          size_t errlen)
{
    const pipeline_config_t **used;
    int n = used_pipelines(s->cfg, &used), rc = 0;
    if (n < 0 || !(s->pipelines = calloc((size_t) n + 1, sizeof *s->pipelines))) {
        snprintf(err, errlen, "out of memory");
        free(used);
        return -1;
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        named_pipeline_t *np = &s->pipelines[s->n_pipelines];
        *np = (named_pipeline_t){ .name = used[i]->name, .hold_ms = RETRY_MIN_MS };
        np->p = pipeline_new(used[i], master_id, emit_to_master, s, err, errlen);
        rc = np->p ? 0 : -1;
        s->n_pipelines += np->p != NULL;
    }
    free(used);
    return rc;
}

static sink_t *trigger_open(const worker_config_t *cfg, const char *master_id, char *err,
                            size_t errlen)
{
    if (check_settings(cfg, err, errlen) != 0)
        return NULL;
    trigger_sink_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->complaint.interval_ms = 30000;
    sink_t *self = (sink_t *) s;
    if (!(s->engine = trigger_engine_open(cfg->root, cfg, err, errlen)) ||
        open_pipelines(s, master_id, err, errlen) != 0)
        trigger_close(&self);
    return self;
}

static void trigger_set_emit(sink_t *self, sink_emit_fn emit, void *arg)
{
    trigger_sink_t *s = (trigger_sink_t *) self;
    s->emit = emit;
    s->emit_arg = arg;
}

/* ---------------------------------------------------------------- events */

static sink_result_t trigger_write_batch(sink_t *self, worker_event_t *const *events, size_t n,
                                         size_t *bad_index, char *err, size_t errlen)
{
    (void) bad_index;
    trigger_sink_t *s = (trigger_sink_t *) self;
    /* nothing applied on failure (one transaction): the worker retries the batch */
    return trigger_engine_apply(s->engine, events, n, wall_ms(), err, errlen) == 0 ? SINK_OK
                                                                                  : SINK_RETRY;
}

/* ---------------------------------------------------------------- backoff per stream */

/* Index of stream_id in the sorted backoffs, or where it would go. */
static size_t backoff_find(const trigger_sink_t *s, int64_t stream_id)
{
    size_t lo = 0, hi = s->n_backoffs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->backoffs[mid].stream_id < stream_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The delay for this failure of the stream (1 s, doubling, at most 5 min). */
static int backoff_next(trigger_sink_t *s, int64_t stream_id)
{
    size_t i = backoff_find(s, stream_id);
    if (i < s->n_backoffs && s->backoffs[i].stream_id == stream_id) {
        int d = s->backoffs[i].delay_ms;
        s->backoffs[i].delay_ms = d * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : d * 2;
        return d;
    }
    if (s->n_backoffs == s->cap_backoffs) {
        size_t cap = s->cap_backoffs ? s->cap_backoffs * 2 : 64;
        backoff_t *b = realloc(s->backoffs, cap * sizeof *b);
        if (!b)
            return RETRY_MAX_MS;   /* without memory for a backoff: the slowest one */
        s->backoffs = b;
        s->cap_backoffs = cap;
    }
    memmove(&s->backoffs[i + 1], &s->backoffs[i], (s->n_backoffs - i) * sizeof *s->backoffs);
    s->backoffs[i] = (backoff_t){ stream_id, RETRY_MIN_MS * 2 };
    s->n_backoffs++;
    return RETRY_MIN_MS;
}

static void backoff_forget(trigger_sink_t *s, int64_t stream_id)
{
    size_t i = backoff_find(s, stream_id);
    if (i < s->n_backoffs && s->backoffs[i].stream_id == stream_id) {
        memmove(&s->backoffs[i], &s->backoffs[i + 1],
                (s->n_backoffs - i - 1) * sizeof *s->backoffs);
        s->n_backoffs--;
    }
}

/* ---------------------------------------------------------------- running due streams */

static named_pipeline_t *find_pipeline(trigger_sink_t *s, const char *name)
{
    for (size_t i = 0; name && i < s->n_pipelines; i++)
        if (strcmp(s->pipelines[i].name, name) == 0)
            return &s->pipelines[i];
    return NULL;
}

static int finish(trigger_sink_t *s, const trigger_due_t *due, char *err, size_t errlen)
{
    backoff_forget(s, due->stream_id);
    return trigger_engine_finish(s->engine, due->stream_id, err, errlen);
}

/* The pipeline failed (why): the stream is deferred and the pipeline held. 0 or -1. */
static int defer(trigger_sink_t *s, named_pipeline_t *np, const trigger_due_t *due,
                 sink_result_t rc, const char *why, int64_t now, char *err, size_t errlen)
{
    int delay = rc == SINK_FATAL ? RETRY_MAX_MS : backoff_next(s, due->stream_id);
    s->failures++;
    log_complain(&s->complaint, rc == SINK_FATAL ? LOG_LVL_ERROR : LOG_LVL_WARNING,
                 "msg=\"trigger pipeline failed, stream deferred\" worker=%s trigger=%s "
                 "reason=%s stream=%" PRId64 " error=\"%s\" retry_in_ms=%d",
                 s->cfg->name ? s->cfg->name : "?", due->trigger ? due->trigger->name : "?",
                 reason_name(due->reason), due->stream_id, why, delay);
    if (np) {
        np->hold_until = now + np->hold_ms;
        np->hold_ms = np->hold_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : np->hold_ms * 2;
    }
    return trigger_engine_defer(s->engine, due->stream_id, now + delay, err, errlen);
}

/* Runs one due stream's pipeline and finishes or defers it. 0, or -1 (engine error). */
static int run_due(trigger_sink_t *s, const trigger_due_t *due, int64_t now, char *err,
                   size_t errlen)
{
    if (!due->pipeline)
        return finish(s, due, err, errlen);
    named_pipeline_t *np = find_pipeline(s, due->pipeline);
    if (np && now < np->hold_until)   /* not a failure of this stream: no backoff step */
        return trigger_engine_defer(s->engine, due->stream_id, np->hold_until, err, errlen);
    char why[1024] = "";
    sink_result_t rc = SINK_FATAL;
    if (np)
        rc = pipeline_run(np->p, (const char *) due->tag.data, due->summary.data,
                          due->summary.size, due->missing, due->n_missing, why, sizeof why);
    else
        snprintf(why, sizeof why, "pipeline '%s' is not open in this worker", due->pipeline);
    s->runs++;
    if (rc != SINK_OK)
        return defer(s, np, due, rc, why, now, err, errlen);
    np->hold_ms = RETRY_MIN_MS;
    log_recovered(&s->complaint, "msg=\"trigger pipelines run again\" worker=%s",
                  s->cfg->name ? s->cfg->name : "?");
    return finish(s, due, err, errlen);
}

/* The next due stream in the engine, as a clock_ms() time; and the handler sinks' timers. */
static int64_t trigger_flush_at(sink_t *self)
{
    trigger_sink_t *s = (trigger_sink_t *) self;
    int64_t at = INT64_MAX, due = trigger_engine_next_due(s->engine);
    if (due != INT64_MAX) {
        int64_t wait = due - wall_ms();
        at = clock_ms() + (wait > 0 ? wait : 0);
    }
    for (size_t i = 0; i < s->n_pipelines; i++) {
        int64_t p = pipeline_flush_at(s->pipelines[i].p);
        if (p < at)
            at = p;
    }
    return at;
}

static sink_result_t trigger_flush(sink_t *self, char *err, size_t errlen)
{
    trigger_sink_t *s = (trigger_sink_t *) self;
    for (size_t i = 0; i < s->n_pipelines; i++)
        pipeline_flush(s->pipelines[i].p);
    int64_t now = wall_ms();
    for (int i = 0; i < FLUSH_MAX_STREAMS; i++) {
        trigger_due_t due;
        memset(&due, 0, sizeof due);
        int rc = trigger_engine_next(s->engine, now, &due, err, errlen);
        if (rc == 0)
            break;
        if (rc > 0)
            rc = run_due(s, &due, now, err, errlen);
        trigger_due_free(&due);
        if (rc < 0)   /* the state file failed: the worker retries the flush with backoff */
            return SINK_RETRY;
    }
    return SINK_OK;
}

/* ---------------------------------------------------------------- explain */

static void trigger_explain(const worker_config_t *cfg, const char *master_id,
                            const worker_event_t *ev, FILE *out)
{
    (void) master_id;
    if (!cfg->root) {
        fprintf(out, "    (no config to find the triggers in)\n");
        return;
    }
    trigger_engine_explain(cfg->root, cfg, ev, out);
}

const sink_ops_t sink_trigger_ops = {
    .name = "trigger",
    .check = trigger_check,
    .open = trigger_open,
    .write_batch = trigger_write_batch,
    .close = trigger_close,
    .flush_at = trigger_flush_at,
    .flush = trigger_flush,
    .defers_acks = false,
    .explain = trigger_explain,
    .set_emit = trigger_set_emit,
};
