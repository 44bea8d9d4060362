/* Events for the sink tests: msgpack payloads packed by hand and turned into worker events
 * the way a worker does. Header-only (each test is one translation unit). */
#ifndef EVENTSD_TEST_SINK_EVENTS_H
#define EVENTSD_TEST_SINK_EVENTS_H

#include "worker_event.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>

static inline void pk_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static inline void pk_key(msgpack_packer *pk, const char *s)
{
    pk_str(pk, s, strlen(s));
}

static inline worker_event_t *event_from(const char *tag, const msgpack_sbuffer *sb, uint64_t seq)
{
    char err[256] = "";
    worker_event_t *ev = worker_event_new(seq, false, tag, strlen(tag), sb->data, sb->size, 64,
                                          err, sizeof err);
    cr_assert_not_null(ev, "%s", err);
    return ev;
}

#endif
