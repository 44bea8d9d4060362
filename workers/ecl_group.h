/* ecl_group: one Event Count Logger group as eventsd's config describes it (a redis worker):
 * its name, its intervals (ECL's names such as "5m" and their length in seconds), its
 * declared ids (sanitised like every counted id, duplicates removed) and auto_declare.
 * The sink, the rotation script and eventsd-counts all work from this one description, so
 * they agree on which keys a group has.
 * Owns: copies of every string (the config may be freed or reloaded after ecl_group_new).
 */
#ifndef EVENTSD_ECL_GROUP_H
#define EVENTSD_ECL_GROUP_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char   *name;
    char  **interval_names;   /* n_intervals */
    int    *intervals_s;
    int     n_intervals;
    char  **declared;         /* n_declared, sanitised (ecl_id_sanitise), unique */
    size_t *declared_len;
    int     n_declared;
    bool    auto_declare;
} ecl_group_t;

/* From a redis worker's config. NULL with err ("worker 'x': ...") when the group or the
 * intervals are missing, a declared id is empty once sanitised, or memory runs out. */
ecl_group_t *ecl_group_new(const worker_config_t *cfg, char *err, size_t errlen);
void ecl_group_destroy(ecl_group_t **self_p);

/* true when id[0..len) (sanitised) is one of the declared ids. */
bool ecl_group_is_declared(const ecl_group_t *self, const char *id, size_t len);

/* Index of the interval named name, or -1. */
int ecl_group_interval(const ecl_group_t *self, const char *name);

#endif
