/* config: the one config loader (see config.h).
 *
 * The loader walks the libconfig tree once and collects every problem instead of stopping at
 * the first, so an operator fixes a file in one pass; problems are sorted by file and line
 * before they are written to the caller's buffer.

 */
#include <libconfig.h>

#include "config.h"
#include "config_loader.h"
#include "log.h"
#include "payload.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_BUS_PATH   "/var/run/salt/master/master_event_pub.ipc"
#define DEFAULT_RUNTIME    "/run/eventsd"
#define DEFAULT_SPOOL      "/var/lib/eventsd/spool"

/* ---- problems ---- */

void cfg_problem_add(loader_t *ld, const char *file, int line, char *msg)
{
    if (!msg) {
        ld->oom = true;
        return;
    }
    if (ld->n_probs == ld->cap_probs) {
        int cap = ld->cap_probs ? 2 * ld->cap_probs : 16;
        problem_t *p = realloc(ld->probs, (size_t) cap * sizeof *p);
        if (!p) {
            free(msg);
            ld->oom = true;
            return;
        }
        ld->probs = p;
        ld->cap_probs = cap;
    }
    ld->probs[ld->n_probs] = (problem_t){ file, line, ld->n_probs, msg };
    ld->n_probs++;
}

static char *vfmt(const char *fmt, va_list ap)
{
    char *s;
    return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

/* Reports at setting s (its file and line); s may be the root (line 0 is shown as 1). */
__attribute__((format(printf, 3, 4)))
void cfg_problem(loader_t *ld, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vfmt(fmt, ap);
    va_end(ap);
    const char *file = s ? config_setting_source_file(s) : NULL;
    int line = s ? config_setting_source_line(s) : 0;
    cfg_problem_add(ld, file ? file : ld->cfg->path, line > 0 ? line : 1, msg);
}

static int problem_cmp(const void *a, const void *b)
{
    const problem_t *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends s at err + *used, truncated at errlen like snprintf (*used may pass errlen). With
 * one_line, control characters are written as \n, \r, \t or \xNN: a problem quoting a value
 * that holds a newline (libconfig strings may) must still be one line. */
static void put_text(char *err, size_t errlen, size_t *used, const char *s, bool one_line)
{
    for (; *s && *used < errlen; s++) {
        unsigned char c = (unsigned char) *s;
        char piece[8] = { (char) c, '\0' };
        if (one_line && c == '\n')
            snprintf(piece, sizeof piece, "\\n");
        else if (one_line && c == '\r')
            snprintf(piece, sizeof piece, "\\r");
        else if (one_line && c == '\t')
            snprintf(piece, sizeof piece, "\\t");
        else if (one_line && (c < 0x20 || c == 0x7f))
            snprintf(piece, sizeof piece, "\\x%02x", c);
        int n = snprintf(err + *used, errlen - *used, "%s", piece);
        *used += n > 0 ? (size_t) n : 0;
    }
}

/* Writes "FILE:LINE: msg" lines separated by '\n' (no trailing newline), truncated. */
static void problems_write(loader_t *ld, char *err, size_t errlen)
{
    if (!err || errlen == 0)
        return;
    qsort(ld->probs, (size_t) ld->n_probs, sizeof *ld->probs, problem_cmp);
    size_t used = 0;
    err[0] = '\0';
    for (int i = 0; i < ld->n_probs && used < errlen; i++) {
        const problem_t *p = &ld->probs[i];
        char line[32];
        snprintf(line, sizeof line, ":%d: ", p->line);
        put_text(err, errlen, &used, used ? "\n" : "", false);
        put_text(err, errlen, &used, p->file, true);
        put_text(err, errlen, &used, line, false);
        put_text(err, errlen, &used, p->msg, true);
    }
    if (ld->oom && used < errlen)
        snprintf(err + used, errlen - used, "%s%s: out of memory", used ? "\n" : "",
                 ld->cfg->path);
}

static void problems_free(loader_t *ld)
{
    for (int i = 0; i < ld->n_probs; i++)
        free(ld->probs[i].msg);
    free(ld->probs);
    ld->probs = NULL;
    ld->n_probs = ld->cap_probs = 0;
}

static bool failed(const loader_t *ld)
{
    return ld->n_probs > 0 || ld->oom;
}

/* ---- small helpers ---- */

char *cfg_strdup(loader_t *ld, const char *s)
{
    char *d = strdup(s);
    if (!d)
        ld->oom = true;
    return d;
}

__attribute__((format(printf, 2, 3)))
char *cfg_fmt(loader_t *ld, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = vfmt(f, ap);
    va_end(ap);
    if (!s)
        ld->oom = true;
    return s;
}

/* True when rest (a path tail) has no "." or ".." component, so appending it to a
 * canonical directory means exactly what the kernel would make of it. */
static bool plain_tail(const char *rest)
{
    for (const char *p = rest; *p; ) {
        p += strspn(p, "/");
        size_t n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
    }
    return true;
}

/* Canonicalises the longest existing prefix of joined (which is absolute) and appends the
 * rest, so a path is spelt the same before and after its directories get created (the
 * fingerprint compares spellings). NULL when that cannot be done exactly. */
static char *canonical_prefix(loader_t *ld, char *joined)
{
    for (char *slash = strrchr(joined, '/'); slash && slash != joined;) {
        *slash = '\0';
        char *real = realpath(joined, NULL);
        *slash = '/';
        if (real) {
            char *out = plain_tail(slash) ? cfg_fmt(ld, "%s%s", strcmp(real, "/") ? real : "", slash)
                                          : NULL;
            free(real);
            return out;
        }
        char *prev = slash;
        while (prev > joined && *--prev != '/')
            ;
        slash = prev;
    }
    return NULL;
}

/* Absolute paths are kept as written (an operator's /var/run is deliberate). Relative ones
 * become base + "/" + rel, canonicalised as far as they exist, so that logs show /var/lib/x
 * rather than /etc/eventsd/../../var/lib/x and a later chdir cannot change what the path
 * means (base is always absolute). */
char *cfg_resolve_path(loader_t *ld, const char *base, const char *rel)
{
    if (rel[0] == '/')
        return cfg_strdup(ld, rel);
    char *joined = cfg_fmt(ld, "%s/%s", base, rel);
    if (!joined)
        return NULL;
    char *real = realpath(joined, NULL);
    if (!real)
        real = canonical_prefix(ld, joined);
    if (!real)
        return joined;
    free(joined);
    return real;
}

/* ---- typed lookups: 1 = *out set, 0 = key absent, -1 = present but wrong (reported) ---- */

config_setting_t *cfg_member(const config_setting_t *g, const char *key)
{
    return g ? config_setting_get_member(g, key) : NULL;
}

int cfg_line(const config_setting_t *g, const char *key)
{
    config_setting_t *s = cfg_member(g, key);
    return s ? config_setting_source_line(s) : 0;
}

int cfg_string(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                      const char *key, const char **out)
{
    config_setting_t *s = cfg_member(g, key);
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cfg_problem(ld, s, "'%s%s'%s must be a string", sc->prefix, key, sc->owner);
        return -1;
    }
    const char *v = config_setting_get_string(s);
    if (!v[0]) {
        cfg_problem(ld, s, "'%s%s'%s must not be empty", sc->prefix, key, sc->owner);
        return -1;
    }
    *out = v;
    return 1;
}

/* Accepts libconfig int and int64 (1.5 silently wraps plain ints above 2^31: write 5000000000L). */
int cfg_int(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                   const char *key, long long lo, long long hi, long long *out)
{
    config_setting_t *s = cfg_member(g, key);
    if (!s)
        return 0;
    int t = config_setting_type(s);
    long long v = config_setting_get_int64(s);
    if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || v < lo || v > hi) {
        cfg_problem(ld, s, "'%s%s'%s must be an integer between %lld and %lld",
                sc->prefix, key, sc->owner, lo, hi);
        return -1;
    }
    *out = v;
    return 1;
}

/* get_int into an int field, leaving the default when absent or wrong. */
void cfg_int_field(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                          const char *key, long long lo, long long hi, int *field)
{
    long long v;
    if (cfg_int(ld, sc, g, key, lo, hi, &v) == 1)
        *field = (int) v;
}

int cfg_bool(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                    const char *key, bool *out)
{
    config_setting_t *s = cfg_member(g, key);
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        cfg_problem(ld, s, "'%s%s'%s must be a boolean (true or false)", sc->prefix, key,
                sc->owner);
        return -1;
    }
    *out = config_setting_get_bool(s);
    return 1;
}

/* The group at key, NULL when absent or not a group (reported). */
config_setting_t *cfg_group(loader_t *ld, const scope_t *sc,
                                   const config_setting_t *g, const char *key)
{
    config_setting_t *s = cfg_member(g, key);
    if (s && !config_setting_is_group(s)) {
        cfg_problem(ld, s, "'%s%s'%s must be a group { ... }", sc->prefix, key, sc->owner);
        return NULL;
    }
    return s;
}

bool cfg_in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* Unknown keys are errors: a misspelt key silently falling back to a default is worse. */
void cfg_check_keys(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                       const char *const *allowed)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned) i);
        if (!cfg_in_list(allowed, config_setting_name(s)))
            cfg_problem(ld, s, "unknown key '%s' %s", config_setting_name(s), sc->where);
    }
}

/* ---- top level, bus, stats, shutdown ---- */

static const char *const top_keys[] = {
    "master_id", "runtime_dir", "sql_dir", "log_level", "user", "group", "bus", "spool",
    "stats", "shutdown", "workers", "rules", "redis", "statistics", "triggers", "pipelines", NULL
};
static const char *const bus_keys[] = {
    "type", "path", "endpoint", "host", "port", "max_event_bytes", "max_depth",
    "reconnect_min_ms", "reconnect_max_ms", NULL
};
static const char *const stats_keys[] = { "interval", "event", "listen", NULL };
static const char *const shutdown_keys[] = { "timeout_ms", NULL };
static const char *const bus_type_names[] = { "auto", "zmq", "salt-ipc", "salt-tcp" };
static const char *const spool_keys[] = {
    "dir", "sync", "sync_ms", "segment_bytes", "max_bytes", "when_full", NULL
};
static const char *const spool_sync_names[] = { "none", "interval", "always", NULL };
static const char *const spool_full_names[] = { "block", "drop-oldest", NULL };

static const scope_t top_scope = { "", "", "at top level" };

static char *default_master_id(loader_t *ld)
{
    char host[HOST_NAME_MAX + 1] = "";
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    return cfg_fmt(ld, "%s_master", host);
}

/* A directory or file path key resolved against base, or def (taken as is) when absent. */
char *cfg_path_key(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                      const char *key, const char *base, const char *def)
{
    const char *v;
    if (cfg_string(ld, sc, g, key, &v) == 1)
        return cfg_resolve_path(ld, base, v);
    return def ? cfg_strdup(ld, def) : NULL;
}

static void load_log_level(loader_t *ld, const config_setting_t *root)
{
    const char *v = "info";
    log_level_t lvl;
    if (cfg_string(ld, &top_scope, root, "log_level", &v) == 1 && log_level_parse(v, &lvl)) {
        cfg_problem(ld, cfg_member(root, "log_level"),
                "'log_level' must be one of debug, info, warning, error (got '%s')", v);
        v = "info";
    }
    ld->cfg->log_level = cfg_strdup(ld, v);
    for (char *p = ld->cfg->log_level; p && *p; p++)   /* canonical: callers may strcmp */
        *p = (char) tolower((unsigned char) *p);
}

static void load_top_scalars(loader_t *ld, const config_setting_t *root)
{
    eventsd_config_t *c = ld->cfg;
    const char *v;
    c->master_id = cfg_string(ld, &top_scope, root, "master_id", &v) == 1
                       ? cfg_strdup(ld, v) : default_master_id(ld);
    c->runtime_dir = cfg_path_key(ld, &top_scope, root, "runtime_dir", ld->conf_dir,
                              DEFAULT_RUNTIME);
    c->sql_dir = cfg_path_key(ld, &top_scope, root, "sql_dir", ld->conf_dir, ld->conf_dir);
    if (cfg_string(ld, &top_scope, root, "user", &v) == 1)
        c->user = cfg_strdup(ld, v);
    if (cfg_string(ld, &top_scope, root, "group", &v) == 1)
        c->group = cfg_strdup(ld, v);
    if (c->group && !c->user)
        cfg_problem(ld, cfg_member(root, "group"), "'group' needs 'user' (privileges are dropped to both)");
    load_log_level(ld, root);
}

/* "HOST:PORT" or "[V6]:PORT"; port 0 = any free port. */
static void load_stats_listen(loader_t *ld, const scope_t *sc, const config_setting_t *g)
{
    const char *v;
    if (cfg_string(ld, sc, g, "listen", &v) != 1)
        return;
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == v || !colon[1] || *end || port < 0 || port > 65535) {
        cfg_problem(ld, cfg_member(g, "listen"),
                    "'stats.listen' must be HOST:PORT (e.g. \"127.0.0.1:9108\"), got '%s'", v);
        return;
    }
    ld->cfg->stats_listen = cfg_strdup(ld, v);
}

static void load_stats_shutdown(loader_t *ld, const config_setting_t *root)
{
    static const scope_t st = { "stats.", "", "in 'stats'" };
    static const scope_t sd = { "shutdown.", "", "in 'shutdown'" };
    config_setting_t *g = cfg_group(ld, &top_scope, root, "stats");
    if (g) {
        cfg_check_keys(ld, &st, g, stats_keys);
        cfg_int_field(ld, &st, g, "interval", 0, 86400, &ld->cfg->stats_interval_s);
        cfg_bool(ld, &st, g, "event", &ld->cfg->stats_event);
        load_stats_listen(ld, &st, g);
    }
    g = cfg_group(ld, &top_scope, root, "shutdown");
    if (g) {
        cfg_check_keys(ld, &sd, g, shutdown_keys);
        cfg_int_field(ld, &sd, g, "timeout_ms", 0, MS_MAX, &ld->cfg->shutdown_timeout_ms);
    }
}

static void load_bus_type(loader_t *ld, const scope_t *sc, const config_setting_t *g)
{
    const char *v;
    if (cfg_string(ld, sc, g, "type", &v) != 1)
        return;
    for (int i = 0; i < 4; i++)
        if (strcmp(v, bus_type_names[i]) == 0) {
            ld->cfg->bus.type = (bus_type_t) i;
            return;
        }
    cfg_problem(ld, cfg_member(g, "type"),
            "unknown bus type '%s' in 'bus.type' (expected auto, zmq, salt-ipc or salt-tcp)", v);
}

static void load_bus_numbers(loader_t *ld, const scope_t *sc, const config_setting_t *g)
{
    bus_config_t *b = &ld->cfg->bus;
    long long v;
    cfg_int_field(ld, sc, g, "port", 1, 65535, &b->port);
    if (cfg_int(ld, sc, g, "max_event_bytes", 1024, 1LL << 30, &v) == 1)
        b->max_event_bytes = (size_t) v;
    cfg_int_field(ld, sc, g, "max_depth", 2, PAYLOAD_MSGPACK_MAX_DEPTH, &b->max_depth);
    int min_ok = cfg_int(ld, sc, g, "reconnect_min_ms", 1, MS_MAX, &v);
    if (min_ok == 1)
        b->reconnect_min_ms = (int) v;
    int max_ok = cfg_int(ld, sc, g, "reconnect_max_ms", 1, MS_MAX, &v);
    if (max_ok == 1)
        b->reconnect_max_ms = (int) v;
    if (min_ok >= 0 && max_ok >= 0 && b->reconnect_max_ms < b->reconnect_min_ms)
        cfg_problem(ld, cfg_member(g, max_ok ? "reconnect_max_ms" : "reconnect_min_ms"),
                "'bus.reconnect_max_ms' (%d) must be >= 'bus.reconnect_min_ms' (%d)",
                b->reconnect_max_ms, b->reconnect_min_ms);
}

static void load_bus(loader_t *ld, const config_setting_t *root)
{
    static const scope_t sc = { "bus.", "", "in 'bus'" };
    bus_config_t *b = &ld->cfg->bus;
    config_setting_t *g = cfg_group(ld, &top_scope, root, "bus");
    const char *v;
    if (g) {
        b->line = config_setting_source_line(g);
        cfg_check_keys(ld, &sc, g, bus_keys);
        load_bus_type(ld, &sc, g);
        load_bus_numbers(ld, &sc, g);
    }
    /* bus.path is resolved like every other path so that etc/demo.conf works from any cwd. */
    b->path = cfg_path_key(ld, &sc, g, "path", ld->conf_dir, DEFAULT_BUS_PATH);
    b->host = cfg_string(ld, &sc, g, "host", &v) == 1 ? cfg_strdup(ld, v) : cfg_strdup(ld, "127.0.0.1");
    if (cfg_string(ld, &sc, g, "endpoint", &v) == 1)
        b->endpoint = cfg_strdup(ld, v);
    else if (b->path)
        b->endpoint = cfg_fmt(ld, "ipc://%s", b->path);
}

/* An enum key: index of its value in names, or the default when absent or wrong (reported). */
int cfg_enum(loader_t *ld, const scope_t *sc, const config_setting_t *g, const char *key,
                    const char *const *names, int def)
{
    const char *v;
    if (cfg_string(ld, sc, g, key, &v) != 1)
        return def;
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    char expected[256] = "";
    for (int i = 0; names[i]; i++)
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%s",
                 i ? (names[i + 1] ? ", " : " or ") : "", names[i]);
    cfg_problem(ld, cfg_member(g, key), "unknown value '%s' for '%s%s' (expected %s)", v, sc->prefix,
            key, expected);
    return def;
}

static void load_spool(loader_t *ld, const config_setting_t *root)
{
    static const scope_t sc = { "spool.", "", "in 'spool'" };
    spool_config_t *sp = &ld->cfg->spool;
    config_setting_t *g = cfg_group(ld, &top_scope, root, "spool");
    if (g) {
        sp->line = config_setting_source_line(g);
        cfg_check_keys(ld, &sc, g, spool_keys);
        sp->sync = (spool_sync_t) cfg_enum(ld, &sc, g, "sync", spool_sync_names, sp->sync);
        sp->when_full = (spool_full_t) cfg_enum(ld, &sc, g, "when_full", spool_full_names,
                                                sp->when_full);
        cfg_int_field(ld, &sc, g, "sync_ms", 1, 10000, &sp->sync_ms);
        cfg_int(ld, &sc, g, "segment_bytes", 64LL << 10, 1LL << 30, &sp->segment_bytes);
        int max_ok = cfg_int(ld, &sc, g, "max_bytes", 1LL << 20, 1LL << 50, &sp->max_bytes);
        if (max_ok >= 0 && sp->max_bytes < 2 * sp->segment_bytes)
            cfg_problem(ld, cfg_member(g, max_ok ? "max_bytes" : "segment_bytes"),
                    "'spool.max_bytes' (%lld) must be at least twice 'spool.segment_bytes' (%lld)",
                    sp->max_bytes, sp->segment_bytes);
    }
    sp->dir = cfg_path_key(ld, &sc, g, "dir", ld->conf_dir, DEFAULT_SPOOL);
}

/* ---- workers ---- */

/* Keys every worker may have; the others belong to sinks (sink_spec_t.own), and a key of
 * another sink is an error that names the sink rather than "unknown key". */
static const char *const common_worker_keys[] = {
    "name", "sink", "processes", "batch", "max_inflight", "dead_letter", NULL
};
static const char *const db_worker_keys[] = {
    "database", "template", "path", "busy_timeout_ms", "conninfo", "host", "port", "socket",
    "user", "password", "connect_timeout_ms", NULL
};
static const char *const batch_keys[] = { "size", "interval_ms", NULL };

typedef struct {
    const char        *name;
    const char *const *required;
    const char *const *own;        /* the sink-specific keys it understands */
} sink_spec_t;

static const char *const sqlite_required[] = { "template", "database", NULL };
static const char *const sqlite_own[] = { "template", "database", "busy_timeout_ms", NULL };
static const char *const file_required[] = { "path", NULL };
static const char *const file_own[] = { "path", NULL };
static const char *const pgsql_required[] = { "template", "conninfo", NULL };
static const char *const pgsql_own[] = { "template", "conninfo", "connect_timeout_ms", NULL };
static const char *const mysql_required[] = { "template", "database", "user", NULL };
static const char *const mysql_own[] = { "template", "database", "host", "port", "socket",
                                         "user", "password", "connect_timeout_ms", NULL };
static const char *const graphite_required[] = { "metrics", NULL };
static const char *const graphite_own[] = { "host", "port", "protocol", "prefix",
                                            "flush_interval", "metrics", "rollups",
                                            "connect_timeout_ms", NULL };
static const char *const redis_required[] = { "group", "intervals", "counter", NULL };
static const char *const redis_own[] = { "host", "port", "password", "db", "group", "intervals",
                                         "counter", "events", "auto_declare",
                                         "sync_interval_ms", "sync_limit", "connect_timeout_ms",
                                         NULL };

static const char *const trigger_required[] = { "state", "triggers", NULL };
static const char *const trigger_own[] = { "state", "triggers", "max_streams", NULL };

static const sink_spec_t sinks[] = {
    { "sqlite", sqlite_required, sqlite_own },
    { "file", file_required, file_own },
    { "pgsql", pgsql_required, pgsql_own },
    { "mysql", mysql_required, mysql_own },
    { "graphite", graphite_required, graphite_own },
    { "redis", redis_required, redis_own },
    { "trigger", trigger_required, trigger_own },
};

#define SINK_NAMES "sqlite, file, pgsql, mysql, graphite, redis or trigger"

/* Message fragments for one worker; label is "worker 'name'" or "worker #N". */
typedef struct {
    char   label[WORKER_NAME_MAX + 16];
    char   owner[WORKER_NAME_MAX + 24];
    char   where[WORKER_NAME_MAX + 24];
    char   batch_where[WORKER_NAME_MAX + 40];
    scope_t sc, batch_sc;
} worker_ctx_t;

static bool valid_worker_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WORKER_NAME_MAX)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static void worker_name(loader_t *ld, const config_setting_t *g, int idx,
                        worker_config_t *w, worker_ctx_t *wc)
{
    const char *v = NULL;
    snprintf(wc->label, sizeof wc->label, "worker #%d", idx + 1);
    snprintf(wc->owner, sizeof wc->owner, " in %s", wc->label);
    scope_t anon = { "", wc->owner, "" };
    int r = cfg_string(ld, &anon, g, "name", &v);
    if (r == 0)
        cfg_problem(ld, g, "missing key 'name' in worker #%d", idx + 1);
    else if (r == 1 && !valid_worker_name(v))
        cfg_problem(ld, cfg_member(g, "name"), "invalid worker name '%s' (use 1 to %d of A-Z a-z 0-9 _ -)",
                v, WORKER_NAME_MAX);
    else if (r == 1) {
        w->name = cfg_strdup(ld, v);
        snprintf(wc->label, sizeof wc->label, "worker '%s'", v);
    }
    snprintf(wc->owner, sizeof wc->owner, " in %s", wc->label);
    snprintf(wc->where, sizeof wc->where, "in %s", wc->label);
    snprintf(wc->batch_where, sizeof wc->batch_where, "in 'batch' of %s", wc->label);
    wc->sc = (scope_t){ "", wc->owner, wc->where };
    wc->batch_sc = (scope_t){ "batch.", wc->owner, wc->batch_where };
}

static const sink_spec_t *worker_sink(loader_t *ld, const config_setting_t *g,
                                      const worker_ctx_t *wc, worker_config_t *w)
{
    const char *v;
    int r = cfg_string(ld, &wc->sc, g, "sink", &v);
    if (r == 0)
        cfg_problem(ld, g, "missing key 'sink' in %s (expected " SINK_NAMES ")", wc->label);
    if (r != 1)
        return NULL;
    for (size_t i = 0; i < sizeof sinks / sizeof *sinks; i++)
        if (strcmp(v, sinks[i].name) == 0) {
            w->sink = cfg_strdup(ld, v);
            return &sinks[i];
        }
    cfg_problem(ld, cfg_member(g, "sink"), "unknown sink '%s' in %s (expected " SINK_NAMES ")", v,
            wc->label);
    return NULL;
}

static bool known_worker_key(const char *key)
{
    return cfg_in_list(common_worker_keys, key) || cfg_in_list(db_worker_keys, key) ||
           cfg_in_list(metrics_worker_keys, key) || cfg_in_list(trigger_own, key);
}

/* Unknown keys, keys of other sinks, and missing required keys. */
static void worker_keys(loader_t *ld, const config_setting_t *g, const worker_ctx_t *wc,
                        const sink_spec_t *spec, const char *const *extra)
{
    for (const char *const *k = spec ? spec->required : NULL; k && *k; k++)
        if (!cfg_member(g, *k))
            cfg_problem(ld, g, "missing key '%s' in %s (required by sink '%s')", *k, wc->label,
                        spec->name);
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned) i);
        const char *key = config_setting_name(s);
        if (extra && cfg_in_list(extra, key))
            continue;
        if (!known_worker_key(key))
            cfg_problem(ld, s, "unknown key '%s' %s", key, wc->where);
        else if (spec && !cfg_in_list(common_worker_keys, key) && !cfg_in_list(spec->own, key))
            cfg_problem(ld, s, "key '%s' in %s does not apply to sink '%s'", key, wc->label,
                        spec->name);
    }
}

/* Aggregating sinks hold their events' acks for a whole flush interval, so their default
 * window must cover an interval of a busy bus. */
#define AGGREGATING_INFLIGHT 50000

static bool is_aggregating(const worker_config_t *w)
{
    return w->sink && (strcmp(w->sink, "graphite") == 0 || strcmp(w->sink, "redis") == 0);
}

static int default_port(const char *sink)
{
    if (sink && strcmp(sink, "graphite") == 0)
        return 2003;
    if (sink && strcmp(sink, "redis") == 0)
        return 6379;
    return 3306;
}

static void worker_numbers(loader_t *ld, const config_setting_t *g, const worker_ctx_t *wc,
                           worker_config_t *w)
{
    cfg_int_field(ld, &wc->sc, g, "processes", 1, 64, &w->processes);
    cfg_int_field(ld, &wc->sc, g, "busy_timeout_ms", 0, MS_MAX, &w->busy_timeout_ms);
    cfg_int_field(ld, &wc->sc, g, "port", 1, 65535, &w->port);
    cfg_int_field(ld, &wc->sc, g, "connect_timeout_ms", 100, MS_MAX, &w->connect_timeout_ms);
    config_setting_t *b = cfg_group(ld, &wc->sc, g, "batch");
    if (b) {
        cfg_check_keys(ld, &wc->batch_sc, b, batch_keys);
        cfg_int_field(ld, &wc->batch_sc, b, "size", 1, 100000, &w->batch_size);
        cfg_int_field(ld, &wc->batch_sc, b, "interval_ms", 1, MS_MAX, &w->batch_interval_ms);
    }
    long long v;
    w->max_inflight = 4 * w->batch_size;
    if (is_aggregating(w) && w->max_inflight < AGGREGATING_INFLIGHT)
        w->max_inflight = AGGREGATING_INFLIGHT;
    if (cfg_int(ld, &wc->sc, g, "max_inflight", 1, 10000000, &v) != 1)
        return;
    w->max_inflight = (int) v;
    if (w->max_inflight < w->batch_size)
        cfg_problem(ld, cfg_member(g, "max_inflight"),
                "'max_inflight'%s (%d) must be >= 'batch.size' (%d)", wc->owner,
                w->max_inflight, w->batch_size);
}

/* Opens rather than access(): access() checks the real uid, open() the one that will read. */
static void check_template(loader_t *ld, const config_setting_t *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        cfg_problem(ld, s, "cannot read template '%s': %s", path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        cfg_problem(ld, s, "cannot read template '%s': not a regular file", path);
    close(fd);
}

/* sqlite's ":memory:" and "file:" URIs are not paths and must reach sqlite untouched. */
static bool sqlite_special(const char *db)
{
    return strcmp(db, ":memory:") == 0 || strncmp(db, "file:", 5) == 0;
}

static void worker_paths(loader_t *ld, const config_setting_t *g, const worker_ctx_t *wc,
                         worker_config_t *w)
{
    const char *v;
    const char *dir = ld->cfg->sql_dir ? ld->cfg->sql_dir : ld->conf_dir;
    w->template_line = cfg_line(g, "template");
    w->template_path = cfg_path_key(ld, &wc->sc, g, "template", dir, NULL);
    if (w->template_path)
        check_template(ld, cfg_member(g, "template"), w->template_path);
    bool is_mysql = w->sink && strcmp(w->sink, "mysql") == 0;
    if (cfg_string(ld, &wc->sc, g, "database", &v) == 1)   /* mysql: a name, not a path */
        w->database = is_mysql || sqlite_special(v) ? cfg_strdup(ld, v)
                                                    : cfg_resolve_path(ld, ld->conf_dir, v);
    w->socket = cfg_path_key(ld, &wc->sc, g, "socket", ld->conf_dir, NULL);
    w->path = cfg_path_key(ld, &wc->sc, g, "path", ld->conf_dir, NULL);
    w->dead_letter = cfg_path_key(ld, &wc->sc, g, "dead_letter", ld->conf_dir, NULL);
}

/* Database servers (pgsql: conninfo; mysql: host, port, socket, user, password). */
static void worker_connection(loader_t *ld, const config_setting_t *g, const worker_ctx_t *wc,
                              worker_config_t *w)
{
    const char *v;
    if (cfg_string(ld, &wc->sc, g, "conninfo", &v) == 1)
        w->conninfo = cfg_strdup(ld, v);
    if (cfg_string(ld, &wc->sc, g, "user", &v) == 1)
        w->user = cfg_strdup(ld, v);
    if (cfg_string(ld, &wc->sc, g, "password", &v) == 1)
        w->password = cfg_strdup(ld, v);
    if (cfg_string(ld, &wc->sc, g, "host", &v) == 1)
        w->host = cfg_strdup(ld, v);
    else if (w->sink && strcmp(w->sink, "file") && strcmp(w->sink, "sqlite") &&
             strcmp(w->sink, "pgsql"))
        w->host = cfg_strdup(ld, "127.0.0.1");   /* mysql, graphite, redis */
}

static void worker_defaults(loader_t *ld, const config_setting_t *g, worker_config_t *w)
{
    *w = (worker_config_t){ .processes = 1, .batch_size = 500, .batch_interval_ms = 1000,
                            .busy_timeout_ms = 10000, .connect_timeout_ms = 5000,
                            .max_streams = 100000, .line = config_setting_source_line(g) };
    const char *file = config_setting_source_file(g);
    w->file = cfg_strdup(ld, file ? file : ld->cfg->path);
}

/* Everything after the name: the sink and its settings. extra: keys the caller handles. */
static void worker_settings(loader_t *ld, const config_setting_t *g, worker_ctx_t *wc,
                            worker_config_t *w, const char *const *extra)
{
    const sink_spec_t *spec = worker_sink(ld, g, wc, w);
    worker_keys(ld, g, wc, spec, extra);
    w->port = default_port(w->sink);
    worker_numbers(ld, g, wc, w);
    worker_paths(ld, g, wc, w);
    worker_connection(ld, g, wc, w);
    if (w->sink && strcmp(w->sink, "graphite") == 0)
        cfg_load_graphite_worker(ld, g, &wc->sc, w);
    else if (w->sink && strcmp(w->sink, "redis") == 0)
        cfg_load_redis_worker(ld, g, &wc->sc, w);
    else if (w->sink && strcmp(w->sink, "trigger") == 0)
        cfg_load_trigger_worker(ld, g, &wc->sc, w);
}

static void load_worker(loader_t *ld, const config_setting_t *g, int idx, worker_config_t *w)
{
    worker_ctx_t wc;
    worker_defaults(ld, g, w);
    w->root = ld->cfg;
    worker_name(ld, g, idx, w, &wc);
    worker_settings(ld, g, &wc, w, NULL);
}

void cfg_load_handler_sink(loader_t *ld, const config_setting_t *g, const char *name,
                           const char *label, worker_config_t *w, const char *const *extra)
{
    worker_ctx_t wc;
    worker_defaults(ld, g, w);
    w->name = cfg_strdup(ld, name);
    snprintf(wc.label, sizeof wc.label, "%s", label);
    snprintf(wc.owner, sizeof wc.owner, " in %s", label);
    snprintf(wc.where, sizeof wc.where, "in %s", label);
    snprintf(wc.batch_where, sizeof wc.batch_where, "in 'batch' of %s", label);
    wc.sc = (scope_t){ "", wc.owner, wc.where };
    wc.batch_sc = (scope_t){ "batch.", wc.owner, wc.batch_where };
    worker_settings(ld, g, &wc, w, extra);
}

static void check_duplicate_workers(loader_t *ld, const config_setting_t *list)
{
    eventsd_config_t *c = ld->cfg;
    for (int i = 1; i < c->n_workers; i++)
        for (int j = 0; j < i; j++)
            if (c->workers[i].name && c->workers[j].name &&
                strcmp(c->workers[i].name, c->workers[j].name) == 0) {
                cfg_problem_add(ld, config_setting_source_file(list) ? config_setting_source_file(list)
                                                                   : c->path,
                            c->workers[i].line,
                            cfg_fmt(ld, "duplicate worker name '%s' (first defined at line %d)",
                                c->workers[i].name, c->workers[j].line));
                break;
            }
}

/* A list of groups; libconfig arrays cannot hold groups, but an empty [] is harmless. */
static config_setting_t *get_group_list(loader_t *ld, const config_setting_t *root,
                                        const char *key, const char *what)
{
    config_setting_t *s = cfg_member(root, key);
    if (!s) {
        cfg_problem(ld, root, "missing key '%s' at top level: no %s defined", key, what);
        return NULL;
    }
    if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
        cfg_problem(ld, s, "'%s' must be a list of groups ( { ... }, ... )", key);
        return NULL;
    }
    if (config_setting_length(s) == 0) {
        cfg_problem(ld, s, "'%s' is empty: no %s defined", key, what);
        return NULL;
    }
    return s;
}

static void load_workers(loader_t *ld, const config_setting_t *root)
{
    config_setting_t *list = get_group_list(ld, root, "workers", "workers");
    if (!list)
        return;
    int n = config_setting_length(list);
    ld->cfg->workers = calloc((size_t) n, sizeof *ld->cfg->workers);
    if (!ld->cfg->workers) {
        ld->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned) i);
        if (!config_setting_is_group(g)) {
            cfg_problem(ld, g, "worker #%d must be a group { name = ...; sink = ...; }", i + 1);
            continue;
        }
        load_worker(ld, g, i, &ld->cfg->workers[ld->cfg->n_workers++]);
    }
    check_duplicate_workers(ld, list);
}

/* ---- rules ---- */

static const char *const rule_keys[] = { "tag", "fun", "workers", "priority", "throttle", NULL };

static void rule_add_worker(loader_t *ld, const config_setting_t *s, int idx, rule_config_t *r)
{
    const char *name = config_setting_get_string(s);
    if (config_worker_index(ld->cfg, name) < 0) {
        cfg_problem(ld, s, "rule #%d names unknown worker '%s'", idx + 1, name);
        return;
    }
    for (int i = 0; i < r->n_workers; i++)
        if (strcmp(r->workers[i], name) == 0) {
            cfg_problem(ld, s, "rule #%d names worker '%s' twice", idx + 1, name);
            return;
        }
    if ((r->workers[r->n_workers] = cfg_strdup(ld, name)))
        r->n_workers++;
}

/* workers = "a"; or [ "a", "b" ]; or ( "a", "b" ); */
static void rule_workers(loader_t *ld, const config_setting_t *g, int idx, rule_config_t *r)
{
    config_setting_t *s = cfg_member(g, "workers");
    if (!s) {
        cfg_problem(ld, g, "missing key 'workers' in rule #%d", idx + 1);
        return;
    }
    bool single = config_setting_type(s) == CONFIG_TYPE_STRING;
    if (!single && !config_setting_is_array(s) && !config_setting_is_list(s)) {
        cfg_problem(ld, s, "'workers' in rule #%d must be a string or an array of strings", idx + 1);
        return;
    }
    int n = single ? 1 : config_setting_length(s);
    if (n == 0) {
        cfg_problem(ld, s, "'workers' in rule #%d must name at least one worker", idx + 1);
        return;
    }
    if (!(r->workers = calloc((size_t) n, sizeof *r->workers))) {
        ld->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *e = single ? s : config_setting_get_elem(s, (unsigned) i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            cfg_problem(ld, e, "'workers' in rule #%d must be a string or an array of strings",
                    idx + 1);
        else
            rule_add_worker(ld, e, idx, r);
    }
}

static void load_rule(loader_t *ld, const config_setting_t *g, int idx, rule_config_t *r)
{
    char owner[32], where[32];
    snprintf(owner, sizeof owner, " in rule #%d", idx + 1);
    snprintf(where, sizeof where, "in rule #%d", idx + 1);
    scope_t sc = { "", owner, where };
    const char *v;
    r->line = config_setting_source_line(g);
    cfg_check_keys(ld, &sc, g, rule_keys);
    int t = cfg_string(ld, &sc, g, "tag", &v);
    if (t == 0)
        cfg_problem(ld, g, "missing key 'tag' in rule #%d", idx + 1);
    if (t == 1)
        r->tag = cfg_strdup(ld, v);
    r->tag_line = cfg_line(g, "tag");
    if (cfg_string(ld, &sc, g, "fun", &v) == 1)
        r->fun = cfg_strdup(ld, v);
    r->fun_line = cfg_line(g, "fun");
    rule_workers(ld, g, idx, r);
    cfg_bool(ld, &sc, g, "priority", &r->priority);
    r->throttle = cfg_load_throttle(ld, g, &sc);
}

static void load_rules(loader_t *ld, const config_setting_t *root)
{
    config_setting_t *list = get_group_list(ld, root, "rules", "rules");
    if (!list)
        return;
    int n = config_setting_length(list);
    ld->cfg->rules = calloc((size_t) n, sizeof *ld->cfg->rules);
    if (!ld->cfg->rules) {
        ld->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned) i);
        if (!config_setting_is_group(g)) {
            cfg_problem(ld, g, "rule #%d must be a group { tag = ...; workers = ...; }", i + 1);
            continue;
        }
        load_rule(ld, g, i, &ld->cfg->rules[ld->cfg->n_rules++]);
    }
}

/* ---- fingerprint ---- */

static void fp_str(FILE *f, const char *key, const char *v)
{
    /* Length-prefixed so that no value can imitate a neighbour's key. */
    if (v)
        fprintf(f, "%s=%zu:%s;", key, strlen(v), v);
    else
        fprintf(f, "%s=-;", key);
}

/* Every worker setting, plus master_id (sinks are opened with it) and the template file's
 * identity (so that editing the SQL and sending SIGHUP restarts the worker). */
static void make_fingerprint(loader_t *ld, worker_config_t *w)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        ld->oom = true;
        return;
    }
    fp_str(f, "master_id", ld->cfg->master_id);
    fp_str(f, "name", w->name);
    fp_str(f, "sink", w->sink);
    fprintf(f, "processes=%d;batch.size=%d;batch.interval_ms=%d;max_inflight=%d;"
               "busy_timeout_ms=%d;", w->processes, w->batch_size, w->batch_interval_ms,
            w->max_inflight, w->busy_timeout_ms);
    fp_str(f, "template", w->template_path);
    struct stat st;
    if (w->template_path && stat(w->template_path, &st) == 0)
        fprintf(f, "template.file=%llu:%llu:%lld:%lld.%09ld;", (unsigned long long) st.st_dev,
                (unsigned long long) st.st_ino, (long long) st.st_size,
                (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    fp_str(f, "database", w->database);
    fp_str(f, "path", w->path);
    fp_str(f, "dead_letter", w->dead_letter);
    fp_str(f, "conninfo", w->conninfo);
    fp_str(f, "host", w->host);
    fp_str(f, "socket", w->socket);
    fp_str(f, "user", w->user);
    fp_str(f, "password", w->password);
    fprintf(f, "port=%d;connect_timeout_ms=%d;", w->port, w->connect_timeout_ms);
    cfg_fingerprint_metrics(f, w);
    fp_str(f, "state", w->state);
    for (int i = 0; i < w->n_triggers; i++)
        fp_str(f, "trigger", w->triggers[i]);
    fprintf(f, "max_streams=%d;", w->max_streams);
    /* A trigger worker runs triggers and pipelines defined elsewhere in the file: any edit
     * restarts it (its streams are on disk, so a restart costs nothing). */
    if (w->sink && strcmp(w->sink, "trigger") == 0 && stat(ld->cfg->path, &st) == 0)
        fprintf(f, "config.file=%lld:%lld.%09ld;", (long long) st.st_size,
                (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        ld->oom = true;
        return;
    }
    w->fingerprint = buf;
}

/* ---- load ---- */

static void load_tree(loader_t *ld, const config_setting_t *root)
{
    cfg_check_keys(ld, &top_scope, root, top_keys);
    load_top_scalars(ld, root);
    load_stats_shutdown(ld, root);
    load_bus(ld, root);
    load_spool(ld, root);
    load_workers(ld, root);   /* before rules, which refer to workers by name */
    load_rules(ld, root);
    cfg_load_redis(ld, root);
    cfg_load_statistics(ld, root);
    cfg_load_pipelines(ld, root);   /* before triggers, which name them */
    cfg_load_triggers(ld, root);
    for (int i = 0; i < ld->cfg->n_workers && !failed(ld); i++)
        make_fingerprint(ld, &ld->cfg->workers[i]);
}

static eventsd_config_t *config_new(loader_t *ld, const char *path)
{
    eventsd_config_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = (eventsd_config_t){
        .stats_interval_s = 60, .shutdown_timeout_ms = 30000,
        .bus = { .type = BUS_AUTO, .port = 4512, .max_event_bytes = 16u << 20,
                 .max_depth = PAYLOAD_MSGPACK_MAX_DEPTH, .reconnect_min_ms = 100, .reconnect_max_ms = 5000 },
        .spool = { .sync = SPOOL_SYNC_INTERVAL, .sync_ms = 10, .segment_bytes = 64LL << 20,
                   .max_bytes = 4LL << 30, .when_full = SPOOL_FULL_BLOCK },
    };
    ld->cfg = c;
    c->path = cfg_strdup(ld, path);
    return c;
}

/* Absolute, canonical directory of the config file (the file itself may be a symlink: paths
 * are relative to where the operator sees it). */
static char *config_dir(loader_t *ld, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = !slash ? cfg_strdup(ld, ".")
              : slash == path ? cfg_strdup(ld, "/")
              : strndup(path, (size_t) (slash - path));
    if (!dir)
        return NULL;
    char *real = realpath(dir, NULL);
    free(dir);
    return real;
}

/* Parses into *lc; false (reported) on I/O or syntax errors. */
static bool parse_file(loader_t *ld, config_t *lc, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f || !ld->conf_dir) {
        cfg_problem_add(ld, path, 0, cfg_fmt(ld, "cannot read config file: %s", strerror(errno)));
        if (f)
            fclose(f);
        return false;
    }
    fclose(f);
    config_set_include_dir(lc, ld->conf_dir);   /* @include is relative to the file too */
    int ok = config_read_file(lc, path);
    if (!ok) {
        const char *file = config_error_file(lc);
        bool io = config_error_type(lc) == CONFIG_ERR_FILE_IO;
        cfg_problem_add(ld, file ? file : path, io ? 0 : config_error_line(lc),
                    cfg_fmt(ld, "%s%s", io ? "cannot read config file: " : "",
                        config_error_text(lc)));
    }
    return ok;
}

static void set_err(char *err, size_t errlen, const char *path, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s:0: %s", path, msg);
}

eventsd_config_t *config_load(const char *path, char *err, size_t errlen)
{
    loader_t ld = { 0 };
    config_t lc;
    if (err && errlen)
        err[0] = '\0';
    if (!config_new(&ld, path)) {
        set_err(err, errlen, path, "out of memory");
        return NULL;
    }
    ld.conf_dir = config_dir(&ld, path);
    config_init(&lc);
    if (parse_file(&ld, &lc, path))
        load_tree(&ld, config_root_setting(&lc));
    bool bad = failed(&ld);
    if (bad)
        problems_write(&ld, err, errlen);   /* before config_destroy: problems point at its names */
    config_destroy(&lc);
    problems_free(&ld);
    free(ld.conf_dir);
    if (bad) {
        eventsd_config_destroy(&ld.cfg);
        return NULL;
    }
    return ld.cfg;
}

/* ---- destroy and queries ---- */

void cfg_free_worker(worker_config_t *w)
{
    free(w->name);
    free(w->sink);
    free(w->template_path);
    free(w->database);
    free(w->path);
    free(w->dead_letter);
    free(w->conninfo);
    free(w->host);
    free(w->socket);
    free(w->user);
    free(w->password);
    free(w->fingerprint);
    free(w->file);
    free(w->state);
    for (int i = 0; i < w->n_triggers; i++)
        free(w->triggers[i]);
    free(w->triggers);
    cfg_free_metrics_worker(w);
}

static void rule_free(rule_config_t *r)
{
    free(r->tag);
    free(r->fun);
    for (int i = 0; i < r->n_workers; i++)
        free(r->workers[i]);
    free(r->workers);
}

void eventsd_config_destroy(eventsd_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    eventsd_config_t *c = *self_p;
    for (int i = 0; i < c->n_workers; i++)
        cfg_free_worker(&c->workers[i]);
    free(c->workers);
    for (int i = 0; i < c->n_rules; i++)
        rule_free(&c->rules[i]);
    cfg_free_metrics(c);   /* before the rules: their throttles */
    cfg_free_triggers(c);
    free(c->rules);
    free(c->bus.path);
    free(c->bus.endpoint);
    free(c->bus.host);
    free(c->spool.dir);
    free(c->user);
    free(c->group);
    free(c->stats_listen);
    free(c->path);
    free(c->master_id);
    free(c->runtime_dir);
    free(c->sql_dir);
    free(c->log_level);
    free(c);
    *self_p = NULL;
}

const char *config_worker_file(const worker_config_t *w)
{
    return w && w->file ? w->file : "config";
}

int config_worker_index(const eventsd_config_t *self, const char *name)
{
    for (int i = 0; self && name && i < self->n_workers; i++)
        if (self->workers[i].name && strcmp(self->workers[i].name, name) == 0)
            return i;
    return -1;
}

const char *config_spool_sync_name(spool_sync_t sync)
{
    return (unsigned) sync < 3 ? spool_sync_names[sync] : "unknown";
}

const char *config_spool_full_name(spool_full_t policy)
{
    return (unsigned) policy < 2 ? spool_full_names[policy] : "unknown";
}

const char *config_bus_type_name(bus_type_t type)
{
    return (unsigned) type < 4 ? bus_type_names[type] : "unknown";
}
