/* name_template: short texts built from event fields: Graphite metric names, Redis counter
 * ids, throttle keys. The one place such names are expanded (rules, sinks and --explain all
 * call it), so a name means the same thing everywhere.
 *
 * Grammar: literal text with placeholders '{' field '}', field as in SQL templates:
 *   tag | master_id | stamp | data | data.<path>   (stamp = data._stamp; <path> as in
 *   payload_lookup: components separated by '.', an integer also indexes an array)
 * "{{" and "}}" are a literal brace. Anything else inside braces is a compile error.
 * Each substituted value is its text (payload_to_text: strings as is, numbers in decimal,
 * True/False, maps/arrays as JSON), then sanitised per the caller's mode:
 *   NAME_GRAPHITE: every byte that is not [A-Za-z0-9_:-] (so '.', '/', space, control
 *                  characters, quotes, non-ASCII) becomes '_' - a value can never add a
 *                  Graphite path component or break the plaintext line;
 *   NAME_KEY:      control characters and whitespace become '_' (Redis ids, throttle keys);
 *   NAME_RAW:      the value's text unchanged.
 * A value longer than NAME_VALUE_MAX bytes is cut there (names are not documents).
 * Owns: the compiled parts.
 */
#ifndef EVENTSD_NAME_TEMPLATE_H
#define EVENTSD_NAME_TEMPLATE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#define NAME_VALUE_MAX 256

typedef enum { NAME_GRAPHITE, NAME_KEY, NAME_RAW } name_mode_t;

typedef struct name_template name_template_t;

/* Errors: "unknown field '{x}' at offset N (fields: tag, master_id, stamp, data, data.<path>)",
 * "unclosed '{' at offset N", "stray '}' at offset N". */
name_template_t *name_template_compile(const char *text, char *err, size_t errlen);
void name_template_destroy(name_template_t **self_p);

/* true when the template has no placeholders (a fixed name). */
bool name_template_is_constant(const name_template_t *self);

/* Appends the expansion for one event to out. data is the event's data map (may be NULL,
 * then every data field is missing); master_id may be NULL.
 * Returns 0 (expanded), 1 (a field is missing or nil: out is left as it was, the caller
 * skips the name and counts it) or -1 (out of memory). */
int name_template_expand(const name_template_t *self, const char *tag, size_t tag_len,
                         const msgpack_object *data, const char *master_id, name_mode_t mode,
                         msgpack_sbuffer *out);

/* Looks up one field (same grammar, without braces: "data.fun", "tag") for callers that want
 * a value rather than a name (a metric's numeric value, a statistics field). tag and
 * master_id are returned as a str object pointing at the given strings. Returns false when
 * the field is unknown or missing. */
bool name_field_valid(const char *field);
bool name_field_lookup(const char *field, const char *tag, size_t tag_len,
                       const msgpack_object *data, const char *master_id, msgpack_object *out);

/* The number in obj: integers, floats, and strings holding a decimal number (Salt sends
 * durations as floats, some returners as strings). Returns false otherwise (incl. NaN). */
bool name_object_number(const msgpack_object *obj, double *out);

#endif
