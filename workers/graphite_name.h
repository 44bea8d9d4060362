/* graphite_name: what a Graphite metric name may look like, in one place (prefixes, name
 * templates, rollup patterns and every expanded name are checked against it).
 *
 * A name is components joined by '.'; a component is 1..GRAPHITE_COMPONENT_MAX bytes of
 * [A-Za-z0-9_:-] (the set name_template's NAME_GRAPHITE mode leaves alone), the whole name
 * at most GRAPHITE_NAME_MAX bytes. Carbon turns every component into a directory or file
 * name (plus ".wsp", within a file system's 255 bytes), so longer components would fail to
 * be created there, silently; an empty component ("a..b") would be a different path than
 * the user meant. A line of the longest name still fits one UDP datagram.
 * Owns: nothing (pure functions).
 */
#ifndef EVENTSD_GRAPHITE_NAME_H
#define EVENTSD_GRAPHITE_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define GRAPHITE_NAME_MAX      1000
#define GRAPHITE_COMPONENT_MAX 250

/* c may appear in a component. */
bool graphite_name_char(int c);

/* NULL when s[0..n) is a valid name, else why not ("empty component", ...). */
const char *graphite_name_problem(const char *s, size_t n);

#endif
