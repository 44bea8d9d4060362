/* graphite_rollup: see graphite_rollup.h. The source compiles to one pattern per component;
 * the target to a list of literal runs and capture references (indexes of source
 * components), so applying a rollup is one pass over the name and one copy. */
#include "graphite_rollup.h"
#include "graphite_name.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { PAT_LITERAL, PAT_ANY, PAT_CAPTURE } pat_kind_t;

typedef struct {
    pat_kind_t kind;
    char      *text;   /* PAT_LITERAL: the component; PAT_CAPTURE: the capture's name */
    size_t     len;
} pat_t;

typedef struct {
    char  *text;       /* a literal run, or NULL for a capture reference */
    size_t len;
    int    comp;       /* capture reference: the source component it copies */
} out_part_t;

struct graphite_rollup {
    pat_t      *pats;
    int         n_pats;
    out_part_t *parts;
    int         n_parts;
};

static bool capture_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* Length of a "<name>" at s (s[0] == '<'), or 0 when s does not start one. */
static size_t capture_len(const char *s, size_t n)
{
    size_t i = 1;
    while (i < n && capture_char((unsigned char) s[i]))
        i++;
    return i > 1 && i < n && s[i] == '>' ? i + 1 : 0;
}

/* ---- source ---- */

static int find_capture(const graphite_rollup_t *r, const char *name, size_t len)
{
    for (int i = 0; i < r->n_pats; i++)
        if (r->pats[i].kind == PAT_CAPTURE && r->pats[i].len == len &&
            memcmp(r->pats[i].text, name, len) == 0)
            return i;
    return -1;
}

static int source_component(graphite_rollup_t *r, const char *c, size_t n, char *err,
                            size_t errlen)
{
    pat_t *p = &r->pats[r->n_pats];
    *p = (pat_t){ .kind = PAT_LITERAL };
    if (n == 1 && c[0] == '*') {
        p->kind = PAT_ANY;
    } else if (n > 0 && c[0] == '<' && capture_len(c, n) == n) {
        p->kind = PAT_CAPTURE;
        c++;
        n -= 2;
        if (find_capture(r, c, n) >= 0) {
            snprintf(err, errlen, "source captures '<%.*s>' twice", (int) n, c);
            return -1;
        }
    } else if (graphite_name_problem(c, n)) {
        snprintf(err, errlen, "source component '%.*s' is neither '*', '<name>' nor a literal "
                 "of [A-Za-z0-9_:-] (1..%d bytes)", (int) n, c, GRAPHITE_COMPONENT_MAX);
        return -1;
    }
    if (p->kind != PAT_ANY && !(p->text = strndup(c, n))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->len = n;
    r->n_pats++;
    return 0;
}

static int compile_source(graphite_rollup_t *r, const char *s, char *err, size_t errlen)
{
    r->pats = calloc(GRAPHITE_ROLLUP_MAX_COMPONENTS, sizeof *r->pats);
    if (!r->pats) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (const char *c = s;; ) {
        const char *dot = strchr(c, '.');
        size_t n = dot ? (size_t) (dot - c) : strlen(c);
        if (r->n_pats == GRAPHITE_ROLLUP_MAX_COMPONENTS) {
            snprintf(err, errlen, "source has more than %d components",
                     GRAPHITE_ROLLUP_MAX_COMPONENTS);
            return -1;
        }
        if (source_component(r, c, n, err, errlen) != 0)
            return -1;
        if (!dot)
            return 0;
        c = dot + 1;
    }
}

/* ---- target ---- */

static int add_part(graphite_rollup_t *r, const char *text, size_t len, int comp)
{
    out_part_t *parts = realloc(r->parts, (size_t) (r->n_parts + 1) * sizeof *parts);
    if (!parts)
        return -1;
    r->parts = parts;
    out_part_t *p = &parts[r->n_parts];
    *p = (out_part_t){ .len = len, .comp = comp };
    if (text && !(p->text = strndup(text, len)))
        return -1;
    r->n_parts++;
    return 0;
}

/* The target with every reference replaced by "x" must be a valid name: that checks its
 * literal characters and that no component is empty, whatever the captures hold. */
static int check_target_shape(const char *t, char *err, size_t errlen)
{
    char shape[GRAPHITE_NAME_MAX + 1];
    size_t n = 0, len = strlen(t);
    if (len > GRAPHITE_NAME_MAX) {   /* every name it made would be too long to send */
        snprintf(err, errlen, "target '%.60s...' is longer than %d bytes", t, GRAPHITE_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len && n < sizeof shape - 1; ) {
        size_t cap = t[i] == '<' ? capture_len(t + i, len - i) : 0;
        shape[n++] = cap ? 'x' : t[i];
        i += cap ? cap : 1;
    }
    const char *why = graphite_name_problem(shape, n);
    if (why)
        snprintf(err, errlen, "target '%s': %s", t, why);
    return why ? -1 : 0;
}

static int compile_target(graphite_rollup_t *r, const char *t, char *err, size_t errlen)
{
    if (check_target_shape(t, err, errlen) != 0)
        return -1;
    size_t len = strlen(t), lit = 0;
    for (size_t i = 0; i <= len; ) {
        size_t cap = i < len && t[i] == '<' ? capture_len(t + i, len - i) : 0;
        if (i < len && !cap) {
            i++;
            continue;
        }
        if (i > lit && add_part(r, t + lit, i - lit, -1) != 0)
            goto oom;
        if (i == len)
            return 0;
        int comp = find_capture(r, t + i + 1, cap - 2);
        if (comp < 0) {
            snprintf(err, errlen, "target uses '%.*s', which the source does not capture",
                     (int) cap, t + i);
            return -1;
        }
        if (add_part(r, NULL, 0, comp) != 0)
            goto oom;
        i += cap;
        lit = i;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

graphite_rollup_t *graphite_rollup_compile(const char *target, const char *source, char *err,
                                           size_t errlen)
{
    graphite_rollup_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!target || !source) {
        snprintf(err, errlen, "a rollup needs 'target' and 'source'");
        graphite_rollup_destroy(&r);
    } else if (compile_source(r, source, err, errlen) != 0 ||
               compile_target(r, target, err, errlen) != 0) {
        graphite_rollup_destroy(&r);
    }
    return r;
}

void graphite_rollup_destroy(graphite_rollup_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    graphite_rollup_t *r = *self_p;
    for (int i = 0; r->pats && i < r->n_pats; i++)
        free(r->pats[i].text);
    for (int i = 0; i < r->n_parts; i++)
        free(r->parts[i].text);
    free(r->pats);
    free(r->parts);
    free(r);
    *self_p = NULL;
}

/* ---- applying ---- */

typedef struct {
    const char *p;
    size_t      len;
} span_t;

/* Splits name into exactly r->n_pats components matching the patterns. */
static bool match(const graphite_rollup_t *r, const char *name, size_t n, span_t *comps)
{
    size_t start = 0;
    for (int i = 0; i < r->n_pats; i++) {
        const char *dot = start < n ? memchr(name + start, '.', n - start) : NULL;
        size_t end = dot ? (size_t) (dot - name) : n;
        if (start > n || (dot == NULL) != (i == r->n_pats - 1))
            return false;   /* fewer or more components than the source */
        if (end == start)
            return false;   /* an empty component: not a Graphite name */
        comps[i] = (span_t){ name + start, end - start };
        const pat_t *p = &r->pats[i];
        if (p->kind == PAT_LITERAL && (p->len != comps[i].len ||
                                       memcmp(p->text, comps[i].p, p->len) != 0))
            return false;
        start = end + 1;
    }
    return true;
}

int graphite_rollup_apply(const graphite_rollup_t *self, const char *name, size_t n,
                          msgpack_sbuffer *out)
{
    span_t comps[GRAPHITE_ROLLUP_MAX_COMPONENTS];
    if (!match(self, name, n, comps))
        return 0;
    size_t start = out->size;
    for (int i = 0; i < self->n_parts; i++) {
        const out_part_t *p = &self->parts[i];
        const char *s = p->text ? p->text : comps[p->comp].p;
        size_t len = p->text ? p->len : comps[p->comp].len;
        if (len && msgpack_sbuffer_write(out, s, len) != 0) {
            out->size = start;
            return -1;
        }
    }
    return 1;
}
