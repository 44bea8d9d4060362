/* salt_frame: the Salt master event bus wire formats, both directions.
 *
 * Owns: splitting a byte stream from master_event_pub.ipc (Salt 2016.3+, also TCP with
 * ipc_mode: tcp) into events; decoding one ZeroMQ-era message (Salt <= 2015.8, both the
 * "tag\n\n"+msgpack form and the older 20-byte '|'-padded tag form); and encoding both
 * (used by eventsd-pub and the tests). Every decoded payload is validated with
 * payload_new(require_map=true, max_depth) so that a malformed event never leaves this module.
 * Does not own: sockets, reconnects (daemon/bus), JSON rendering (payload).
 *
 * Stream framing: concatenated msgpack maps {"head": {...}, "body": <bin|str|raw>} with no
 * length prefix, keys in any order; body = tag bytes, "\n\n", msgpack(data); split at the
 * FIRST "\n\n".
 *
 * How the stream decoder bounds memory and resynchronises (implementation notes):
 *   - Before msgpack-c parses anything, the token headers of the frame are scanned
 *     (payload_token; a counter of objects still to read, no allocation). A frame is handed
 *     to msgpack_unpacker_next only when it is completely buffered, so its length is known.
 *   - As soon as the scan shows the frame is longer than max_event_bytes (usually at the body's
 *     bin header, before the body arrives), next() returns OVERSIZE once and the decoder goes on
 *     following the frame's headers while discarding its bytes; the following frame decodes
 *     normally. The buffer therefore never holds more than max_event_bytes plus what one
 *     feed() added (feed then drain with next() until NEED_MORE).
 *   - A frame that does not start with a small map (<= 16 keys), the byte 0xc1, or a container
 *     declaring more items than max_event_bytes means the stream is not at a frame boundary:
 *     FATAL, and every later next() returns FATAL (and feed() discards) until
 *     salt_stream_decoder_reset().
 *   - A complete frame whose contents are wrong (head not a map, no body, body not bin/str,
 *     no "\n\n", tag with NUL, payload not a valid map within max_depth, or nesting over
 *     msgpack-c's own limit of 32) is MALFORMED and skipped; decoding continues after it.
 *   - max_event_bytes 0 means SALT_FRAME_DEFAULT_MAX_EVENT_BYTES (also for salt_zmq_decode).
 * ZeroMQ-era decoding: a "\n\n" within the first 20 bytes selects the "tag\n\n" form;
 * otherwise byte 20 >= 0x80 selects the 20-byte '|'-padded form (trailing '|' stripped from
 * the tag), falling back to the first "\n\n" if that payload does not validate.
 * Encoders refuse (-1) what the decoders could not give back unchanged: tags containing
 * "\n\n", payloads that are not one valid msgpack map, tags ending in '\n' in every
 * "tag\n\n" form (the separator would be found one byte early), for SALT_ZMQ_2014 tags of
 * <= 20 bytes ending in '|' (the padding would eat them), and for the ZeroMQ "tag\n\n" form
 * a message whose bytes from offset 20 (a tag byte >= 0x80 there) form a valid map, which
 * the decoder would take for the padded form.
 */
#ifndef EVENTSD_SALT_FRAME_H
#define EVENTSD_SALT_FRAME_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One decoded event. Owned by whoever received it from a decoder; free with salt_event_free. */
typedef struct {
    char    *tag;          /* NUL-terminated copy of the tag (tags never contain NUL) */
    size_t   tag_len;
    uint8_t *payload;      /* msgpack bytes of the data map, exactly as on the wire */
    size_t   payload_len;
} salt_event_t;

void salt_event_free(salt_event_t *ev);   /* frees members and zeroes them; ev itself not freed */

typedef enum {
    SALT_FRAME_OK = 0,       /* *out filled */
    SALT_FRAME_NEED_MORE,    /* stream: no complete frame buffered yet */
    SALT_FRAME_MALFORMED,    /* one frame skipped; err says why; caller counts and continues */
    SALT_FRAME_OVERSIZE,     /* frame larger than max_event_bytes: skipped (stream: the
                                decoder resynchronises by discarding the frame) */
    SALT_FRAME_FATAL         /* stream cannot be resynchronised (garbage that is not msgpack):
                                caller must drop the connection and reconnect */
} salt_frame_result_t;

typedef struct salt_stream_decoder salt_stream_decoder_t;

#define SALT_FRAME_DEFAULT_MAX_EVENT_BYTES ((size_t) 16 << 20)   /* used when 0 is passed */

/* max_event_bytes bounds one frame; max_depth bounds payload nesting. */
salt_stream_decoder_t *salt_stream_decoder_new(size_t max_event_bytes, int max_depth);
void salt_stream_decoder_destroy(salt_stream_decoder_t **self_p);

/* Appends bytes read from the socket (any split: half a frame, several frames). */
int salt_stream_decoder_feed(salt_stream_decoder_t *self, const void *bytes, size_t len);

/* Takes the next event out of what was fed. Call until it returns NEED_MORE (or FATAL). */
salt_frame_result_t salt_stream_decoder_next(salt_stream_decoder_t *self, salt_event_t *out,
                                             char *err, size_t errlen);

/* Forgets buffered bytes (after a reconnect). */
void salt_stream_decoder_reset(salt_stream_decoder_t *self);

/* Bytes currently buffered (for tests and stats). */
size_t salt_stream_decoder_buffered(const salt_stream_decoder_t *self);

/* Decodes one ZeroMQ-era single-part message (either form). */
salt_frame_result_t salt_zmq_decode(const void *msg, size_t len, size_t max_event_bytes,
                                    int max_depth, salt_event_t *out, char *err, size_t errlen);

typedef enum {
    SALT_ZMQ_2015,   /* tag "\n\n" msgpack */
    SALT_ZMQ_2014    /* tag <= 20 bytes: '|'-padded to 20, no separator; else tag "\n\n" msgpack */
} salt_zmq_style_t;

/* Encoders append to out. payload must be msgpack bytes of a map. Return 0 or -1. */
int salt_frame_encode_stream(msgpack_sbuffer *out, const char *tag, const void *payload,
                             size_t payload_len);
int salt_frame_encode_zmq(msgpack_sbuffer *out, salt_zmq_style_t style, const char *tag,
                          const void *payload, size_t payload_len);

#endif
