/* graphite_agg: see graphite_agg.h. One open-addressing hash table (linear probing, FNV-1a,
 * power-of-two size kept under 70% full) per interval; intervals in a small array sorted by
 * start, because a sink holds one or two of them unless its server has been down a while. */
#include "graphite_agg.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char        *name;    /* NULL: free slot */
    size_t       len;
    uint32_t     hash;
    metric_agg_t how;
    uint64_t     count;
    double       sum, min, max, last;
} entry_t;

typedef struct {
    int64_t  start;       /* epoch seconds */
    entry_t *slots;
    size_t   cap, used;
    bool     dirty;       /* holds data not yet sent */
} interval_t;

struct graphite_agg {
    int         interval_s;
    size_t      max_names;
    interval_t *ivs;
    int         n_ivs;
    uint64_t    dropped, nonfinite;
};

#define INITIAL_SLOTS 64

graphite_agg_t *graphite_agg_new(int interval_s, size_t max_names)
{
    graphite_agg_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->interval_s = interval_s > 0 ? interval_s : 1;
    a->max_names = max_names > 0 ? max_names : 1;
    return a;
}

static void interval_free(interval_t *iv)
{
    for (size_t i = 0; i < iv->cap; i++)
        free(iv->slots[i].name);
    free(iv->slots);
}

void graphite_agg_destroy(graphite_agg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    graphite_agg_t *a = *self_p;
    for (int i = 0; i < a->n_ivs; i++)
        interval_free(&a->ivs[i]);
    free(a->ivs);
    free(a);
    *self_p = NULL;
}

int64_t graphite_agg_slot(const graphite_agg_t *self, int64_t epoch_ms)
{
    int64_t s = epoch_ms >= 0 ? epoch_ms / 1000 : -((999 - epoch_ms) / 1000);
    int64_t r = s % self->interval_s;
    return s - (r < 0 ? r + self->interval_s : r);
}

/* ---- intervals ---- */

/* The interval starting at start, created (in start order) when missing; NULL when out of
 * memory. */
static interval_t *interval_get(graphite_agg_t *a, int64_t start)
{
    int at = a->n_ivs;
    for (int i = 0; i < a->n_ivs; i++) {
        if (a->ivs[i].start == start)
            return &a->ivs[i];
        if (a->ivs[i].start > start && at == a->n_ivs)
            at = i;
    }
    entry_t *slots = calloc(INITIAL_SLOTS, sizeof *slots);
    interval_t *ivs = slots ? realloc(a->ivs, (size_t) (a->n_ivs + 1) * sizeof *ivs) : NULL;
    if (!ivs) {
        free(slots);
        return NULL;
    }
    a->ivs = ivs;
    memmove(&ivs[at + 1], &ivs[at], (size_t) (a->n_ivs - at) * sizeof *ivs);
    ivs[at] = (interval_t){ .start = start, .slots = slots, .cap = INITIAL_SLOTS };
    a->n_ivs++;
    return &ivs[at];
}

static uint32_t hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    return h;
}

/* The slot holding name, or the free slot where it would go. */
static entry_t *find_slot(const interval_t *iv, const char *name, size_t n, uint32_t h)
{
    size_t mask = iv->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        entry_t *e = &iv->slots[i];
        if (!e->name || (e->hash == h && e->len == n && memcmp(e->name, name, n) == 0))
            return e;
    }
}

static int grow(interval_t *iv)
{
    interval_t bigger = *iv;
    bigger.cap = iv->cap * 2;
    bigger.slots = calloc(bigger.cap, sizeof *bigger.slots);
    if (!bigger.slots)
        return -1;
    for (size_t i = 0; i < iv->cap; i++)
        if (iv->slots[i].name)
            *find_slot(&bigger, iv->slots[i].name, iv->slots[i].len, iv->slots[i].hash) =
                iv->slots[i];
    free(iv->slots);
    *iv = bigger;
    return 0;
}

/* ---- folding ---- */

static void fold(entry_t *e, double v)
{
    if (e->count == 0 || v < e->min)
        e->min = v;
    if (e->count == 0 || v > e->max)
        e->max = v;
    e->sum += v;
    e->last = v;
    e->count++;
}

static int new_entry(graphite_agg_t *a, interval_t *iv, entry_t **e, const char *name,
                     size_t n, uint32_t h, metric_agg_t how)
{
    if (iv->used >= a->max_names) {
        a->dropped++;
        return 1;
    }
    if ((iv->used + 1) * 10 > iv->cap * 7) {
        if (grow(iv) != 0)
            return -1;
        *e = find_slot(iv, name, n, h);
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, name, n);
    copy[n] = '\0';
    **e = (entry_t){ .name = copy, .len = n, .hash = h, .how = how };
    iv->used++;
    return 0;
}

int graphite_agg_add(graphite_agg_t *self, int64_t start_s, const char *name, size_t n,
                     metric_agg_t how, double v)
{
    interval_t *iv = interval_get(self, start_s);
    if (!iv)
        return -1;
    uint32_t h = hash_name(name, n);
    entry_t *e = find_slot(iv, name, n, h);
    if (!e->name) {
        int rc = new_entry(self, iv, &e, name, n, h, how);
        if (rc != 0)
            return rc;
    }
    fold(e, v);
    iv->dirty = true;
    return 0;
}

/* ---- rendering ---- */

int graphite_format_value(double v, char *buf)
{
    /* Integers (counts, sums of counts) print exactly without trying precisions. */
    if (v == floor(v) && fabs(v) < 1e15)
        return snprintf(buf, 32, "%" PRId64, (int64_t) v);
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return len;
}

static double value_of(const entry_t *e)
{
    switch (e->how) {
    case METRIC_MIN:  return e->min;
    case METRIC_MAX:  return e->max;
    case METRIC_MEAN: return e->sum / (double) e->count;
    case METRIC_LAST: return e->last;
    case METRIC_SUM:  break;
    }
    return e->sum;
}

static int render_entry(graphite_agg_t *a, const entry_t *e, const char *stamp, size_t stamp_len,
                        msgpack_sbuffer *out)
{
    double v = value_of(e);
    if (!isfinite(v)) {
        a->nonfinite++;
        return 0;
    }
    char num[40];
    num[0] = ' ';
    int len = 1 + graphite_format_value(v, num + 1);
    if (msgpack_sbuffer_write(out, e->name, e->len) != 0 ||
        msgpack_sbuffer_write(out, num, (size_t) len) != 0 ||
        msgpack_sbuffer_write(out, stamp, stamp_len) != 0)
        return -1;
    return 1;
}

long graphite_agg_render(graphite_agg_t *self, msgpack_sbuffer *out)
{
    long lines = 0;
    for (int i = 0; i < self->n_ivs; i++) {
        const interval_t *iv = &self->ivs[i];
        if (!iv->dirty)
            continue;
        char stamp[32];
        int stamp_len = snprintf(stamp, sizeof stamp, " %" PRId64 "\n", iv->start);
        for (size_t k = 0; k < iv->cap; k++) {
            if (!iv->slots[k].name)
                continue;
            int rc = render_entry(self, &iv->slots[k], stamp, (size_t) stamp_len, out);
            if (rc < 0)
                return -1;
            lines += rc;
        }
    }
    return lines;
}

void graphite_agg_sent(graphite_agg_t *self, int64_t now_ms)
{
    int kept = 0;
    for (int i = 0; i < self->n_ivs; i++) {
        interval_t *iv = &self->ivs[i];
        iv->dirty = false;
        if ((iv->start + self->interval_s) * 1000 <= now_ms)
            interval_free(iv);
        else
            self->ivs[kept++] = *iv;
    }
    self->n_ivs = kept;
}

int64_t graphite_agg_due_ms(const graphite_agg_t *self)
{
    for (int i = 0; i < self->n_ivs; i++)   /* sorted: the first dirty one is the oldest */
        if (self->ivs[i].dirty)
            return (self->ivs[i].start + self->interval_s) * 1000;
    return INT64_MAX;
}

size_t graphite_agg_held(const graphite_agg_t *self)
{
    size_t n = 0;
    for (int i = 0; i < self->n_ivs; i++)
        n += self->ivs[i].used;
    return n;
}

uint64_t graphite_agg_dropped(const graphite_agg_t *self)
{
    return self->dropped;
}

uint64_t graphite_agg_nonfinite(const graphite_agg_t *self)
{
    return self->nonfinite;
}
