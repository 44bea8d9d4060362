/* graphite_map: which Graphite metrics one event touches, with which values. The graphite sink
 * folds the result into its aggregates; --explain can show it.
 *
 * For every configured metric: full name = prefix "." expanded name template (no prefix: the
 * name alone), every substituted field sanitised (NAME_GRAPHITE); value = 1 (a count) or the
 * number in the metric's value field. Then every rollup whose source matches that full name
 * adds its target with the same value and aggregate. Each name appears at most once per event:
 * a name several metrics or rollups produce is counted once, with the first one's value.
 * Rollups match metric names, not other rollups' targets.
 *
 * Skipped, per metric, and counted: a name field missing or nil (missing_field), a value
 * field missing, not a number, or not finite (bad_value), an expanded name that is not a
 * valid Graphite name, e.g. an empty field making an empty component or a name over the
 * length limits (bad_name).
 * Owns: the compiled templates and rollups, and the points of the last event mapped.
 */
#ifndef EVENTSD_GRAPHITE_MAP_H
#define EVENTSD_GRAPHITE_MAP_H

#include "config.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct graphite_map graphite_map_t;

typedef struct {
    const char  *name;    /* not NUL-terminated */
    size_t       len;
    double       value;
    metric_agg_t how;
    bool         rollup;  /* a rollup's target (else a metric's own name) */
} graphite_point_t;

typedef struct {
    uint64_t missing_field, bad_value, bad_name;
} graphite_skips_t;

/* Checks the prefix, every metric (name template, value field, literal text) and rollup.
 * Writes each problem as "FILE:LINE: message" (file as given, line of the metric or rollup,
 * or of the worker for the prefix), lines separated by '\n', truncated to errlen.
 * Returns the number of problems (0 = valid). */
int graphite_map_check(const worker_config_t *cfg, const char *file, char *err, size_t errlen);

/* Compiles cfg's metrics and rollups. NULL with the first problem in err (as check words it)
 * when cfg is invalid or memory is short. */
graphite_map_t *graphite_map_new(const worker_config_t *cfg, const char *file, char *err,
                                 size_t errlen);
void graphite_map_destroy(graphite_map_t **self_p);

/* Maps one event (tag, its data map or NULL, master_id or NULL). *points is valid until the
 * next call. Returns the number of points, or -1 when out of memory. */
long graphite_map_event(graphite_map_t *self, const char *tag, size_t tag_len,
                        const msgpack_object *data, const char *master_id,
                        const graphite_point_t **points);

/* Skips counted since new(). */
graphite_skips_t graphite_map_skips(const graphite_map_t *self);

#endif
