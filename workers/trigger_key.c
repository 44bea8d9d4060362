/* trigger_key: see trigger_key.h. */
#include "trigger_key.h"
#include "name_template.h"
#include "trigger_match.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { BUCKET_NONE, BUCKET_DAY, BUCKET_HOUR } bucket_t;

typedef struct {
    char    *spec;    /* as configured, for *missing */
    char    *field;
    bucket_t bucket;
} entry_t;

struct trigger_key {
    entry_t *entries;
    int      n;
};

static int parse_entry(const char *spec, entry_t *e, char *err, size_t errlen)
{
    const char *bar = strchr(spec, '|');
    size_t n = bar ? (size_t) (bar - spec) : strlen(spec);
    e->bucket = !bar ? BUCKET_NONE : strcmp(bar, "|day") == 0 ? BUCKET_DAY
              : strcmp(bar, "|hour") == 0 ? BUCKET_HOUR : (bucket_t) -1;
    if (!(e->spec = strdup(spec)) || !(e->field = strndup(spec, n))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ((int) e->bucket < 0 || !name_field_valid(e->field)) {
        snprintf(err, errlen, "distinguished_by '%s': not a field, or a field|day or "
                 "field|hour bucket", spec);
        return -1;
    }
    return 0;
}

trigger_key_t *trigger_key_new(char *const *fields, int n, char *err, size_t errlen)
{
    if (n <= 0) {
        snprintf(err, errlen, "distinguished_by is empty");
        return NULL;
    }
    trigger_key_t *self = calloc(1, sizeof *self);
    if (!self || !(self->entries = calloc((size_t) n, sizeof *self->entries))) {
        snprintf(err, errlen, "out of memory");
        free(self);
        return NULL;
    }
    for (; self->n < n; self->n++)
        if (parse_entry(fields[self->n], &self->entries[self->n], err, errlen) != 0) {
            self->n++;
            trigger_key_destroy(&self);
            return NULL;
        }
    return self;
}

void trigger_key_destroy(trigger_key_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trigger_key_t *self = *self_p;
    for (int i = 0; i < self->n; i++) {
        free(self->entries[i].spec);
        free(self->entries[i].field);
    }
    free(self->entries);
    free(self);
    *self_p = NULL;
}

/* Length of the bucket prefix of an ISO timestamp, 0 when s is not one. Day: "YYYY-MM-DD";
 * hour: "YYYY-MM-DDTHH" (a space separator, as some returners write it, is accepted). */
static size_t bucket_len(const char *s, size_t n, bucket_t b)
{
    static const char day[] = "dddd-dd-dd";
    size_t want = b == BUCKET_DAY ? 10 : 13;
    if (n < want)
        return 0;
    for (size_t i = 0; i < 10; i++)
        if (day[i] == 'd' ? !isdigit((unsigned char) s[i]) : s[i] != '-')
            return 0;
    if (b == BUCKET_HOUR && ((s[10] != 'T' && s[10] != ' ') || !isdigit((unsigned char) s[11]) ||
                             !isdigit((unsigned char) s[12])))
        return 0;
    return want;
}

/* msgpack_sbuffer_write without zero-length copies (a memcpy to a NULL buffer is UB). */
static int put(msgpack_sbuffer *out, const char *s, size_t n)
{
    return n == 0 || msgpack_sbuffer_write(out, s, n) == 0 ? 0 : -1;
}

/* Appends s[0..n) with '%' and '/' escaped. */
static int append_escaped(msgpack_sbuffer *out, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%' && s[i] != '/')
            continue;
        if (put(out, s + from, i - from) != 0 || put(out, s[i] == '%' ? "%25" : "%2F", 3) != 0)
            return -1;
        from = i + 1;
    }
    return put(out, s + from, n - from);
}

int trigger_key_build(const trigger_key_t *self, const worker_event_t *ev,
                      const char *master_id, msgpack_sbuffer *text, msgpack_sbuffer *out,
                      const char **missing)
{
    out->size = 0;
    for (int i = 0; i < self->n; i++) {
        const entry_t *e = &self->entries[i];
        int rc = trigger_field_text(e->field, ev, master_id, text);
        size_t n = text->size;
        if (rc == 0 && e->bucket != BUCKET_NONE && !(n = bucket_len(text->data, n, e->bucket)))
            rc = 1;
        if (rc != 0) {
            *missing = e->spec;
            return rc;
        }
        if ((i > 0 && put(out, "/", 1) != 0) ||
            append_escaped(out, text->data, n) != 0)
            return -1;
    }
    if (put(out, "", 1) != 0)
        return -1;
    out->size--;
    return 0;
}
