/* salt_frame: see salt_frame.h.
 *
 * The stream decoder keeps the bytes in a msgpack_unpacker and lets msgpack-c parse each
 * frame, but only once a scan of the token headers (payload_token) has shown that the whole
 * frame is buffered and how long it is. The scan needs no allocation and no stack (one
 * counter of objects still to read), so it can keep following a frame that is too large
 * while discarding its bytes: that is how an oversize frame is skipped with bounded memory,
 * and why msgpack-c never sees a declared count larger than the bytes that carry it. */
#include "salt_frame.h"

#include "payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZMQ_OLD_TAG_LEN 20           /* Salt <= 2014.7: tag '|'-padded to 20 bytes */
#define MAX_FRAME_KEYS 16            /* Salt sends 2 (head, body); more means desync */
#define MAX_PENDING (UINT64_C(1) << 40)  /* bounds the scan counter: overflow is impossible */

struct salt_stream_decoder {
    msgpack_unpacker unpacker;   /* buffer; unpacker.off is where the current frame starts
                                    (or, while skipping, the first byte not yet discarded) */
    size_t   max_event_bytes;
    int      max_depth;
    uint64_t scan_pos;           /* frame bytes accounted for by the scan (next header) */
    uint64_t pending;            /* objects still to read before the frame ends */
    uint64_t dropped;            /* frame bytes already discarded (skipping only) */
    bool     started;            /* the frame's first header was seen */
    bool     skipping;           /* discarding an oversize frame */
    bool     fatal;              /* desynchronised: only reset() helps */
};

typedef enum { SCAN_DONE, SCAN_MORE, SCAN_BIG, SCAN_BAD } scan_result_t;

void salt_event_free(salt_event_t *ev)
{
    if (!ev)
        return;
    free(ev->tag);
    free(ev->payload);
    memset(ev, 0, sizeof *ev);
}

/* ---------------------------------------------------------------- event building */

/* Validates the payload (a malformed event never leaves this module) and copies tag and
 * payload into out. */
static salt_frame_result_t make_event(salt_event_t *out, const void *tag, size_t tag_len,
                                      const void *payload, size_t payload_len, int max_depth,
                                      char *err, size_t errlen)
{
    if (memchr(tag, '\0', tag_len)) {
        snprintf(err, errlen, "tag contains a NUL byte");
        return SALT_FRAME_MALFORMED;
    }
    char why[160];
    payload_t *check = payload_new(payload, payload_len, true, max_depth, why, sizeof why);
    if (!check) {
        snprintf(err, errlen, "bad payload: %s", why);
        return SALT_FRAME_MALFORMED;
    }
    payload_destroy(&check);
    out->tag = strndup(tag, tag_len);
    out->payload = malloc(payload_len);
    if (!out->tag || !out->payload) {
        salt_event_free(out);
        snprintf(err, errlen, "out of memory");
        return SALT_FRAME_MALFORMED;
    }
    memcpy(out->payload, payload, payload_len);
    out->tag_len = tag_len;
    out->payload_len = payload_len;
    return SALT_FRAME_OK;
}

/* body = tag "\n\n" msgpack; the FIRST separator counts, payload strings may hold "\n\n". */
static salt_frame_result_t split_body(salt_event_t *out, const char *body, size_t len,
                                      int max_depth, char *err, size_t errlen)
{
    const char *sep = len >= 2 ? memmem(body, len, "\n\n", 2) : NULL;
    if (!sep) {
        snprintf(err, errlen, "body has no \"\\n\\n\" after the tag");
        return SALT_FRAME_MALFORMED;
    }
    size_t tag_len = (size_t) (sep - body);
    return make_event(out, body, tag_len, sep + 2, len - tag_len - 2, max_depth, err, errlen);
}

/* ---------------------------------------------------------------- stream decoder */

salt_stream_decoder_t *salt_stream_decoder_new(size_t max_event_bytes, int max_depth)
{
    salt_stream_decoder_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (!msgpack_unpacker_init(&self->unpacker, MSGPACK_UNPACKER_INIT_BUFFER_SIZE)) {
        free(self);
        return NULL;
    }
    self->max_event_bytes = max_event_bytes ? max_event_bytes
                                            : SALT_FRAME_DEFAULT_MAX_EVENT_BYTES;
    self->max_depth = max_depth;
    self->pending = 1;
    return self;
}

void salt_stream_decoder_destroy(salt_stream_decoder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    msgpack_unpacker_destroy(&(*self_p)->unpacker);
    free(*self_p);
    *self_p = NULL;
}

int salt_stream_decoder_feed(salt_stream_decoder_t *self, const void *bytes, size_t len)
{
    if (len == 0 || self->fatal)   /* bytes of a desynchronised stream are worthless */
        return 0;
    if (!msgpack_unpacker_reserve_buffer(&self->unpacker, len))
        return -1;
    memcpy(msgpack_unpacker_buffer(&self->unpacker), bytes, len);
    msgpack_unpacker_buffer_consumed(&self->unpacker, len);
    return 0;
}

size_t salt_stream_decoder_buffered(const salt_stream_decoder_t *self)
{
    return self->unpacker.used - self->unpacker.off;
}

static void frame_state_clear(salt_stream_decoder_t *self)
{
    self->scan_pos = 0;
    self->pending = 1;
    self->dropped = 0;
    self->started = false;
    self->skipping = false;
}

/* msgpack-c has no "skip n buffered bytes" call; its unpacker struct is public and off is
 * the read position, so moving it (with the parser context reset) is the skip. */
static void discard(salt_stream_decoder_t *self, size_t n)
{
    self->unpacker.off += n;
    msgpack_unpacker_reset(&self->unpacker);
}

void salt_stream_decoder_reset(salt_stream_decoder_t *self)
{
    discard(self, salt_stream_decoder_buffered(self));
    frame_state_clear(self);
    self->fatal = false;
}

/* A frame must be a small map: anything else means we are not at a frame boundary. */
static bool plausible_frame_start(const payload_token_t *t)
{
    return t->is_map && t->items <= 2 * MAX_FRAME_KEYS;
}

/* Follows token headers from scan_pos until the frame ends or the buffer runs out. */
static scan_result_t scan(salt_stream_decoder_t *self)
{
    const uint8_t *base = (const uint8_t *) self->unpacker.buffer + self->unpacker.off;
    size_t avail = salt_stream_decoder_buffered(self);
    for (;;) {
        uint64_t rel = self->scan_pos - self->dropped;
        if (rel > avail)
            return SCAN_MORE;
        if (self->pending == 0)
            return SCAN_DONE;
        payload_token_t t;
        int r = payload_token(base + rel, avail - rel, &t);
        if (r == 0)
            return SCAN_MORE;
        if (r < 0 || (!self->started && !plausible_frame_start(&t)))
            return SCAN_BAD;
        /* more items than a whole frame may hold bytes: garbage, not a big event */
        if (t.items > self->max_event_bytes)
            return SCAN_BAD;
        self->started = true;
        self->scan_pos += t.head_len + t.skip_len;
        self->pending = self->pending - 1 + t.items;
        if (self->pending > MAX_PENDING)
            return SCAN_BAD;
        /* every pending object takes at least one byte: too big is known early */
        if (!self->skipping && self->scan_pos + self->pending > self->max_event_bytes)
            return SCAN_BIG;
    }
}

/* Skipping an oversize frame: drop every byte the scan has accounted for, keeping only a
 * partial header, so the buffer never holds more than one read of it. */
static void drop_scanned(salt_stream_decoder_t *self)
{
    uint64_t rel = self->scan_pos - self->dropped;
    size_t avail = salt_stream_decoder_buffered(self);
    size_t n = rel < avail ? (size_t) rel : avail;
    discard(self, n);
    self->dropped += n;
}

/* The frame [off, off + scan_pos) is complete: msgpack-c parses it, then it is unpacked. */
static salt_frame_result_t take_frame(salt_stream_decoder_t *self, salt_event_t *out,
                                      char *err, size_t errlen);

salt_frame_result_t salt_stream_decoder_next(salt_stream_decoder_t *self, salt_event_t *out,
                                             char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    for (;;) {
        if (self->fatal) {
            snprintf(err, errlen, "stream is not Salt msgpack frames; reconnect");
            return SALT_FRAME_FATAL;
        }
        scan_result_t s = scan(self);
        if (self->skipping) {
            drop_scanned(self);
            if (s == SCAN_DONE) {
                frame_state_clear(self);
                continue;
            }
        }
        switch (s) {
        case SCAN_MORE:
            return SALT_FRAME_NEED_MORE;
        case SCAN_BAD:
            self->fatal = true;
            continue;
        case SCAN_BIG:
            snprintf(err, errlen, "frame of at least %llu bytes exceeds max_event_bytes %zu",
                     (unsigned long long) self->scan_pos, self->max_event_bytes);
            self->skipping = true;
            drop_scanned(self);
            return SALT_FRAME_OVERSIZE;
        case SCAN_DONE:
            return take_frame(self, out, err, errlen);
        }
    }
}

/* ---------------------------------------------------------------- frame contents */

static const msgpack_object *frame_field(const msgpack_object *frame, const char *name)
{
    for (uint32_t i = 0; i < frame->via.map.size; i++)
        if (payload_str_equals(&frame->via.map.ptr[i].key, name))
            return &frame->via.map.ptr[i].val;
    return NULL;
}

/* {"head": map, "body": bin|str} in any key order; Salt ignores head, so may we, but a
 * head that is not a map means this is not a Salt frame. */
static salt_frame_result_t unpack_frame(const msgpack_object *frame, int max_depth,
                                        salt_event_t *out, char *err, size_t errlen)
{
    const msgpack_object *head = frame_field(frame, "head");
    const msgpack_object *body = frame_field(frame, "body");
    if (head && head->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "frame head is not a map");
        return SALT_FRAME_MALFORMED;
    }
    if (!body) {
        snprintf(err, errlen, "frame has no body");
        return SALT_FRAME_MALFORMED;
    }
    if (body->type == MSGPACK_OBJECT_BIN)
        return split_body(out, body->via.bin.ptr, body->via.bin.size, max_depth, err, errlen);
    if (body->type == MSGPACK_OBJECT_STR)
        return split_body(out, body->via.str.ptr, body->via.str.size, max_depth, err, errlen);
    snprintf(err, errlen, "frame body is neither bin nor str");
    return SALT_FRAME_MALFORMED;
}

static salt_frame_result_t take_frame(salt_stream_decoder_t *self, salt_event_t *out,
                                      char *err, size_t errlen)
{
    size_t frame_len = (size_t) self->scan_pos;
    size_t frame_end = self->unpacker.off + frame_len;
    frame_state_clear(self);
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    msgpack_unpack_return rc = msgpack_unpacker_next(&self->unpacker, &result);
    salt_frame_result_t ret;
    if (rc != MSGPACK_UNPACK_SUCCESS || self->unpacker.off != frame_end) {
        /* msgpack-c's nesting limit (32) is the only thing the scan does not check */
        snprintf(err, errlen, "msgpack-c refused a %zu-byte frame (rc %d)", frame_len, (int) rc);
        self->unpacker.off = frame_end;
        msgpack_unpacker_reset(&self->unpacker);
        msgpack_unpacker_reset_zone(&self->unpacker);
        ret = SALT_FRAME_MALFORMED;
    } else
        ret = unpack_frame(&result.data, self->max_depth, out, err, errlen);
    msgpack_unpacked_destroy(&result);
    return ret;
}

/* ---------------------------------------------------------------- ZeroMQ era */

/* Salt <= 2014.7 put a short tag in 20 '|'-padded bytes and msgpack right after it. */
static salt_frame_result_t decode_old_form(const uint8_t *p, size_t len, int max_depth,
                                           salt_event_t *out, char *err, size_t errlen)
{
    size_t tag_len = ZMQ_OLD_TAG_LEN;
    while (tag_len > 0 && p[tag_len - 1] == '|')
        tag_len--;
    return make_event(out, p, tag_len, p + ZMQ_OLD_TAG_LEN, len - ZMQ_OLD_TAG_LEN, max_depth,
                      err, errlen);
}

salt_frame_result_t salt_zmq_decode(const void *msg, size_t len, size_t max_event_bytes,
                                    int max_depth, salt_event_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!max_event_bytes)
        max_event_bytes = SALT_FRAME_DEFAULT_MAX_EVENT_BYTES;
    if (len > max_event_bytes) {
        snprintf(err, errlen, "message of %zu bytes exceeds max_event_bytes %zu", len,
                 max_event_bytes);
        return SALT_FRAME_OVERSIZE;
    }
    const uint8_t *p = msg;
    const uint8_t *sep = len >= 2 ? memmem(p, len, "\n\n", 2) : NULL;
    /* Salt's own test was "byte 20 >= 0x80"; a tag of <= 18 bytes followed by "\n\n" also
     * passes it, so a separator inside the first 20 bytes decides for the new form. */
    bool sep_in_pad = sep && (size_t) (sep - p) + 2 <= ZMQ_OLD_TAG_LEN;
    if (len > ZMQ_OLD_TAG_LEN && p[ZMQ_OLD_TAG_LEN] >= 0x80 && !sep_in_pad) {
        salt_frame_result_t r = decode_old_form(p, len, max_depth, out, err, errlen);
        if (r == SALT_FRAME_OK || !sep)
            return r;
    }
    if (!sep) {
        snprintf(err, errlen, "message has no \"\\n\\n\" after the tag");
        return SALT_FRAME_MALFORMED;
    }
    return split_body(out, (const char *) p, len, max_depth, err, errlen);
}

/* ---------------------------------------------------------------- encoders */

/* The decoders could not split what these would write, so refuse it up front. */
static bool encodable(const char *tag, const void *payload, size_t payload_len)
{
    char err[128];
    if (!tag || strstr(tag, "\n\n") || !payload)
        return false;
    payload_t *check = payload_new(payload, payload_len, true, 0, err, sizeof err);
    bool ok = check != NULL;
    payload_destroy(&check);
    return ok;
}

/* "tag\n\n" + payload splits back at the FIRST "\n\n": a tag ending in '\n' would make it
 * one byte early (tag "a\n" decodes as "a" with a payload starting "\n"). */
static bool ends_in_newline(const char *tag, size_t tag_len)
{
    return tag_len > 0 && tag[tag_len - 1] == '\n';
}

/* salt_zmq_decode tries the 20-byte padded form first when byte 20 is >= 0x80 and the
 * first "\n\n" does not end within those 20 bytes, so a "tag\n\n" message whose tag is
 * longer than 20 bytes with such a byte at 20 decodes wrongly if the bytes from 20 on happen
 * to be one valid map. (Shorter tags are safe: byte 20 is then '\n' or the separator lies in
 * the first 20 bytes.) Checked at the largest depth, so no decoder's max_depth can make it
 * validate where this check did not. */
static bool old_form_would_win(const uint8_t *msg, size_t len, size_t tag_len)
{
    if (tag_len <= ZMQ_OLD_TAG_LEN || msg[ZMQ_OLD_TAG_LEN] < 0x80)
        return false;
    char err[128];
    payload_t *check = payload_new(msg + ZMQ_OLD_TAG_LEN, len - ZMQ_OLD_TAG_LEN, true,
                                   PAYLOAD_MSGPACK_MAX_DEPTH, err, sizeof err);
    bool wins = check != NULL;
    payload_destroy(&check);
    return wins;
}

int salt_frame_encode_stream(msgpack_sbuffer *out, const char *tag, const void *payload,
                             size_t payload_len)
{
    if (!encodable(tag, payload, payload_len))
        return -1;
    size_t tag_len = strlen(tag);
    if (ends_in_newline(tag, tag_len))
        return -1;
    size_t mark = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    /* byte for byte what Salt 3006/3007 send: {"head": {}, "body": bin} */
    int rc = msgpack_pack_map(&pk, 2) | msgpack_pack_str(&pk, 4) |
             msgpack_pack_str_body(&pk, "head", 4) | msgpack_pack_map(&pk, 0) |
             msgpack_pack_str(&pk, 4) | msgpack_pack_str_body(&pk, "body", 4) |
             msgpack_pack_bin(&pk, tag_len + 2 + payload_len);
    if (rc == 0 && tag_len)
        rc = msgpack_pack_bin_body(&pk, tag, tag_len);
    if (rc == 0)
        rc = msgpack_pack_bin_body(&pk, "\n\n", 2) |
             msgpack_pack_bin_body(&pk, payload, payload_len);
    if (rc != 0)
        out->size = mark;   /* no half frame left behind */
    return rc ? -1 : 0;
}

static int write_parts(msgpack_sbuffer *out, const char *tag, size_t tag_len, const char *mid,
                       size_t mid_len, const void *payload, size_t payload_len)
{
    size_t mark = out->size;
    if ((tag_len && msgpack_sbuffer_write(out, tag, tag_len) < 0) ||
        (mid_len && msgpack_sbuffer_write(out, mid, mid_len) < 0) ||
        msgpack_sbuffer_write(out, payload, payload_len) < 0) {
        out->size = mark;
        return -1;
    }
    return 0;
}

int salt_frame_encode_zmq(msgpack_sbuffer *out, salt_zmq_style_t style, const char *tag,
                          const void *payload, size_t payload_len)
{
    if (!encodable(tag, payload, payload_len))
        return -1;
    size_t tag_len = strlen(tag);
    if (style == SALT_ZMQ_2015 || tag_len > ZMQ_OLD_TAG_LEN) {
        if (ends_in_newline(tag, tag_len))
            return -1;
        size_t mark = out->size;
        if (write_parts(out, tag, tag_len, "\n\n", 2, payload, payload_len) != 0)
            return -1;
        if (old_form_would_win((const uint8_t *) out->data + mark, out->size - mark, tag_len)) {
            out->size = mark;
            return -1;
        }
        return 0;
    }
    if (tag_len > 0 && tag[tag_len - 1] == '|')
        return -1;   /* the padding would swallow it: the decoder strips trailing '|' */
    char pad[ZMQ_OLD_TAG_LEN];
    memset(pad, '|', sizeof pad);
    return write_parts(out, tag, tag_len, pad, ZMQ_OLD_TAG_LEN - tag_len, payload, payload_len);
}
