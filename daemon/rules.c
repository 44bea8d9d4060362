#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules.h"
#include "payload.h"

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
} compiled_rule_t;

struct rules {
    compiled_rule_t  *rules;
    int               n_rules;
    int               n_workers;
    pcre2_match_data *match;
    char             *subject;      /* see matches() */
    size_t            subject_cap;
};

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
    if (!self->rules || !self->match) {
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
    }
    free(self->rules);
    pcre2_match_data_free(self->match);
    free(self->subject);
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

int rules_match(rules_t *self, const char *tag, size_t tag_len, const void *payload,
                size_t payload_len, uint8_t *targets)
{
    payload_t *data = NULL;
    char err[8];
    memset(targets, 0, (size_t) self->n_workers);
    const msgpack_object *fun = NULL;
    bool fun_looked_up = false;
    int hits = 0;
    for (int i = 0; i < self->n_rules; i++) {
        compiled_rule_t *r = &self->rules[i];
        if (!matches(self, r->tag, tag, tag_len))
            continue;
        if (r->fun) {
            if (!fun_looked_up) {
                data = payload_new(payload, payload_len, true, 1000 /* validated by the decoder */, err,
                                   sizeof err);
                fun = data ? event_fun(payload_root(data)) : NULL;
                fun_looked_up = true;
            }
            if (!fun || !matches(self, r->fun, fun->via.str.ptr, fun->via.str.size))
                continue;
        }
        for (int w = 0; w < r->n_workers; w++) {
            uint8_t *t = &targets[r->workers[w]];
            if (!*t)
                hits++;
            *t |= RULES_DELIVER | (r->priority ? RULES_PRIORITY : 0);
        }
    }
    payload_destroy(&data);
    return hits;
}
