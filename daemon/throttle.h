/* throttle: GambolPutty's Throttle for one rule. Each event has a key (the rule's name
 * template, NAME_KEY mode); an event passes when, counting it, min_count <= count <=
 * max_count, where count is the number of events of that key in a window of timeframe_s
 * that starts at the key's first event. The window does not slide: the first event at or
 * after start + timeframe starts a new window with count 1. Defaults (1, 1) de-duplicate;
 * max_count 0 (unset) means max_count = min_count.
 *
 * Unkeyed events: an event whose key cannot be expanded (a field is missing or nil) passes
 * and is counted as `unkeyed` - a throttle tames floods, it never hides events it cannot
 * tell apart. Out of memory while building a key passes the event as well.
 *
 * Local mode: a hash table of at most max_keys keys (THROTTLE_MAX_KEYS by default). Keys sit
 * in a list ordered by window start, so expired windows are swept from its head a few per
 * call (constant work per event) and a full table drops its head: an expired window first
 * if there is one, else the oldest live window, counted as `evicted` (that key starts a new
 * window on its next event). The table grows by doubling, so a rehash is rare and bounded.
 * Keys longer than THROTTLE_KEY_MAX bytes are cut and a hash of the whole key appended.
 *
 * Shared mode (cfg->shared): the count lives in Redis under
 *   eventsd:throttle:<scope>:<key>
 * incremented by a Lua script (INCR, and PEXPIRE timeframe only when the result is 1, in one
 * atomic step), so every eventsd instance using the same scope shares one window; Redis'
 * clock decides when a window ends. No KEYS scans: the keys expire on their own. When Redis
 * is down, refuses, or times out, the event is counted in the local table instead
 * (`fallback`; each failed Redis operation counts in `redis_errors`), throttle_error() holds
 * the reason for the caller to log (rate-limited), and the connection is retried at most
 * every THROTTLE_RETRY_MIN_MS .. THROTTLE_RETRY_MAX_MS (doubling), never per event. The
 * connection is opened lazily by the first event, so throttle_new never touches the network.
 * The master is single-threaded: Redis calls are synchronous with the configured timeout,
 * capped at THROTTLE_REDIS_TIMEOUT_MAX_MS, so a hung Redis stalls the master for at most that
 * long per retry period.
 *
 * Time: now_ms is any monotonic millisecond clock (clock_ms()); tests inject their own.
 * Owns: the compiled key template, the local table, the Redis connection.
 */
#ifndef EVENTSD_THROTTLE_H
#define EVENTSD_THROTTLE_H

#include "config.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THROTTLE_MAX_KEYS             100000
#define THROTTLE_KEY_MAX              1024
#define THROTTLE_RETRY_MIN_MS         1000
#define THROTTLE_RETRY_MAX_MS         16000
#define THROTTLE_REDIS_TIMEOUT_MAX_MS 1000

typedef struct throttle throttle_t;

typedef struct {
    uint64_t passed;        /* events that passed (unkeyed ones included) */
    uint64_t blocked;       /* events that did not */
    uint64_t unkeyed;       /* events whose key could not be expanded (they passed) */
    uint64_t keys;          /* keys in the local table now */
    uint64_t evicted;       /* live windows dropped because the local table was full */
    uint64_t redis_errors;  /* failed Redis connects and commands (shared mode) */
    uint64_t fallback;      /* shared-mode events counted locally because Redis failed */
} throttle_stats_t;

/* cfg is copied (the caller may free it). redis is used only when cfg->shared (it may be NULL
 * otherwise; its strings are copied). scope names this throttle in Redis keys: instances
 * that must share windows pass the same scope; NULL means "line<cfg->line>". file is the
 * config file for error messages.
 * Errors: "FILE:LINE: throttle key '<text>': <name_template message>", "out of memory",
 * "FILE:LINE: throttle is shared but no redis is configured". */
throttle_t *throttle_new(const throttle_config_t *cfg, const redis_config_t *redis,
                         const char *file, const char *scope, char *err, size_t errlen);
void throttle_destroy(throttle_t **self_p);

/* Counts the event and returns whether it passes. data is the event's data map (may be
 * NULL), master_id may be NULL (then {master_id} is a missing field). After the call
 * throttle_error() says whether Redis failed for this event. */
bool throttle_pass(throttle_t *self, const char *tag, size_t tag_len,
                   const msgpack_object *data, const char *master_id, int64_t now_ms);

/* For `eventsd --explain`: the key the event would have and its current count, without
 * counting it. key gets the key (NUL-terminated, cut to keylen); *count the events of that
 * key in its live window (0 when none: an expired window counts 0); *would_pass whether one
 * more event would pass now. Shared mode asks Redis (GET) and falls back to the local table
 * like throttle_pass. Note that a fresh process (`--explain`) has an empty local table.
 * Returns 0 (keyed), 1 (unkeyed: the event would pass; key is "") or -1 (out of memory). */
int throttle_peek(throttle_t *self, const char *tag, size_t tag_len,
                  const msgpack_object *data, const char *master_id, int64_t now_ms,
                  char *key, size_t keylen, uint64_t *count, bool *would_pass);

/* The Redis problem of the last throttle_pass/throttle_peek ("redis HOST:PORT: ...; counting
 * locally"), or NULL when that call had none. Valid until the next call. */
const char *throttle_error(const throttle_t *self);

const throttle_stats_t *throttle_stats(const throttle_t *self);

/* Changes the local table's bound (default THROTTLE_MAX_KEYS); for tests and memory-tight
 * setups. n < 1 counts as 1. Keys above the new bound are dropped at once, oldest first. */
void throttle_set_max_keys(throttle_t *self, size_t n);

#endif
