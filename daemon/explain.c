/* explain: see explain.h. */
#include "explain.h"
#include "json_msgpack.h"
#include "name_template.h"
#include "payload.h"
#include "rules.h"
#include "sink.h"
#include "worker_event.h"

#include <stdlib.h>
#include <string.h>

static void print_rule(const eventsd_config_t *cfg, int i, const rule_explain_t *x, FILE *out)
{
    const rule_config_t *r = &cfg->rules[i];
    fprintf(out, "rule #%d (%s:%d) tag '%s'", i + 1, cfg->path, r->line, r->tag);
    if (r->fun)
        fprintf(out, " fun '%s'", r->fun);
    fprintf(out, ":\n");
    if (!x->tag_matched) {
        fprintf(out, "    no: the tag does not match\n");
        return;
    }
    if (x->has_fun && !x->fun_matched) {
        if (x->fun[0])
            fprintf(out, "    no: fun '%s' does not match\n", x->fun);
        else
            fprintf(out, "    no: the event has no fun (data.fun or data.data.fun)\n");
        return;
    }
    if (x->has_throttle) {
        const throttle_config_t *t = r->throttle;
        fprintf(out, "    throttle key '%s' (%s): %llu in the current %d s window, allowed "
                "%lld..%lld: the next event %s\n", x->throttle_key,
                t->shared ? "shared in redis" : "this process",
                (unsigned long long) x->throttle_count, t->timeframe_s, t->min_count,
                t->max_count, x->throttle_passes ? "passes" : "is held back");
        if (!x->throttle_passes)
            return;
    }
    fprintf(out, "    yes: to");
    for (int w = 0; w < r->n_workers; w++)
        fprintf(out, " %s", r->workers[w]);
    fprintf(out, "%s\n", r->priority ? " (priority)" : "");
}

static void print_worker(const eventsd_config_t *cfg, int i, bool priority,
                         const worker_event_t *ev, FILE *out)
{
    const worker_config_t *w = &cfg->workers[i];
    fprintf(out, "worker '%s' (sink %s%s):\n", w->name, w->sink, priority ? ", priority" : "");
    if (w->template_path)
        fprintf(out, "    template %s\n", w->template_path);
    const sink_ops_t *ops = sink_lookup(w->sink);
    if (ops && ops->explain)
        ops->explain(w, cfg->master_id, ev, out);
}

static void print_statistics(const eventsd_config_t *cfg, const worker_event_t *ev, FILE *out)
{
    for (int i = 0; i < cfg->n_statistics; i++) {
        const statistic_config_t *st = &cfg->statistics[i];
        fprintf(out, "statistics '%s'%s%s%s: fields", st->name, st->tag ? " (tag '" : "",
                st->tag ? st->tag : "", st->tag ? "', if it matches)" : "");
        for (int f = 0; f < st->n_fields; f++) {
            msgpack_object v;
            msgpack_sbuffer text;
            msgpack_sbuffer_init(&text);
            bool found = name_field_lookup(st->fields[f], ev->tag, ev->tag_len,
                                           ev->data ? payload_root(ev->data) : NULL,
                                           cfg->master_id, &v) &&
                         payload_to_text(&v, &text) == 0;
            fprintf(out, " %s=%s%.*s%s", st->fields[f], found ? "'" : "", found ? (int) text.size : 9,
                    found ? text.data : "(missing)", found ? "'" : "");
            msgpack_sbuffer_destroy(&text);
        }
        fprintf(out, "\n");
    }
}

static int explain_rules(const eventsd_config_t *cfg, rules_t *rules, const worker_event_t *ev,
                         const msgpack_sbuffer *payload, FILE *out, char *err, size_t errlen)
{
    rule_explain_t *x = calloc((size_t) cfg->n_rules + 1, sizeof *x);
    uint8_t *targets = calloc((size_t) cfg->n_workers + 1, 1);
    if (!x || !targets ||
        rules_explain(rules, ev->tag, ev->tag_len, payload->data, payload->size, x) < 0) {
        snprintf(err, errlen, "out of memory");
        free(x);
        free(targets);
        return 1;
    }
    for (int i = 0; i < cfg->n_rules; i++) {
        print_rule(cfg, i, &x[i], out);
        if (!x[i].selected || (x[i].has_throttle && !x[i].throttle_passes))
            continue;
        for (int w = 0; w < cfg->rules[i].n_workers; w++) {
            int k = config_worker_index(cfg, cfg->rules[i].workers[w]);
            targets[k] |= RULES_DELIVER | (cfg->rules[i].priority ? RULES_PRIORITY : 0);
        }
    }
    int reached = 0;
    for (int w = 0; w < cfg->n_workers; w++)
        if (targets[w]) {
            print_worker(cfg, w, targets[w] & RULES_PRIORITY, ev, out);
            reached++;
        }
    print_statistics(cfg, ev, out);
    if (!reached)
        fprintf(out, "not stored: no rule sends this event to a worker\n");
    free(x);
    free(targets);
    return reached ? 0 : 3;
}

int explain_event(const eventsd_config_t *cfg, const char *tag, const char *data_json,
                  FILE *out, char *err, size_t errlen)
{
    msgpack_sbuffer payload;
    msgpack_sbuffer_init(&payload);
    int rc = 1;
    rules_t *rules = NULL;
    worker_event_t *ev = NULL;
    if (json_to_msgpack(data_json ? data_json : "{}", &payload, err, errlen) < 0)
        goto out;
    ev = worker_event_new(0, false, tag, strlen(tag), payload.data, payload.size,
                          cfg->bus.max_depth, err, errlen);
    if (!ev || !(rules = rules_new(cfg, err, errlen)))
        goto out;
    fprintf(out, "event: tag '%s' data %s\n", tag, data_json ? data_json : "{}");
    rc = explain_rules(cfg, rules, ev, &payload, out, err, errlen);
out:
    rules_destroy(&rules);
    worker_event_destroy(&ev);
    msgpack_sbuffer_destroy(&payload);
    return rc;
}
