/* ecl_rotate: the end of an interval, done in Redis by one Lua script so it is atomic:
 * for one group and interval, every cur counter becomes the last one and cur starts again,
 * exactly as ecl_master does it (declared ids: last := cur, cur := 0; auto-declared ids:
 * cur is renamed to last, and a last with no cur behind it is deleted, so an id that saw no
 * events for a whole interval is forgotten), then @ts := the boundary.
 *
 * Idempotent per boundary, which is what lets several eventsd instances (and
 * eventsd-counts) share a group without a lock: the script rotates only when @ts is older
 * than the boundary it is given, and a script runs atomically, so of all the callers that
 * reach one boundary exactly one rotates, whoever comes first; the others get 0. A caller
 * whose clock is behind names an older boundary and gets 0 too.
 * When @ts is older than the previous boundary (nobody rotated for a whole interval: all
 * instances were down or idle), the counts in cur belong to an interval before the last
 * one, so last becomes empty (0 for declared ids) rather than showing them as last.
 *
 * Auto-declared ids are found with SCAN inside the script (ECL keeps no list of them), so a
 * rotation costs time in proportion to the keys of the database: give the counters their
 * own `db` when Redis holds much else. Standalone Redis only (the keys are not declared
 * for Redis Cluster).
 * Owns: nothing (the script text is static).
 */
#ifndef EVENTSD_ECL_ROTATE_H
#define EVENTSD_ECL_ROTATE_H

#include "ecl_group.h"

#include <hiredis/hiredis.h>
#include <stdint.h>

/* The Lua source (for tests and --explain). */
extern const char ecl_rotate_lua[];

/* Appends "EVAL <script> ..." for interval i of g and the boundary (Unix seconds at which the
 * new interval starts) to c's output buffer, to be sent inside a MULTI or a pipeline. Its
 * reply is the integer 1 (rotated) or 0 (already rotated for that boundary or a later one).
 * 0, or -1 when out of memory. */
int ecl_rotate_append(redisContext *c, const ecl_group_t *g, int i, int64_t boundary);

/* Sends that EVAL alone and waits: 1 rotated, 0 already done, -1 with err. */
int ecl_rotate_run(redisContext *c, const ecl_group_t *g, int i, int64_t boundary, char *err,
                   size_t errlen);

#endif
