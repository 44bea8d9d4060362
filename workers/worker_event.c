#include "worker_event.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

static void hash_event(worker_event_t *ev, const void *payload, size_t payload_len)
{
    zdigest_t *digest = zdigest_new();
    zdigest_update(digest, (const byte *) ev->tag, ev->tag_len);
    zdigest_update(digest, (const byte *) "\n\n", 2);
    zdigest_update(digest, (const byte *) payload, payload_len);
    const char *hex = zdigest_string(digest);   /* upper-case hex, owned by digest */
    for (size_t i = 0; i < 40; i++)
        ev->hash[i] = (char) (hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
    ev->hash[40] = '\0';
    zdigest_destroy(&digest);
}

worker_event_t *worker_event_new(uint64_t seq, bool priority, const char *tag, size_t tag_len,
                                 const void *payload, size_t payload_len, int max_depth,
                                 char *err, size_t errlen)
{
    worker_event_t *ev = calloc(1, sizeof *ev);
    if (!ev) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ev->seq = seq;
    ev->priority = priority;
    ev->tag = strndup(tag, tag_len);
    ev->tag_len = tag_len;
    ev->data = payload_new(payload, payload_len, true, max_depth, err, errlen);
    if (!ev->tag || !ev->data) {
        worker_event_destroy(&ev);
        return NULL;
    }
    hash_event(ev, payload, payload_len);
    return ev;
}

void worker_event_destroy(worker_event_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_event_t *ev = *self_p;
    free(ev->tag);
    payload_destroy(&ev->data);
    free(ev);
    *self_p = NULL;
}
