/* field_stats: per-interval value counts turned into internal events. See field_stats.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "field_stats.h"
#include "name_template.h"
#include "payload.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- value tables ------------------------------------------------------------------------- */

typedef struct {
    uint64_t hash, count;
    uint32_t off, len;        /* the value's bytes in the table's text */
} value_t;

/* The distinct values of one field in one interval, in order of first appearance, with an
 * open-addressing index over them. Reset keeps the memory for the next interval. */
typedef struct {
    value_t *values;
    int      n, cap;
    int32_t *index;           /* -1: empty slot */
    size_t   index_cap;       /* a power of two, at least 2 * n */
    char    *text;
    size_t   text_len, text_cap;
    uint64_t other;
} table_t;

/* FNV-1a with a random basis: values come from events, which minions control. */
static uint64_t hash_bytes(uint64_t seed, const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char) p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void table_reset(table_t *t)
{
    t->n = 0;
    t->text_len = 0;
    t->other = 0;
    if (t->index)
        memset(t->index, 0xff, t->index_cap * sizeof *t->index);
}

static void table_free(table_t *t)
{
    free(t->values);
    free(t->index);
    free(t->text);
}

static int table_rehash(table_t *t, size_t cap)
{
    int32_t *index = malloc(cap * sizeof *index);
    if (!index)
        return -1;
    memset(index, 0xff, cap * sizeof *index);
    for (int i = 0; i < t->n; i++) {
        size_t slot = t->values[i].hash & (cap - 1);
        while (index[slot] >= 0)
            slot = (slot + 1) & (cap - 1);
        index[slot] = i;
    }
    free(t->index);
    t->index = index;
    t->index_cap = cap;
    return 0;
}

/* Room for one more value and len more bytes of text; -1 when out of memory. */
static int table_reserve(table_t *t, size_t len)
{
    if ((size_t) (t->n + 1) * 2 > t->index_cap &&
        table_rehash(t, t->index_cap ? t->index_cap * 2 : 16) < 0)
        return -1;
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 8;
        value_t *v = realloc(t->values, (size_t) cap * sizeof *v);
        if (!v)
            return -1;
        t->values = v;
        t->cap = cap;
    }
    if (t->text_len + len > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap : 256;
        while (cap < t->text_len + len)
            cap *= 2;
        char *p = realloc(t->text, cap);
        if (!p)
            return -1;
        t->text = p;
        t->text_cap = cap;
    }
    return 0;
}

/* Counts one value. A new value beyond max_values (or one that finds no memory) counts in
 * other; returns true when it did. */
static bool table_count(table_t *t, uint64_t seed, const char *p, size_t len, int max_values)
{
    uint64_t h = hash_bytes(seed, p, len);
    if (t->index_cap) {
        for (size_t slot = h & (t->index_cap - 1); t->index[slot] >= 0;
             slot = (slot + 1) & (t->index_cap - 1)) {
            value_t *v = &t->values[t->index[slot]];
            if (v->hash == h && v->len == len && memcmp(t->text + v->off, p, len) == 0) {
                v->count++;
                return false;
            }
        }
    }
    if (t->n >= max_values || table_reserve(t, len) < 0) {
        t->other++;
        return true;
    }
    size_t slot = h & (t->index_cap - 1);
    while (t->index[slot] >= 0)
        slot = (slot + 1) & (t->index_cap - 1);
    t->index[slot] = t->n;
    t->values[t->n++] = (value_t){ .hash = h, .count = 1, .off = (uint32_t) t->text_len,
                                   .len = (uint32_t) len };
    memcpy(t->text + t->text_len, p, len);
    t->text_len += len;
    return false;
}

/* ---- statistics --------------------------------------------------------------------------- */

typedef struct {
    int64_t  start_s;         /* the interval's start, epoch seconds */
    uint64_t total;           /* matching events; 0 = nothing counted */
    table_t *fields;          /* one per field */
} window_t;

typedef struct {
    char        *name;
    char        *tag;         /* "eventsd/stats/<name>" */
    pcre2_code  *re;          /* NULL: every event */
    char       **fields;
    int          n_fields;
    int          interval_s;
    int          max_values;
    window_t     cur;         /* the interval being counted */
    window_t     closed;      /* the ended one being handed out (total 0: none) */
    int          field_i;     /* cursor in closed: -1 = the "*" event is next */
    int          value_i;     /* index in closed.fields[field_i]; n = its __other__ */
} stat_t;

struct field_stats {
    stat_t                *stats;
    int                    n;
    pcre2_match_data      *match;
    msgpack_sbuffer        text;   /* one value's text */
    uint64_t               seed;
    field_stats_counters_t counters;
};

typedef struct item {
    const char *field;
    const char *value;
    size_t      value_len;
    uint64_t    count;
} item_t;

static int64_t align(int64_t now_ms, int interval_s)
{
    int64_t s = now_ms / 1000;
    return s - s % interval_s;
}

static bool interval_ended(const stat_t *s, int64_t now_ms)
{
    return s->cur.total > 0 && now_ms >= (s->cur.start_s + s->interval_s) * 1000;
}

static bool next_item(stat_t *s, item_t *it);

/* Whether the closed interval still has events to hand out (the cursor is left as it was). */
static bool has_remaining(stat_t *s)
{
    if (s->closed.total == 0)
        return false;
    int field_i = s->field_i, value_i = s->value_i;
    item_t it;
    bool more = next_item(s, &it);
    s->field_i = field_i;
    s->value_i = value_i;
    return more;
}

/* The current interval becomes the closed one (its events are handed out by pop). */
static void close_interval(field_stats_t *fs, stat_t *s)
{
    if (has_remaining(s))
        fs->counters.dropped++;
    window_t w = s->closed;
    s->closed = s->cur;
    s->cur = w;
    s->cur.total = 0;
    for (int f = 0; f < s->n_fields; f++)
        table_reset(&s->cur.fields[f]);
    s->field_i = -1;
    s->value_i = 0;
}

/* Cuts a value at max bytes without splitting a UTF-8 character. */
static size_t cut_utf8(const char *p, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char) p[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static void count_field(field_stats_t *fs, stat_t *s, int f, const char *tag, size_t tag_len,
                        const msgpack_object *data, const char *master_id)
{
    msgpack_object obj;
    if (!name_field_lookup(s->fields[f], tag, tag_len, data, master_id, &obj))
        return;
    fs->text.size = 0;
    if (payload_to_text(&obj, &fs->text) != 0)
        return;
    size_t len = cut_utf8(fs->text.data, fs->text.size, NAME_VALUE_MAX);
    if (table_count(&s->cur.fields[f], fs->seed, fs->text.data ? fs->text.data : "", len,
                    s->max_values))
        fs->counters.other++;
}

static bool tag_matches(field_stats_t *fs, const stat_t *s, const char *tag, size_t tag_len)
{
    return !s->re || pcre2_match(s->re, (PCRE2_SPTR) tag, tag_len, 0, 0, fs->match, NULL) >= 0;
}

void field_stats_add(field_stats_t *self, const char *tag, size_t tag_len,
                     const msgpack_object *data, const char *master_id, int64_t now_ms)
{
    size_t plen = strlen(FIELD_STATS_TAG_PREFIX);
    if (tag_len >= plen && memcmp(tag, FIELD_STATS_TAG_PREFIX, plen) == 0)
        return;
    bool counted = false;
    for (int i = 0; i < self->n; i++) {
        stat_t *s = &self->stats[i];
        if (!tag_matches(self, s, tag, tag_len))
            continue;
        if (interval_ended(s, now_ms))
            close_interval(self, s);
        if (s->cur.total == 0)
            s->cur.start_s = align(now_ms, s->interval_s);
        s->cur.total++;
        counted = true;
        for (int f = 0; f < s->n_fields; f++)
            count_field(self, s, f, tag, tag_len, data, master_id);
    }
    self->counters.matched += counted;
}

int field_stats_next_due_ms(const field_stats_t *self, int64_t now_ms)
{
    int64_t due = -1;
    for (int i = 0; i < self->n; i++) {
        const stat_t *s = &self->stats[i];
        if (s->closed.total > 0)
            return 0;
        if (s->cur.total == 0)
            continue;
        int64_t left = (s->cur.start_s + s->interval_s) * 1000 - now_ms;
        left = left < 0 ? 0 : left;
        if (due < 0 || left < due)
            due = left;
    }
    return due > 0x7fffffff ? 0x7fffffff : (int) due;
}

/* ---- producing events --------------------------------------------------------------------- */


/* The next (field, value, count) of the closed interval, advancing the cursor; false when
 * the interval is exhausted. */
static bool next_item(stat_t *s, item_t *it)
{
    if (s->field_i < 0) {
        s->field_i = 0;
        s->value_i = 0;
        *it = (item_t){ "*", "*", 1, s->closed.total };
        return true;
    }
    for (; s->field_i < s->n_fields; s->field_i++, s->value_i = 0) {
        const table_t *t = &s->closed.fields[s->field_i];
        if (s->value_i < t->n) {
            const value_t *v = &t->values[s->value_i++];
            *it = (item_t){ s->fields[s->field_i], t->text + v->off, v->len, v->count };
            return true;
        }
        if (s->value_i == t->n && t->other > 0) {
            s->value_i++;
            *it = (item_t){ s->fields[s->field_i], FIELD_STATS_OTHER,
                            strlen(FIELD_STATS_OTHER), t->other };
            return true;
        }
    }
    return false;
}

/* Salt's _stamp: datetime.utcnow().isoformat(). */
static void format_stamp(int64_t epoch_s, char *out, size_t n)
{
    time_t t = (time_t) epoch_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%S.000000", &tm);
}

static int pack_event(const stat_t *s, const item_t *it, msgpack_sbuffer *tag,
                      msgpack_sbuffer *payload)
{
    char stamp[40];
    int64_t end = s->closed.start_s + s->interval_s;
    format_stamp(end, stamp, sizeof stamp);
    msgpack_packer pk;
    msgpack_packer_init(&pk, payload, msgpack_sbuffer_write);
    /* The sbuffer's writer reports allocation failure; any failed call fails the whole. */
    int rc = msgpack_pack_map(&pk, 8);
    rc |= msgpack_pack_str_with_body(&pk, "name", 4);
    rc |= msgpack_pack_str_with_body(&pk, s->name, strlen(s->name));
    rc |= msgpack_pack_str_with_body(&pk, "field", 5);
    rc |= msgpack_pack_str_with_body(&pk, it->field, strlen(it->field));
    rc |= msgpack_pack_str_with_body(&pk, "value", 5);
    rc |= msgpack_pack_str_with_body(&pk, it->value, it->value_len);
    rc |= msgpack_pack_str_with_body(&pk, "count", 5);
    rc |= msgpack_pack_uint64(&pk, it->count);
    rc |= msgpack_pack_str_with_body(&pk, "interval", 8);
    rc |= msgpack_pack_int(&pk, s->interval_s);
    rc |= msgpack_pack_str_with_body(&pk, "start", 5);
    rc |= msgpack_pack_int64(&pk, s->closed.start_s);
    rc |= msgpack_pack_str_with_body(&pk, "end", 3);
    rc |= msgpack_pack_int64(&pk, end);
    rc |= msgpack_pack_str_with_body(&pk, "_stamp", 6);
    rc |= msgpack_pack_str_with_body(&pk, stamp, strlen(stamp));
    rc |= msgpack_sbuffer_write(tag, s->tag, strlen(s->tag));
    return rc == 0 ? 1 : -1;
}

int field_stats_pop(field_stats_t *self, int64_t now_ms, msgpack_sbuffer *tag,
                    msgpack_sbuffer *payload)
{
    tag->size = 0;
    payload->size = 0;
    for (int i = 0; i < self->n; i++) {
        stat_t *s = &self->stats[i];
        if (s->closed.total == 0 && interval_ended(s, now_ms))
            close_interval(self, s);
        if (s->closed.total == 0)
            continue;
        item_t it;
        if (next_item(s, &it)) {
            self->counters.emitted++;
            return pack_event(s, &it, tag, payload);
        }
        s->closed.total = 0;   /* exhausted; the next statistic may have events */
    }
    return 0;
}

/* ---- construction ------------------------------------------------------------------------- */

/* No JIT: a few patterns per event cost little interpreted, and the JIT's block reads past
 * the subject would need the aligned copy rules.c makes to stay memcheck-clean. */
static int compile_tag(stat_t *s, const statistic_config_t *c, const char *file, char *err,
                       size_t errlen)
{
    int code;
    PCRE2_SIZE offset;
    s->re = pcre2_compile((PCRE2_SPTR) c->tag, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                          &offset, NULL);
    if (s->re)
        return 0;
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    snprintf(err, errlen, "%s:%d: statistics '%s' tag pattern: %s at offset %zu", file,
             c->tag_line ? c->tag_line : c->line, c->name, (const char *) msg, (size_t) offset);
    return -1;
}

static int copy_fields(stat_t *s, const statistic_config_t *c, const char *file, char *err,
                       size_t errlen)
{
    s->fields = calloc((size_t) c->n_fields + 1, sizeof *s->fields);
    s->cur.fields = calloc((size_t) c->n_fields + 1, sizeof(table_t));
    s->closed.fields = calloc((size_t) c->n_fields + 1, sizeof(table_t));
    if (!s->fields || !s->cur.fields || !s->closed.fields) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int f = 0; f < c->n_fields; f++) {
        if (!name_field_valid(c->fields[f])) {
            snprintf(err, errlen, "%s:%d: statistics '%s' field '%s': unknown field (fields: "
                     "tag, master_id, stamp, data, data.<path>)", file, c->line, c->name,
                     c->fields[f]);
            return -1;
        }
        if (!(s->fields[f] = strdup(c->fields[f]))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->n_fields = f + 1;
    }
    return 0;
}

static int stat_init(stat_t *s, const statistic_config_t *c, const char *file, char *err,
                     size_t errlen)
{
    const char *name = c->name ? c->name : "";
    s->name = strdup(name);
    s->tag = malloc(strlen(FIELD_STATS_TAG_PREFIX) + strlen(name) + 1);
    if (!s->name || !s->tag) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sprintf(s->tag, "%s%s", FIELD_STATS_TAG_PREFIX, name);
    s->interval_s = c->interval_s > 0 ? c->interval_s : 60;
    s->max_values = c->max_values > 0 ? c->max_values : 100;
    if (c->tag && compile_tag(s, c, file, err, errlen) < 0)
        return -1;
    return copy_fields(s, c, file, err, errlen);
}

static void stat_free(stat_t *s)
{
    for (int f = 0; f < s->n_fields; f++) {
        free(s->fields[f]);
        table_free(&s->cur.fields[f]);
        table_free(&s->closed.fields[f]);
    }
    free(s->fields);
    free(s->cur.fields);
    free(s->closed.fields);
    pcre2_code_free(s->re);
    free(s->name);
    free(s->tag);
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t) sizeof s)
        s = (uint64_t) time(NULL) ^ (uint64_t) (uintptr_t) &s;
    return s;
}

field_stats_t *field_stats_new(const statistic_config_t *cfgs, int n, const char *file,
                               char *err, size_t errlen)
{
    file = file ? file : "?";
    field_stats_t *fs = calloc(1, sizeof *fs);
    if (!fs) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    msgpack_sbuffer_init(&fs->text);
    fs->seed = random_seed();
    fs->stats = calloc((size_t) (n > 0 ? n : 0) + 1, sizeof *fs->stats);
    fs->match = pcre2_match_data_create(1, NULL);
    if (!fs->stats || !fs->match) {
        snprintf(err, errlen, "out of memory");
        field_stats_destroy(&fs);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        fs->n++;   /* counted first so that destroy frees a half-built one */
        if (stat_init(&fs->stats[i], &cfgs[i], file, err, errlen) < 0) {
            field_stats_destroy(&fs);
            return NULL;
        }
    }
    return fs;
}

void field_stats_destroy(field_stats_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    field_stats_t *fs = *self_p;
    for (int i = 0; i < fs->n; i++)
        stat_free(&fs->stats[i]);
    free(fs->stats);
    pcre2_match_data_free(fs->match);
    msgpack_sbuffer_destroy(&fs->text);
    free(fs);
    *self_p = NULL;
}

const field_stats_counters_t *field_stats_counters(const field_stats_t *self)
{
    return &self->counters;
}
