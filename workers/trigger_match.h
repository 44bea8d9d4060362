/* trigger_match: whether an event meets one of a trigger's criteria (a `match` or `fire`
 * entry): a PCRE2 tag pattern (searched, JIT-compiled) and field conditions, all of which
 * must hold.
 *
 * Conditions ("FIELD OP VALUE", FIELD in name_template's grammar: tag, master_id, stamp,
 * data, data.<path>):
 *   exists            the field is present and not nil;
 *   == != < <= > >=   numerically when both the field and VALUE are numbers
 *                     (name_object_number: integers, floats, decimal text), else bytewise on
 *                     the field's text (payload_to_text); a boolean field's text is "true" /
 *                     "false" and compares with VALUE ignoring case, so "data.success ==
 *                     True" and "== true" agree;
 *   =~ !~             a PCRE2 search of VALUE in the field's text.
 * A missing or nil field makes every condition false (SQL's NULL rule), `!=` and `!~`
 * included: "data.retcode != 0" does not pick events without a retcode.
 *
 * Subjects are copied into an aligned scratch buffer before matching: PCRE2's JIT reads whole
 * aligned blocks around the subject (rules.c explains why that matters under memcheck).
 * Owns: compiled patterns and conditions; the scratch (subject buffer, match data, text).
 */
#ifndef EVENTSD_TRIGGER_MATCH_H
#define EVENTSD_TRIGGER_MATCH_H

#include "config.h"
#include "worker_event.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct trigger_scratch trigger_scratch_t;
typedef struct trigger_pattern trigger_pattern_t;
typedef struct trigger_criterion trigger_criterion_t;

/* Working memory for matching; one per engine (not thread-safe, neither are engines). */
trigger_scratch_t *trigger_scratch_new(void);
void trigger_scratch_destroy(trigger_scratch_t **self_p);

/* Errors: "'PATTERN': MESSAGE at offset N". */
trigger_pattern_t *trigger_pattern_new(const char *pattern, char *err, size_t errlen);
void trigger_pattern_destroy(trigger_pattern_t **self_p);
/* true when the pattern is found anywhere in s[0..len). */
bool trigger_pattern_search(const trigger_pattern_t *self, trigger_scratch_t *scratch,
                            const char *s, size_t len);

/* Errors: "tag pattern 'P': MESSAGE at offset N", "condition 'F =~ V': pattern ...",
 * "condition on unknown field 'F'", "out of memory". */
trigger_criterion_t *trigger_criterion_new(const event_match_config_t *cfg, char *err,
                                           size_t errlen);
void trigger_criterion_destroy(trigger_criterion_t **self_p);
bool trigger_criterion_matches(const trigger_criterion_t *self, trigger_scratch_t *scratch,
                               const worker_event_t *ev, const char *master_id);

/* The text of one field of ev into out (reset first, NUL-terminated; a boolean is "true" or
 * "false", see above). 0, 1 (missing or nil) or -1 (out of memory). */
int trigger_field_text(const char *field, const worker_event_t *ev, const char *master_id,
                       msgpack_sbuffer *out);
/* The same for an object already looked up (a list element). 0, 1 (nil) or -1. */
int trigger_object_text(const msgpack_object *obj, msgpack_sbuffer *out);

#endif
