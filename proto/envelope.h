/* envelope: the master <-> worker wire format on the IPC sockets of the runtime directory.
 *
 * Each message is one msgpack array; msgpack's own streaming unpacker frames them, so there
 * is no length prefix to get wrong.
 *   master -> worker  EVENT  [1, seq, flags, tag(str), payload(bin)]   flags bit 0 = priority
 *   master -> worker  STOP   [3]        drain: commit everything pending, ack, exit 0
 *   worker -> master  ACK    [2, seq, committed, rejected]
 *       "every event I received up to and including seq is done": `committed` of them were
 *       committed by the sink and `rejected` dead-lettered since the previous ACK.
 *   worker -> master  EMIT   [4, tag(str), data(bin)]
 *       an internal event made by the worker (a trigger pipeline's emit handler, such as
 *       eventsd/job/<jid>/complete): data is the event's msgpack data map; the master routes it
 *       through the rules like any accepted event. It carries no sequence number: it is not an
 *       answer to anything the master sent, and acks stay cumulative over EVENTs only.
 * Owns: encoding into a caller's msgpack_sbuffer and decoding from a byte stream.
 */
#ifndef EVENTSD_ENVELOPE_H
#define EVENTSD_ENVELOPE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_FLAG_PRIORITY 1u

typedef enum { ENVELOPE_EVENT = 1, ENVELOPE_ACK = 2, ENVELOPE_STOP = 3, ENVELOPE_EMIT = 4 }
    envelope_type_t;

typedef struct {
    envelope_type_t type;
    uint64_t    seq;
    uint32_t    flags;
    const char *tag;     size_t tag_len;       /* EVENT, EMIT: point into the reader's buffer, */
    const void *payload; size_t payload_len;   /* valid until the next envelope_reader_next */
    uint64_t    committed, rejected;           /* ACK */
} envelope_msg_t;

int envelope_pack_event(msgpack_sbuffer *out, uint64_t seq, uint32_t flags, const char *tag,
                        size_t tag_len, const void *payload, size_t payload_len);
int envelope_pack_ack(msgpack_sbuffer *out, uint64_t seq, uint64_t committed, uint64_t rejected);
int envelope_pack_stop(msgpack_sbuffer *out);
/* data: the msgpack bytes of the event's data map (not checked here: the master validates
 * them like any payload it accepts). */
int envelope_pack_emit(msgpack_sbuffer *out, const char *tag, size_t tag_len, const void *data,
                       size_t data_len);

typedef struct envelope_reader envelope_reader_t;

envelope_reader_t *envelope_reader_new(size_t max_message_bytes);
void envelope_reader_destroy(envelope_reader_t **self_p);

/* Reads what is available on fd (non-blocking or after poll said readable).
 * Returns bytes read, 0 on EOF, -1 on error (errno set; EAGAIN means nothing to read). */
ssize_t envelope_reader_fill(envelope_reader_t *self, int fd);

/* 1: *msg filled; 0: need more bytes; -1: protocol error (message in err). */
int envelope_reader_next(envelope_reader_t *self, envelope_msg_t *msg, char *err, size_t errlen);

#endif
