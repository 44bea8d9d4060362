/* graphite_rollup: Torus-style rollups, "(target, source)" pairs over full metric names.
 *
 * source: components joined by '.', each one of
 *   literal   [A-Za-z0-9_:-]+, must equal the name's component;
 *   '*'       matches any one component;
 *   '<name>'  matches any one component and captures it as name ([A-Za-z0-9_]+).
 * A name matches when it has as many components as the source and each one matches (so '*'
 * never spans a '.'). target: components of literal text and '<name>' references to
 * captures of the source, mixed freely within a component ("<fun>_total" is fine); '*' is
 * not allowed there. Example: source "salt.jobs.*.<result>", target "salt.jobs.all.<result>".
 * Owns: the compiled pattern.
 */
#ifndef EVENTSD_GRAPHITE_ROLLUP_H
#define EVENTSD_GRAPHITE_ROLLUP_H

#include <msgpack.h>
#include <stddef.h>

#define GRAPHITE_ROLLUP_MAX_COMPONENTS 64

typedef struct graphite_rollup graphite_rollup_t;

/* NULL on error, with a message naming the offending part ("target uses '<x>', which the
 * source does not capture") in err; the caller adds where the rollup is. */
graphite_rollup_t *graphite_rollup_compile(const char *target, const char *source, char *err,
                                           size_t errlen);
void graphite_rollup_destroy(graphite_rollup_t **self_p);

/* Matches name[0..n) against the source; on a match appends the target to out.
 * Returns 1 (matched, target appended), 0 (no match, out untouched) or -1 (out of memory). */
int graphite_rollup_apply(const graphite_rollup_t *self, const char *name, size_t n,
                          msgpack_sbuffer *out);

#endif
