/* rules: which workers an event goes to, and whether it is a priority event for them.
 *
 * A rule has a PCRE2 tag pattern, an optional fun pattern and a list of workers. The fun is
 * data.fun, or data.data.fun when data.fun is absent (custom events fired with fire_master),
 * as salt-eventsd did; a rule with a fun pattern does not match an event without a fun.
 * Patterns are compiled once, JIT-compiled when the platform allows.
 * A rule may have a throttle (throttle.h): a matching event then reaches the rule's workers
 * only when its throttle lets it pass. Throttle windows live in the rules_t, so a reload
 * (a new rules_t) starts them afresh, except for shared throttles, whose windows are in Redis.
 * Owns: the compiled patterns, the rules' throttles and one match-data block (so a rules_t is
 * used by one thread).
 */
#ifndef EVENTSD_RULES_H
#define EVENTSD_RULES_H

#include "config.h"
#include "throttle.h"
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RULES_DELIVER  1u
#define RULES_PRIORITY 2u

typedef struct rules rules_t;

/* Compiles cfg->rules. Worker indexes in results are indexes into cfg->workers.
 * Errors: "FILE:LINE: rule tag pattern: <pcre2 message> at offset N". */
rules_t *rules_new(const eventsd_config_t *cfg, char *err, size_t errlen);
void rules_destroy(rules_t **self_p);

/* Fills targets[0 .. n_workers-1] with RULES_DELIVER / RULES_PRIORITY bits (an event
 * matching several rules for one worker is delivered to it once; priority if any of those
 * rules says so). The payload (msgpack of the data map) is unpacked only when a rule with a
 * fun pattern needs it. Returns the number of workers targeted (0 = unmatched). */
int rules_match(rules_t *self, const char *tag, size_t tag_len, const void *payload,
                size_t payload_len, uint8_t *targets);

int rules_n_workers(const rules_t *self);
int rules_n_rules(const rules_t *self);

/* The Redis problem a shared throttle had during the last rules_match (the event was counted
 * locally), or NULL. For the caller to log, rate-limited. */
const char *rules_throttle_error(const rules_t *self);

/* "7" for rule #7 (index 6), for figures. */
const char *rules_label(const rules_t *self, int rule);

/* Rule i's throttle figures, NULL when it has no throttle. */
const throttle_stats_t *rules_throttle_stats(const rules_t *self, int rule);

/* Why an event would or would not reach each rule's workers, for `eventsd --explain`.
 * Nothing is counted (throttles are peeked). */
typedef struct {
    bool     tag_matched;
    bool     has_fun, fun_matched;     /* fun_matched is true when the rule has no fun */
    char     fun[256];                 /* the event's fun, "" when it has none */
    bool     has_throttle, throttle_passes;
    char     throttle_key[256];        /* "" when unkeyed */
    uint64_t throttle_count;           /* events of that key in its live window */
    bool     selected;                 /* tag and fun matched */
} rule_explain_t;

/* Fills out[0 .. rules_n_rules-1]. Returns 0, or -1 when out of memory. */
int rules_explain(rules_t *self, const char *tag, size_t tag_len, const void *payload,
                  size_t payload_len, rule_explain_t *out);

#endif
