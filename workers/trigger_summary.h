/* trigger_summary: the tag and the summary (a msgpack map) of a due stream, as
 * trigger_engine.h describes them, built from the stream's row alone, so a stream handed out
 * again (a retry, a restart) gets byte-identical bytes: pipelines see the same event and
 * emitted events keep their hash.
 * Owns: nothing (writes into the caller's buffers).
 */
#ifndef EVENTSD_TRIGGER_SUMMARY_H
#define EVENTSD_TRIGGER_SUMMARY_H

#include "trigger_engine.h"
#include "trigger_store.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* tag: "eventsd/trigger/<name>/fire" or ".../expire" (evicted streams run the expire
 * pipeline, so they carry /expire too), NUL-terminated; summary: the map. Both buffers are
 * appended to. 0 or -1 (out of memory). */
int trigger_summary_build(const trigger_config_t *t, const trigger_stream_t *s,
                          trigger_reason_t reason, char *const *missing, size_t n_missing,
                          msgpack_sbuffer *tag, msgpack_sbuffer *summary);

/* Microseconds since the epoch of an ISO-8601 UTC timestamp "YYYY-MM-DDTHH:MM:SS[.f...]"
 * (a space instead of 'T', a trailing 'Z' accepted; Salt's _stamp is naive UTC). */
bool trigger_stamp_us(const char *s, size_t n, int64_t *us);

#endif
