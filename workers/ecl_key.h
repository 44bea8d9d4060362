/* ecl_key: the Redis key layout of CESNET's Event Count Logger (ECL), so that its ecl_reader
 * and Munin plugins read what eventsd counts. Pure functions, no I/O.
 *
 * ECL's layout (event_count_logger.py, create_redis_key and get_declared_events):
 *   <group>:<interval>:cur:<id>    count of <id> in the current (incomplete) interval
 *   <group>:<interval>:last:<id>   its count in the last complete interval
 *   <group>:<interval>:cur:@ts     start of the current interval, Unix seconds
 * <interval> is the name as configured ("5s", "5m", "1h"). ECL keeps no list of ids in Redis:
 * auto-declared ids are found by SCAN over "<group>:<interval>:[^:]*:[^@]*", so an id that
 * starts with '@' is invisible to ECL (and "@ts" would be overwritten), and an empty id is too.
 * ecl_reader decodes keys as UTF-8 and dies on anything else.
 *
 * eventsd adds one key of its own, outside that pattern: <group>:@sync:<instance> (see
 * sink_redis.c, it tells whether a sync whose reply was lost was applied).
 * Owns: nothing; every function writes into a buffer the caller owns.
 */
#ifndef EVENTSD_ECL_KEY_H
#define EVENTSD_ECL_KEY_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest id kept; longer ones are cut at a UTF-8 character boundary. Redis takes any size,
 * but ids are names on a graph, and a cap keeps one hostile event from costing megabytes. */
#define ECL_ID_MAX 512

typedef enum { ECL_CUR, ECL_LAST } ecl_slot_t;

/* "cur" or "last". */
const char *ecl_slot_name(ecl_slot_t slot);

/* Makes id[0..len) safe for ECL, in place, and returns its new length (0: nothing usable is
 * left, the caller skips the event): bytes that are not valid UTF-8, NUL and other control
 * characters and spaces become '_' (as name_template's NAME_KEY does with field values, so a
 * declared id and a template's literal text match what events produce); a leading '@' becomes
 * '_' (reserved by ECL, see above); the result is cut to ECL_ID_MAX bytes without splitting a
 * character. */
size_t ecl_id_sanitise(char *id, size_t len);

/* Appends "<group>:<interval>:<slot>:" (the part every counter key of a slot shares) to out.
 * 0, or -1 when out of memory. */
int ecl_key_prefix(msgpack_sbuffer *out, const char *group, const char *interval,
                   ecl_slot_t slot);

/* Appends the full counter key, prefix then id[0..len). 0 or -1 (out of memory). */
int ecl_key_counter(msgpack_sbuffer *out, const char *group, const char *interval,
                    ecl_slot_t slot, const char *id, size_t len);

/* Appends "<group>:<interval>:cur:@ts". 0 or -1. */
int ecl_key_ts(msgpack_sbuffer *out, const char *group, const char *interval);

/* Appends the SCAN MATCH pattern of every key of a slot: the prefix with the glob characters
 * *?[]\ of group and interval escaped, then '*'. 0 or -1. */
int ecl_key_scan_pattern(msgpack_sbuffer *out, const char *group, const char *interval,
                         ecl_slot_t slot);

/* Start of the interval of length interval_s holding now_s (both Unix seconds): intervals
 * are aligned to the epoch like ecl_master's schedule, so every instance agrees on them. */
int64_t ecl_boundary(int64_t now_s, int interval_s);

/* Strict ordering of ids as ecl_reader prints them (Python sorts str by code point, which is
 * byte order for UTF-8): <0, 0, >0. */
int ecl_id_compare(const char *a, size_t alen, const char *b, size_t blen);

#endif
