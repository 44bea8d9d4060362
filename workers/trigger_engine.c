/* trigger_engine: see trigger_engine.h. This file decides (which stream an event joins, what
 * it changes, when a stream is due and why); trigger_match/trigger_key compile and evaluate
 * criteria and keys, trigger_store keeps the rows, trigger_summary writes what is handed
 * out. */
#include "trigger_engine.h"
#include "name_template.h"
#include "payload.h"
#include "trigger_key.h"
#include "trigger_match.h"
#include "trigger_store.h"
#include "trigger_summary.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const trigger_config_t *cfg;
    trigger_criterion_t   **match;
    trigger_criterion_t   **fire;
    trigger_key_t          *key;
    trigger_pattern_t      *expected_tag, *returned_tag;   /* all_expected only */
} compiled_t;

struct trigger_engine {
    trigger_store_t       *store;
    compiled_t            *triggers;
    int                    n_triggers;
    char                  *master_id;
    int64_t                max_streams;
    trigger_scratch_t     *scratch;
    msgpack_sbuffer        key, text;
    trigger_engine_stats_t stats;
};

/* ---------------------------------------------------------------- compiling */

static const trigger_config_t *find_trigger(const eventsd_config_t *cfg, const char *name)
{
    for (int i = 0; name && i < cfg->n_triggers; i++)
        if (cfg->trigger_cfgs[i].name && strcmp(cfg->trigger_cfgs[i].name, name) == 0)
            return &cfg->trigger_cfgs[i];
    return NULL;
}

static void free_compiled(compiled_t *c)
{
    for (int i = 0; c->match && i < c->cfg->n_match; i++)
        trigger_criterion_destroy(&c->match[i]);
    for (int i = 0; c->fire && i < c->cfg->n_fire; i++)
        trigger_criterion_destroy(&c->fire[i]);
    free(c->match);
    free(c->fire);
    trigger_key_destroy(&c->key);
    trigger_pattern_destroy(&c->expected_tag);
    trigger_pattern_destroy(&c->returned_tag);
    memset(c, 0, sizeof *c);
}

/* Compiles a list of criteria; on error "FILE:LINE: trigger 'x' <what> #i <why>". */
static int compile_list(const char *file, const trigger_config_t *t, const char *what,
                        const event_match_config_t *m, int n, trigger_criterion_t ***out,
                        char *err, size_t errlen)
{
    if (n > 0 && !(*out = calloc((size_t) n, sizeof **out))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char why[512];
        if (!((*out)[i] = trigger_criterion_new(&m[i], why, sizeof why))) {
            snprintf(err, errlen, "%s:%d: trigger '%s' %s #%d %s", file,
                     m[i].line ? m[i].line : t->line, t->name, what, i + 1, why);
            return -1;
        }
    }
    return 0;
}

static int compile_tag(const char *file, const trigger_config_t *t, const char *what,
                       const char *pattern, trigger_pattern_t **out, char *err, size_t errlen)
{
    char why[512];
    if (!pattern) {
        snprintf(err, errlen, "%s:%d: trigger '%s' has no %s", file, t->line, t->name, what);
        return -1;
    }
    if (!(*out = trigger_pattern_new(pattern, why, sizeof why))) {
        snprintf(err, errlen, "%s:%d: trigger '%s' %s pattern %s", file, t->line, t->name,
                 what, why);
        return -1;
    }
    return 0;
}

static int compile_trigger(const char *file, const trigger_config_t *t, compiled_t *c,
                           char *err, size_t errlen)
{
    char why[512];
    memset(c, 0, sizeof *c);
    c->cfg = t;
    if (compile_list(file, t, "match", t->match, t->n_match, &c->match, err, errlen) != 0 ||
        compile_list(file, t, "fire", t->fire, t->n_fire, &c->fire, err, errlen) != 0)
        return -1;
    if (!(c->key = trigger_key_new(t->distinguished_by, t->n_distinguished_by, why,
                                   sizeof why))) {
        snprintf(err, errlen, "%s:%d: trigger '%s' %s", file, t->line, t->name, why);
        return -1;
    }
    if (!t->all_expected)
        return 0;
    if (!t->expected_field || !name_field_valid(t->expected_field) || !t->returned_field ||
        !name_field_valid(t->returned_field)) {
        snprintf(err, errlen, "%s:%d: trigger '%s': expected_field and returned_field must be "
                 "fields (data.minions, data.id)", file, t->line, t->name);
        return -1;
    }
    return compile_tag(file, t, "expected_tag", t->expected_tag, &c->expected_tag, err,
                       errlen) == 0 &&
           compile_tag(file, t, "returned_tag", t->returned_tag, &c->returned_tag, err,
                       errlen) == 0 ? 0 : -1;
}

/* The worker's triggers, compiled, into *out (n_out of them). 0 or -1. */
static int compile_worker(const eventsd_config_t *cfg, const worker_config_t *w,
                          compiled_t **out, int *n_out, char *err, size_t errlen)
{
    const char *file = cfg->path ? cfg->path : "config";
    *n_out = 0;
    if (w->n_triggers < 1) {
        snprintf(err, errlen, "%s:%d: worker '%s' runs no trigger", w->file ? w->file : file,
                 w->line, w->name ? w->name : "?");
        return -1;
    }
    if (!(*out = calloc((size_t) w->n_triggers, sizeof **out))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < w->n_triggers; i++, (*n_out)++) {
        const trigger_config_t *t = find_trigger(cfg, w->triggers[i]);
        if (!t) {
            snprintf(err, errlen, "%s:%d: worker '%s' names unknown trigger '%s'",
                     w->file ? w->file : file, w->line, w->name ? w->name : "?",
                     w->triggers[i] ? w->triggers[i] : "");
            return -1;
        }
        if (compile_trigger(file, t, &(*out)[i], err, errlen) != 0) {
            (*n_out)++;   /* so the caller frees what it got */
            return -1;
        }
    }
    return 0;
}

static void free_worker(compiled_t **triggers, int n)
{
    for (int i = 0; *triggers && i < n; i++)
        free_compiled(&(*triggers)[i]);
    free(*triggers);
    *triggers = NULL;
}

/* ---------------------------------------------------------------- open / close */

static void update_counters(trigger_engine_t *self)
{
    trigger_store_counters(self->store, &self->stats.statements, &self->stats.rows_changed);
}

/* Streams a previous process left in progress are due again; open streams follow the
 * current settings. */
static int recover(trigger_engine_t *self, char *err, size_t errlen)
{
    if (trigger_store_begin(self->store, err, errlen) != 0)
        return -1;
    int rc = trigger_store_recover(self->store, err, errlen);
    for (int i = 0; rc == 0 && i < self->n_triggers; i++) {
        const trigger_config_t *t = self->triggers[i].cfg;
        rc = trigger_store_reschedule(self->store, t->name, t->expire_from == EXPIRE_FROM_FIRST,
                                      (int64_t) t->expire_s * 1000,
                                      (int64_t) t->fire_delay_s * 1000, err, errlen);
    }
    int64_t open = rc == 0 ? trigger_store_count_open(self->store, err, errlen) : -1;
    if (open < 0 || trigger_store_commit(self->store, err, errlen) != 0) {
        trigger_store_rollback(self->store);
        return -1;
    }
    self->stats.streams_open = (uint64_t) open;
    return 0;
}

trigger_engine_t *trigger_engine_open(const eventsd_config_t *cfg, const worker_config_t *w,
                                      char *err, size_t errlen)
{
    trigger_engine_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    msgpack_sbuffer_init(&self->key);
    msgpack_sbuffer_init(&self->text);
    self->max_streams = w->max_streams > 0 ? w->max_streams : 100000;
    bool ok = compile_worker(cfg, w, &self->triggers, &self->n_triggers, err, errlen) == 0;
    if (ok && !w->state) {
        snprintf(err, errlen, "%s:%d: worker '%s' has no 'state' file", w->file ? w->file :
                 "config", w->line, w->name ? w->name : "?");
        ok = false;
    }
    if (ok && (!(self->scratch = trigger_scratch_new()) ||
               (cfg->master_id && !(self->master_id = strdup(cfg->master_id))))) {
        snprintf(err, errlen, "out of memory");
        ok = false;
    }
    ok = ok && (self->store = trigger_store_open(w->state, w->busy_timeout_ms, err, errlen));
    if (!ok || recover(self, err, errlen) != 0) {
        trigger_engine_close(&self);
        return NULL;
    }
    update_counters(self);
    return self;
}

void trigger_engine_close(trigger_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trigger_engine_t *self = *self_p;
    trigger_store_close(&self->store);
    free_worker(&self->triggers, self->n_triggers);
    trigger_scratch_destroy(&self->scratch);
    msgpack_sbuffer_destroy(&self->key);
    msgpack_sbuffer_destroy(&self->text);
    free(self->master_id);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- scheduling */

static int64_t expire_at(const trigger_config_t *t, const trigger_stream_t *s)
{
    int64_t base = t->expire_from == EXPIRE_FROM_FIRST ? s->first_ms : s->last_ms;
    return base + (int64_t) t->expire_s * 1000;
}

static int64_t fire_at(const trigger_config_t *t, const trigger_stream_t *s)
{
    return s->held_since == TRIGGER_NO_TIME ? INT64_MAX
                                            : s->held_since + (int64_t) t->fire_delay_s * 1000;
}

/* Whether every fire criterion holds. A trigger with neither fire criteria nor all_expected
 * never fires: it only expires (a daily summary). */
static bool criteria_hold(const trigger_config_t *t, const trigger_stream_t *s)
{
    if (t->n_fire == 0 && !t->all_expected)
        return false;
    for (int i = 0; i < t->n_fire; i++)
        if (i >= s->n_counts || s->counts[i] < (t->fire[i].count > 0 ? t->fire[i].count : 1))
            return false;
    /* settled: expected minions that returned or that Salt listed missing (they cannot) */
    return !t->all_expected || (s->listed && s->settled >= s->expected);
}

static void schedule(const trigger_config_t *t, trigger_stream_t *s, int64_t now_ms)
{
    if (!criteria_hold(t, s))
        s->held_since = TRIGGER_NO_TIME;
    else if (s->held_since == TRIGGER_NO_TIME)
        s->held_since = now_ms;
    int64_t f = fire_at(t, s), e = expire_at(t, s);
    s->due_at = f < e ? f : e;
}

/* An open stream that is due: it fires when its fire time came no later than its expiry. */
static trigger_reason_t due_reason(const trigger_config_t *t, const trigger_stream_t *s)
{
    return fire_at(t, s) <= expire_at(t, s) ? TRIGGER_FIRE : TRIGGER_EXPIRE;
}

/* ---------------------------------------------------------------- members */

static int has(int flags, int want)
{
    return (flags & want) == want;
}

static int settled(int f)
{
    return has(f, MEMBER_EXPECTED) && (f & (MEMBER_RETURNED | MEMBER_MISSING)) != 0;
}

/* The counters follow the member's flags: each counts the members whose flags satisfy it,
 * so adding (predicate after - predicate before) keeps them exact in any event order. */
static void count_change(trigger_stream_t *s, int prev, int now)
{
    s->expected += has(now, MEMBER_EXPECTED) - has(prev, MEMBER_EXPECTED);
    s->settled += settled(now) - settled(prev);
    s->returned += has(now, MEMBER_RETURNED) - has(prev, MEMBER_RETURNED);
    s->returned_expected += has(now, MEMBER_EXPECTED | MEMBER_RETURNED) -
                            has(prev, MEMBER_EXPECTED | MEMBER_RETURNED);
    s->succeeded += has(now, MEMBER_RETURNED | MEMBER_SUCCEEDED) -
                    has(prev, MEMBER_RETURNED | MEMBER_SUCCEEDED);
    s->failed += has(now, MEMBER_RETURNED | MEMBER_FAILED) -
                 has(prev, MEMBER_RETURNED | MEMBER_FAILED);
}

static int mark(trigger_engine_t *self, trigger_stream_t *s, const char *minion, size_t len,
                int flags, char *err, size_t errlen)
{
    int prev, now;
    if (trigger_store_member(self->store, s->id, minion, len, flags, &prev, &now, err,
                             errlen) != 0)
        return -1;
    if ((flags & MEMBER_RETURNED) && (prev & MEMBER_RETURNED))
        s->duplicates++;
    count_change(s, prev, now);
    return 0;
}

static int oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Marks every element of a list (nil elements skipped). */
static int mark_list(trigger_engine_t *self, trigger_stream_t *s, const msgpack_object *list,
                     int flags, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        int rc = trigger_object_text(&list->via.array.ptr[i], &self->text);
        if (rc < 0)
            return oom(err, errlen);
        if (rc == 0 && mark(self, s, self->text.data, self->text.size, flags, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Sets *dst to the text of data.<path> when present (only when *dst is NULL if !overwrite). */
static int job_field(trigger_engine_t *self, const worker_event_t *ev, const char *field,
                     bool overwrite, char **dst)
{
    if (*dst && !overwrite)
        return 0;
    int rc = trigger_field_text(field, ev, self->master_id, &self->text);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    return trigger_stream_set(dst, self->text.data, self->text.size);
}

/* The target as Salt sent it (a glob string, a list ...), kept as msgpack. */
static int job_target(trigger_engine_t *self, const worker_event_t *ev, trigger_stream_t *s)
{
    const msgpack_object *tgt = payload_lookup(payload_root(ev->data), "tgt");
    if (!tgt || tgt->type == MSGPACK_OBJECT_NIL)
        return 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->text, msgpack_sbuffer_write);
    self->text.size = 0;
    if (msgpack_pack_object(&pk, *tgt) != 0)
        return -1;
    return trigger_stream_set_target(s, self->text.data, self->text.size);
}

/* jid, fun, target, user: the expected event's win; returns fill what is still unknown (a
 * job whose `new` event eventsd never saw still gets its jid and fun). */
static int job_fields(trigger_engine_t *self, const worker_event_t *ev, bool from_new,
                      trigger_stream_t *s, char *err, size_t errlen)
{
    if (job_field(self, ev, "data.jid", from_new, &s->jid) != 0 ||
        job_field(self, ev, "data.fun", from_new, &s->fun) != 0 ||
        (from_new && job_target(self, ev, s) != 0) ||
        job_field(self, ev, "data.user", from_new, &s->user) != 0)
        return oom(err, errlen);
    return 0;
}

static int expected_event(trigger_engine_t *self, const compiled_t *c,
                          const worker_event_t *ev, trigger_stream_t *s, char *err,
                          size_t errlen)
{
    const msgpack_object *data = payload_root(ev->data);
    msgpack_object list;
    if (!trigger_pattern_search(c->expected_tag, self->scratch, ev->tag, ev->tag_len) ||
        !name_field_lookup(c->cfg->expected_field, ev->tag, ev->tag_len, data,
                           self->master_id, &list) ||
        list.type != MSGPACK_OBJECT_ARRAY)
        return 0;
    s->listed = true;
    const msgpack_object *missing = payload_lookup(data, "missing");
    if (mark_list(self, s, &list, MEMBER_EXPECTED, err, errlen) != 0 ||
        (missing && missing->type == MSGPACK_OBJECT_ARRAY &&
         mark_list(self, s, missing, MEMBER_EXPECTED | MEMBER_MISSING, err, errlen) != 0))
        return -1;
    return job_fields(self, ev, true, s, err, errlen);
}

/* data.success decides; without it data.retcode (0 succeeded); else neither. */
static int outcome(const worker_event_t *ev)
{
    const msgpack_object *data = payload_root(ev->data);
    const msgpack_object *o = payload_lookup(data, "success");
    double rc;
    if (o && o->type == MSGPACK_OBJECT_BOOLEAN)
        return o->via.boolean ? MEMBER_SUCCEEDED : MEMBER_FAILED;
    o = payload_lookup(data, "retcode");
    if (o && name_object_number(o, &rc))
        return rc == 0 ? MEMBER_SUCCEEDED : MEMBER_FAILED;
    return 0;
}

static int returned_event(trigger_engine_t *self, const compiled_t *c,
                          const worker_event_t *ev, trigger_stream_t *s, char *err,
                          size_t errlen)
{
    if (!trigger_pattern_search(c->returned_tag, self->scratch, ev->tag, ev->tag_len))
        return 0;
    int rc = trigger_field_text(c->cfg->returned_field, ev, self->master_id, &self->text);
    if (rc != 0)   /* a return without a minion id is an ordinary event of the stream */
        return rc < 0 ? oom(err, errlen) : 0;
    if (mark(self, s, self->text.data, self->text.size, MEMBER_RETURNED | outcome(ev), err,
             errlen) != 0)
        return -1;
    return job_fields(self, ev, false, s, err, errlen);
}

/* ---------------------------------------------------------------- applying events */

/* Keeps the earliest and latest _stamp that parse. */
static int note_stamp(trigger_engine_t *self, const worker_event_t *ev, trigger_stream_t *s)
{
    int64_t at, first, last;
    int rc = trigger_field_text("stamp", ev, self->master_id, &self->text);
    if (rc != 0 || !trigger_stamp_us(self->text.data, self->text.size, &at))
        return rc < 0 ? -1 : 0;
    if (!s->first_stamp || !trigger_stamp_us(s->first_stamp, strlen(s->first_stamp), &first) ||
        at < first)
        rc = trigger_stream_set(&s->first_stamp, self->text.data, self->text.size);
    if (rc == 0 && (!s->last_stamp ||
                    !trigger_stamp_us(s->last_stamp, strlen(s->last_stamp), &last) ||
                    at > last))
        rc = trigger_stream_set(&s->last_stamp, self->text.data, self->text.size);
    return rc;
}

static bool joins(trigger_engine_t *self, const compiled_t *c, const worker_event_t *ev)
{
    for (int i = 0; i < c->cfg->n_match; i++)
        if (trigger_criterion_matches(c->match[i], self->scratch, ev, self->master_id))
            return true;
    return false;
}

/* The open stream that arrived first is handed to its expire pipeline now. */
static int evict_oldest(trigger_engine_t *self, char *err, size_t errlen)
{
    int64_t id;
    int rc = trigger_store_oldest_open(self->store, &id, err, errlen);
    if (rc <= 0)
        return rc;
    if (trigger_store_evict(self->store, id, TRIGGER_EVICTED, err, errlen) != 0)
        return -1;
    self->stats.streams_open--;
    self->stats.evicted++;
    return 0;
}

static int new_stream(trigger_engine_t *self, const compiled_t *c, int64_t now_ms,
                      trigger_stream_t *s, char *err, size_t errlen)
{
    if ((int64_t) self->stats.streams_open >= self->max_streams &&
        evict_oldest(self, err, errlen) != 0)
        return -1;
    memset(s, 0, sizeof *s);
    s->first_ms = s->last_ms = now_ms;
    s->held_since = s->retry_at = s->due_at = TRIGGER_NO_TIME;
    s->n_counts = c->cfg->n_fire;
    if (!(s->trigger = strdup(c->cfg->name)) || !(s->key = strdup(self->key.data)) ||
        (s->n_counts && !(s->counts = calloc((size_t) s->n_counts, sizeof *s->counts))))
        return oom(err, errlen);
    if (trigger_store_create(self->store, s, err, errlen) != 0)
        return -1;
    self->stats.streams_open++;
    return 0;
}

static int update_stream(trigger_engine_t *self, const compiled_t *c, const worker_event_t *ev,
                         int64_t now_ms, trigger_stream_t *s, char *err, size_t errlen)
{
    s->events++;
    s->last_ms = now_ms;
    if (note_stamp(self, ev, s) != 0)
        return oom(err, errlen);
    for (int i = 0; i < c->cfg->n_fire && i < s->n_counts; i++)
        if (trigger_criterion_matches(c->fire[i], self->scratch, ev, self->master_id))
            s->counts[i]++;
    if (c->cfg->all_expected && (expected_event(self, c, ev, s, err, errlen) != 0 ||
                                 returned_event(self, c, ev, s, err, errlen) != 0))
        return -1;
    schedule(c->cfg, s, now_ms);
    return trigger_store_save(self->store, s, err, errlen);
}

/* One event against one trigger: joins its stream (creating it) or not. 0 or -1. */
static int apply_trigger(trigger_engine_t *self, const compiled_t *c, const worker_event_t *ev,
                         int64_t now_ms, char *err, size_t errlen)
{
    if (!joins(self, c, ev))
        return 0;
    const char *missing;
    int rc = trigger_key_build(c->key, ev, self->master_id, &self->text, &self->key, &missing);
    if (rc != 0) {
        self->stats.unkeyed += rc > 0;
        return rc < 0 ? oom(err, errlen) : 0;
    }
    self->stats.joined++;
    trigger_stream_t s;
    rc = trigger_store_find(self->store, c->cfg->name, self->key.data, c->cfg->n_fire, &s, err,
                            errlen);
    if (rc == 0)
        rc = new_stream(self, c, now_ms, &s, err, errlen) == 0 ? 1 : -1;
    if (rc == 1)
        rc = update_stream(self, c, ev, now_ms, &s, err, errlen);
    trigger_stream_clear(&s);
    return rc < 0 ? -1 : 0;
}

int trigger_engine_apply(trigger_engine_t *self, worker_event_t *const *events, size_t n,
                         int64_t now_ms, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    trigger_engine_stats_t saved = self->stats;
    int rc = trigger_store_begin(self->store, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        for (int t = 0; rc == 0 && t < self->n_triggers; t++)
            rc = apply_trigger(self, &self->triggers[t], events[i], now_ms, err, errlen);
        self->stats.events++;
    }
    if (rc == 0)
        rc = trigger_store_commit(self->store, err, errlen);
    if (rc != 0) {   /* nothing applied: the counts go back with the rows */
        trigger_store_rollback(self->store);
        self->stats = saved;
    }
    update_counters(self);
    return rc;
}

/* ---------------------------------------------------------------- due streams */

int64_t trigger_engine_next_due(trigger_engine_t *self)
{
    char err[256];
    int64_t due = INT64_MAX;
    /* an error: due now, so the caller's next() meets it and reports it */
    int rc = trigger_store_next_due(self->store, &due, err, sizeof err);
    update_counters(self);
    return rc < 0 ? 0 : rc == 0 ? INT64_MAX : due;
}

static const compiled_t *compiled_for(const trigger_engine_t *self, const char *name)
{
    for (int i = 0; name && i < self->n_triggers; i++)
        if (strcmp(self->triggers[i].cfg->name, name) == 0)
            return &self->triggers[i];
    return NULL;
}

/* Marks s handed out (in progress, not due by itself) and fills out. 0 or -1. */
static int hand_out(trigger_engine_t *self, const compiled_t *c, trigger_stream_t *s,
                    trigger_due_t *out, char *err, size_t errlen)
{
    if (s->state == STREAM_OPEN) {
        s->state = STREAM_IN_PROGRESS;
        s->reason = (int) due_reason(c->cfg, s);
        self->stats.streams_open--;
        if (s->reason == TRIGGER_FIRE)
            self->stats.fired++;
        else
            self->stats.expired++;
    }
    s->due_at = s->retry_at = TRIGGER_NO_TIME;
    if (trigger_store_save(self->store, s, err, errlen) != 0 ||
        (c->cfg->all_expected &&
         trigger_store_missing(self->store, s->id, &out->missing, &out->n_missing, err,
                               errlen) != 0))
        return -1;
    out->stream_id = s->id;
    out->trigger = c->cfg;
    out->reason = (trigger_reason_t) s->reason;
    out->pipeline = out->reason == TRIGGER_FIRE ? c->cfg->fire_pipeline
                                                : c->cfg->expire_pipeline;
    if (trigger_summary_build(c->cfg, s, out->reason, out->missing, out->n_missing, &out->tag,
                              &out->summary) != 0)
        return oom(err, errlen);
    return 0;
}

/* 1 (handed out), 0 (nothing due), 2 (a stream of a trigger this worker does not run was
 * parked: look again) or -1. */
static int next_one(trigger_engine_t *self, int64_t now_ms, trigger_due_t *out, char *err,
                    size_t errlen)
{
    int64_t id;
    trigger_stream_t s;
    int rc = trigger_store_due(self->store, now_ms, &id, err, errlen);
    if (rc == 1)
        rc = trigger_store_load(self->store, id, &s, err, errlen);
    if (rc == 0) {   /* loaded nothing: a stream gone between the two is not due either */
        return 0;
    }
    if (rc < 0)
        return -1;
    const compiled_t *c = compiled_for(self, s.trigger);
    if (!c) {
        rc = trigger_store_park(self->store, id, err, errlen) == 0 ? 2 : -1;
        self->stats.orphaned += rc == 2;
    } else {
        if (s.reason < TRIGGER_FIRE || s.reason > TRIGGER_EVICTED)
            s.reason = TRIGGER_EXPIRE;
        rc = hand_out(self, c, &s, out, err, errlen) == 0 ? 1 : -1;
    }
    trigger_stream_clear(&s);
    return rc;
}

int trigger_engine_next(trigger_engine_t *self, int64_t now_ms, trigger_due_t *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    msgpack_sbuffer_init(&out->tag);
    msgpack_sbuffer_init(&out->summary);
    trigger_engine_stats_t saved = self->stats;
    int rc = trigger_store_begin(self->store, err, errlen);
    while (rc == 0 && (rc = next_one(self, now_ms, out, err, errlen)) == 2)
        rc = 0;
    if (rc >= 0 && trigger_store_commit(self->store, err, errlen) != 0)
        rc = -1;
    if (rc < 0) {
        trigger_store_rollback(self->store);
        self->stats = saved;
    }
    if (rc != 1)
        trigger_due_free(out);
    update_counters(self);
    return rc;
}

void trigger_due_free(trigger_due_t *due)
{
    if (!due)
        return;
    msgpack_sbuffer_destroy(&due->tag);
    msgpack_sbuffer_destroy(&due->summary);
    for (size_t i = 0; due->missing && i < due->n_missing; i++)
        free(due->missing[i]);
    free(due->missing);
    memset(due, 0, sizeof *due);
}

int trigger_engine_finish(trigger_engine_t *self, int64_t stream_id, char *err, size_t errlen)
{
    int rc = trigger_store_begin(self->store, err, errlen);
    if (rc == 0 && (rc = trigger_store_delete(self->store, stream_id, err, errlen)) == 0) {
        snprintf(err, errlen, "stream %lld is not in progress", (long long) stream_id);
        rc = -1;
    }
    if (rc > 0)
        rc = trigger_store_commit(self->store, err, errlen);
    if (rc != 0)
        trigger_store_rollback(self->store);
    update_counters(self);
    return rc;
}

int trigger_engine_defer(trigger_engine_t *self, int64_t stream_id, int64_t retry_at_ms,
                         char *err, size_t errlen)
{
    int rc = trigger_store_defer(self->store, stream_id, retry_at_ms, err, errlen);
    if (rc == 0)
        snprintf(err, errlen, "stream %lld is not in progress", (long long) stream_id);
    self->stats.deferred += rc == 1;
    update_counters(self);
    return rc == 1 ? 0 : -1;
}

const trigger_engine_stats_t *trigger_engine_stats(const trigger_engine_t *self)
{
    return &self->stats;
}

/* ---------------------------------------------------------------- explain */

/* What the event is to an all_expected trigger: its expected list or a return. */
static void explain_role(const compiled_t *c, trigger_scratch_t *sc, const worker_event_t *ev,
                         const char *master_id, msgpack_sbuffer *text, FILE *out)
{
    msgpack_object list;
    const msgpack_object *data = payload_root(ev->data);
    if (trigger_pattern_search(c->expected_tag, sc, ev->tag, ev->tag_len) &&
        name_field_lookup(c->cfg->expected_field, ev->tag, ev->tag_len, data, master_id,
                          &list) && list.type == MSGPACK_OBJECT_ARRAY)
        fprintf(out, "; expected list of %u minions", list.via.array.size);
    if (trigger_pattern_search(c->returned_tag, sc, ev->tag, ev->tag_len) &&
        trigger_field_text(c->cfg->returned_field, ev, master_id, text) == 0)
        fprintf(out, "; return of minion '%s'", text->data);
}

static void explain_one(const compiled_t *c, trigger_scratch_t *sc, const worker_event_t *ev,
                        const char *master_id, msgpack_sbuffer *text, msgpack_sbuffer *key,
                        FILE *out)
{
    bool joined = false;
    for (int i = 0; !joined && i < c->cfg->n_match; i++)
        joined = trigger_criterion_matches(c->match[i], sc, ev, master_id);
    if (!joined) {
        fprintf(out, "    trigger '%s': does not match\n", c->cfg->name);
        return;
    }
    const char *missing = NULL;
    int rc = trigger_key_build(c->key, ev, master_id, text, key, &missing);
    if (rc != 0) {
        fprintf(out, "    trigger '%s': matches but joins no stream: %s\n", c->cfg->name,
                rc > 0 ? "no value for distinguished_by" : "out of memory");
        if (rc > 0)
            fprintf(out, "      (missing: '%s'; counted as unkeyed)\n", missing);
        return;
    }
    fprintf(out, "    trigger '%s': joins stream '%s'", c->cfg->name, key->data);
    for (int i = 0; i < c->cfg->n_fire; i++)
        if (trigger_criterion_matches(c->fire[i], sc, ev, master_id))
            fprintf(out, "; counts for fire #%d", i + 1);
    if (c->cfg->all_expected)
        explain_role(c, sc, ev, master_id, text, out);
    fputc('\n', out);
}

int trigger_engine_check(const eventsd_config_t *cfg, const worker_config_t *w, char *err,
                         size_t errlen)
{
    compiled_t *triggers = NULL;
    int n = 0;
    int rc = compile_worker(cfg, w, &triggers, &n, err, errlen);
    free_worker(&triggers, n);
    return rc;
}

void trigger_engine_explain(const eventsd_config_t *cfg, const worker_config_t *w,
                            const worker_event_t *ev, FILE *out)
{
    char err[512];
    compiled_t *triggers = NULL;
    int n = 0;
    trigger_scratch_t *sc = trigger_scratch_new();
    msgpack_sbuffer text, key;
    msgpack_sbuffer_init(&text);
    msgpack_sbuffer_init(&key);
    if (!sc)
        fprintf(out, "    triggers: out of memory\n");
    else if (compile_worker(cfg, w, &triggers, &n, err, sizeof err) != 0)
        fprintf(out, "    triggers: %s\n", err);
    else
        for (int i = 0; i < n; i++)
            explain_one(&triggers[i], sc, ev, cfg->master_id, &text, &key, out);
    free_worker(&triggers, n);
    trigger_scratch_destroy(&sc);
    msgpack_sbuffer_destroy(&text);
    msgpack_sbuffer_destroy(&key);
}
