/* ecl_counts: per-id counts held between syncs, an open-addressing hash over an entry array.
 * See ecl_counts.h. */
#include "ecl_counts.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char    *id;
    size_t   len;
    uint64_t value, sent;
    bool     declared;
} entry_t;

struct ecl_counts {
    entry_t *entries;
    size_t   len, cap;
    size_t   n_auto, max_ids;
    uint64_t unsent;       /* sum of value - sent, kept so the sink's flush_at is O(1) */
    size_t  *slots;        /* index + 1 into entries, 0 = empty; power of two */
    size_t   n_slots;
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char) s[i]) * 1099511628211ull;
    return h;
}

/* The slot holding id, or the empty slot where it would go. */
static size_t find_slot(const ecl_counts_t *self, const char *id, size_t len)
{
    size_t mask = self->n_slots - 1, i = hash(id, len) & mask;
    while (self->slots[i]) {
        const entry_t *e = &self->entries[self->slots[i] - 1];
        if (e->len == len && memcmp(e->id, id, len) == 0)
            break;
        i = (i + 1) & mask;
    }
    return i;
}

/* Fills the (cleared) index from the entries. */
static void index_entries(ecl_counts_t *self)
{
    for (size_t i = 0; i < self->len; i++)
        self->slots[find_slot(self, self->entries[i].id, self->entries[i].len)] = i + 1;
}

/* A new index of n_slots slots (at creation and growth). 0, or -1 (the old one is kept). */
static int reindex(ecl_counts_t *self, size_t n_slots)
{
    size_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return -1;
    free(self->slots);
    self->slots = slots;
    self->n_slots = n_slots;
    index_entries(self);
    return 0;
}

ecl_counts_t *ecl_counts_new(size_t max_ids)
{
    ecl_counts_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max_ids = max_ids;
    if (reindex(self, 64) < 0) {
        free(self);
        return NULL;
    }
    return self;
}

void ecl_counts_destroy(ecl_counts_t **self_p)
{
    ecl_counts_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->len; i++)
        free(self->entries[i].id);
    free(self->entries);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

/* Appends a new entry for id (zero counts). Its index, or -1 when out of memory. */
static long insert(ecl_counts_t *self, const char *id, size_t len, bool declared)
{
    if (self->len == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        entry_t *e = realloc(self->entries, cap * sizeof *e);
        if (!e)
            return -1;
        self->entries = e;
        self->cap = cap;
    }
    /* Load factor at most 1/2 keeps the linear probes short. */
    if ((self->len + 1) * 2 > self->n_slots && reindex(self, self->n_slots * 2) < 0)
        return -1;
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, id, len);
    copy[len] = '\0';
    size_t slot = find_slot(self, id, len);
    self->entries[self->len] = (entry_t){ .id = copy, .len = len, .declared = declared };
    self->slots[slot] = ++self->len;
    if (!declared)
        self->n_auto++;
    return (long) self->len - 1;
}

int ecl_counts_declare(ecl_counts_t *self, const char *id, size_t len)
{
    size_t slot = find_slot(self, id, len);
    if (self->slots[slot]) {
        entry_t *e = &self->entries[self->slots[slot] - 1];
        if (!e->declared)
            self->n_auto--;
        e->declared = true;
        return 0;
    }
    return insert(self, id, len, true) < 0 ? -1 : 0;
}

ecl_add_t ecl_counts_add(ecl_counts_t *self, const char *id, size_t len, bool auto_declare,
                         uint64_t n)
{
    size_t slot = find_slot(self, id, len);
    long i = self->slots[slot] ? (long) self->slots[slot] - 1 : -1;
    if (i < 0) {
        if (!auto_declare)
            return ECL_ADD_UNDECLARED;
        if (self->n_auto >= self->max_ids)
            return ECL_ADD_FULL;
        if ((i = insert(self, id, len, false)) < 0)
            return ECL_ADD_NOMEM;
    }
    self->entries[i].value += n;
    self->unsent += n;
    return ECL_ADD_OK;
}

size_t ecl_counts_len(const ecl_counts_t *self) { return self->len; }
size_t ecl_counts_auto_len(const ecl_counts_t *self) { return self->n_auto; }
bool ecl_counts_full(const ecl_counts_t *self) { return self->n_auto >= self->max_ids; }
uint64_t ecl_counts_unsent(const ecl_counts_t *self) { return self->unsent; }

const char *ecl_counts_id(const ecl_counts_t *self, size_t i, size_t *len)
{
    *len = self->entries[i].len;
    return self->entries[i].id;
}

uint64_t ecl_counts_value(const ecl_counts_t *self, size_t i) { return self->entries[i].value; }
uint64_t ecl_counts_sent(const ecl_counts_t *self, size_t i) { return self->entries[i].sent; }
bool ecl_counts_is_declared(const ecl_counts_t *self, size_t i)
{
    return self->entries[i].declared;
}

void ecl_counts_mark_sent(ecl_counts_t *self)
{
    for (size_t i = 0; i < self->len; i++)
        self->entries[i].sent = self->entries[i].value;
    self->unsent = 0;
}

void ecl_counts_forget_sent(ecl_counts_t *self)
{
    for (size_t i = 0; i < self->len; i++) {
        self->unsent += self->entries[i].sent;
        self->entries[i].sent = 0;
    }
}

void ecl_counts_commit_sent(ecl_counts_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->len; i++) {
        entry_t e = self->entries[i];
        e.value -= e.sent;
        e.sent = 0;
        if (e.value == 0 && !e.declared) {
            free(e.id);     /* an auto-declared id costs memory only while it has counts */
            self->n_auto--;
            continue;
        }
        self->entries[kept++] = e;
    }
    if (kept != self->len) {
        /* Entries moved: rebuild the index in place (no allocation, so this cannot fail). */
        self->len = kept;
        memset(self->slots, 0, self->n_slots * sizeof *self->slots);
        index_entries(self);
    }
}
