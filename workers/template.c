/* template: compiles a user's SQL template into dialect SQL plus a parameter list, and
 * computes the bound values of one event. See template.h for the language.
 *
 * Scanner rules beyond template.h (why: a template must never be mis-scanned into a
 * placeholder inside a literal, nor silently lose a statement):
 *   - MySQL '...' and "..." strings and PostgreSQL E'...' strings honour backslash escapes;
 *     PostgreSQL $tag$...$tag$ strings and nested / * * / comments are skipped; MySQL also has
 *     '#' comments and needs "-- " (dash dash space) for a line comment.
 *   - A filter is '|' written right after the placeholder and followed by a letter; "||" is
 *     SQL concatenation and "| 4" / "|4" stay bitwise OR.
 *   - The statement ends at the first ';' outside literals; anything but whitespace and
 *     comments after it is an error (SQLite would silently ignore a second statement).
 *   - Positional markers written by the user ('?' for SQLite/MySQL, $1 for PostgreSQL) are
 *     errors: they would shift every placeholder's binding.
 */
#include "template.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEMPLATE_MAX_BYTES (1024 * 1024)   /* a template is one statement, not a dump */
#define NUM_TEXT_MAX 512                   /* longer text is never a sane number */

typedef enum { F_TAG, F_MASTER_ID, F_STAMP, F_EVENT_HASH, F_DATA } field_t;
typedef enum { FL_JSON, FL_DEFAULT, FL_INT, FL_FLOAT } filter_kind_t;

typedef struct {
    filter_kind_t kind;
    char  *text;           /* FL_DEFAULT: the unescaped default */
    size_t len;
} filter_t;

typedef struct {
    field_t   field;
    char     *path;        /* F_DATA: path below data, NULL for data itself */
    filter_t *filters;
    int       n_filters;
} param_t;

struct template {
    char    *sql;
    param_t *params;
    int      n_params;
    int      cap_params;
};

/* ---------------------------------------------------------------- growable output text */

typedef struct {
    char  *buf;
    size_t len, cap;
    bool   oom;
} strbuf_t;

static void sb_put(strbuf_t *sb, const char *s, size_t n)
{
    if (sb->oom)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->len + n + 1)
            cap *= 2;
        char *buf = realloc(sb->buf, cap);
        if (!buf) {
            sb->oom = true;
            return;
        }
        sb->buf = buf;
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

/* ---------------------------------------------------------------- compiler state */

typedef struct {
    const char   *src;
    size_t        pos;
    int           line;
    const char   *origin;
    sql_dialect_t dialect;
    strbuf_t      out;
    template_t   *tpl;
    bool          saw_sql;   /* any token outside comments: an empty template is an error */
    bool          failed;
    char         *err;
    size_t        errlen;
} compiler_t;

__attribute__((format(printf, 3, 4)))
static void fail(compiler_t *c, int line, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    if (!c->err || !c->errlen)
        return;
    int n = snprintf(c->err, c->errlen, "%s:%d: ", c->origin, line);
    if (n < 0 || (size_t) n >= c->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t) n, fmt, ap);
    va_end(ap);
}

static bool is_ident_start(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool is_ident(char ch)
{
    return is_ident_start(ch) || (ch >= '0' && ch <= '9');
}

static bool is_path_char(char ch)
{
    return is_ident(ch) || ch == '@' || ch == '$' || ch == '-';
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Copies src[pos] to the output, counting lines. */
static void copy_char(compiler_t *c)
{
    char ch = c->src[c->pos++];
    if (ch == '\n')
        c->line++;
    sb_put(&c->out, &ch, 1);
}

/* The character before pos, or NUL at the start. */
static char prev_char(const compiler_t *c)
{
    return c->pos ? c->src[c->pos - 1] : '\0';
}

/* ---------------------------------------------------------------- literals and comments */

/* Skips a quoted literal or identifier opened at pos; a doubled quote is an escaped quote,
 * and with `backslash` so is \x. */
static void skip_quoted(compiler_t *c, bool backslash, const char *what)
{
    char q = c->src[c->pos];
    int start_line = c->line;
    copy_char(c);
    for (;;) {
        char ch = c->src[c->pos];
        if (ch == '\0') {
            fail(c, start_line, "unterminated %s", what);
            return;
        }
        if (backslash && ch == '\\' && c->src[c->pos + 1] != '\0') {
            copy_char(c);
            copy_char(c);
            continue;
        }
        copy_char(c);
        if (ch == q) {
            if (c->src[c->pos] != q)
                return;
            copy_char(c);
        }
    }
}

static void skip_line_comment(compiler_t *c)
{
    while (c->src[c->pos] != '\0' && c->src[c->pos] != '\n')
        copy_char(c);
}

/* Block comments nest in PostgreSQL only. */
static void skip_block_comment(compiler_t *c)
{
    int start_line = c->line, depth = 0;
    do {
        const char *s = c->src + c->pos;
        if (*s == '\0') {
            fail(c, start_line, "unterminated /* comment");
            return;
        }
        if (s[0] == '/' && s[1] == '*' && (depth == 0 || c->dialect == SQL_DIALECT_PGSQL)) {
            depth++;
            copy_char(c);
        } else if (s[0] == '*' && s[1] == '/') {
            depth--;
            copy_char(c);
        }
        copy_char(c);
    } while (depth > 0 && !c->failed);
}

/* Length of a PostgreSQL dollar-quote tag ("$$" or "$name$") at s, or 0. */
static size_t dollar_tag_len(const char *s)
{
    size_t n = 1;
    if (is_ident_start(s[n]))
        while (is_ident(s[n]))
            n++;
    return s[n] == '$' ? n + 1 : 0;
}

static void skip_dollar_quoted(compiler_t *c, size_t tag_len)
{
    const char *tag = c->src + c->pos;
    int start_line = c->line;
    for (size_t i = 0; i < tag_len; i++)
        copy_char(c);
    while (strncmp(c->src + c->pos, tag, tag_len) != 0) {
        if (c->src[c->pos] == '\0') {
            fail(c, start_line, "unterminated dollar-quoted string %.*s", (int) tag_len, tag);
            return;
        }
        copy_char(c);
    }
    for (size_t i = 0; i < tag_len; i++)
        copy_char(c);
}

static bool at_line_comment(const compiler_t *c)
{
    const char *s = c->src + c->pos;
    if (c->dialect == SQL_DIALECT_MYSQL && s[0] == '#')
        return true;
    if (s[0] != '-' || s[1] != '-')
        return false;
    /* MySQL: "--" starts a comment only when followed by whitespace or the end */
    return c->dialect != SQL_DIALECT_MYSQL || s[2] == '\0' || is_space(s[2]);
}

/* A quote at pos opens a literal or identifier: skips it and returns true. */
static bool try_skip_quoted(compiler_t *c)
{
    char ch = c->src[c->pos];
    bool mysql = c->dialect == SQL_DIALECT_MYSQL;
    if (ch == '\'') {
        char p = prev_char(c);
        bool estring = c->dialect == SQL_DIALECT_PGSQL && (p == 'E' || p == 'e') &&
                       (c->pos < 2 || !is_ident(c->src[c->pos - 2]));
        skip_quoted(c, mysql || estring, "string literal");
    } else if (ch == '"') {
        skip_quoted(c, mysql, mysql ? "string literal" : "quoted identifier");
    } else if (ch == '`') {
        skip_quoted(c, false, "quoted identifier");
    } else {
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- placeholders */

static param_t *add_param(compiler_t *c)
{
    template_t *t = c->tpl;
    if (t->n_params == t->cap_params) {
        int cap = t->cap_params ? t->cap_params * 2 : 8;
        param_t *p = realloc(t->params, (size_t) cap * sizeof *p);
        if (!p)
            return NULL;
        t->params = p;
        t->cap_params = cap;
    }
    param_t *p = &t->params[t->n_params++];
    memset(p, 0, sizeof *p);
    return p;
}

static filter_t *add_filter(param_t *p)
{
    filter_t *f = realloc(p->filters, (size_t) (p->n_filters + 1) * sizeof *f);
    if (!f)
        return NULL;
    p->filters = f;
    f = &p->filters[p->n_filters++];
    memset(f, 0, sizeof *f);
    return f;
}

/* Resolves the field name (text after ':'); -1 when unknown. */
static int resolve_field(param_t *p, const char *name, size_t len)
{
    static const struct { const char *name; field_t field; } fixed[] = {
        { "tag", F_TAG }, { "master_id", F_MASTER_ID }, { "stamp", F_STAMP },
        { "event_hash", F_EVENT_HASH }, { "data", F_DATA },
    };
    if (len > 5 && strncmp(name, "data.", 5) == 0) {
        p->field = F_DATA;
        p->path = strndup(name + 5, len - 5);
        return p->path ? 0 : -1;
    }
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strlen(fixed[i].name) == len && strncmp(fixed[i].name, name, len) == 0) {
            p->field = fixed[i].field;
            return 0;
        }
    return -1;
}

/* Scans the field name after ':'; returns its length, 0 after an error. */
static size_t scan_field(compiler_t *c, int line)
{
    size_t start = c->pos;
    while (is_ident(c->src[c->pos]))
        c->pos++;
    while (c->src[c->pos] == '.') {
        size_t comp = ++c->pos;
        while (is_path_char(c->src[c->pos]))
            c->pos++;
        if (c->pos == comp) {
            fail(c, line, "empty path component in placeholder ':%.*s'",
                 (int) (c->pos - start), c->src + start);
            return 0;
        }
    }
    return c->pos - start;
}

/* default('text'): the argument is a SQL string literal ('' escapes '). */
static int scan_default_arg(compiler_t *c, filter_t *f, int line)
{
    const char *s = c->src;
    size_t pos = c->pos;
    strbuf_t text = { 0 };
    while (s[pos] == ' ' || s[pos] == '\t')
        pos++;
    if (s[pos++] != '(')
        goto bad;
    while (s[pos] == ' ' || s[pos] == '\t')
        pos++;
    if (s[pos++] != '\'')
        goto bad;
    for (;;) {
        if (s[pos] == '\0')
            goto bad;
        if (s[pos] == '\'' && s[pos + 1] != '\'')
            break;
        if (s[pos] == '\'')
            pos++;
        if (s[pos] == '\n')
            c->line++;
        sb_put(&text, s + pos++, 1);
    }
    pos++;
    while (s[pos] == ' ' || s[pos] == '\t')
        pos++;
    if (s[pos++] != ')')
        goto bad;
    if (text.oom)
        goto bad;
    c->pos = pos;
    f->text = text.buf ? text.buf : strdup("");
    f->len = text.len;
    return f->text ? 0 : -1;
bad:
    free(text.buf);
    fail(c, line, "default needs one quoted argument: default('text')");
    return -1;
}

static int scan_filter(compiler_t *c, param_t *p, size_t ph_start, int line)
{
    size_t start = ++c->pos;   /* after '|' */
    while (is_ident(c->src[c->pos]))
        c->pos++;
    const char *name = c->src + start;
    size_t len = c->pos - start;
    filter_t *f = add_filter(p);
    if (!f) {
        fail(c, line, "out of memory");
        return -1;
    }
    if (len == 4 && strncmp(name, "json", 4) == 0)
        f->kind = FL_JSON;
    else if (len == 3 && strncmp(name, "int", 3) == 0)
        f->kind = FL_INT;
    else if (len == 5 && strncmp(name, "float", 5) == 0)
        f->kind = FL_FLOAT;
    else if (len == 7 && strncmp(name, "default", 7) == 0) {
        f->kind = FL_DEFAULT;
        return scan_default_arg(c, f, line);
    } else {
        fail(c, line, "unknown filter '%.*s' in placeholder ':%.*s' (filters: json, "
             "default('text'), int, float)", (int) len, name,
             (int) (c->pos - ph_start - 1), c->src + ph_start + 1);
        return -1;
    }
    return 0;
}

static void emit_marker(compiler_t *c)
{
    char marker[16] = "?";
    if (c->dialect == SQL_DIALECT_PGSQL)
        snprintf(marker, sizeof marker, "$%d", c->tpl->n_params);
    sb_put(&c->out, marker, strlen(marker));
    /* "?5" or "$1x" would change meaning: keep the marker a token of its own */
    if (is_ident(c->src[c->pos]) || c->src[c->pos] == '$')
        sb_put(&c->out, " ", 1);
}

static void scan_placeholder(compiler_t *c)
{
    int line = c->line;
    size_t start = c->pos++;   /* at ':' */
    size_t len = scan_field(c, line);
    if (!len)
        return;
    param_t *p = add_param(c);
    if (!p) {
        fail(c, line, "out of memory");
        return;
    }
    if (resolve_field(p, c->src + start + 1, len) != 0) {
        fail(c, line, "unknown placeholder ':%.*s' (fields: tag, master_id, stamp, "
             "event_hash, data, data.<path>)", (int) len, c->src + start + 1);
        return;
    }
    while (c->src[c->pos] == '|' && is_ident_start(c->src[c->pos + 1]))
        if (scan_filter(c, p, start, line) != 0)
            return;
    emit_marker(c);
    /* a default('…') spanning lines: keep the output's line numbers equal to the source's,
     * so a database error offset maps back to the right template line */
    for (int i = line; i < c->line; i++)
        sb_put(&c->out, "\n", 1);
}

/* ---------------------------------------------------------------- statement scanner */

/* After the terminating ';': only whitespace and comments may follow. */
static void check_tail(compiler_t *c)
{
    strbuf_t keep = c->out;    /* the tail is not part of the statement */
    c->out = (strbuf_t) { 0 };
    while (!c->failed && c->src[c->pos] != '\0') {
        const char *s = c->src + c->pos;
        if (is_space(*s))
            copy_char(c);
        else if (at_line_comment(c))
            skip_line_comment(c);
        else if (s[0] == '/' && s[1] == '*')
            skip_block_comment(c);
        else
            fail(c, c->line, "only one SQL statement per template (text after ';')");
    }
    free(c->out.buf);
    c->out = keep;
}

static void check_positional(compiler_t *c)
{
    const char *s = c->src + c->pos;
    if (c->dialect != SQL_DIALECT_PGSQL && s[0] == '?')
        fail(c, c->line, "positional parameter '?' in a template: use named placeholders "
             "like :data.fun");
    else if (c->dialect == SQL_DIALECT_PGSQL && s[0] == '$' && s[1] >= '0' && s[1] <= '9' &&
             !is_ident(prev_char(c)))
        fail(c, c->line, "positional parameter '$%c' in a template: use named placeholders "
             "like :data.fun", s[1]);
}

/* One step of the scanner at pos. Returns false at the end of the statement. */
static bool scan_step(compiler_t *c)
{
    const char *s = c->src + c->pos;
    if (*s == '\0')
        return false;
    if (*s == ';') {
        c->pos++;
        check_tail(c);
        return false;
    }
    if (at_line_comment(c))
        skip_line_comment(c);
    else if (s[0] == '/' && s[1] == '*')
        skip_block_comment(c);
    else {
        if (!is_space(*s))
            c->saw_sql = true;
        if (try_skip_quoted(c))
            ;
        else if (s[0] == ':' && s[1] == ':') {
            copy_char(c);   /* PostgreSQL cast: never a placeholder */
            copy_char(c);
        } else if (s[0] == ':' && is_ident_start(s[1]))
            scan_placeholder(c);
        else if (c->dialect == SQL_DIALECT_PGSQL && s[0] == '$' && !is_ident(prev_char(c)) &&
                 dollar_tag_len(s))
            skip_dollar_quoted(c, dollar_tag_len(s));
        else {
            check_positional(c);
            copy_char(c);
        }
    }
    return !c->failed;
}

template_t *template_compile(const char *sql_text, const char *origin, sql_dialect_t dialect,
                             char *err, size_t errlen)
{
    template_t *t = calloc(1, sizeof *t);
    compiler_t c = { .src = sql_text ? sql_text : "", .line = 1,
                     .origin = origin ? origin : "template", .dialect = dialect, .tpl = t,
                     .err = err, .errlen = errlen };
    if (!t) {
        fail(&c, 1, "out of memory");
        return NULL;
    }
    while (scan_step(&c))
        ;
    if (!c.failed && !c.saw_sql)
        fail(&c, 1, "empty template: no SQL statement");
    if (!c.failed && c.out.oom)
        fail(&c, c.line, "out of memory");
    t->sql = c.out.buf;
    if (c.failed)
        template_destroy(&t);
    return t;
}

/* ---------------------------------------------------------------- loading and accessors */

/* what: "template" or "schema", for messages. */
static char *read_file(const char *path, const char *what, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read %s: %s", path, what, strerror(errno));
        return NULL;
    }
    char *buf = malloc(TEMPLATE_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, TEMPLATE_MAX_BYTES + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > TEMPLATE_MAX_BYTES;
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: cannot read %s: %s", path, what,
                 !buf ? "out of memory" : n > TEMPLATE_MAX_BYTES ? "larger than 1 MiB"
                                                                  : "read error");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        snprintf(err, errlen, "%s: NUL byte in %s", path, what);
        free(buf);
        return NULL;
    }
    return buf;
}

template_t *template_load(const char *path, sql_dialect_t dialect, char *err, size_t errlen)
{
    char *text = read_file(path, "template", err, errlen);
    if (!text)
        return NULL;
    template_t *t = template_compile(text, path, dialect, err, errlen);
    free(text);
    return t;
}

int template_schema(const char *template_path, char **path, char **sql, char *err,
                    size_t errlen)
{
    *path = *sql = NULL;
    const char *slash = strrchr(template_path, '/');
    int dirlen = slash ? (int) (slash - template_path) : 1;
    if (asprintf(path, "%.*s/schema.sql", dirlen, slash ? template_path : ".") < 0) {
        *path = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (access(*path, F_OK) != 0) {
        free(*path);
        *path = NULL;
        return 0;
    }
    *sql = read_file(*path, "schema", err, errlen);
    if (!*sql) {
        free(*path);
        *path = NULL;
        return -1;
    }
    return 1;
}

void template_destroy(template_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    template_t *t = *self_p;
    for (int i = 0; i < t->n_params; i++) {
        for (int j = 0; j < t->params[i].n_filters; j++)
            free(t->params[i].filters[j].text);
        free(t->params[i].filters);
        free(t->params[i].path);
    }
    free(t->params);
    free(t->sql);
    free(t);
    *self_p = NULL;
}

const char *template_sql(const template_t *self)
{
    return self->sql;
}

int template_n_params(const template_t *self)
{
    return self->n_params;
}

/* ---------------------------------------------------------------- value computation */

/* A value on its way through the filters. Text lives in scratch at `off` because scratch
 * may move while later values are appended. */
typedef enum { S_MISSING, S_NULL, S_OBJ, S_TEXT, S_INT, S_REAL } state_kind_t;

typedef struct {
    state_kind_t   kind;
    msgpack_object obj;
    size_t         off, len;
    int64_t        i;
    double         r;
} state_t;

/* Text at off in scratch; scratch->data is NULL until something was written. */
static const char *scratch_at(const msgpack_sbuffer *sb, size_t off)
{
    return sb->data ? sb->data + off : "";
}

static int scratch_put(msgpack_sbuffer *sb, const char *s, size_t n)
{
    /* never hand msgpack a zero-length copy into a NULL buffer */
    return n ? msgpack_sbuffer_write(sb, s, n) : 0;
}

static msgpack_object str_obj(const char *s, size_t n)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_STR };
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t) n;
    return o;
}

static state_t field_state(const param_t *p, const worker_event_t *ev, const char *master_id)
{
    state_t st = { .kind = S_OBJ };
    const msgpack_object *found = NULL;
    const msgpack_object *root = ev->data ? payload_root(ev->data) : NULL;
    switch (p->field) {
    case F_TAG:        st.obj = str_obj(ev->tag ? ev->tag : "", ev->tag_len); return st;
    case F_EVENT_HASH: st.obj = str_obj(ev->hash, strlen(ev->hash)); return st;
    case F_MASTER_ID:
        if (!master_id)
            break;
        st.obj = str_obj(master_id, strlen(master_id));
        return st;
    case F_STAMP: found = root ? payload_lookup(root, "_stamp") : NULL; break;
    case F_DATA:  found = root ? payload_lookup(root, p->path) : NULL; break;
    }
    if (!found)
        return (state_t) { .kind = S_MISSING };
    st.obj = *found;
    return st;
}

/* Python int(): optional sign and surrounding whitespace, decimal digits only. */
static bool text_to_int(const char *s, size_t n, int64_t *out)
{
    char buf[NUM_TEXT_MAX + 1];
    if (n == 0 || n > NUM_TEXT_MAX)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *p = buf, *end;
    while (is_space(*p))
        p++;
    if (*p == '+' || *p == '-')
        p++;
    if (!(*p >= '0' && *p <= '9'))
        return false;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    while (is_space(*end))
        end++;
    if (errno || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Python float(): decimal or exponent notation, inf/infinity/nan; no hex. */
static bool text_to_real(const char *s, size_t n, double *out)
{
    char buf[NUM_TEXT_MAX + 1];
    if (n == 0 || n > NUM_TEXT_MAX)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strpbrk(buf, "xX(") || !buf[strspn(buf, " \t\n\r\f\v")])
        return false;
    char *end;
    double v = strtod(buf, &end);
    while (is_space(*end))
        end++;
    if (*end != '\0' || end == buf)
        return false;
    *out = v;
    return true;
}

static bool real_to_int(double d, int64_t *out)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return false;   /* also NaN */
    *out = (int64_t) d;
    return true;
}

/* The text of a str/raw or datetime ExtType, for number parsing. */
static bool obj_text(const msgpack_object *o, const char **s, size_t *n)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *s = o->via.str.ptr;
        *n = o->via.str.size;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == 78) {
        *s = o->via.ext.ptr;
        *n = o->via.ext.size;
        return true;
    }
    return false;
}

/* Converts an object to a number: want_int picks int64 or double. */
static bool obj_to_number(const msgpack_object *o, bool want_int, int64_t *i, double *r)
{
    const char *s;
    size_t n;
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        *i = o->via.boolean;
        *r = o->via.boolean;
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *r = (double) o->via.u64;
        *i = (int64_t) o->via.u64;
        return !want_int || o->via.u64 <= INT64_MAX;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *i = o->via.i64;
        *r = (double) o->via.i64;
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *r = o->via.f64;
        return !want_int || real_to_int(o->via.f64, i);
    default:
        if (!obj_text(o, &s, &n))
            return false;
        return want_int ? text_to_int(s, n, i) : text_to_real(s, n, r);
    }
}

static void apply_number(state_t *st, bool want_int, const msgpack_sbuffer *scratch)
{
    int64_t i = 0;
    double r = 0;
    bool ok;
    switch (st->kind) {
    case S_MISSING:
    case S_NULL: return;
    case S_OBJ:  ok = obj_to_number(&st->obj, want_int, &i, &r); break;
    case S_TEXT:
        ok = want_int ? text_to_int(scratch_at(scratch, st->off), st->len, &i)
                      : text_to_real(scratch_at(scratch, st->off), st->len, &r);
        break;
    case S_INT:  i = st->i; r = (double) st->i; ok = true; break;
    case S_REAL: r = st->r; ok = !want_int || real_to_int(st->r, &i); break;
    default:     ok = false; break;
    }
    if (!ok)
        *st = (state_t) { .kind = S_NULL };
    else if (want_int)
        *st = (state_t) { .kind = S_INT, .i = i };
    else
        *st = (state_t) { .kind = S_REAL, .r = r };
}

/* The msgpack object whose JSON text is the state's JSON text. */
static msgpack_object state_obj(const state_t *st, const msgpack_sbuffer *scratch)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_NIL };
    if (st->kind == S_OBJ)
        return st->obj;
    if (st->kind == S_TEXT)
        return str_obj(scratch_at(scratch, st->off), st->len);
    if (st->kind == S_INT) {
        o.type = st->i < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
        o.via.i64 = st->i;
    } else if (st->kind == S_REAL) {
        o.type = MSGPACK_OBJECT_FLOAT64;
        o.via.f64 = st->r;
    }
    return o;
}

static int apply_json(state_t *st, msgpack_sbuffer *scratch)
{
    if (st->kind == S_MISSING)
        return 0;   /* no value, no JSON: stays SQL NULL */
    msgpack_object o = state_obj(st, scratch);
    size_t off = scratch->size;
    if (payload_to_json(&o, scratch) != 0)
        return -1;
    *st = (state_t) { .kind = S_TEXT, .off = off, .len = scratch->size - off };
    return 0;
}

static int apply_default(state_t *st, const filter_t *f, msgpack_sbuffer *scratch)
{
    bool absent = st->kind == S_MISSING || st->kind == S_NULL ||
                  (st->kind == S_OBJ && st->obj.type == MSGPACK_OBJECT_NIL);
    if (!absent)
        return 0;
    size_t off = scratch->size;
    if (scratch_put(scratch, f->text, f->len) != 0)
        return -1;
    *st = (state_t) { .kind = S_TEXT, .off = off, .len = f->len };
    return 0;
}

static int apply_filter(state_t *st, const filter_t *f, msgpack_sbuffer *scratch)
{
    switch (f->kind) {
    case FL_JSON:    return apply_json(st, scratch);
    case FL_DEFAULT: return apply_default(st, f, scratch);
    case FL_INT:     apply_number(st, true, scratch); return 0;
    case FL_FLOAT:   apply_number(st, false, scratch); return 0;
    }
    return -1;
}

/* Final state -> value. A text value's scratch offset is parked in v->i until every value
 * is computed (scratch may still move); template_values turns it into a pointer. */
static int finish_value(state_t *st, msgpack_sbuffer *scratch, tval_t *v)
{
    *v = (tval_t) { .kind = TVAL_NULL };
    if (st->kind == S_OBJ) {
        size_t off = scratch->size;
        int rc = payload_to_text(&st->obj, scratch);
        if (rc < 0)
            return -1;
        if (rc == 1)
            return 0;
        *st = (state_t) { .kind = S_TEXT, .off = off, .len = scratch->size - off };
    }
    if (st->kind == S_TEXT)
        *v = (tval_t) { .kind = TVAL_TEXT, .text_len = st->len, .i = (int64_t) st->off };
    else if (st->kind == S_INT)
        *v = (tval_t) { .kind = TVAL_INT, .i = st->i };
    else if (st->kind == S_REAL)
        *v = (tval_t) { .kind = TVAL_REAL, .r = st->r };
    return 0;
}

int template_values(const template_t *self, const worker_event_t *ev, const char *master_id,
                    msgpack_sbuffer *scratch, tval_t *values)
{
    for (int i = 0; i < self->n_params; i++) {
        const param_t *p = &self->params[i];
        state_t st = field_state(p, ev, master_id);
        for (int j = 0; j < p->n_filters; j++)
            if (apply_filter(&st, &p->filters[j], scratch) != 0)
                return -1;
        if (finish_value(&st, scratch, &values[i]) != 0)
            return -1;
    }
    for (int i = 0; i < self->n_params; i++)
        if (values[i].kind == TVAL_TEXT) {
            values[i].text = scratch_at(scratch, (size_t) values[i].i);
            values[i].i = 0;
        }
    return 0;
}

/* ---------------------------------------------------------------- --explain */

static void print_param_name(const param_t *p, FILE *out)
{
    static const char *const names[] = { "tag", "master_id", "stamp", "event_hash", "data" };
    fprintf(out, ":%s%s%s", names[p->field], p->path ? "." : "", p->path ? p->path : "");
    for (int j = 0; j < p->n_filters; j++)
        fprintf(out, "|%s", p->filters[j].kind == FL_JSON ? "json"
                           : p->filters[j].kind == FL_DEFAULT ? "default(...)"
                           : p->filters[j].kind == FL_INT ? "int" : "float");
}

void template_explain(const char *path, sql_dialect_t dialect, const worker_event_t *ev,
                      const char *master_id, FILE *out)
{
    char err[512];
    template_t *t = template_load(path, dialect, err, sizeof err);
    if (!t) {
        fprintf(out, "    template error: %s\n", err);
        return;
    }
    tval_t *values = calloc((size_t) t->n_params + 1, sizeof *values);
    msgpack_sbuffer scratch;
    msgpack_sbuffer_init(&scratch);
    if (!values || template_values(t, ev, master_id, &scratch, values) != 0) {
        fprintf(out, "    out of memory computing the template's values\n");
    } else {
        for (int i = 0; i < t->n_params; i++) {
            fprintf(out, "    value %d ", i + 1);
            print_param_name(&t->params[i], out);
            const tval_t *v = &values[i];
            if (v->kind == TVAL_NULL)
                fprintf(out, " = NULL\n");
            else if (v->kind == TVAL_INT)
                fprintf(out, " = %lld\n", (long long) v->i);
            else if (v->kind == TVAL_REAL)
                fprintf(out, " = %.17g\n", v->r);
            else
                fprintf(out, " = '%.*s%s'\n", v->text_len > 200 ? 200 : (int) v->text_len,
                        v->text, v->text_len > 200 ? "...' (cut" : "");
        }
    }
    msgpack_sbuffer_destroy(&scratch);
    free(values);
    template_destroy(&t);
}
