/* worker_event: one event as a worker holds it between the master's envelope and the sink.
 * Owns: its tag copy, its unpacked payload and its idempotency hash.
 * event_hash is the lowercase hex SHA-1 (czmq zdigest) of tag, "\n\n", payload bytes: the same
 * event re-delivered after a crash hashes the same, so a UNIQUE key on it makes the replay a
 * no-op; two distinct Salt events differ at least in their _stamp.
 */
#ifndef EVENTSD_WORKER_EVENT_H
#define EVENTSD_WORKER_EVENT_H

#include "payload.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t   seq;          /* master's sequence number: acks name it */
    bool       priority;
    char      *tag;
    size_t     tag_len;
    payload_t *data;         /* the event's data map */
    char       hash[41];
} worker_event_t;

worker_event_t *worker_event_new(uint64_t seq, bool priority, const char *tag, size_t tag_len,
                                 const void *payload, size_t payload_len, int max_depth,
                                 char *err, size_t errlen);
void worker_event_destroy(worker_event_t **self_p);

#endif
