#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules.h"
#include "log.h"
#include "payload.h"
#include "throttle.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pcre2_code *tag;
    pcre2_code *fun;     /* NULL: any */
    int        *workers;
    int         n_workers;
    bool        priority;
    throttle_t *throttle;  /* NULL: none */
    char        label[12]; /* "1" for rule #1: names it in figures */
} compiled_rule_t;

struct rules {
    compiled_rule_t  *rules;
    int               n_rules;
    int               n_workers;
    pcre2_match_data *match;
    char             *subject;      /* see matches() */
    size_t            subject_cap;
    char             *master_id;    /* for throttle keys */
    const char       *throttle_error;
};

/* The event being matched: its data map is unpacked once, and only when a rule needs it. */
typedef struct {
    const char *tag;
    size_t      tag_len;
    const void *payload;
    size_t      payload_len;
    payload_t  *data;
    bool        unpacked;
} subject_event_t;

static const msgpack_object *event_data(subject_event_t *ev)
{
    if (!ev->unpacked) {
        char err[8];
        ev->data = payload_new(ev->payload, ev->payload_len, true,
                               1000 /* validated by the decoder */, err, sizeof err);
        ev->unpacked = true;
    }
    return ev->data ? payload_root(ev->data) : NULL;
}

/* The JIT's SIMD scans read whole aligned blocks around the subject: within the pages it
 * owns, but past the end of the caller's buffer (bytes no one initialised, or outside the
 * malloc block), which memcheck rightly reports and a hardened allocator could trap. Every
 * subject is therefore copied into one buffer of ours, aligned to SUBJECT_ALIGN and
 * initialised SUBJECT_ALIGN bytes beyond the subject. Subjects are tags and fun names: short. */
#define SUBJECT_ALIGN 64

static pcre2_code *compile_pattern(const char *pattern, const char *file, int line,
                                   const char *what, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                   &code, &offset, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "%s:%d: rule %s pattern '%s': %s at offset %zu", file, line,
                 what, pattern, (const char *) msg, (size_t) offset);
        return NULL;
    }
    /* JIT is an optimisation: a platform without it still matches correctly. */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* A shared throttle's name in Redis: what the rule is (tag, fun, key, window), not where it
 * is in the file, so instances with the same rule share windows whatever their line numbers,
 * and editing a rule's meaning starts new windows. FNV-1a, 64 bits, in hex. */
static void throttle_scope(const rule_config_t *rc, char *out, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    const char *parts[] = { rc->tag, rc->fun ? rc->fun : "", rc->throttle ? rc->throttle->key : "" };
    for (size_t i = 0; i < 3; i++)
        for (const char *p = parts[i]; ; p++) {
            h = (h ^ (unsigned char) *p) * 1099511628211ULL;   /* the NUL separates parts */
            if (!*p)
                break;
        }
    if (rc->throttle)
        h = (h ^ (uint64_t) rc->throttle->timeframe_s) * 1099511628211ULL;
    snprintf(out, len, "%016llx", (unsigned long long) h);
}

static int compile_rule(compiled_rule_t *out, const rule_config_t *rc,
                        const eventsd_config_t *cfg, char *err, size_t errlen)
{
    out->tag = compile_pattern(rc->tag, cfg->path, rc->tag_line ? rc->tag_line : rc->line,
                               "tag", err, errlen);
    if (!out->tag)
        return -1;
    if (rc->fun) {
        out->fun = compile_pattern(rc->fun, cfg->path, rc->fun_line ? rc->fun_line : rc->line,
                                   "fun", err, errlen);
        if (!out->fun)
            return -1;
    }
    out->workers = calloc((size_t) rc->n_workers, sizeof(int));
    if (!out->workers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < rc->n_workers; i++) {
        int w = config_worker_index(cfg, rc->workers[i]);
        if (w < 0) {
            snprintf(err, errlen, "%s:%d: rule names unknown worker '%s'", cfg->path, rc->line,
                     rc->workers[i]);
            return -1;
        }
        out->workers[out->n_workers++] = w;
    }
    out->priority = rc->priority;
    snprintf(out->label, sizeof out->label, "%d", (int) (rc - cfg->rules) + 1);
    char scope[24];
    throttle_scope(rc, scope, sizeof scope);
    if (rc->throttle && !(out->throttle = throttle_new(rc->throttle, &cfg->redis, cfg->path,
                                                       scope, err, errlen)))
        return -1;
    return 0;
}

rules_t *rules_new(const eventsd_config_t *cfg, char *err, size_t errlen)
{
    rules_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->n_workers = cfg->n_workers;
    self->rules = calloc((size_t) cfg->n_rules + 1, sizeof *self->rules);
    self->match = pcre2_match_data_create(1, NULL);
    self->master_id = cfg->master_id ? strdup(cfg->master_id) : NULL;
    if (!self->rules || !self->match || (cfg->master_id && !self->master_id)) {
        snprintf(err, errlen, "out of memory");
        rules_destroy(&self);
        return NULL;
    }
    for (int i = 0; i < cfg->n_rules; i++) {
        self->n_rules++;
        if (compile_rule(&self->rules[i], &cfg->rules[i], cfg, err, errlen) < 0) {
            rules_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void rules_destroy(rules_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rules_t *self = *self_p;
    for (int i = 0; i < self->n_rules; i++) {
        pcre2_code_free(self->rules[i].tag);
        pcre2_code_free(self->rules[i].fun);
        free(self->rules[i].workers);
        throttle_destroy(&self->rules[i].throttle);
    }
    free(self->rules);
    pcre2_match_data_free(self->match);
    free(self->subject);
    free(self->master_id);
    free(self);
    *self_p = NULL;
}

int rules_n_workers(const rules_t *self)
{
    return self->n_workers;
}

static bool matches(rules_t *self, pcre2_code *re, const char *s, size_t len)
{
    if (len + SUBJECT_ALIGN > self->subject_cap) {
        size_t cap = (len / SUBJECT_ALIGN + 2) * SUBJECT_ALIGN;
        char *grown = aligned_alloc(SUBJECT_ALIGN, cap);
        if (!grown)   /* out of memory: match in place, the JIT stays within its pages */
            return pcre2_match(re, (PCRE2_SPTR) s, len, 0, 0, self->match, NULL) >= 0;
        memset(grown, 0, cap);
        free(self->subject);
        self->subject = grown;
        self->subject_cap = cap;
    }
    memcpy(self->subject, s, len);
    return pcre2_match(re, (PCRE2_SPTR) self->subject, len, 0, 0, self->match, NULL) >= 0;
}

/* The function an event is about: data.fun, else data.data.fun (fire_master events). */
static const msgpack_object *event_fun(const msgpack_object *data)
{
    const msgpack_object *fun = payload_lookup(data, "fun");
    if (!fun)
        fun = payload_lookup(data, "data.fun");
    if (fun && fun->type != MSGPACK_OBJECT_STR && fun->type != MSGPACK_OBJECT_BIN)
        return NULL;
    return fun;
}

/* Tag and fun patterns only (throttles are counted by the caller). */
static bool rule_selects(rules_t *self, compiled_rule_t *r, subject_event_t *ev)
{
    if (!matches(self, r->tag, ev->tag, ev->tag_len))
        return false;
    if (!r->fun)
        return true;
    const msgpack_object *data = event_data(ev);
    const msgpack_object *fun = data ? event_fun(data) : NULL;
    return fun && matches(self, r->fun, fun->via.str.ptr, fun->via.str.size);
}

static bool throttle_passes(rules_t *self, compiled_rule_t *r, subject_event_t *ev)
{
    if (!r->throttle)
        return true;
    bool pass = throttle_pass(r->throttle, ev->tag, ev->tag_len, event_data(ev),
                              self->master_id, clock_ms());
    if (throttle_error(r->throttle))
        self->throttle_error = throttle_error(r->throttle);
    return pass;
}

int rules_match(rules_t *self, const char *tag, size_t tag_len, const void *payload,
                size_t payload_len, uint8_t *targets)
{
    subject_event_t ev = { tag, tag_len, payload, payload_len, NULL, false };
    memset(targets, 0, (size_t) self->n_workers);
    self->throttle_error = NULL;
    int hits = 0;
    for (int i = 0; i < self->n_rules; i++) {
        compiled_rule_t *r = &self->rules[i];
        if (!rule_selects(self, r, &ev) || !throttle_passes(self, r, &ev))
            continue;
        for (int w = 0; w < r->n_workers; w++) {
            uint8_t *t = &targets[r->workers[w]];
            if (!*t)
                hits++;
            *t |= RULES_DELIVER | (r->priority ? RULES_PRIORITY : 0);
        }
    }
    payload_destroy(&ev.data);
    return hits;
}

const char *rules_label(const rules_t *self, int rule)
{
    return self->rules[rule].label;
}

const char *rules_throttle_error(const rules_t *self)
{
    return self->throttle_error;
}

int rules_n_rules(const rules_t *self)
{
    return self->n_rules;
}

const throttle_stats_t *rules_throttle_stats(const rules_t *self, int rule)
{
    return rule >= 0 && rule < self->n_rules && self->rules[rule].throttle
               ? throttle_stats(self->rules[rule].throttle) : NULL;
}

int rules_explain(rules_t *self, const char *tag, size_t tag_len, const void *payload,
                  size_t payload_len, rule_explain_t *out)
{
    subject_event_t ev = { tag, tag_len, payload, payload_len, NULL, false };
    for (int i = 0; i < self->n_rules; i++) {
        compiled_rule_t *r = &self->rules[i];
        rule_explain_t *x = &out[i];
        *x = (rule_explain_t){ .tag_matched = matches(self, r->tag, tag, tag_len),
                               .has_fun = r->fun != NULL, .has_throttle = r->throttle != NULL,
                               .throttle_passes = true };
        const msgpack_object *data = event_data(&ev);
        const msgpack_object *fun = data ? event_fun(data) : NULL;
        if (fun)
            snprintf(x->fun, sizeof x->fun, "%.*s", (int) fun->via.str.size, fun->via.str.ptr);
        x->fun_matched = !r->fun || (fun && matches(self, r->fun, fun->via.str.ptr,
                                                    fun->via.str.size));
        if (r->throttle && throttle_peek(r->throttle, tag, tag_len, data, self->master_id,
                                         clock_ms(), x->throttle_key, sizeof x->throttle_key,
                                         &x->throttle_count, &x->throttle_passes) < 0) {
            payload_destroy(&ev.data);
            return -1;
        }
        x->selected = x->tag_matched && x->fun_matched;
    }
    payload_destroy(&ev.data);
    return 0;
}
