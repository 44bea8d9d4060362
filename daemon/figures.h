/* figures: eventsd's own numbers at one moment, in one list, so that every place that shows
 * them (the Prometheus /metrics page, the eventsd/stats/eventsd internal events routed to
 * Graphite or SQL) shows the same names and values. The master fills the list from its
 * counters, the bus, the spool, the dispatcher and the rules' throttles.
 *
 * A figure has a name ("received", "written"), a scope ("master" or a worker's name, or
 * "rule7" for a throttle), a kind (counter: only grows; gauge: goes up and down) and a value.
 * Owns: the list (names, scopes and help texts must outlive it: they are static strings or
 * the config's and dispatcher's, borrowed for one render).
 */
#ifndef EVENTSD_FIGURES_H
#define EVENTSD_FIGURES_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *name;
    const char *help;
    bool        counter;
    const char *scope_label;   /* Prometheus label name: "worker", "rule" or NULL (master) */
    const char *scope;         /* "master", a worker name, "7" for rule #7 */
    double      value;
} figure_t;

typedef struct {
    figure_t *items;
    int       n, cap;
    bool      oom;
} figures_t;

void figures_add(figures_t *self, const char *name, const char *help, bool counter,
                 const char *scope_label, const char *scope, double value);
void figures_clear(figures_t *self);   /* keeps the memory for the next round */
void figures_free(figures_t *self);

/* The internal event for figure i: tag eventsd/stats/eventsd, data
 * {"name": name, "scope": scope, "value": value, "master_id": id, "_stamp": ISO-8601 UTC}.
 * Appends the msgpack data map to payload. */
#define FIGURES_EVENT_TAG "eventsd/stats/eventsd"
void figures_event(const figures_t *self, int i, const char *master_id, int64_t epoch_us,
                   msgpack_sbuffer *payload);

/* The Prometheus text exposition of the list: per name one family, eventsd_<name> with
 * "_total" for counters, HELP and TYPE once, one sample per scope, labelled with
 * scope_label when there is one. */
void figures_prometheus(const figures_t *self, msgpack_sbuffer *out);

/* Salt's _stamp text for a wall-clock time: "2026-11-29T21:30:00.123456". buf >= 32. */
void figures_stamp(int64_t epoch_us, char *buf, size_t len);

#endif
