/* config_metrics: the metrics side of the one config loader (see config.h for what each key
 * means and its range): graphite and redis workers, rule throttles, the top-level redis
 * connection and statistics. Name templates are compiled here, so a bad placeholder is a
 * FILE:LINE error of --check-config. Built on config_loader.h; owns nothing beyond the
 * strings and arrays it puts into the config (freed by cfg_free_metrics*). */
#include "config_loader.h"
#include "name_template.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const metrics_worker_keys[] = {
    "protocol", "prefix", "flush_interval", "metrics", "rollups", "db", "group", "intervals",
    "counter", "events", "auto_declare", "sync_interval_ms", "sync_limit", NULL
};
static const char *const metric_keys[] = { "name", "value", "aggregate", NULL };
static const char *const rollup_keys[] = { "target", "source", NULL };
static const char *const throttle_keys[] = {
    "key", "timeframe", "min_count", "max_count", "shared", NULL
};
static const char *const redis_keys[] = { "host", "port", "password", "db", "timeout_ms", NULL };
static const char *const statistic_keys[] = {
    "name", "tag", "fields", "interval", "max_values", NULL
};
static const char *const protocol_names[] = { "tcp", "udp", NULL };
static const char *const metric_agg_names[] = { "sum", "min", "max", "mean", "last", NULL };

const char *config_metric_agg_name(metric_agg_t agg)
{
    return (unsigned) agg < 5 ? metric_agg_names[agg] : "unknown";
}

/* ---- small pieces ---- */

/* An optional list of groups at key: NULL when absent or wrong (reported). */
static config_setting_t *group_list(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                                    const char *key)
{
    config_setting_t *s = cfg_member(g, key);
    if (s && !config_setting_is_list(s) &&
        !(config_setting_is_array(s) && config_setting_length(s) == 0)) {
        cfg_problem(ld, s, "'%s'%s must be a list of groups ( { ... }, ... )", key, sc->owner);
        return NULL;
    }
    return s;
}

/* An array (or list) of non-empty strings at key into *out (n_out entries). Returns the
 * count, 0 when absent, -1 when wrong (reported). */
static int string_array(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                        const char *key, char ***out, int *n_out)
{
    config_setting_t *s = cfg_member(g, key);
    if (!s)
        return 0;
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        cfg_problem(ld, s, "'%s%s'%s must be an array of strings [ \"a\", \"b\" ]", sc->prefix,
                    key, sc->owner);
        return -1;
    }
    int n = config_setting_length(s);
    *out = calloc((size_t) n + 1, sizeof **out);
    if (!*out) {
        ld->oom = true;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
        const char *v = config_setting_get_string(e);
        if (config_setting_type(e) != CONFIG_TYPE_STRING || !v[0]) {
            cfg_problem(ld, e, "'%s%s'%s must be an array of non-empty strings", sc->prefix,
                        key, sc->owner);
            return -1;
        }
        (*out)[(*n_out)++] = cfg_strdup(ld, v);
    }
    return n;
}

static void free_strings(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Compiles a name template only to report its errors at the key's line. */
static void check_name_template(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                                const char *key, const char *text)
{
    char err[256] = "";
    name_template_t *t = name_template_compile(text, err, sizeof err);
    if (!t)
        cfg_problem(ld, cfg_member(g, key), "'%s%s'%s: %s", sc->prefix, key, sc->owner, err);
    name_template_destroy(&t);
}

static char *template_key(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                          const char *key)
{
    const char *v;
    if (cfg_string(ld, sc, g, key, &v) != 1)
        return NULL;
    check_name_template(ld, sc, g, key, v);
    return cfg_strdup(ld, v);
}

static char *field_key(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                       const char *key)
{
    const char *v;
    if (cfg_string(ld, sc, g, key, &v) != 1)
        return NULL;
    if (!name_field_valid(v)) {
        cfg_problem(ld, cfg_member(g, key), "'%s%s'%s: unknown field '%s' (fields: tag, "
                    "master_id, stamp, data, data.<path>)", sc->prefix, key, sc->owner, v);
        return NULL;
    }
    return cfg_strdup(ld, v);
}

/* ---- graphite workers ---- */

static bool valid_prefix(const char *p)
{
    bool component = false;
    for (; *p; p++) {
        if (*p == '.') {
            if (!component)
                return false;
            component = false;
        } else if (isalnum((unsigned char) *p) || strchr("_:-", *p)) {
            component = true;
        } else {
            return false;
        }
    }
    return component;
}

static void load_metric(loader_t *ld, const config_setting_t *g, int idx, const char *label,
                        metric_config_t *m)
{
    char owner[160];
    snprintf(owner, sizeof owner, " in metric #%d of %s", idx + 1, label);
    scope_t sc = { "", owner, owner + 1 };
    m->line = config_setting_source_line(g);
    cfg_check_keys(ld, &sc, g, metric_keys);
    if (!cfg_member(g, "name"))
        cfg_problem(ld, g, "missing key 'name'%s", owner);
    m->name = template_key(ld, &sc, g, "name");
    m->value = field_key(ld, &sc, g, "value");
    m->aggregate = (metric_agg_t) cfg_enum(ld, &sc, g, "aggregate", metric_agg_names,
                                           METRIC_SUM);
    if (!cfg_member(g, "value") && m->aggregate != METRIC_SUM)
        cfg_problem(ld, cfg_member(g, "aggregate"), "'aggregate'%s is '%s' but there is no "
                    "'value' (a metric without a value counts events: sum)", owner,
                    metric_agg_names[m->aggregate]);
}

static void load_rollup(loader_t *ld, const config_setting_t *g, int idx, const char *label,
                        rollup_config_t *r)
{
    char owner[160];
    snprintf(owner, sizeof owner, " in rollup #%d of %s", idx + 1, label);
    scope_t sc = { "", owner, owner + 1 };
    const char *v;
    r->line = config_setting_source_line(g);
    cfg_check_keys(ld, &sc, g, rollup_keys);
    for (int k = 0; k < 2; k++) {
        const char *key = k ? "source" : "target";
        int rc = cfg_string(ld, &sc, g, key, &v);
        if (rc == 0)
            cfg_problem(ld, g, "missing key '%s'%s", key, owner);
        if (rc == 1)
            *(k ? &r->source : &r->target) = cfg_strdup(ld, v);
    }
}

/* Loads a list of groups with one loader per element; returns the count loaded. */
typedef void (*elem_loader_t)(loader_t *, const config_setting_t *, int, const char *, void *);

static int load_list(loader_t *ld, const config_setting_t *list, const char *label,
                     size_t elem_size, void **out, elem_loader_t load)
{
    int n = list ? config_setting_length(list) : 0, loaded = 0;
    if (n == 0)
        return 0;
    char *arr = calloc((size_t) n, elem_size);
    if (!arr) {
        ld->oom = true;
        return 0;
    }
    *out = arr;
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned) i);
        if (!config_setting_is_group(e)) {
            cfg_problem(ld, e, "'%s' #%d in %s must be a group { ... }",
                        config_setting_name(list), i + 1, label);
            continue;
        }
        load(ld, e, i, label, arr + (size_t) loaded++ * elem_size);
    }
    return loaded;
}

static void metric_loader(loader_t *ld, const config_setting_t *g, int i, const char *label,
                          void *m)
{
    load_metric(ld, g, i, label, m);
}

static void rollup_loader(loader_t *ld, const config_setting_t *g, int i, const char *label,
                          void *r)
{
    load_rollup(ld, g, i, label, r);
}

void cfg_load_graphite_worker(loader_t *ld, const config_setting_t *g, const scope_t *sc,
                              worker_config_t *w)
{
    const char *v;
    const char *label = sc->where + 3;   /* "in worker 'x'" -> "worker 'x'" */
    w->flush_interval_s = 10;
    w->udp = cfg_enum(ld, sc, g, "protocol", protocol_names, 0) == 1;
    if (cfg_string(ld, sc, g, "prefix", &v) == 1) {
        if (!valid_prefix(v))
            cfg_problem(ld, cfg_member(g, "prefix"), "'prefix'%s must be components of "
                        "A-Z a-z 0-9 _ : - separated by single dots, got '%s'", sc->owner, v);
        else
            w->prefix = cfg_strdup(ld, v);
    }
    cfg_int_field(ld, sc, g, "flush_interval", 1, 3600, &w->flush_interval_s);
    config_setting_t *list = group_list(ld, sc, g, "metrics");
    w->n_metrics = load_list(ld, list, label, sizeof *w->metrics, (void **) &w->metrics,
                             metric_loader);
    if (list && config_setting_length(list) == 0)
        cfg_problem(ld, list, "'metrics'%s is empty: a graphite worker needs at least one",
                    sc->owner);
    list = group_list(ld, sc, g, "rollups");
    w->n_rollups = load_list(ld, list, label, sizeof *w->rollups, (void **) &w->rollups,
                             rollup_loader);
}

/* ---- redis workers (Event Count Logger counters) ---- */

/* "5s", "5m", "1h", "1d" -> seconds; 0 when malformed. */
static int interval_seconds(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s || n <= 0 || n > 7 * 86400 || !end[0] || end[1] || !isdigit((unsigned char) *s))
        return 0;
    long mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 : 0;
    long secs = n * mult;
    return secs > 0 && secs <= 7 * 86400 ? (int) secs : 0;
}

static void load_intervals(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                           worker_config_t *w)
{
    if (string_array(ld, sc, g, "intervals", &w->interval_names, &w->n_intervals) < 0)
        return;
    config_setting_t *s = cfg_member(g, "intervals");
    if (s && w->n_intervals == 0)
        cfg_problem(ld, s, "'intervals'%s must name at least one interval (\"5m\")", sc->owner);
    w->intervals_s = calloc((size_t) w->n_intervals + 1, sizeof *w->intervals_s);
    if (!w->intervals_s) {
        ld->oom = true;
        return;
    }
    for (int i = 0; i < w->n_intervals; i++) {
        const char *name = w->interval_names[i];
        if (!name || !(w->intervals_s[i] = interval_seconds(name)))
            cfg_problem(ld, s, "interval '%s'%s must be a number and s, m, h or d, between 1s "
                        "and 7d (\"5s\", \"5m\", \"1h\")", name ? name : "", sc->owner);
        for (int j = 0; name && j < i; j++)
            if (w->interval_names[j] && strcmp(w->interval_names[j], name) == 0)
                cfg_problem(ld, s, "interval '%s'%s is listed twice", name, sc->owner);
    }
}

void cfg_load_redis_worker(loader_t *ld, const config_setting_t *g, const scope_t *sc,
                           worker_config_t *w)
{
    const char *v;
    w->auto_declare = true;
    w->sync_interval_ms = 1000;
    w->sync_limit = 1000;
    cfg_int_field(ld, sc, g, "db", 0, 1000, &w->db);
    if (cfg_string(ld, sc, g, "group", &v) == 1) {
        if (strpbrk(v, ": \t\r\n"))
            cfg_problem(ld, cfg_member(g, "group"), "'group'%s must not contain ':' or "
                        "whitespace (it is the first part of the Redis keys), got '%s'",
                        sc->owner, v);
        else
            w->group = cfg_strdup(ld, v);
    }
    load_intervals(ld, sc, g, w);
    w->counter = template_key(ld, sc, g, "counter");
    string_array(ld, sc, g, "events", &w->events, &w->n_events);
    cfg_bool(ld, sc, g, "auto_declare", &w->auto_declare);
    cfg_int_field(ld, sc, g, "sync_interval_ms", 10, MS_MAX, &w->sync_interval_ms);
    cfg_int_field(ld, sc, g, "sync_limit", 1, 10000000, &w->sync_limit);
}

/* ---- fingerprint and free ---- */

static void fp_text(FILE *f, const char *key, const char *v)
{
    if (v)
        fprintf(f, "%s=%zu:%s;", key, strlen(v), v);
    else
        fprintf(f, "%s=-;", key);
}

void cfg_fingerprint_metrics(FILE *f, const worker_config_t *w)
{
    fprintf(f, "udp=%d;flush_interval=%d;db=%d;auto_declare=%d;sync_interval_ms=%d;"
               "sync_limit=%d;", w->udp, w->flush_interval_s, w->db, w->auto_declare,
            w->sync_interval_ms, w->sync_limit);
    fp_text(f, "prefix", w->prefix);
    fp_text(f, "group", w->group);
    fp_text(f, "counter", w->counter);
    for (int i = 0; i < w->n_metrics; i++) {
        fp_text(f, "metric.name", w->metrics[i].name);
        fp_text(f, "metric.value", w->metrics[i].value);
        fprintf(f, "metric.aggregate=%d;", (int) w->metrics[i].aggregate);
    }
    for (int i = 0; i < w->n_rollups; i++) {
        fp_text(f, "rollup.target", w->rollups[i].target);
        fp_text(f, "rollup.source", w->rollups[i].source);
    }
    for (int i = 0; i < w->n_intervals; i++)
        fp_text(f, "interval", w->interval_names[i]);
    for (int i = 0; i < w->n_events; i++)
        fp_text(f, "event", w->events[i]);
}

void cfg_free_metrics_worker(worker_config_t *w)
{
    free(w->prefix);
    for (int i = 0; i < w->n_metrics; i++) {
        free(w->metrics[i].name);
        free(w->metrics[i].value);
    }
    free(w->metrics);
    for (int i = 0; i < w->n_rollups; i++) {
        free(w->rollups[i].target);
        free(w->rollups[i].source);
    }
    free(w->rollups);
    free(w->group);
    free(w->intervals_s);
    free_strings(w->interval_names, w->n_intervals);
    free(w->counter);
    free_strings(w->events, w->n_events);
}

/* ---- throttles ---- */

throttle_config_t *cfg_load_throttle(loader_t *ld, const config_setting_t *rule,
                                     const scope_t *sc)
{
    char owner[64];
    snprintf(owner, sizeof owner, "%s", sc->owner);
    scope_t tsc = { "throttle.", owner, "" };
    config_setting_t *g = cfg_group(ld, sc, rule, "throttle");
    if (!g)
        return NULL;
    char where[80];
    snprintf(where, sizeof where, "in 'throttle'%s", owner);
    tsc.where = where;
    throttle_config_t *t = calloc(1, sizeof *t);
    if (!t) {
        ld->oom = true;
        return NULL;
    }
    *t = (throttle_config_t){ .timeframe_s = 60, .min_count = 1, .max_count = 1,
                              .line = config_setting_source_line(g) };
    cfg_check_keys(ld, &tsc, g, throttle_keys);
    if (!cfg_member(g, "key"))
        cfg_problem(ld, g, "missing key 'key' %s", where);
    t->key = template_key(ld, &tsc, g, "key");
    cfg_int_field(ld, &tsc, g, "timeframe", 1, 86400, &t->timeframe_s);
    int min_ok = cfg_int(ld, &tsc, g, "min_count", 1, 1LL << 40, &t->min_count);
    /* Without max_count an event passes once per window: at exactly min_count. */
    t->max_count = t->min_count;
    int max_ok = cfg_int(ld, &tsc, g, "max_count", 1, 1LL << 40, &t->max_count);
    if (min_ok >= 0 && max_ok == 1 && t->max_count < t->min_count)
        cfg_problem(ld, cfg_member(g, "max_count"), "'throttle.max_count'%s (%lld) must be >= "
                    "'throttle.min_count' (%lld)", owner, t->max_count, t->min_count);
    cfg_bool(ld, &tsc, g, "shared", &t->shared);
    return t;
}

/* ---- top level: redis, statistics ---- */

void cfg_load_redis(loader_t *ld, const config_setting_t *root)
{
    static const scope_t top = { "", "", "at top level" };
    static const scope_t sc = { "redis.", "", "in 'redis'" };
    redis_config_t *r = &ld->cfg->redis;
    const char *v;
    *r = (redis_config_t){ .port = 6379, .timeout_ms = 1000 };
    config_setting_t *g = cfg_group(ld, &top, root, "redis");
    if (g) {
        r->line = config_setting_source_line(g);
        cfg_check_keys(ld, &sc, g, redis_keys);
        cfg_int_field(ld, &sc, g, "port", 1, 65535, &r->port);
        cfg_int_field(ld, &sc, g, "db", 0, 1000, &r->db);
        /* Shared throttles call Redis from the master's loop: it must not wait longer. */
        cfg_int_field(ld, &sc, g, "timeout_ms", 10, 1000, &r->timeout_ms);
        if (cfg_string(ld, &sc, g, "password", &v) == 1)
            r->password = cfg_strdup(ld, v);
    }
    r->host = cfg_strdup(ld, g && cfg_string(ld, &sc, g, "host", &v) == 1 ? v : "127.0.0.1");
    for (int i = 0; i < ld->cfg->n_rules; i++) {
        const throttle_config_t *t = ld->cfg->rules[i].throttle;
        if (t && t->shared && !g)
            cfg_problem_add(ld, ld->cfg->path, t->line,
                            cfg_fmt(ld, "'throttle.shared' in rule #%d needs a top-level "
                                    "'redis' group (host, port, ...)", i + 1));
    }
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= WORKER_NAME_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static void load_statistic(loader_t *ld, const config_setting_t *g, int idx, const char *label,
                           void *out)
{
    statistic_config_t *st = out;
    char owner[48];
    snprintf(owner, sizeof owner, " in statistics #%d", idx + 1);
    scope_t sc = { "", owner, owner + 1 };
    const char *v;
    (void) label;
    *st = (statistic_config_t){ .interval_s = 60, .max_values = 100,
                                .line = config_setting_source_line(g) };
    cfg_check_keys(ld, &sc, g, statistic_keys);
    int rc = cfg_string(ld, &sc, g, "name", &v);
    if (rc == 0)
        cfg_problem(ld, g, "missing key 'name'%s", owner);
    else if (rc == 1 && !valid_name(v))
        cfg_problem(ld, cfg_member(g, "name"), "invalid statistics name '%s' (use 1 to %d of "
                    "A-Z a-z 0-9 _ -)", v, WORKER_NAME_MAX);
    else if (rc == 1)
        st->name = cfg_strdup(ld, v);
    if (cfg_string(ld, &sc, g, "tag", &v) == 1)
        st->tag = cfg_strdup(ld, v);
    st->tag_line = cfg_line(g, "tag");
    if (string_array(ld, &sc, g, "fields", &st->fields, &st->n_fields) == 0)
        cfg_problem(ld, cfg_member(g, "fields") ? cfg_member(g, "fields") : g,
                    "'fields'%s must name at least one field (\"data.fun\")", owner);
    for (int i = 0; i < st->n_fields; i++)
        if (st->fields[i] && !name_field_valid(st->fields[i]))
            cfg_problem(ld, cfg_member(g, "fields"), "'fields'%s: unknown field '%s' (fields: "
                        "tag, master_id, stamp, data, data.<path>)", owner, st->fields[i]);
    cfg_int_field(ld, &sc, g, "interval", 1, 86400, &st->interval_s);
    cfg_int_field(ld, &sc, g, "max_values", 1, 100000, &st->max_values);
}

void cfg_load_statistics(loader_t *ld, const config_setting_t *root)
{
    static const scope_t top = { "", "", "at top level" };
    eventsd_config_t *c = ld->cfg;
    config_setting_t *list = group_list(ld, &top, root, "statistics");
    c->n_statistics = load_list(ld, list, "statistics", sizeof *c->statistics,
                                (void **) &c->statistics, load_statistic);
    for (int i = 1; i < c->n_statistics; i++)
        for (int j = 0; j < i; j++)
            if (c->statistics[i].name && c->statistics[j].name &&
                strcmp(c->statistics[i].name, c->statistics[j].name) == 0)
                cfg_problem_add(ld, c->path, c->statistics[i].line,
                                cfg_fmt(ld, "duplicate statistics name '%s' (first defined at "
                                        "line %d)", c->statistics[i].name,
                                        c->statistics[j].line));
}

void cfg_free_metrics(eventsd_config_t *c)
{
    for (int i = 0; i < c->n_rules; i++) {
        if (c->rules[i].throttle)
            free(c->rules[i].throttle->key);
        free(c->rules[i].throttle);
    }
    for (int i = 0; i < c->n_statistics; i++) {
        free(c->statistics[i].name);
        free(c->statistics[i].tag);
        free_strings(c->statistics[i].fields, c->statistics[i].n_fields);
    }
    free(c->statistics);
    free(c->redis.host);
    free(c->redis.password);
}
