/* ecl_group: a group's description from the config. See ecl_group.h. */
#include "ecl_group.h"
#include "ecl_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ecl_group_destroy(ecl_group_t **self_p)
{
    ecl_group_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->n_intervals; i++)
        free(self->interval_names[i]);
    for (int i = 0; i < self->n_declared; i++)
        free(self->declared[i]);
    free(self->interval_names);
    free(self->intervals_s);
    free(self->declared);
    free(self->declared_len);
    free(self->name);
    free(self);
    *self_p = NULL;
}

bool ecl_group_is_declared(const ecl_group_t *self, const char *id, size_t len)
{
    for (int i = 0; i < self->n_declared; i++)
        if (self->declared_len[i] == len && memcmp(self->declared[i], id, len) == 0)
            return true;
    return false;
}

/* Copies and sanitises the declared ids. 0, or -1 with err. */
static int copy_declared(ecl_group_t *self, const worker_config_t *cfg, char *err,
                         size_t errlen)
{
    self->declared = calloc((size_t) cfg->n_events + 1, sizeof *self->declared);
    self->declared_len = calloc((size_t) cfg->n_events + 1, sizeof *self->declared_len);
    if (!self->declared || !self->declared_len)
        return snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < cfg->n_events; i++) {
        char *id = strdup(cfg->events[i] ? cfg->events[i] : "");
        if (!id)
            return snprintf(err, errlen, "out of memory"), -1;
        size_t len = ecl_id_sanitise(id, strlen(id));
        id[len] = '\0';
        if (len == 0) {
            snprintf(err, errlen, "worker '%s': event id #%d of 'events' is empty",
                     cfg->name ? cfg->name : "?", i + 1);
            free(id);
            return -1;
        }
        if (ecl_group_is_declared(self, id, len)) {
            free(id);   /* two spellings that sanitise alike are one counter */
            continue;
        }
        self->declared[self->n_declared] = id;
        self->declared_len[self->n_declared++] = len;
    }
    return 0;
}

static int copy_intervals(ecl_group_t *self, const worker_config_t *cfg, char *err,
                          size_t errlen)
{
    self->interval_names = calloc((size_t) cfg->n_intervals, sizeof *self->interval_names);
    self->intervals_s = calloc((size_t) cfg->n_intervals, sizeof *self->intervals_s);
    if (!self->interval_names || !self->intervals_s)
        return snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < cfg->n_intervals; i++) {
        if (!cfg->interval_names[i] || cfg->intervals_s[i] <= 0)
            return snprintf(err, errlen, "worker '%s': interval #%d is not valid",
                            cfg->name ? cfg->name : "?", i + 1), -1;
        if (!(self->interval_names[i] = strdup(cfg->interval_names[i])))
            return snprintf(err, errlen, "out of memory"), -1;
        self->intervals_s[i] = cfg->intervals_s[i];
        self->n_intervals = i + 1;
    }
    return 0;
}

ecl_group_t *ecl_group_new(const worker_config_t *cfg, char *err, size_t errlen)
{
    const char *worker = cfg->name ? cfg->name : "?";
    if (!cfg->group || !*cfg->group || strchr(cfg->group, ':')) {
        snprintf(err, errlen, "worker '%s': the redis sink needs a 'group' without ':'", worker);
        return NULL;
    }
    if (cfg->n_intervals < 1 || !cfg->interval_names || !cfg->intervals_s) {
        snprintf(err, errlen, "worker '%s': the redis sink needs at least one interval", worker);
        return NULL;
    }
    ecl_group_t *self = calloc(1, sizeof *self);
    if (!self || !(self->name = strdup(cfg->group))) {
        snprintf(err, errlen, "out of memory");
        free(self);
        return NULL;
    }
    self->auto_declare = cfg->auto_declare;
    if (copy_intervals(self, cfg, err, errlen) < 0 || copy_declared(self, cfg, err, errlen) < 0)
        ecl_group_destroy(&self);
    return self;
}

int ecl_group_interval(const ecl_group_t *self, const char *name)
{
    for (int i = 0; i < self->n_intervals; i++)
        if (strcmp(self->interval_names[i], name) == 0)
            return i;
    return -1;
}
