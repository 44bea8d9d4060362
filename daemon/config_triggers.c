/* config_triggers: the job-tracking side of the one config loader (issue 7): trigger
 * workers, top-level `triggers` and `pipelines` (see config.h for each key). Checks with
 * FILE:LINE: unknown keys, conditions and durations that do not parse, pipelines and triggers
 * that do not exist, a trigger run by no worker or by two. Tag patterns are compiled by the
 * trigger engine (it reports their offsets), name templates here.
 * Owns: the strings and arrays it puts into the config (freed by cfg_free_triggers). */
#include "config_loader.h"
#include "name_template.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const trigger_keys[] = {
    "name", "match", "distinguished_by", "fire", "all_expected", "expected_tag",
    "expected_field", "returned_tag", "returned_field", "expire", "fire_delay",
    "fire_pipeline", "expire_pipeline", NULL
};
static const char *const match_keys[] = { "tag", "where", "count", NULL };
static const char *const pipeline_keys[] = { "name", "handlers", NULL };
static const char *const handler_type_names[] = { "sql", "graphite", "counter", "emit", "log",
                                                  NULL };
static const char *const handler_own_keys[] = { "type", "missing_template", NULL };
static const char *const emit_keys[] = { "type", "tag", NULL };
static const char *const log_keys[] = { "type", "message", NULL };

/* ---- small pieces ---- */

int cfg_parse_duration(const char *s)
{
    char *end;
    while (isspace((unsigned char) *s))
        s++;
    if (!isdigit((unsigned char) *s))
        return -1;
    long n = strtol(s, &end, 10);
    long mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 : 0;
    if (!mult || n > 366L * 86400 / mult)
        return -1;
    for (end++; isspace((unsigned char) *end); end++)
        ;
    return *end ? -1 : (int) (n * mult);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= WORKER_NAME_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* An array of non-empty strings; returns the count or -1 (reported). */
static int strings(loader_t *ld, const config_setting_t *g, const char *key, const char *owner,
                   char ***out)
{
    config_setting_t *s = cfg_member(g, key);
    if (!s)
        return 0;
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        cfg_problem(ld, s, "'%s'%s must be an array of strings [ \"a\", \"b\" ]", key, owner);
        return -1;
    }
    int n = config_setting_length(s);
    if (!(*out = calloc((size_t) n + 1, sizeof **out))) {
        ld->oom = true;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
        const char *v = config_setting_get_string(e);
        if (config_setting_type(e) != CONFIG_TYPE_STRING || !v[0]) {
            cfg_problem(ld, e, "'%s'%s must be an array of non-empty strings", key, owner);
            return i;
        }
        (*out)[i] = cfg_strdup(ld, v);
    }
    return n;
}

static void free_strings(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static char *string_key(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                        const char *key, const char *def)
{
    const char *v;
    return cfg_strdup(ld, cfg_string(ld, sc, g, key, &v) == 1 ? v : def);
}

/* ---- trigger workers ---- */

void cfg_load_trigger_worker(loader_t *ld, const config_setting_t *g, const scope_t *sc,
                             worker_config_t *w)
{
    const char *v;
    if (cfg_string(ld, sc, g, "state", &v) == 1)
        w->state = cfg_resolve_path(ld, ld->conf_dir, v);
    w->n_triggers = strings(ld, g, "triggers", sc->owner, &w->triggers);
    if (w->n_triggers < 0)
        w->n_triggers = 0;
    else if (w->n_triggers == 0 && cfg_member(g, "triggers"))
        cfg_problem(ld, cfg_member(g, "triggers"), "'triggers'%s must name at least one trigger",
                    sc->owner);
    cfg_int_field(ld, sc, g, "max_streams", 1, 10000000, &w->max_streams);
    if (w->processes > 1)
        cfg_problem(ld, cfg_member(g, "processes"), "'processes'%s must be 1: a trigger worker "
                    "owns its streams", sc->owner);
}

/* ---- conditions and event criteria ---- */

static const struct { const char *text; cond_op_t op; } cond_ops[] = {
    { "==", COND_EQ }, { "!=", COND_NE }, { "<=", COND_LE }, { ">=", COND_GE },
    { "=~", COND_MATCH }, { "!~", COND_NOMATCH }, { "<", COND_LT }, { ">", COND_GT },
};

/* "FIELD OP VALUE" or "FIELD exists"; 0 or -1 with why. */
static int parse_condition(loader_t *ld, const char *text, condition_config_t *c,
                           const char **why)
{
    const char *sp = strchr(text, ' ');
    if (!sp) {
        *why = "expected 'FIELD OP VALUE' or 'FIELD exists'";
        return -1;
    }
    char *field = strndup(text, (size_t) (sp - text));
    if (!field) {
        ld->oom = true;
        return -1;
    }
    c->field = field;
    if (!name_field_valid(field)) {
        *why = "unknown field (fields: tag, master_id, stamp, data, data.<path>)";
        return -1;
    }
    const char *rest = sp + strspn(sp, " ");
    if (strcmp(rest, "exists") == 0) {
        c->op = COND_EXISTS;
        return 0;
    }
    for (size_t i = 0; i < sizeof cond_ops / sizeof *cond_ops; i++) {
        size_t n = strlen(cond_ops[i].text);
        if (strncmp(rest, cond_ops[i].text, n) == 0 && rest[n] == ' ' && rest[n + 1]) {
            c->op = cond_ops[i].op;
            c->value = cfg_strdup(ld, rest + n + 1 + strspn(rest + n + 1, " "));
            return 0;
        }
    }
    *why = "expected an operator == != < <= > >= =~ !~ or exists, then a value";
    return -1;
}

static void load_event_match(loader_t *ld, const config_setting_t *g, const char *owner,
                             bool with_count, event_match_config_t *m)
{
    scope_t sc = { "", owner, owner + 1 };
    const char *v;
    m->line = config_setting_source_line(g);
    m->count = 1;
    cfg_check_keys(ld, &sc, g, with_count ? match_keys : (const char *const[]){ "tag", "where",
                                                                                NULL });
    int rc = cfg_string(ld, &sc, g, "tag", &v);
    if (rc == 0)
        cfg_problem(ld, g, "missing key 'tag'%s", owner);
    if (rc == 1)
        m->tag = cfg_strdup(ld, v);
    char **where = NULL;
    int n = strings(ld, g, "where", owner, &where);
    if (n > 0 && !(m->where = calloc((size_t) n, sizeof *m->where)))
        ld->oom = true;
    for (int i = 0; m->where && i < n && where[i]; i++) {
        const char *why = NULL;
        if (parse_condition(ld, where[i], &m->where[m->n_where++], &why) < 0 && why)
            cfg_problem(ld, cfg_member(g, "where"), "condition '%s'%s: %s", where[i], owner, why);
    }
    free_strings(where, n > 0 ? n : 0);
    if (with_count)
        cfg_int_field(ld, &sc, g, "count", 1, 1000000000, &m->count);
}

/* A list of { tag; where; [count]; } groups. */
static int load_matches(loader_t *ld, const config_setting_t *g, const char *key,
                        const char *trigger, bool with_count, event_match_config_t **out)
{
    config_setting_t *list = cfg_member(g, key);
    if (!list)
        return 0;
    if (!config_setting_is_list(list)) {
        cfg_problem(ld, list, "'%s' in trigger '%s' must be a list of groups ( { tag = ...; } )",
                    key, trigger);
        return 0;
    }
    int n = config_setting_length(list);
    if (n == 0 || !(*out = calloc((size_t) n, sizeof **out))) {
        ld->oom |= n > 0;
        return 0;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned) i);
        char owner[160];
        snprintf(owner, sizeof owner, " in %s #%d of trigger '%s'", key, i + 1, trigger);
        if (!config_setting_is_group(e))
            cfg_problem(ld, e, "'%s' #%d of trigger '%s' must be a group { tag = ...; }", key,
                        i + 1, trigger);
        else
            load_event_match(ld, e, owner, with_count, &(*out)[i]);
    }
    return n;
}

static void free_matches(event_match_config_t *m, int n)
{
    for (int i = 0; m && i < n; i++) {
        free(m[i].tag);
        for (int j = 0; j < m[i].n_where; j++) {
            free(m[i].where[j].field);
            free(m[i].where[j].value);
        }
        free(m[i].where);
    }
    free(m);
}

/* ---- triggers ---- */

static bool valid_key_field(const char *f)
{
    const char *bar = strchr(f, '|');
    if (!bar)
        return name_field_valid(f);
    char *field = strndup(f, (size_t) (bar - f));
    bool ok = field && name_field_valid(field) &&
              (strcmp(bar, "|day") == 0 || strcmp(bar, "|hour") == 0);
    free(field);
    return ok;
}

static void load_expire(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                        trigger_config_t *t)
{
    const char *v;
    int rc = cfg_string(ld, sc, g, "expire", &v);
    if (rc == 0)
        cfg_problem(ld, g, "missing key 'expire'%s (\"first + 15m\" or \"last + 1h\")",
                    sc->owner);
    if (rc != 1)
        return;
    const char *plus = strchr(v, '+');
    size_t base = plus ? (size_t) (plus - v) : 0;
    while (base && v[base - 1] == ' ')
        base--;
    bool first = base == 5 && strncmp(v, "first", 5) == 0;
    bool last = base == 4 && strncmp(v, "last", 4) == 0;
    int secs = plus ? cfg_parse_duration(plus + 1) : -1;
    if ((!first && !last) || secs <= 0) {
        cfg_problem(ld, cfg_member(g, "expire"), "'expire'%s must be \"first + DURATION\" or "
                    "\"last + DURATION\" (DURATION: 30s, 15m, 1h, 1d; at most 366d), got '%s'",
                    sc->owner, v);
        return;
    }
    t->expire_from = first ? EXPIRE_FROM_FIRST : EXPIRE_FROM_LAST;
    t->expire_s = secs;
}

static void load_trigger_fields(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                                trigger_config_t *t)
{
    const char *v;
    cfg_bool(ld, sc, g, "all_expected", &t->all_expected);
    t->expected_tag = string_key(ld, sc, g, "expected_tag", "^salt/job/[0-9]+/new$");
    t->expected_field = string_key(ld, sc, g, "expected_field", "data.minions");
    t->returned_tag = string_key(ld, sc, g, "returned_tag", "^salt/job/[0-9]+/ret/");
    t->returned_field = string_key(ld, sc, g, "returned_field", "data.id");
    for (int k = 0; k < 2; k++) {
        const char *key = k ? "returned_field" : "expected_field";
        const char *f = k ? t->returned_field : t->expected_field;
        if (f && !name_field_valid(f))
            cfg_problem(ld, cfg_member(g, key), "'%s'%s: unknown field '%s'", key, sc->owner, f);
    }
    if (cfg_string(ld, sc, g, "fire_delay", &v) == 1 && (t->fire_delay_s = cfg_parse_duration(v)) < 0)
        cfg_problem(ld, cfg_member(g, "fire_delay"), "'fire_delay'%s must be a duration (30s, "
                    "15m, 1h, 1d), got '%s'", sc->owner, v);
    if (t->fire_delay_s < 0)
        t->fire_delay_s = 0;
    load_expire(ld, sc, g, t);
}

static void load_trigger_pipelines(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                                   trigger_config_t *t)
{
    for (int k = 0; k < 2; k++) {
        const char *key = k ? "expire_pipeline" : "fire_pipeline";
        const char *v;
        if (cfg_string(ld, sc, g, key, &v) != 1)
            continue;
        if (!config_pipeline(ld->cfg, v))
            cfg_problem(ld, cfg_member(g, key), "'%s'%s names unknown pipeline '%s'", key,
                        sc->owner, v);
        *(k ? &t->expire_pipeline : &t->fire_pipeline) = cfg_strdup(ld, v);
    }
    if (!cfg_member(g, "fire_pipeline") && !cfg_member(g, "expire_pipeline"))
        cfg_problem(ld, g, "trigger%s has neither 'fire_pipeline' nor 'expire_pipeline'",
                    sc->owner);
}

static void load_trigger(loader_t *ld, const config_setting_t *g, int idx, trigger_config_t *t)
{
    char owner[96] = "", where[96];
    const char *v;
    t->line = config_setting_source_line(g);
    int rc = cfg_string(ld, &(scope_t){ "", "", "" }, g, "name", &v);
    if (rc == 1 && valid_name(v))
        t->name = cfg_strdup(ld, v);
    else if (rc == 1)
        cfg_problem(ld, cfg_member(g, "name"), "invalid trigger name '%s' (use 1 to %d of "
                    "A-Z a-z 0-9 _ -)", v, WORKER_NAME_MAX);
    else if (rc == 0)
        cfg_problem(ld, g, "missing key 'name' in trigger #%d", idx + 1);
    snprintf(owner, sizeof owner, " in trigger '%s'", t->name ? t->name : "?");
    snprintf(where, sizeof where, "in trigger '%s'", t->name ? t->name : "?");
    scope_t sc = { "", owner, where };
    cfg_check_keys(ld, &sc, g, trigger_keys);
    const char *label = t->name ? t->name : "?";
    t->n_match = load_matches(ld, g, "match", label, false, &t->match);
    if (t->n_match == 0)
        cfg_problem(ld, g, "trigger '%s' needs 'match': a list of { tag = ...; } groups", label);
    t->n_fire = load_matches(ld, g, "fire", label, true, &t->fire);
    int n = strings(ld, g, "distinguished_by", owner, &t->distinguished_by);
    t->n_distinguished_by = n > 0 ? n : 0;
    if (n == 0)
        cfg_problem(ld, g, "trigger '%s' needs 'distinguished_by' (fields such as \"data.jid\")",
                    label);
    for (int i = 0; i < t->n_distinguished_by; i++)
        if (t->distinguished_by[i] && !valid_key_field(t->distinguished_by[i]))
            cfg_problem(ld, cfg_member(g, "distinguished_by"), "'distinguished_by'%s: '%s' is "
                        "not a field, or a field|day or field|hour bucket", owner,
                        t->distinguished_by[i]);
    load_trigger_fields(ld, &sc, g, t);
    if (t->n_fire == 0 && !t->all_expected && t->fire_pipeline)
        cfg_problem(ld, g, "trigger '%s' has a fire_pipeline but no 'fire' criteria and no "
                    "all_expected: it would fire at its first event", label);
    load_trigger_pipelines(ld, &sc, g, t);
}

/* Every trigger is run by exactly one trigger worker, and workers name real triggers. */
static void check_trigger_workers(loader_t *ld)
{
    eventsd_config_t *c = ld->cfg;
    for (int t = 0; t < c->n_triggers; t++) {
        const char *name = c->trigger_cfgs[t].name;
        int runs = 0;
        for (int w = 0; name && w < c->n_workers; w++)
            for (int i = 0; i < c->workers[w].n_triggers; i++)
                runs += c->workers[w].triggers[i] && strcmp(c->workers[w].triggers[i], name) == 0;
        if (name && runs != 1)
            cfg_problem_add(ld, c->path, c->trigger_cfgs[t].line,
                            cfg_fmt(ld, "trigger '%s' is run by %d trigger workers (it must be "
                                    "named in the 'triggers' of exactly one)", name, runs));
    }
    for (int w = 0; w < c->n_workers; w++)
        for (int i = 0; i < c->workers[w].n_triggers; i++)
            if (c->workers[w].triggers[i] && !config_trigger(c, c->workers[w].triggers[i]))
                cfg_problem_add(ld, c->workers[w].file ? c->workers[w].file : c->path,
                                c->workers[w].line,
                                cfg_fmt(ld, "worker '%s' names unknown trigger '%s'",
                                        c->workers[w].name ? c->workers[w].name : "?",
                                        c->workers[w].triggers[i]));
}

void cfg_load_triggers(loader_t *ld, const config_setting_t *root)
{
    eventsd_config_t *c = ld->cfg;
    config_setting_t *list = cfg_member(root, "triggers");
    int n = list && config_setting_is_list(list) ? config_setting_length(list) : 0;
    if (list && !config_setting_is_list(list))
        cfg_problem(ld, list, "'triggers' must be a list of groups ( { ... }, ... )");
    if (n && !(c->trigger_cfgs = calloc((size_t) n, sizeof *c->trigger_cfgs)))
        ld->oom = true;
    for (int i = 0; c->trigger_cfgs && i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned) i);
        if (!config_setting_is_group(g)) {
            cfg_problem(ld, g, "trigger #%d must be a group { name = ...; }", i + 1);
            continue;
        }
        load_trigger(ld, g, i, &c->trigger_cfgs[c->n_triggers++]);
        for (int j = 0; j < c->n_triggers - 1; j++)
            if (c->trigger_cfgs[j].name && c->trigger_cfgs[i].name &&
                strcmp(c->trigger_cfgs[j].name, c->trigger_cfgs[c->n_triggers - 1].name) == 0)
                cfg_problem(ld, g, "duplicate trigger name '%s' (first defined at line %d)",
                            c->trigger_cfgs[j].name, c->trigger_cfgs[j].line);
    }
    check_trigger_workers(ld);
}

/* ---- pipelines ---- */

static void load_handler(loader_t *ld, const config_setting_t *g, const char *pipeline, int idx,
                         handler_config_t *h)
{
    char label[160], name[160];
    snprintf(label, sizeof label, "handler #%d of pipeline '%s'", idx + 1, pipeline);
    snprintf(name, sizeof name, "%s.%d", pipeline, idx + 1);
    char owner[176];
    snprintf(owner, sizeof owner, " in %s", label);
    scope_t sc = { "", owner, owner + 1 };
    h->line = config_setting_source_line(g);
    int type = cfg_enum(ld, &sc, g, "type", handler_type_names, -1);
    if (!cfg_member(g, "type"))
        cfg_problem(ld, g, "missing key 'type'%s (sql, graphite, counter, emit or log)", owner);
    if (type < 0)
        return;
    h->type = (handler_type_t) type;
    if (h->type == HANDLER_EMIT || h->type == HANDLER_LOG) {
        cfg_check_keys(ld, &sc, g, h->type == HANDLER_EMIT ? emit_keys : log_keys);
        const char *key = h->type == HANDLER_EMIT ? "tag" : "message";
        char *text = NULL;
        const char *v;
        if (cfg_string(ld, &sc, g, key, &v) == 1) {
            char err[256] = "";
            name_template_t *t = name_template_compile(v, err, sizeof err);
            if (!t)
                cfg_problem(ld, cfg_member(g, key), "'%s'%s: %s", key, owner, err);
            name_template_destroy(&t);
            text = cfg_strdup(ld, v);
        } else if (h->type == HANDLER_EMIT) {
            cfg_problem(ld, g, "missing key 'tag'%s (e.g. \"eventsd/job/{data.jid}/complete\")",
                        owner);
        }
        *(h->type == HANDLER_EMIT ? &h->tag : &h->message) = text;
        return;
    }
    if (!(h->sink = calloc(1, sizeof *h->sink))) {
        ld->oom = true;
        return;
    }
    cfg_load_handler_sink(ld, g, name, label, h->sink, handler_own_keys);
    const char *want = h->type == HANDLER_GRAPHITE ? "graphite"
                     : h->type == HANDLER_COUNTER ? "redis" : NULL;
    const char *s = h->sink->sink;
    if (s && want && strcmp(s, want) != 0)
        cfg_problem(ld, cfg_member(g, "sink"), "%s is of type '%s': its sink must be '%s'",
                    label, handler_type_names[type], want);
    if (s && !want && strcmp(s, "sqlite") && strcmp(s, "pgsql") && strcmp(s, "mysql"))
        cfg_problem(ld, cfg_member(g, "sink"), "%s is of type 'sql': its sink must be sqlite, "
                    "pgsql or mysql", label);
    const char *v;
    if (cfg_string(ld, &sc, g, "missing_template", &v) == 1) {
        if (h->type != HANDLER_SQL)
            cfg_problem(ld, cfg_member(g, "missing_template"), "'missing_template'%s applies "
                        "to sql handlers only", owner);
        h->missing_template = cfg_resolve_path(ld, ld->cfg->sql_dir ? ld->cfg->sql_dir
                                                                    : ld->conf_dir, v);
    }
}

static void load_pipeline(loader_t *ld, const config_setting_t *g, int idx, pipeline_config_t *p)
{
    const char *v;
    p->line = config_setting_source_line(g);
    int rc = cfg_string(ld, &(scope_t){ "", "", "" }, g, "name", &v);
    if (rc == 1 && valid_name(v))
        p->name = cfg_strdup(ld, v);
    else if (rc == 1)
        cfg_problem(ld, cfg_member(g, "name"), "invalid pipeline name '%s'", v);
    else if (rc == 0)
        cfg_problem(ld, g, "missing key 'name' in pipeline #%d", idx + 1);
    char owner[96];
    snprintf(owner, sizeof owner, " in pipeline '%s'", p->name ? p->name : "?");
    cfg_check_keys(ld, &(scope_t){ "", owner, owner + 1 }, g, pipeline_keys);
    config_setting_t *list = cfg_member(g, "handlers");
    int n = list && config_setting_is_list(list) ? config_setting_length(list) : 0;
    if (n == 0) {
        cfg_problem(ld, list ? list : g, "pipeline '%s' needs 'handlers': a list of groups "
                    "( { type = \"sql\"; ... } )", p->name ? p->name : "?");
        return;
    }
    if (!(p->handlers = calloc((size_t) n, sizeof *p->handlers))) {
        ld->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned) i);
        if (!config_setting_is_group(e))
            cfg_problem(ld, e, "handler #%d of pipeline '%s' must be a group { type = ...; }",
                        i + 1, p->name ? p->name : "?");
        else
            load_handler(ld, e, p->name ? p->name : "?", i, &p->handlers[p->n_handlers++]);
    }
}

void cfg_load_pipelines(loader_t *ld, const config_setting_t *root)
{
    eventsd_config_t *c = ld->cfg;
    config_setting_t *list = cfg_member(root, "pipelines");
    int n = list && config_setting_is_list(list) ? config_setting_length(list) : 0;
    if (list && !config_setting_is_list(list))
        cfg_problem(ld, list, "'pipelines' must be a list of groups ( { ... }, ... )");
    if (n && !(c->pipelines = calloc((size_t) n, sizeof *c->pipelines)))
        ld->oom = true;
    for (int i = 0; c->pipelines && i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned) i);
        if (!config_setting_is_group(g)) {
            cfg_problem(ld, g, "pipeline #%d must be a group { name = ...; handlers = ...; }",
                        i + 1);
            continue;
        }
        pipeline_config_t *p = &c->pipelines[c->n_pipelines++];
        load_pipeline(ld, g, i, p);
        for (int j = 0; j < c->n_pipelines - 1; j++)
            if (p->name && c->pipelines[j].name && strcmp(p->name, c->pipelines[j].name) == 0)
                cfg_problem(ld, g, "duplicate pipeline name '%s' (first defined at line %d)",
                            p->name, c->pipelines[j].line);
    }
}

/* ---- queries and free ---- */

const trigger_config_t *config_trigger(const eventsd_config_t *self, const char *name)
{
    for (int i = 0; self && name && i < self->n_triggers; i++)
        if (self->trigger_cfgs[i].name && strcmp(self->trigger_cfgs[i].name, name) == 0)
            return &self->trigger_cfgs[i];
    return NULL;
}

const pipeline_config_t *config_pipeline(const eventsd_config_t *self, const char *name)
{
    for (int i = 0; self && name && i < self->n_pipelines; i++)
        if (self->pipelines[i].name && strcmp(self->pipelines[i].name, name) == 0)
            return &self->pipelines[i];
    return NULL;
}

void cfg_free_triggers(eventsd_config_t *c)
{
    for (int i = 0; i < c->n_triggers; i++) {
        trigger_config_t *t = &c->trigger_cfgs[i];
        free(t->name);
        free_matches(t->match, t->n_match);
        free_matches(t->fire, t->n_fire);
        free_strings(t->distinguished_by, t->n_distinguished_by);
        free(t->expected_tag);
        free(t->expected_field);
        free(t->returned_tag);
        free(t->returned_field);
        free(t->fire_pipeline);
        free(t->expire_pipeline);
    }
    free(c->trigger_cfgs);
    for (int i = 0; i < c->n_pipelines; i++) {
        pipeline_config_t *p = &c->pipelines[i];
        for (int j = 0; j < p->n_handlers; j++) {
            handler_config_t *h = &p->handlers[j];
            if (h->sink)
                cfg_free_worker(h->sink);
            free(h->sink);
            free(h->missing_template);
            free(h->tag);
            free(h->message);
        }
        free(p->handlers);
        free(p->name);
    }
    free(c->pipelines);
}
