/* figures: see figures.h. */
#include "figures.h"
#include "metrics_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void figures_add(figures_t *self, const char *name, const char *help, bool counter,
                 const char *scope_label, const char *scope, double value)
{
    if (self->n == self->cap) {
        int cap = self->cap ? 2 * self->cap : 64;
        figure_t *items = realloc(self->items, (size_t) cap * sizeof *items);
        if (!items) {
            self->oom = true;
            return;
        }
        self->items = items;
        self->cap = cap;
    }
    self->items[self->n++] = (figure_t){ name, help, counter, scope_label, scope, value };
}

void figures_clear(figures_t *self)
{
    self->n = 0;
    self->oom = false;
}

void figures_free(figures_t *self)
{
    free(self->items);
    *self = (figures_t){ 0 };
}

void figures_stamp(int64_t epoch_us, char *buf, size_t len)
{
    time_t secs = (time_t) (epoch_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%06ld", day, (long) (epoch_us % 1000000));
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

void figures_event(const figures_t *self, int i, const char *master_id, int64_t epoch_us,
                   msgpack_sbuffer *payload)
{
    const figure_t *f = &self->items[i];
    char stamp[40];
    figures_stamp(epoch_us, stamp, sizeof stamp);
    msgpack_packer pk;
    msgpack_packer_init(&pk, payload, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pack_str(&pk, "name");
    pack_str(&pk, f->name);
    pack_str(&pk, "scope");
    pack_str(&pk, f->scope ? f->scope : "master");
    pack_str(&pk, "value");
    if (f->value == (double) (int64_t) f->value)
        msgpack_pack_int64(&pk, (int64_t) f->value);
    else
        msgpack_pack_double(&pk, f->value);
    pack_str(&pk, "master_id");
    pack_str(&pk, master_id ? master_id : "");
    pack_str(&pk, "_stamp");
    pack_str(&pk, stamp);
}

void figures_prometheus(const figures_t *self, msgpack_sbuffer *out)
{
    for (int i = 0; i < self->n; i++) {
        const figure_t *f = &self->items[i];
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(self->items[j].name, f->name) == 0;
        if (seen)
            continue;
        char name[128];
        snprintf(name, sizeof name, "eventsd_%s%s", f->name, f->counter ? "_total" : "");
        prom_write_family(out, name, f->counter ? "counter" : "gauge", f->help);
        for (int j = i; j < self->n; j++) {
            const figure_t *g = &self->items[j];
            if (strcmp(g->name, f->name) != 0)
                continue;
            prom_label_t label = { g->scope_label, g->scope };
            prom_write_double(out, name, g->scope_label ? &label : NULL, g->scope_label ? 1 : 0,
                              g->value);
        }
    }
}
