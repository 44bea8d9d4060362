/* trigger_match: see trigger_match.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "trigger_match.h"
#include "name_template.h"
#include "payload.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SUBJECT_ALIGN 64

struct trigger_scratch {
    char              *subject;
    size_t             cap;
    pcre2_match_data  *match;
    msgpack_sbuffer    text;
};

struct trigger_pattern {
    pcre2_code *re;
};

typedef struct {
    char              *field;
    cond_op_t          op;
    char              *value;
    size_t             value_len;
    bool               is_number;   /* value parses as a number */
    double             number;
    trigger_pattern_t *re;          /* =~ and !~ */
} cond_t;

struct trigger_criterion {
    trigger_pattern_t *tag;
    cond_t            *conds;
    int                n_conds;
};

/* ---- scratch ---- */

trigger_scratch_t *trigger_scratch_new(void)
{
    trigger_scratch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    msgpack_sbuffer_init(&self->text);
    if (!(self->match = pcre2_match_data_create(1, NULL)))
        trigger_scratch_destroy(&self);
    return self;
}

void trigger_scratch_destroy(trigger_scratch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trigger_scratch_t *self = *self_p;
    pcre2_match_data_free(self->match);
    free(self->subject);
    msgpack_sbuffer_destroy(&self->text);
    free(self);
    *self_p = NULL;
}

/* ---- patterns ---- */

trigger_pattern_t *trigger_pattern_new(const char *pattern, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE offset;
    trigger_pattern_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* MATCH_INVALID_UTF: a tag or value that is not UTF-8 simply does not match */
    self->re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &offset, NULL);
    if (!self->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "'%s': %s at offset %zu", pattern, (const char *) msg,
                 (size_t) offset);
        free(self);
        return NULL;
    }
    /* JIT is an optimisation: a platform without it still matches correctly. */
    pcre2_jit_compile(self->re, PCRE2_JIT_COMPLETE);
    return self;
}

void trigger_pattern_destroy(trigger_pattern_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pcre2_code_free((*self_p)->re);
    free(*self_p);
    *self_p = NULL;
}

/* Copies s into the aligned, zero-padded subject buffer; false when out of memory. */
static bool load_subject(trigger_scratch_t *sc, const char *s, size_t len)
{
    if (len + SUBJECT_ALIGN > sc->cap) {
        size_t cap = (len / SUBJECT_ALIGN + 2) * SUBJECT_ALIGN;
        char *grown = aligned_alloc(SUBJECT_ALIGN, cap);
        if (!grown)
            return false;
        memset(grown, 0, cap);
        free(sc->subject);
        sc->subject = grown;
        sc->cap = cap;
    }
    if (len)
        memcpy(sc->subject, s, len);
    memset(sc->subject + len, 0, SUBJECT_ALIGN);
    return true;
}

bool trigger_pattern_search(const trigger_pattern_t *self, trigger_scratch_t *sc,
                            const char *s, size_t len)
{
    if (!load_subject(sc, s, len))   /* out of memory: match in place */
        return pcre2_match(self->re, (PCRE2_SPTR) (s ? s : ""), len, 0, 0, sc->match,
                           NULL) >= 0;
    return pcre2_match(self->re, (PCRE2_SPTR) sc->subject, len, 0, 0, sc->match, NULL) >= 0;
}

/* ---- field text ---- */

static int terminate(msgpack_sbuffer *out)
{
    if (msgpack_sbuffer_write(out, "", 1) != 0)
        return -1;
    out->size--;
    return 0;
}

int trigger_object_text(const msgpack_object *obj, msgpack_sbuffer *out)
{
    out->size = 0;
    if (obj->type == MSGPACK_OBJECT_BOOLEAN) {
        const char *s = obj->via.boolean ? "true" : "false";
        if (msgpack_sbuffer_write(out, s, strlen(s)) != 0)
            return -1;
        return terminate(out);
    }
    int rc = payload_to_text(obj, out);
    if (rc != 0)
        return rc;
    return terminate(out);
}

int trigger_field_text(const char *field, const worker_event_t *ev, const char *master_id,
                       msgpack_sbuffer *out)
{
    msgpack_object obj;
    const msgpack_object *data = ev->data ? payload_root(ev->data) : NULL;
    if (!name_field_lookup(field, ev->tag, ev->tag_len, data, master_id, &obj))
        return 1;
    return trigger_object_text(&obj, out);
}

/* ---- conditions ---- */

static bool text_number(const char *s, size_t n, double *out)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_STR };
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t) n;
    return name_object_number(&o, out);
}

static int compile_cond(const condition_config_t *cfg, cond_t *c, char *err, size_t errlen)
{
    c->op = cfg->op;
    if (!cfg->field || !name_field_valid(cfg->field)) {
        snprintf(err, errlen, "condition on unknown field '%s'", cfg->field ? cfg->field : "");
        return -1;
    }
    if (!(c->field = strdup(cfg->field)) ||
        (cfg->value && !(c->value = strdup(cfg->value)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (c->op == COND_EXISTS)
        return 0;
    if (!c->value) {
        snprintf(err, errlen, "condition on '%s' has no value", c->field);
        return -1;
    }
    c->value_len = strlen(c->value);
    c->is_number = text_number(c->value, c->value_len, &c->number);
    if (c->op != COND_MATCH && c->op != COND_NOMATCH)
        return 0;
    char why[384];
    if (!(c->re = trigger_pattern_new(c->value, why, sizeof why))) {
        snprintf(err, errlen, "condition '%s %s %s': pattern %s", c->field,
                 c->op == COND_MATCH ? "=~" : "!~", c->value, why);
        return -1;
    }
    return 0;
}

static bool order_holds(cond_op_t op, int cmp)
{
    switch (op) {
    case COND_EQ: return cmp == 0;
    case COND_NE: return cmp != 0;
    case COND_LT: return cmp < 0;
    case COND_LE: return cmp <= 0;
    case COND_GT: return cmp > 0;
    case COND_GE: return cmp >= 0;
    default:      return false;
    }
}

static int compare_text(const cond_t *c, const msgpack_object *obj, const msgpack_sbuffer *t)
{
    if (obj->type == MSGPACK_OBJECT_BOOLEAN)   /* "true" vs "True" */
        return t->size == c->value_len ? strcasecmp(t->data, c->value)
                                       : t->size < c->value_len ? -1 : 1;
    size_t n = t->size < c->value_len ? t->size : c->value_len;
    int cmp = n ? memcmp(t->data, c->value, n) : 0;
    if (cmp == 0 && t->size != c->value_len)
        cmp = t->size < c->value_len ? -1 : 1;
    return cmp;
}

static bool cond_holds(const cond_t *c, trigger_scratch_t *sc, const worker_event_t *ev,
                       const char *master_id)
{
    msgpack_object obj;
    const msgpack_object *data = ev->data ? payload_root(ev->data) : NULL;
    if (!name_field_lookup(c->field, ev->tag, ev->tag_len, data, master_id, &obj))
        return false;
    if (c->op == COND_EXISTS)
        return true;
    double x;
    bool ordered = c->op != COND_MATCH && c->op != COND_NOMATCH;
    if (ordered && c->is_number && name_object_number(&obj, &x))
        return order_holds(c->op, x < c->number ? -1 : x > c->number ? 1 : 0);
    if (trigger_object_text(&obj, &sc->text) != 0)
        return false;
    if (ordered)
        return order_holds(c->op, compare_text(c, &obj, &sc->text));
    bool found = trigger_pattern_search(c->re, sc, sc->text.data, sc->text.size);
    return c->op == COND_MATCH ? found : !found;
}

/* ---- criteria ---- */

trigger_criterion_t *trigger_criterion_new(const event_match_config_t *cfg, char *err,
                                           size_t errlen)
{
    trigger_criterion_t *self = calloc(1, sizeof *self);
    if (!self || (cfg->n_where > 0 &&
                  !(self->conds = calloc((size_t) cfg->n_where, sizeof *self->conds)))) {
        snprintf(err, errlen, "out of memory");
        trigger_criterion_destroy(&self);
        return NULL;
    }
    char why[384];
    if (!cfg->tag || !(self->tag = trigger_pattern_new(cfg->tag, why, sizeof why))) {
        snprintf(err, errlen, "tag pattern %s", cfg->tag ? why : "missing");
        trigger_criterion_destroy(&self);
        return NULL;
    }
    for (int i = 0; i < cfg->n_where; i++, self->n_conds++)
        if (compile_cond(&cfg->where[i], &self->conds[i], err, errlen) != 0) {
            self->n_conds++;   /* so destroy frees what this one got */
            trigger_criterion_destroy(&self);
            return NULL;
        }
    return self;
}

void trigger_criterion_destroy(trigger_criterion_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trigger_criterion_t *self = *self_p;
    trigger_pattern_destroy(&self->tag);
    for (int i = 0; i < self->n_conds; i++) {
        free(self->conds[i].field);
        free(self->conds[i].value);
        trigger_pattern_destroy(&self->conds[i].re);
    }
    free(self->conds);
    free(self);
    *self_p = NULL;
}

bool trigger_criterion_matches(const trigger_criterion_t *self, trigger_scratch_t *scratch,
                               const worker_event_t *ev, const char *master_id)
{
    if (!trigger_pattern_search(self->tag, scratch, ev->tag, ev->tag_len))
        return false;
    for (int i = 0; i < self->n_conds; i++)
        if (!cond_holds(&self->conds[i], scratch, ev, master_id))
            return false;
    return true;
}
