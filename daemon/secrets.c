/* secrets: which config values are secret, file modes, redacted conninfo (see secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REDACTED        "***"
#define UNPARSEABLE     "(conninfo not shown: libpq cannot parse it)"

/* ---- conninfo ---- */

/* libpq's dispchar "*": a value to hide (password, sslpassword). */
static bool secret_option(const PQconninfoOption *o)
{
    return o->dispchar && strchr(o->dispchar, '*') != NULL;
}

/* What libpq itself takes for a connection string rather than a plain database name
 * (recognized_connection_string in fe-connect.c): a URI prefix or an '='. */
static bool looks_like_conninfo(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0 ||
           strchr(s, '=') != NULL;
}

static PQconninfoOption *parse(const char *conninfo)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    PQfreemem(perr);   /* may quote any part of the string: never shown */
    return opts;
}

/* true: a secret found; an unparseable top-level string counts as one. depth 1 looks into a
 * dbname that is a connection string itself. */
static bool conninfo_has_secret(const char *conninfo, int depth)
{
    if (!looks_like_conninfo(conninfo))   /* a plain database name, as libpq takes it */
        return false;
    PQconninfoOption *opts = parse(conninfo);
    if (!opts)
        return depth == 0;
    bool found = false;
    for (PQconninfoOption *o = opts; o->keyword && !found; o++) {
        if (!o->val)
            continue;
        if (secret_option(o))
            found = o->val[0] != '\0';
        else if (depth == 0 && strcmp(o->keyword, "dbname") == 0 && looks_like_conninfo(o->val))
            found = conninfo_has_secret(o->val, 1);
    }
    PQconninfoFree(opts);
    return found;
}

bool secrets_config_has_password(const eventsd_config_t *cfg)
{
    if (!cfg)
        return false;
    for (int i = 0; i < cfg->n_workers; i++) {
        const worker_config_t *w = &cfg->workers[i];
        if (w->password && w->password[0])
            return true;
        if (w->conninfo && conninfo_has_secret(w->conninfo, 0))
            return true;
    }
    return cfg->redis.password && cfg->redis.password[0];   /* shared throttles' Redis */
}

/* ---- redaction ---- */

/* Appends into a fixed buffer, always NUL-terminated, counting what did not fit. */
typedef struct {
    char  *buf;
    size_t cap;    /* 0: measure only */
    size_t used;   /* bytes wanted so far (may exceed cap - 1) */
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->cap > 0 && o->used < o->cap - 1) {
        size_t room = o->cap - 1 - o->used;
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->used, s, k);
        o->buf[o->used + k] = '\0';
    }
    o->used += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A value as libpq's conninfo_parse reads it back: bare when it can be, else single-quoted
 * with ' and \ escaped by a backslash. */
static void put_value(out_t *o, const char *v)
{
    bool quote = v[0] == '\0' || strpbrk(v, " \t\n\r\f\v'\\") != NULL;
    if (!quote) {
        puts_(o, v);
        return;
    }
    put(o, "'", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '\'' || *p == '\\')
            put(o, "\\", 1);
        put(o, p, 1);
    }
    put(o, "'", 1);
}

static void redact(const char *conninfo, out_t *o, int depth);

/* A dbname that is a connection string, redacted itself, then quoted as one value. */
static void put_nested(out_t *o, const char *dbname)
{
    out_t m = { 0 };
    redact(dbname, &m, 1);
    char *tmp = malloc(m.used + 1);
    if (!tmp) {
        puts_(o, REDACTED);
        return;
    }
    out_t t = { tmp, m.used + 1, 0 };
    tmp[0] = '\0';
    redact(dbname, &t, 1);
    put_value(o, tmp);
    free(tmp);
}

static void redact(const char *conninfo, out_t *o, int depth)
{
    if (!looks_like_conninfo(conninfo)) {   /* a plain database name, as libpq takes it */
        if (conninfo[0]) {
            puts_(o, "dbname=");
            put_value(o, conninfo);
        }
        return;
    }
    PQconninfoOption *opts = parse(conninfo);
    if (!opts) {   /* nested: an odd database name, hidden whole; top level: a fixed text */
        puts_(o, depth ? REDACTED : UNPARSEABLE);
        return;
    }
    bool first = true;
    for (PQconninfoOption *opt = opts; opt->keyword; opt++) {
        if (!opt->val)
            continue;
        if (!first)
            put(o, " ", 1);
        first = false;
        puts_(o, opt->keyword);
        put(o, "=", 1);
        if (secret_option(opt))
            puts_(o, REDACTED);
        else if (depth == 0 && strcmp(opt->keyword, "dbname") == 0 &&
                 looks_like_conninfo(opt->val))
            put_nested(o, opt->val);
        else
            put_value(o, opt->val);
    }
    PQconninfoFree(opts);
}

void secrets_redact_conninfo(const char *conninfo, char *out, size_t len)
{
    if (!out || len == 0)
        return;
    out[0] = '\0';
    if (!conninfo)
        return;
    out_t o = { out, len, 0 };
    redact(conninfo, &o, 0);
}

/* ---- file mode ---- */

int secrets_check_file_mode(const char *path, char *msg, size_t len)
{
    char dummy[1];
    if (!msg || len == 0) {
        msg = dummy;
        len = sizeof dummy;
    }
    msg[0] = '\0';
    struct stat st;
    if (!path || stat(path, &st) != 0) {
        snprintf(msg, len, "cannot check the mode of config file %s: %s", path ? path : "(null)",
                 path ? strerror(errno) : "no path");
        return -1;
    }
    unsigned mode = (unsigned) st.st_mode & 07777;
    if ((mode & 006) == 0)
        return 0;
    const char *how = (mode & 006) == 006 ? "readable and writable"
                      : (mode & 004)      ? "readable" : "writable";
    snprintf(msg, len, "config file %s holds passwords but is %s by others (mode %04o); "
             "chmod o-rwx %s", path, how, mode, path);
    return 1;
}
