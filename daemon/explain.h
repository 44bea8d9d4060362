/* explain: `eventsd --explain TAG [--data JSON]`, the answer to "why is my event not stored?".
 * Prints, for one event given on the command line, every rule and whether its tag, fun and
 * throttle let the event through; every worker it would reach, with what that worker's sink
 * would make of it (sink explain op: metric names and rollups, counter keys, template
 * values); and the statistics that would count it. Nothing is written anywhere and no event
 * is counted: throttles are peeked (shared ones ask Redis, read-only).
 * Owns: nothing beyond the call.
 */
#ifndef EVENTSD_EXPLAIN_H
#define EVENTSD_EXPLAIN_H

#include "config.h"
#include <stdio.h>

/* Returns 0 when the event would reach at least one worker, 3 when it would reach none, 1 on
 * an error (bad JSON, data not a map), explained in err. */
int explain_event(const eventsd_config_t *cfg, const char *tag, const char *data_json,
                  FILE *out, char *err, size_t errlen);

#endif
