/* rules: which workers an event goes to, and whether it is a priority event for them.
 *
 * A rule has a PCRE2 tag pattern, an optional fun pattern and a list of workers. The fun is
 * data.fun, or data.data.fun when data.fun is absent (custom events fired with fire_master),
 * as salt-eventsd did; a rule with a fun pattern does not match an event without a fun.
 * Patterns are compiled once, JIT-compiled when the platform allows.
 * Owns: the compiled patterns and one match-data block (so a rules_t is used by one thread).
 */
#ifndef EVENTSD_RULES_H
#define EVENTSD_RULES_H

#include "config.h"
#include <msgpack.h>
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

#endif
