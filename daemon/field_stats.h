/* field_stats: the `statistics` of the config. Per statistic, the values of chosen fields
 * ("data.fun", "data.retcode") on matching events are counted per epoch-aligned interval;
 * when an interval ends its counts become internal events, routed by rules like any Salt
 * event. One event per (field, value), so a Graphite metric or an SQL row can use it as is:
 *
 *   tag  eventsd/stats/<name>
 *   data {"name": "<name>", "field": "data.fun", "value": "test.ping", "count": 12,
 *         "interval": 60, "start": <epoch s>, "end": <epoch s>,
 *         "_stamp": "2026-11-29T21:30:00.000000"}     (_stamp: the interval's end, UTC)
 *
 * Per interval and statistic, in this order: one event with field "*" and value "*" whose
 * count is the number of matching events; then per field its values in order of first
 * appearance; then value "__other__" with the count of values beyond max_values distinct
 * ones, only when non-zero. Values are payload_to_text's text (strings as is, numbers in
 * decimal, True/False, maps/arrays as JSON), cut at NAME_VALUE_MAX bytes on a UTF-8 character
 * boundary. An event without the field (or with nil) does not count for that field but does
 * count in "*". Empty intervals emit nothing.
 *
 * Matching: the statistic's PCRE2 tag pattern, or every event given to field_stats_add when it
 * has none. Events tagged eventsd/stats/... are never counted (statistics of statistics would
 * feed on themselves).
 *
 * Time: now_ms is wall-clock milliseconds since the epoch (CLOCK_REALTIME), not clock_ms():
 * intervals are aligned to the epoch (a 60 s interval starts on the minute). A clock that
 * steps back keeps counting into the current interval.
 *
 * Memory: per statistic and field at most max_values values of at most NAME_VALUE_MAX bytes,
 * twice (the interval being counted and the closed one being handed out). A closed interval
 * still not taken when the next one closes is dropped and counted (the caller takes events
 * every time field_stats_next_due_ms says so).
 *
 * Owns: the compiled patterns and the counts.
 */
#ifndef EVENTSD_FIELD_STATS_H
#define EVENTSD_FIELD_STATS_H

#include "config.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FIELD_STATS_TAG_PREFIX "eventsd/stats/"
#define FIELD_STATS_OTHER      "__other__"

typedef struct field_stats field_stats_t;

typedef struct {
    uint64_t matched;   /* events counted (in some statistic's "*") */
    uint64_t emitted;   /* internal events handed out */
    uint64_t other;     /* field values counted in __other__ */
    uint64_t dropped;   /* closed intervals dropped before they were taken */
} field_stats_counters_t;

/* Compiles n statistics (n may be 0: nothing is ever counted). cfgs is copied. file is the
 * config file for error messages:
 *   "FILE:LINE: statistics 'x' tag pattern: <pcre2 message> at offset N"
 *   "FILE:LINE: statistics 'x' field 'y': unknown field (fields: tag, master_id, stamp, data,
 *    data.<path>)", "out of memory". */
field_stats_t *field_stats_new(const statistic_config_t *cfgs, int n, const char *file,
                               char *err, size_t errlen);
void field_stats_destroy(field_stats_t **self_p);

/* Counts one accepted event. data is its data map (may be NULL: only tag and master_id
 * fields exist then); master_id may be NULL. An interval that ended before now_ms is closed
 * first, so the event counts in the interval of now_ms. */
void field_stats_add(field_stats_t *self, const char *tag, size_t tag_len,
                     const msgpack_object *data, const char *master_id, int64_t now_ms);

/* Milliseconds until field_stats_pop has something to hand out (0: now), or -1 when nothing
 * is being counted. For the poll timeout. */
int field_stats_next_due_ms(const field_stats_t *self, int64_t now_ms);

/* Closes the intervals that ended by now_ms and hands out the next produced event: tag gets
 * its tag (no NUL), payload its data map as msgpack (both cleared first; the caller may take
 * their buffers with msgpack_sbuffer_release). Returns 1 (an event), 0 (none due) or -1 (out
 * of memory; that event is lost, the next call goes on with the next one). Call it until it
 * returns 0. */
int field_stats_pop(field_stats_t *self, int64_t now_ms, msgpack_sbuffer *tag,
                    msgpack_sbuffer *payload);

const field_stats_counters_t *field_stats_counters(const field_stats_t *self);

#endif
