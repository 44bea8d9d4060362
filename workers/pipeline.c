/* pipeline: one configured pipeline run for a due stream (see pipeline.h for the contract).
 *
 * A run first builds the events every handler needs and computes what it will do, with no
 * side effect beyond opening its sink (so a database that is down fails the run before any
 * other handler wrote): the summary event (the due stream's tag, the summary as data), one
 * event per missing minion for sql handlers with a missing_template, the emit tag, the log
 * line. Then it commits by kind, in config order within a kind: sql, graphite, counter, log,
 * emit. Handlers cannot roll each other back (each sql handler is its own transaction), so
 * the first failure stops the run and the caller runs the whole pipeline again later; what
 * makes that safe:
 *   sql       the shipped templates upsert by jid / (jid, minion); a handler writes its
 *             missing rows before its job row, so a job row never exists without them;
 *   graphite, counter
 *             aggregating sinks cannot take a summary back, so each handler remembers the
 *             hashes of the summaries it folded in (a ring of the last HASH_RING); a rerun
 *             of the same stream only flushes again. A new process forgets them (a crash
 *             between fold and finish may count one summary twice);
 *   log, emit last; a rerun logs again; an emitted event is the same tag and data, so the
 *             same event hash (the master's idempotent tables store it once).
 * Per missing minion the data is the summary without its `missing` list (10,000 missing
 * minions would otherwise copy a 10,000-name list 10,000 times) plus "minion": id.
 *
 * Handler sinks also have timed work of their own (redis rotates its intervals at their
 * boundaries, graphite sends an interval again, complete, when it closes): pipeline_flush_at
 * and pipeline_flush drive it, with a backoff of their own per handler so that a dead carbon
 * neither spins the worker nor delays its events.
 * Owns: its handlers' sinks and compiled name templates; borrows the config (it outlives us).
 */
#include "pipeline.h"
#include "log.h"
#include "name_template.h"
#include "payload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_RING        256
#define FLUSH_RETRY_MIN  1000
#define FLUSH_RETRY_MAX  300000

/* Default log line: these summary fields, each "-" when absent. */
static const char *const log_fields[] = { "trigger", "key", "reason", "expected", "returned" };
#define N_LOG_FIELDS (sizeof log_fields / sizeof *log_fields)

typedef struct {
    const handler_config_t *cfg;
    int               index;          /* 1-based, as the config's messages count them */
    const sink_ops_t *ops;            /* sql, graphite, counter */
    sink_t           *sink, *missing_sink;
    worker_config_t   missing_cfg;    /* *cfg->sink with template_path = missing_template */
    name_template_t  *text;           /* emit: tag; log: message (NULL: the default line) */
    msgpack_sbuffer   out;            /* this run's emit tag or log line */
    char              folded[HASH_RING][41];   /* graphite, counter: summaries folded in */
    size_t            folded_next;
    int64_t           flush_retry_at; /* clock_ms(); timed flushes wait until then */
    int               flush_retry_ms;
    log_complaint_t   flush_complaint;
} handler_t;

struct pipeline {
    const pipeline_config_t *cfg;
    char            *master_id;
    pipeline_emit_fn emit;
    void            *emit_arg;
    handler_t       *handlers;
    int              n;
    int             *order;          /* commit order: indices sorted by kind, stable */
    name_template_t *log_fields[N_LOG_FIELDS];
    bool             wants_missing;  /* some sql handler has a missing_template */
};

/* The events of one run. */
typedef struct {
    worker_event_t  *summary;
    worker_event_t **missing;
    size_t           n_missing;
} run_t;

static const char *type_name(handler_type_t t)
{
    static const char *const names[] = { "sql", "graphite", "counter", "emit", "log" };
    return (unsigned) t < sizeof names / sizeof *names ? names[t] : "?";
}

static int commit_rank(handler_type_t t)
{
    switch (t) {
    case HANDLER_SQL:      return 0;
    case HANDLER_GRAPHITE: return 1;
    case HANDLER_COUNTER:  return 2;
    case HANDLER_LOG:      return 3;
    case HANDLER_EMIT:     return 4;
    }
    return 5;
}

static bool has_sink(handler_type_t t)
{
    return t == HANDLER_SQL || t == HANDLER_GRAPHITE || t == HANDLER_COUNTER;
}

/* "pipeline 'p' handler #2 (sql): " + the message, into err. */
__attribute__((format(printf, 5, 6)))
static void handler_error(const pipeline_t *self, const handler_t *h, char *err, size_t errlen,
                          const char *fmt, ...)
{
    int used = snprintf(err, errlen, "pipeline '%s' handler #%d (%s): ",
                        self->cfg->name ? self->cfg->name : "?", h->index,
                        type_name(h->cfg->type));
    if (used < 0 || (size_t) used >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - (size_t) used, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- settings */

/* The sink a handler of this type may use; NULL when the name does not fit the type. */
static const sink_ops_t *handler_sink_ops(const handler_config_t *h)
{
    const char *s = h->sink ? h->sink->sink : NULL;
    if (!s)
        return NULL;
    bool fits = h->type == HANDLER_SQL ? strcmp(s, "sqlite") == 0 || strcmp(s, "pgsql") == 0 ||
                                         strcmp(s, "mysql") == 0
              : h->type == HANDLER_GRAPHITE ? strcmp(s, "graphite") == 0
              : h->type == HANDLER_COUNTER && strcmp(s, "redis") == 0;
    return fits ? sink_lookup(s) : NULL;
}

/* What a handler needs that only the config can give; 0, or -1 with why. */
static int handler_settings(const handler_config_t *h, char *why, size_t whylen)
{
    if (has_sink(h->type) && !handler_sink_ops(h)) {
        snprintf(why, whylen, "sink '%s' cannot serve a %s handler",
                 h->sink && h->sink->sink ? h->sink->sink : "(none)", type_name(h->type));
        return -1;
    }
    if (h->missing_template && h->type != HANDLER_SQL) {
        snprintf(why, whylen, "missing_template applies to sql handlers only");
        return -1;
    }
    if (h->type == HANDLER_EMIT && !h->tag) {
        snprintf(why, whylen, "an emit handler needs 'tag'");
        return -1;
    }
    if ((unsigned) h->type > HANDLER_LOG) {
        snprintf(why, whylen, "unknown handler type %d", (int) h->type);
        return -1;
    }
    return 0;
}

static name_template_t *handler_text(const handler_config_t *h, char *why, size_t whylen)
{
    const char *text = h->type == HANDLER_EMIT ? h->tag : h->type == HANDLER_LOG ? h->message
                                                                                  : NULL;
    return text ? name_template_compile(text, why, whylen) : NULL;
}

/* ---------------------------------------------------------------- new / destroy */

static void close_sinks(handler_t *h)
{
    if (h->sink)
        h->ops->close(&h->sink);
    if (h->missing_sink)
        h->ops->close(&h->missing_sink);
    /* what the sink had folded in is gone with it: a rerun must fold it again */
    h->folded_next = 0;
    memset(h->folded, 0, sizeof h->folded);
}

void pipeline_destroy(pipeline_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pipeline_t *self = *self_p;
    for (int i = 0; self->handlers && i < self->n; i++) {
        handler_t *h = &self->handlers[i];
        close_sinks(h);
        name_template_destroy(&h->text);
        msgpack_sbuffer_destroy(&h->out);
    }
    for (size_t i = 0; i < N_LOG_FIELDS; i++)
        name_template_destroy(&self->log_fields[i]);
    free(self->handlers);
    free(self->order);
    free(self->master_id);
    free(self);
    *self_p = NULL;
}

static int handler_init(pipeline_t *self, int i, char *err, size_t errlen)
{
    handler_t *h = &self->handlers[i];
    const handler_config_t *c = &self->cfg->handlers[i];
    char why[512] = "";
    *h = (handler_t){ .cfg = c, .index = i + 1, .flush_retry_ms = FLUSH_RETRY_MIN };
    h->flush_complaint.interval_ms = 60000;
    msgpack_sbuffer_init(&h->out);
    if (handler_settings(c, why, sizeof why) != 0) {
        handler_error(self, h, err, errlen, "%s", why);
        return -1;
    }
    h->ops = has_sink(c->type) ? handler_sink_ops(c) : NULL;
    if (c->missing_template) {
        h->missing_cfg = *c->sink;
        h->missing_cfg.template_path = c->missing_template;
        self->wants_missing = true;
    }
    if ((c->type == HANDLER_EMIT || c->message) && !(h->text = handler_text(c, why, sizeof why))) {
        handler_error(self, h, err, errlen, "%s: %s", c->type == HANDLER_EMIT ? "tag" : "message",
                      why);
        return -1;
    }
    return 0;
}

/* Commit order: by kind, config order within a kind (insertion sort: a handful of handlers). */
static void sort_order(pipeline_t *self)
{
    for (int i = 0; i < self->n; i++) {
        int v = i, j = i;
        for (; j > 0 && commit_rank(self->handlers[self->order[j - 1]].cfg->type) >
                        commit_rank(self->handlers[v].cfg->type); j--)
            self->order[j] = self->order[j - 1];
        self->order[j] = v;
    }
}

static int compile_log_fields(pipeline_t *self, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_LOG_FIELDS; i++) {
        char text[64];
        snprintf(text, sizeof text, "{data.%s}", log_fields[i]);
        if (!(self->log_fields[i] = name_template_compile(text, err, errlen)))
            return -1;
    }
    return 0;
}

pipeline_t *pipeline_new(const pipeline_config_t *cfg, const char *master_id,
                         pipeline_emit_fn emit, void *emit_arg, char *err, size_t errlen)
{
    if (!cfg || cfg->n_handlers < 1) {
        snprintf(err, errlen, "pipeline '%s' has no handlers", cfg && cfg->name ? cfg->name
                                                                                : "?");
        return NULL;
    }
    pipeline_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->emit = emit;
    self->emit_arg = emit_arg;
    self->master_id = master_id ? strdup(master_id) : NULL;
    self->handlers = calloc((size_t) cfg->n_handlers, sizeof *self->handlers);
    self->order = calloc((size_t) cfg->n_handlers, sizeof *self->order);
    if (!self->handlers || !self->order || (master_id && !self->master_id)) {
        snprintf(err, errlen, "out of memory");
        pipeline_destroy(&self);
        return NULL;
    }
    for (; self->n < cfg->n_handlers; self->n++)
        if (handler_init(self, self->n, err, errlen) != 0) {
            self->n++;   /* destroy frees its sbuffer too */
            pipeline_destroy(&self);
            return NULL;
        }
    if (compile_log_fields(self, err, errlen) != 0) {
        pipeline_destroy(&self);
        return NULL;
    }
    sort_order(self);
    return self;
}

/* ---------------------------------------------------------------- the run's events */

static void run_free(run_t *r)
{
    worker_event_destroy(&r->summary);
    for (size_t i = 0; r->missing && i < r->n_missing; i++)
        worker_event_destroy(&r->missing[i]);
    free(r->missing);
    *r = (run_t){ 0 };
}

/* summary without "missing" (and without a "minion" of its own) + "minion": id, into buf. */
static int pack_missing_data(const msgpack_object *summary, const char *minion,
                             msgpack_sbuffer *buf)
{
    const msgpack_object_map *m = &summary->via.map;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < m->size; i++)
        keep += !payload_str_equals(&m->ptr[i].key, "missing") &&
                !payload_str_equals(&m->ptr[i].key, "minion");
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    buf->size = 0;
    int rc = msgpack_pack_map(&pk, keep + 1);
    for (uint32_t i = 0; i < m->size; i++)
        if (!payload_str_equals(&m->ptr[i].key, "missing") &&
            !payload_str_equals(&m->ptr[i].key, "minion")) {
            rc |= msgpack_pack_object(&pk, m->ptr[i].key);
            rc |= msgpack_pack_object(&pk, m->ptr[i].val);
        }
    rc |= msgpack_pack_str_with_body(&pk, "minion", 6);
    rc |= msgpack_pack_str_with_body(&pk, minion, strlen(minion));
    return rc ? -1 : 0;
}

static int build_missing(run_t *r, char *const *missing, size_t n, char *err, size_t errlen)
{
    if (!(r->missing = calloc(n ? n : 1, sizeof *r->missing))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const msgpack_object *root = payload_root(r->summary->data);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int rc = 0;
    for (; rc == 0 && r->n_missing < n; r->n_missing++) {
        if (pack_missing_data(root, missing[r->n_missing], &buf) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        r->missing[r->n_missing] = worker_event_new(0, false, r->summary->tag,
                                                    r->summary->tag_len, buf.data, buf.size,
                                                    PAYLOAD_MSGPACK_MAX_DEPTH, err, errlen);
        if (!r->missing[r->n_missing])
            rc = -1;
    }
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

static int run_build(pipeline_t *self, run_t *r, const char *tag, const void *summary,
                     size_t summary_len, char *const *missing, size_t n_missing, char *err,
                     size_t errlen)
{
    char why[256] = "";
    r->summary = worker_event_new(0, false, tag, strlen(tag), summary, summary_len,
                                  PAYLOAD_MSGPACK_MAX_DEPTH, why, sizeof why);
    if (!r->summary) {
        snprintf(err, errlen, "pipeline '%s': the summary is not a msgpack map: %s",
                 self->cfg->name ? self->cfg->name : "?", why);
        return -1;
    }
    if (self->wants_missing && n_missing &&
        build_missing(r, missing, n_missing, why, sizeof why) != 0) {
        snprintf(err, errlen, "pipeline '%s': missing minions' events: %s",
                 self->cfg->name ? self->cfg->name : "?", why);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- compute */

static sink_result_t open_sink(pipeline_t *self, handler_t *h, const worker_config_t *cfg,
                               sink_t **sink, char *err, size_t errlen)
{
    if (*sink)
        return SINK_OK;
    char why[768] = "";
    *sink = h->ops->open(cfg, self->master_id, why, sizeof why);
    if (*sink)
        return SINK_OK;
    handler_error(self, h, err, errlen, "cannot open sink '%s': %s", cfg->sink, why);
    return SINK_RETRY;
}

/* The default log line: the summary's main fields, sanitised like names. */
static int default_log_line(pipeline_t *self, const run_t *r, msgpack_sbuffer *out)
{
    static const char head[] = "msg=\"trigger stream done\"";
    const msgpack_object *data = payload_root(r->summary->data);
    int rc = msgpack_sbuffer_write(out, head, sizeof head - 1);
    for (size_t i = 0; rc >= 0 && i < N_LOG_FIELDS; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, " %s=", log_fields[i]);
        rc = msgpack_sbuffer_write(out, key, (size_t) n);
        if (rc == 0 && (rc = name_template_expand(self->log_fields[i], r->summary->tag,
                                                  r->summary->tag_len, data, self->master_id,
                                                  NAME_KEY, out)) == 1)
            rc = msgpack_sbuffer_write(out, "-", 1);
    }
    char tail[48];
    int n = snprintf(tail, sizeof tail, " missing=%zu", r->n_missing);
    return rc < 0 ? -1 : msgpack_sbuffer_write(out, tail, (size_t) n);
}

static sink_result_t compute_text(pipeline_t *self, handler_t *h, const run_t *r, char *err,
                                  size_t errlen)
{
    h->out.size = 0;
    const msgpack_object *data = payload_root(r->summary->data);
    int rc = h->text ? name_template_expand(h->text, r->summary->tag, r->summary->tag_len, data,
                                            self->master_id, NAME_KEY, &h->out)
                     : default_log_line(self, r, &h->out);
    if (rc == 1 && h->cfg->type == HANDLER_LOG) {
        /* a log line is not worth failing the pipeline for: say what is missing instead */
        static const char note[] = " message=unexpanded(a_field_is_missing)";
        h->out.size = 0;
        rc = default_log_line(self, r, &h->out);
        if (rc == 0)
            rc = msgpack_sbuffer_write(&h->out, note, sizeof note - 1) ? -1 : 0;
    }
    if (rc == 0)
        rc = msgpack_sbuffer_write(&h->out, "", 1);   /* NUL: printed and sent as text */
    if (rc == 0)
        return SINK_OK;
    if (rc < 0)
        handler_error(self, h, err, errlen, "out of memory");
    else
        handler_error(self, h, err, errlen, "tag '%s': a field it names is missing or null "
                      "in the summary", h->cfg->tag);
    return SINK_RETRY;
}

static sink_result_t compute(pipeline_t *self, handler_t *h, const run_t *r, char *err,
                             size_t errlen)
{
    switch (h->cfg->type) {
    case HANDLER_SQL:
        if (r->n_missing && h->cfg->missing_template &&
            open_sink(self, h, &h->missing_cfg, &h->missing_sink, err, errlen) != SINK_OK)
            return SINK_RETRY;
        /* fall through */
    case HANDLER_GRAPHITE:
    case HANDLER_COUNTER:
        return open_sink(self, h, h->cfg->sink, &h->sink, err, errlen);
    case HANDLER_EMIT:
        if (!self->emit) {
            handler_error(self, h, err, errlen, "no way to send events to the master");
            return SINK_FATAL;
        }
        /* fall through */
    case HANDLER_LOG:
        return compute_text(self, h, r, err, errlen);
    }
    return SINK_FATAL;
}

/* ---------------------------------------------------------------- commit */

/* A sink's answer as the pipeline's: anything but OK retries; a sink that failed fatally is
 * closed first, so the rerun gets a fresh one. */
static sink_result_t sink_failed(pipeline_t *self, handler_t *h, sink_result_t rc,
                                 const char *what, const char *why, char *err, size_t errlen)
{
    handler_error(self, h, err, errlen, "%s: %s%s", what,
                  rc == SINK_REJECT_ROW ? "row rejected: " : "", why);
    if (rc == SINK_FATAL)
        close_sinks(h);
    return SINK_RETRY;
}

static sink_result_t commit_sql(pipeline_t *self, handler_t *h, const run_t *r, char *err,
                                size_t errlen)
{
    char why[1024] = "";
    size_t bad = 0;
    sink_result_t rc;
    /* missing rows first: a reader that sees the job row sees its missing rows too */
    if (r->n_missing && h->cfg->missing_template &&
        (rc = h->ops->write_batch(h->missing_sink, r->missing, r->n_missing, &bad, why,
                                  sizeof why)) != SINK_OK)
        return sink_failed(self, h, rc, "missing_template", why, err, errlen);
    worker_event_t *const ev[1] = { r->summary };
    if ((rc = h->ops->write_batch(h->sink, ev, 1, &bad, why, sizeof why)) != SINK_OK)
        return sink_failed(self, h, rc, "template", why, err, errlen);
    return SINK_OK;
}

static bool folded(const handler_t *h, const char *hash)
{
    for (size_t i = 0; i < HASH_RING; i++)
        if (strcmp(h->folded[i], hash) == 0)
            return true;
    return false;
}

/* Folds the summary in (once per summary, see the top of the file) and sends it now. */
static sink_result_t commit_aggregate(pipeline_t *self, handler_t *h, const run_t *r,
                                      char *err, size_t errlen)
{
    char why[1024] = "";
    size_t bad = 0;
    sink_result_t rc;
    if (!folded(h, r->summary->hash)) {
        worker_event_t *const ev[1] = { r->summary };
        if ((rc = h->ops->write_batch(h->sink, ev, 1, &bad, why, sizeof why)) != SINK_OK)
            return sink_failed(self, h, rc, "write", why, err, errlen);
        memcpy(h->folded[h->folded_next], r->summary->hash, sizeof h->folded[0]);
        h->folded_next = (h->folded_next + 1) % HASH_RING;
    }
    if ((rc = h->ops->flush(h->sink, why, sizeof why)) != SINK_OK)
        return sink_failed(self, h, rc, "flush", why, err, errlen);
    h->flush_retry_at = 0;
    h->flush_retry_ms = FLUSH_RETRY_MIN;
    return SINK_OK;
}

static sink_result_t commit(pipeline_t *self, handler_t *h, const run_t *r, const void *summary,
                            size_t summary_len, char *err, size_t errlen)
{
    switch (h->cfg->type) {
    case HANDLER_SQL:
        return commit_sql(self, h, r, err, errlen);
    case HANDLER_GRAPHITE:
    case HANDLER_COUNTER:
        return commit_aggregate(self, h, r, err, errlen);
    case HANDLER_LOG:
        log_info("pipeline=%s handler=%d %s", self->cfg->name ? self->cfg->name : "?",
                 h->index, h->out.data);
        return SINK_OK;
    case HANDLER_EMIT:
        if (self->emit(self->emit_arg, h->out.data, h->out.size - 1, summary, summary_len) == 0)
            return SINK_OK;
        handler_error(self, h, err, errlen, "cannot send '%s' to the master", h->out.data);
        return SINK_RETRY;
    }
    return SINK_FATAL;
}

sink_result_t pipeline_run(pipeline_t *self, const char *tag, const void *summary,
                           size_t summary_len, char *const *missing, size_t n_missing,
                           char *err, size_t errlen)
{
    run_t r = { 0 };
    sink_result_t rc = SINK_OK;
    if (run_build(self, &r, tag, summary, summary_len, missing, n_missing, err, errlen) != 0)
        rc = SINK_RETRY;
    for (int i = 0; rc == SINK_OK && i < self->n; i++)
        rc = compute(self, &self->handlers[i], &r, err, errlen);
    for (int i = 0; rc == SINK_OK && i < self->n; i++)
        rc = commit(self, &self->handlers[self->order[i]], &r, summary, summary_len, err,
                    errlen);
    run_free(&r);
    return rc;
}

/* ---------------------------------------------------------------- timed work */

static int64_t handler_flush_at(handler_t *h)
{
    if (!h->sink || !h->ops->flush_at)
        return INT64_MAX;
    int64_t at = h->ops->flush_at(h->sink);
    return at > h->flush_retry_at ? at : h->flush_retry_at;
}

int64_t pipeline_flush_at(pipeline_t *self)
{
    int64_t due = INT64_MAX;
    for (int i = 0; i < self->n; i++) {
        int64_t at = handler_flush_at(&self->handlers[i]);
        if (at < due)
            due = at;
    }
    return due;
}

/* A timed flush that failed waits (1 s .. 5 min); what the sink holds stays for the next. */
static void flush_failed(pipeline_t *self, handler_t *h, const char *why)
{
    log_complain(&h->flush_complaint, LOG_LVL_WARNING,
                 "msg=\"pipeline handler flush failed, retrying\" pipeline=%s handler=%d "
                 "error=\"%s\" retry_in_ms=%d", self->cfg->name ? self->cfg->name : "?",
                 h->index, why, h->flush_retry_ms);
    h->flush_retry_at = clock_ms() + h->flush_retry_ms;
    h->flush_retry_ms = h->flush_retry_ms * 2 > FLUSH_RETRY_MAX ? FLUSH_RETRY_MAX
                                                               : h->flush_retry_ms * 2;
}

void pipeline_flush(pipeline_t *self)
{
    int64_t now = clock_ms();
    for (int i = 0; i < self->n; i++) {
        handler_t *h = &self->handlers[i];
        if (handler_flush_at(h) > now)
            continue;
        char why[1024] = "";
        sink_result_t rc = h->ops->flush(h->sink, why, sizeof why);
        if (rc == SINK_OK) {
            log_recovered(&h->flush_complaint, "msg=\"pipeline handler flushes again\" "
                          "pipeline=%s handler=%d", self->cfg->name ? self->cfg->name : "?",
                          h->index);
            h->flush_retry_at = 0;
            h->flush_retry_ms = FLUSH_RETRY_MIN;
            continue;
        }
        if (rc == SINK_FATAL)
            close_sinks(h);
        flush_failed(self, h, why);
    }
}

/* ---------------------------------------------------------------- check */

/* Appends one problem line to err (lines separated by '\n'). */
__attribute__((format(printf, 3, 4)))
static void add_problem(char *err, size_t errlen, const char *fmt, ...)
{
    size_t used = strlen(err);
    if (used && used + 1 < errlen)
        err[used++] = '\n';
    if (used + 1 >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
}

/* One handler's problems; the sinks' checks give FILE:LINE themselves. */
static int check_handler(const pipeline_config_t *cfg, int i, char *err, size_t errlen)
{
    const handler_config_t *h = &cfg->handlers[i];
    const char *file = config_worker_file(h->sink);
    char why[1024] = "";
    if (handler_settings(h, why, sizeof why) != 0) {
        add_problem(err, errlen, "%s:%d: pipeline '%s' handler #%d: %s", file, h->line,
                    cfg->name ? cfg->name : "?", i + 1, why);
        return -1;
    }
    int bad = 0;
    name_template_t *text = handler_text(h, why, sizeof why);
    if ((h->type == HANDLER_EMIT || h->message) && !text) {
        add_problem(err, errlen, "%s:%d: pipeline '%s' handler #%d: %s: %s", file, h->line,
                    cfg->name ? cfg->name : "?", i + 1, h->type == HANDLER_EMIT ? "tag"
                                                                               : "message", why);
        bad = -1;
    }
    name_template_destroy(&text);
    const sink_ops_t *ops = has_sink(h->type) ? handler_sink_ops(h) : NULL;
    if (ops && ops->check(h->sink, why, sizeof why) != 0) {
        add_problem(err, errlen, "%s", why);
        bad = -1;
    }
    if (ops && h->missing_template) {
        worker_config_t missing = *h->sink;
        missing.template_path = h->missing_template;
        if (ops->check(&missing, why, sizeof why) != 0) {
            add_problem(err, errlen, "%s", why);
            bad = -1;
        }
    }
    return bad;
}

int pipeline_check(const pipeline_config_t *cfg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (cfg->n_handlers < 1) {
        add_problem(err, errlen, "config:%d: pipeline '%s' has no handlers", cfg->line,
                    cfg->name ? cfg->name : "?");
        return -1;
    }
    int bad = 0;
    for (int i = 0; i < cfg->n_handlers; i++)
        bad |= check_handler(cfg, i, err, errlen);
    return bad ? -1 : 0;
}
