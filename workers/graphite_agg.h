/* graphite_agg: the per-interval aggregates a graphite sink holds between flushes.
 *
 * Carbon keeps one value per metric per time slot (the last one it receives), so eventsd
 * sends one line per metric per interval: "name value start\n", start being the interval's
 * first second (epoch, a multiple of interval_s). Each held interval is a hash table of
 * name -> (count, sum, min, max, last); the line's value is the one the name's aggregate asks
 * for (sum, min, max, mean = sum / count, last), taken from the first metric that created the
 * name in that interval.
 *
 * Repeatable flushes: render() writes every interval holding data not yet sent ("dirty"),
 * each with its complete aggregates so far, and sent() then marks them clean and frees the
 * ones that have ended. A failed send simply renders the same lines again next time; sending
 * an open interval early and again later is harmless too, because carbon keeps the last line
 * per slot and the later one is a superset.
 *
 * Memory: at most max_names distinct names per interval; names beyond it are dropped and
 * counted (dropped()). Pure: the caller supplies every time.
 * Owns: the intervals, their tables and name copies.
 */
#ifndef EVENTSD_GRAPHITE_AGG_H
#define EVENTSD_GRAPHITE_AGG_H

#include "config.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef struct graphite_agg graphite_agg_t;

/* interval_s >= 1, max_names >= 1. NULL when out of memory. */
graphite_agg_t *graphite_agg_new(int interval_s, size_t max_names);
void graphite_agg_destroy(graphite_agg_t **self_p);

/* The start (epoch seconds) of the interval holding epoch_ms. */
int64_t graphite_agg_slot(const graphite_agg_t *self, int64_t epoch_ms);

/* Folds value v into name[0..n) of the interval starting at start_s (a slot() result).
 * Returns 0, 1 (the interval already holds max_names other names: dropped and counted) or -1
 * (out of memory: nothing changed). */
int graphite_agg_add(graphite_agg_t *self, int64_t start_s, const char *name, size_t n,
                     metric_agg_t how, double v);

/* Appends the lines of every dirty interval, oldest first, to out. An aggregate that is not
 * finite (a sum that overflowed) is left out and counted (nonfinite()). Returns the number of
 * lines or -1 (out of memory; out may hold part of them). */
long graphite_agg_render(graphite_agg_t *self, msgpack_sbuffer *out);

/* After the rendered lines reached the server: dirty intervals become clean; intervals that
 * ended at or before now_ms (epoch) are freed. */
void graphite_agg_sent(graphite_agg_t *self, int64_t now_ms);

/* The end (epoch ms) of the oldest dirty interval; INT64_MAX when nothing is dirty. */
int64_t graphite_agg_due_ms(const graphite_agg_t *self);

/* Figures: distinct names held over all intervals, names dropped at the cap, aggregates left
 * out as not finite (both cumulative since new()). */
size_t   graphite_agg_held(const graphite_agg_t *self);
uint64_t graphite_agg_dropped(const graphite_agg_t *self);
uint64_t graphite_agg_nonfinite(const graphite_agg_t *self);

/* Writes v in the shortest decimal that reads back as the same double ("3", "0.1",
 * "1e+300"); buf needs 32 bytes. Returns the length. */
int graphite_format_value(double v, char *buf);

#endif
