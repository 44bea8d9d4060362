/* graphite_map: see graphite_map.h. Per event, every name goes into one scratch buffer and a
 * point records its offset; pointers are filled in at the end because the buffer may move
 * while it grows. Deduplication is a linear scan with a hash in front: an event touches a
 * handful of names (metrics x matching rollups). */
#include "graphite_map.h"
#include "graphite_name.h"
#include "graphite_rollup.h"
#include "name_template.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    name_template_t *tpl;
    const char      *value;   /* the config's field name, or NULL: a count */
    metric_agg_t     how;
} metric_t;

typedef struct {
    size_t   off, len;
    uint32_t hash;
    double   value;
    metric_agg_t how;
    bool     rollup;
} slot_t;

struct graphite_map {
    char               *prefix;      /* "salt." or "" */
    size_t              prefix_len;
    metric_t           *metrics;
    int                 n_metrics;
    graphite_rollup_t **rollups;
    int                 n_rollups;
    msgpack_sbuffer     names;       /* every name of the current event */
    msgpack_sbuffer     cur;         /* the metric name rollups are applied to */
    slot_t             *slots;
    graphite_point_t   *points;
    size_t              cap;
    graphite_skips_t    skips;
};

/* ---- checking ---- */

typedef struct {
    const char *file;
    char       *err;
    size_t      errlen, used;
    int         count;
} problems_t;

__attribute__((format(printf, 3, 4)))
static void problem(problems_t *p, int line, const char *fmt, ...)
{
    p->count++;
    if (p->used + 1 >= p->errlen)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n = snprintf(p->err + p->used, p->errlen - p->used, "%s%s:%d: %s",
                     p->used ? "\n" : "", p->file, line, msg);
    p->used += n > 0 ? (size_t) n : 0;
    if (p->used >= p->errlen)
        p->used = p->errlen - 1;
}

/* The template's text with every placeholder replaced by "x" ("{{" and "}}" stay braces):
 * checked as a name, it catches bad literal characters and empty components whatever the
 * fields hold. The caller compiled the template, so braces are balanced. */
static size_t template_shape(const char *t, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; t[i] && n + 1 < cap; ) {
        if ((t[i] == '{' && t[i + 1] == '{') || (t[i] == '}' && t[i + 1] == '}')) {
            out[n++] = t[i];
            i += 2;
        } else if (t[i] == '{') {
            const char *close = strchr(t + i, '}');
            out[n++] = 'x';
            i = close ? (size_t) (close - t) + 1 : strlen(t);
        } else {
            out[n++] = t[i++];
        }
    }
    return n;
}

static void check_metric(problems_t *p, const worker_config_t *cfg, const metric_config_t *m,
                         int idx)
{
    int line = m->line ? m->line : cfg->line;
    char err[256] = "";
    if (!m->name) {
        problem(p, line, "metric #%d has no 'name'", idx + 1);
        return;
    }
    name_template_t *t = name_template_compile(m->name, err, sizeof err);
    if (!t) {
        problem(p, line, "metric '%s': %s", m->name, err);
        return;
    }
    name_template_destroy(&t);
    char shape[GRAPHITE_NAME_MAX + 2];
    size_t n = 0;
    const char *pre = cfg->prefix;   /* a bad prefix is reported once, on its own */
    if (pre && pre[0] && !graphite_name_problem(pre, strlen(pre)))
        n = (size_t) snprintf(shape, sizeof shape, "%s.", pre);
    n += template_shape(m->name, shape + n, sizeof shape - n);
    const char *why = graphite_name_problem(shape, n);
    if (why)
        problem(p, line, "metric '%s': %s (a name template's own text must be a Graphite "
                "name: fields are sanitised, the text around them is not)", m->name, why);
    if (m->value && !name_field_valid(m->value))
        problem(p, line, "metric '%s': value '%s' is not a field (tag, master_id, stamp, data, "
                "data.<path>)", m->name, m->value);
}

int graphite_map_check(const worker_config_t *cfg, const char *file, char *err, size_t errlen)
{
    problems_t p = { .file = file ? file : "?", .err = err, .errlen = errlen };
    if (errlen)
        err[0] = '\0';
    const char *why;
    if (cfg->prefix && cfg->prefix[0] && (why = graphite_name_problem(cfg->prefix,
                                                                      strlen(cfg->prefix))))
        problem(&p, cfg->line, "worker '%s': prefix '%s': %s", cfg->name ? cfg->name : "?",
                cfg->prefix, why);
    if (cfg->n_metrics < 1)
        problem(&p, cfg->line, "worker '%s': the graphite sink needs at least one metric",
                cfg->name ? cfg->name : "?");
    for (int i = 0; i < cfg->n_metrics; i++)
        check_metric(&p, cfg, &cfg->metrics[i], i);
    for (int i = 0; i < cfg->n_rollups; i++) {
        const rollup_config_t *r = &cfg->rollups[i];
        char msg[512] = "";
        graphite_rollup_t *c = graphite_rollup_compile(r->target, r->source, msg, sizeof msg);
        if (!c)
            problem(&p, r->line ? r->line : cfg->line, "rollup '%s' <- '%s': %s",
                    r->target ? r->target : "", r->source ? r->source : "", msg);
        graphite_rollup_destroy(&c);
    }
    return p.count;
}

/* ---- compiling ---- */

void graphite_map_destroy(graphite_map_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    graphite_map_t *m = *self_p;
    for (int i = 0; m->metrics && i < m->n_metrics; i++)
        name_template_destroy(&m->metrics[i].tpl);
    for (int i = 0; m->rollups && i < m->n_rollups; i++)
        graphite_rollup_destroy(&m->rollups[i]);
    free(m->metrics);
    free(m->rollups);
    free(m->prefix);
    free(m->slots);
    free(m->points);
    msgpack_sbuffer_destroy(&m->names);
    msgpack_sbuffer_destroy(&m->cur);
    free(m);
    *self_p = NULL;
}

static int compile_all(graphite_map_t *m, const worker_config_t *cfg)
{
    char err[256];
    m->metrics = calloc((size_t) cfg->n_metrics, sizeof *m->metrics);
    m->rollups = calloc((size_t) cfg->n_rollups + 1, sizeof *m->rollups);
    if (!m->metrics || !m->rollups)
        return -1;
    for (int i = 0; i < cfg->n_metrics; i++, m->n_metrics++) {
        metric_t *mt = &m->metrics[i];
        mt->value = cfg->metrics[i].value;
        mt->how = cfg->metrics[i].aggregate;
        if (!(mt->tpl = name_template_compile(cfg->metrics[i].name, err, sizeof err)))
            return -1;
    }
    for (int i = 0; i < cfg->n_rollups; i++, m->n_rollups++)
        if (!(m->rollups[i] = graphite_rollup_compile(cfg->rollups[i].target,
                                                      cfg->rollups[i].source, err, sizeof err)))
            return -1;
    return 0;
}

graphite_map_t *graphite_map_new(const worker_config_t *cfg, const char *file, char *err,
                                 size_t errlen)
{
    char all[2048];
    if (graphite_map_check(cfg, file, all, sizeof all) > 0) {
        snprintf(err, errlen, "%.*s", (int) strcspn(all, "\n"), all);
        return NULL;
    }
    graphite_map_t *m = calloc(1, sizeof *m);
    if (m) {
        msgpack_sbuffer_init(&m->names);
        msgpack_sbuffer_init(&m->cur);
        const char *pre = cfg->prefix && cfg->prefix[0] ? cfg->prefix : NULL;
        m->prefix_len = pre ? strlen(pre) + 1 : 0;
        m->prefix = malloc(m->prefix_len + 1);
        if (m->prefix)
            snprintf(m->prefix, m->prefix_len + 1, "%s%s", pre ? pre : "", pre ? "." : "");
    }
    if (!m || !m->prefix || compile_all(m, cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        graphite_map_destroy(&m);
    }
    return m;
}

graphite_skips_t graphite_map_skips(const graphite_map_t *self)
{
    return self->skips;
}

/* ---- mapping ---- */

static uint32_t hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    return h;
}

/* Records names[off..off+len) as a point unless the event already has that name (then the
 * bytes are taken back). Returns 0 or -1 (out of memory). */
static int add_point(graphite_map_t *m, size_t *n, size_t off, size_t len, double v,
                     metric_agg_t how, bool rollup)
{
    const char *name = m->names.data + off;
    uint32_t h = hash_name(name, len);
    for (size_t i = 0; i < *n; i++)
        if (m->slots[i].hash == h && m->slots[i].len == len &&
            memcmp(m->names.data + m->slots[i].off, name, len) == 0) {
            m->names.size = off;
            return 0;
        }
    if (*n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        slot_t *slots = realloc(m->slots, cap * sizeof *slots);
        if (slots)
            m->slots = slots;
        graphite_point_t *points = slots ? realloc(m->points, cap * sizeof *points) : NULL;
        if (!points)
            return -1;
        m->points = points;
        m->cap = cap;
    }
    m->slots[(*n)++] = (slot_t){ .off = off, .len = len, .hash = h, .value = v, .how = how,
                                 .rollup = rollup };
    return 0;
}

/* The metric's value: 1 for a count, else its field's finite number. */
static bool metric_value(const metric_t *mt, const char *tag, size_t tag_len,
                         const msgpack_object *data, const char *master_id, double *v)
{
    msgpack_object o;
    *v = 1;
    return !mt->value ||
           (name_field_lookup(mt->value, tag, tag_len, data, master_id, &o) &&
            name_object_number(&o, v) && isfinite(*v));
}

/* Appends every rollup target of m->cur (the metric's full name) as points. */
static int apply_rollups(graphite_map_t *m, size_t *n, double v, metric_agg_t how)
{
    for (int r = 0; r < m->n_rollups; r++) {
        size_t off = m->names.size;
        int rc = graphite_rollup_apply(m->rollups[r], m->cur.data, m->cur.size, &m->names);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        if (graphite_name_problem(m->names.data + off, m->names.size - off)) {
            m->skips.bad_name++;   /* the target grew past the length limits */
            m->names.size = off;
            continue;
        }
        if (add_point(m, n, off, m->names.size - off, v, how, true) != 0)
            return -1;
    }
    return 0;
}

/* Maps metric mt: its own name, then its rollups. */
static int map_metric(graphite_map_t *m, const metric_t *mt, size_t *n, const char *tag,
                      size_t tag_len, const msgpack_object *data, const char *master_id)
{
    double v;
    if (!metric_value(mt, tag, tag_len, data, master_id, &v)) {
        m->skips.bad_value++;
        return 0;
    }
    m->cur.size = 0;   /* no zero-length write: memcpy into a buffer not allocated yet */
    if (m->prefix_len && msgpack_sbuffer_write(&m->cur, m->prefix, m->prefix_len) != 0)
        return -1;
    int rc = name_template_expand(mt->tpl, tag, tag_len, data, master_id, NAME_GRAPHITE,
                                  &m->cur);
    if (rc != 0) {
        m->skips.missing_field += rc == 1;
        return rc == 1 ? 0 : -1;
    }
    if (graphite_name_problem(m->cur.data, m->cur.size)) {
        m->skips.bad_name++;
        return 0;
    }
    size_t off = m->names.size;
    if (msgpack_sbuffer_write(&m->names, m->cur.data, m->cur.size) != 0 ||
        add_point(m, n, off, m->cur.size, v, mt->how, false) != 0)
        return -1;
    return apply_rollups(m, n, v, mt->how);
}

long graphite_map_event(graphite_map_t *self, const char *tag, size_t tag_len,
                        const msgpack_object *data, const char *master_id,
                        const graphite_point_t **points)
{
    size_t n = 0;
    self->names.size = 0;
    for (int i = 0; i < self->n_metrics; i++)
        if (map_metric(self, &self->metrics[i], &n, tag, tag_len, data, master_id) != 0)
            return -1;
    for (size_t i = 0; i < n; i++)
        self->points[i] = (graphite_point_t){ .name = self->names.data + self->slots[i].off,
                                              .len = self->slots[i].len,
                                              .value = self->slots[i].value,
                                              .how = self->slots[i].how,
                                              .rollup = self->slots[i].rollup };
    *points = self->points;
    return (long) n;
}
