/* name_template: see name_template.h. A compiled template is a list of parts, each either a
 * literal (already unescaped) or a field. */
#include "name_template.h"
#include "payload.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { PART_TEXT, PART_TAG, PART_MASTER_ID, PART_STAMP, PART_DATA } part_kind_t;

typedef struct {
    part_kind_t kind;
    char       *text;     /* PART_TEXT: the literal; PART_DATA: the path below data or NULL */
    size_t      len;
} part_t;

struct name_template {
    part_t *parts;
    int     n_parts;
    bool    constant;
};

/* ---- fields ---- */

static bool path_valid(const char *p, size_t n)
{
    if (n == 0)
        return false;
    bool component = false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            if (!component)
                return false;
            component = false;
        } else if (isalnum((unsigned char) p[i]) || strchr("_@$-", p[i])) {
            component = true;
        } else {
            return false;
        }
    }
    return component;
}

/* Classifies field[0..n). Returns false for an unknown field. *path_off: where the data path
 * starts (0 when the field is data itself). */
static bool classify(const char *f, size_t n, part_kind_t *kind, size_t *path_off)
{
    *path_off = 0;
    if (n == 3 && memcmp(f, "tag", 3) == 0)
        *kind = PART_TAG;
    else if (n == 9 && memcmp(f, "master_id", 9) == 0)
        *kind = PART_MASTER_ID;
    else if (n == 5 && memcmp(f, "stamp", 5) == 0)
        *kind = PART_STAMP;
    else if (n == 4 && memcmp(f, "data", 4) == 0)
        *kind = PART_DATA;
    else if (n > 5 && memcmp(f, "data.", 5) == 0 && path_valid(f + 5, n - 5)) {
        *kind = PART_DATA;
        *path_off = 5;
    } else
        return false;
    return true;
}

bool name_field_valid(const char *field)
{
    part_kind_t kind;
    size_t off;
    return field && classify(field, strlen(field), &kind, &off);
}

static msgpack_object str_object(const char *s, size_t n)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_STR };
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t) n;
    return o;
}

static bool lookup_part(part_kind_t kind, const char *path, const char *tag, size_t tag_len,
                        const msgpack_object *data, const char *master_id, msgpack_object *out)
{
    const msgpack_object *o = NULL;
    switch (kind) {
    case PART_TAG:
        *out = str_object(tag ? tag : "", tag ? tag_len : 0);
        return true;
    case PART_MASTER_ID:
        if (!master_id)
            return false;
        *out = str_object(master_id, strlen(master_id));
        return true;
    case PART_STAMP:
        o = data ? payload_lookup(data, "_stamp") : NULL;
        break;
    case PART_DATA:
        o = data ? payload_lookup(data, path) : NULL;
        break;
    case PART_TEXT:
        return false;
    }
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return false;
    *out = *o;
    return true;
}

bool name_field_lookup(const char *field, const char *tag, size_t tag_len,
                       const msgpack_object *data, const char *master_id, msgpack_object *out)
{
    part_kind_t kind;
    size_t off;
    if (!field || !classify(field, strlen(field), &kind, &off))
        return false;
    return lookup_part(kind, off ? field + off : NULL, tag, tag_len, data, master_id, out);
}

bool name_object_number(const msgpack_object *obj, double *out)
{
    switch (obj->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double) obj->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double) obj->via.i64;
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = obj->via.f64;
        return !isnan(*out);
    case MSGPACK_OBJECT_STR: {
        char buf[64];
        size_t n = obj->via.str.size;
        /* decimal text only: no NUL cutting it short, no hex floats, no "inf" */
        if (n == 0 || n >= sizeof buf)
            return false;
        memcpy(buf, obj->via.str.ptr, n);
        buf[n] = '\0';
        if (strspn(buf, "0123456789+-.eE") != n)
            return false;
        char *end;
        errno = 0;
        double v = strtod(buf, &end);
        if (errno || *end || isnan(v) || isspace((unsigned char) buf[0]))
            return false;
        *out = v;
        return true;
    }
    default:
        return false;
    }
}

/* ---- compiling ---- */

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, size_t n,
                    size_t off)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, (int) n, a, off);
}

static int add_part(name_template_t *t, part_kind_t kind, const char *text, size_t len)
{
    part_t *parts = realloc(t->parts, (size_t) (t->n_parts + 1) * sizeof *parts);
    if (!parts)
        return -1;
    t->parts = parts;
    part_t *p = &parts[t->n_parts];
    *p = (part_t){ .kind = kind, .len = len };
    if (text && !(p->text = strndup(text, len)))
        return -1;
    t->n_parts++;
    return 0;
}

/* Appends literal bytes to the last part when it is text, else starts a text part. */
static int add_literal(name_template_t *t, const char *s, size_t n)
{
    part_t *last = t->n_parts ? &t->parts[t->n_parts - 1] : NULL;
    if (!last || last->kind != PART_TEXT)
        return add_part(t, PART_TEXT, s, n);
    char *text = realloc(last->text, last->len + n + 1);
    if (!text)
        return -1;
    memcpy(text + last->len, s, n);
    last->len += n;
    text[last->len] = '\0';
    last->text = text;
    return 0;
}

static int compile_field(name_template_t *t, const char *s, size_t open, size_t close,
                         char *err, size_t errlen)
{
    const char *f = s + open + 1;
    size_t n = close - open - 1;
    part_kind_t kind;
    size_t off;
    if (!classify(f, n, &kind, &off)) {
        set_err(err, errlen, "unknown field '{%.*s}' at offset %zu (fields: tag, master_id, "
                "stamp, data, data.<path>)", f, n, open);
        return -1;
    }
    t->constant = false;
    return add_part(t, kind, off ? f + off : NULL, off ? n - off : 0);
}

name_template_t *name_template_compile(const char *text, char *err, size_t errlen)
{
    name_template_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->constant = true;
    size_t n = strlen(text), i = 0;
    int rc = 0;
    while (rc == 0 && i < n) {
        if (text[i] == '{' && text[i + 1] == '{') {
            rc = add_literal(t, "{", 1);
            i += 2;
        } else if (text[i] == '}' && text[i + 1] == '}') {
            rc = add_literal(t, "}", 1);
            i += 2;
        } else if (text[i] == '}') {
            set_err(err, errlen, "stray '}'%.*s at offset %zu", "", 0, i);
            rc = -1;
        } else if (text[i] == '{') {
            const char *close = strchr(text + i, '}');
            if (!close) {
                set_err(err, errlen, "unclosed '{'%.*s at offset %zu", "", 0, i);
                rc = -1;
                break;
            }
            rc = compile_field(t, text, i, (size_t) (close - text), err, errlen);
            i = (size_t) (close - text) + 1;
        } else {
            size_t run = strcspn(text + i, "{}");
            rc = add_literal(t, text + i, run);
            i += run;
        }
    }
    if (rc != 0) {
        if (err && errlen && !err[0])
            snprintf(err, errlen, "out of memory");
        name_template_destroy(&t);
    }
    return t;
}

void name_template_destroy(name_template_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    name_template_t *t = *self_p;
    for (int i = 0; i < t->n_parts; i++)
        free(t->parts[i].text);
    free(t->parts);
    free(t);
    *self_p = NULL;
}

bool name_template_is_constant(const name_template_t *self)
{
    return self->constant;
}

/* ---- expanding ---- */

static void sanitise(char *p, size_t n, name_mode_t mode)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) p[i];
        if (mode == NAME_GRAPHITE && !(isalnum(c) && c < 0x80) && c != '_' && c != '-' &&
            c != ':')
            p[i] = '_';
        else if (mode == NAME_KEY && (c < 0x20 || c == 0x7f || c == ' '))
            p[i] = '_';
    }
}

int name_template_expand(const name_template_t *self, const char *tag, size_t tag_len,
                         const msgpack_object *data, const char *master_id, name_mode_t mode,
                         msgpack_sbuffer *out)
{
    size_t start = out->size;
    for (int i = 0; i < self->n_parts; i++) {
        const part_t *p = &self->parts[i];
        if (p->kind == PART_TEXT) {
            if (msgpack_sbuffer_write(out, p->text, p->len) != 0)
                return -1;
            continue;
        }
        msgpack_object v;
        if (!lookup_part(p->kind, p->text, tag, tag_len, data, master_id, &v)) {
            out->size = start;
            return 1;
        }
        size_t at = out->size;
        int rc = payload_to_text(&v, out);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            out->size = start;
            return 1;
        }
        if (out->size - at > NAME_VALUE_MAX)
            out->size = at + NAME_VALUE_MAX;
        if (mode != NAME_RAW && out->size > at)
            sanitise(out->data + at, out->size - at, mode);
    }
    return 0;
}
