/* trigger_key: the key of the stream an event joins: its distinguished_by values in order,
 * joined by '/'.
 *
 * Each entry is a field (name_template's grammar: "data.jid", "tag", "master_id") whose text
 * (trigger_field_text) is taken whole, or "FIELD|day" / "FIELD|hour": a time bucket of an
 * ISO-8601 timestamp such as Salt's _stamp ("stamp|day" of "2024-01-04T12:00:00.123456" is
 * "2024-01-04", "stamp|hour" is "2024-01-04T12"). In each value '%' becomes "%25" and '/'
 * becomes "%2F", so distinct value lists never join into the same key.
 * A missing or nil field, or a bucket of a value that is not a timestamp, leaves the event
 * without a key (it joins no stream; the engine counts it as unkeyed).
 * Owns: the parsed entries.
 */
#ifndef EVENTSD_TRIGGER_KEY_H
#define EVENTSD_TRIGGER_KEY_H

#include "worker_event.h"

#include <msgpack.h>

typedef struct trigger_key trigger_key_t;

/* Errors: "distinguished_by 'X': not a field, or a field|day or field|hour bucket",
 * "distinguished_by is empty", "out of memory". */
trigger_key_t *trigger_key_new(char *const *fields, int n, char *err, size_t errlen);
void trigger_key_destroy(trigger_key_t **self_p);

/* Builds ev's key into out (reset first, NUL-terminated, size without the NUL); text is
 * working memory. 0, 1 (no key: *missing names the entry that failed) or -1 (out of
 * memory). */
int trigger_key_build(const trigger_key_t *self, const worker_event_t *ev,
                      const char *master_id, msgpack_sbuffer *text, msgpack_sbuffer *out,
                      const char **missing);

#endif
