/* libFuzzer harness: the ZeroMQ-era message decoder (Salt <= 2015.8) in proto/salt_frame.c.
 *
 * Input: records the way ../shared/fixtures/salt/frames-zmq-*.bin store them, so those
 * captures are seeds as they are: a 4-byte big-endian word, then that many bytes of one
 * message (cut short at the end of the input). The low 24 bits of the word are the length;
 * its top byte picks that message's limits (fuzz_limits; 0, as in the captures, is the
 * daemon's defaults). Trailing bytes too short for a word are one last message. The whole
 * input is also decoded as one message with the default limits.
 *
 * Checked, beyond "no crash, no leak": an OK event has a NUL-free tag and a payload that is
 * one msgpack map within max_depth and lies inside the message; other results say why and
 * leave the event empty; a message longer than max_event_bytes is OVERSIZE; and every
 * encoder that accepts a decoded event (2015 and 2014 ZeroMQ forms, stream form) writes bytes
 * that decode back to the same event. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static bool same_event(const salt_event_t *a, const salt_event_t *b)
{
    return a->tag_len == b->tag_len && a->payload_len == b->payload_len &&
           memcmp(a->tag, b->tag, a->tag_len) == 0 &&
           memcmp(a->payload, b->payload, a->payload_len) == 0;
}

static void check_event(const salt_event_t *ev, const uint8_t *msg, size_t len, int max_depth)
{
    FUZZ_CHECK(ev->tag && ev->payload, "OK without tag or payload");
    FUZZ_CHECK(strlen(ev->tag) == ev->tag_len, "tag_len %zu, strlen %zu", ev->tag_len,
               strlen(ev->tag));
    FUZZ_CHECK(ev->payload_len > 0 && ev->payload_len + ev->tag_len <= len,
               "tag %zu + payload %zu bytes from a %zu-byte message", ev->tag_len,
               ev->payload_len, len);
    /* the payload is the message's tail, exactly as on the wire */
    FUZZ_CHECK(memcmp(ev->payload, msg + len - ev->payload_len, ev->payload_len) == 0,
               "payload is not the end of the message");
    char why[160];
    payload_t *p = payload_new(ev->payload, ev->payload_len, true, max_depth, why, sizeof why);
    FUZZ_CHECK(p, "an OK event's payload does not validate: %s", why);
    payload_destroy(&p);
}

/* For failure messages: up to 48 bytes as hex. */
static const char *hex(const void *p, size_t n)
{
    static char buf[2][160];
    static int k;
    char *out = buf[k++ & 1];
    size_t o = 0;
    for (size_t i = 0; i < n && i < 48; i++)
        o += (size_t) snprintf(out + o, sizeof buf[0] - o, "%02x", ((const uint8_t *) p)[i]);
    snprintf(out + o, sizeof buf[0] - o, "%s", n > 48 ? "..." : "");
    return out;
}

/* style: 0 stream, 1 SALT_ZMQ_2015, 2 SALT_ZMQ_2014 */
static void check_round_trip(const salt_event_t *ev, int style, int max_depth)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    int rc = style == 0 ? salt_frame_encode_stream(&out, ev->tag, ev->payload, ev->payload_len)
                        : salt_frame_encode_zmq(&out, style == 1 ? SALT_ZMQ_2015 : SALT_ZMQ_2014,
                                                ev->tag, ev->payload, ev->payload_len);
    /* the encoders refuse only what salt_frame.h lists: in the padded 2014 form a short tag
     * ending in '|'; in every "tag\n\n" form a tag ending in '\n'; in the ZeroMQ "tag\n\n"
     * form a tag longer than 20 bytes with a byte >= 0x80 at 20 (when what follows would
     * pass for the padded form) */
    size_t n = ev->tag_len;
    bool padded = style == 2 && n <= 20;
    bool may_refuse = (padded && n > 0 && ev->tag[n - 1] == '|') ||
                      (!padded && n > 0 && ev->tag[n - 1] == '\n') ||
                      (style != 0 && n > 20 && (uint8_t) ev->tag[20] >= 0x80);
    FUZZ_CHECK(rc == 0 || may_refuse, "encoder style %d refused a decoded event (tag %s)", style,
               hex(ev->tag, n));
    if (rc != 0) {
        FUZZ_CHECK(out.size == 0, "encoder wrote %zu bytes and refused", out.size);
        msgpack_sbuffer_destroy(&out);
        return;
    }
    salt_event_t back;
    char err[256] = "";
    salt_frame_result_t r;
    if (style == 0) {
        salt_stream_decoder_t *d = salt_stream_decoder_new(0, max_depth);
        FUZZ_CHECK(d, "out of memory");
        FUZZ_CHECK(salt_stream_decoder_feed(d, out.data, out.size) == 0, "feed failed");
        r = salt_stream_decoder_next(d, &back, err, sizeof err);
        salt_stream_decoder_destroy(&d);
    } else
        r = salt_zmq_decode(out.data, out.size, 0, max_depth, &back, err, sizeof err);
    FUZZ_CHECK(r == SALT_FRAME_OK, "style %d: re-encoded event does not decode (rc %d: %s); "
               "tag %s payload %s", style, (int) r, err, hex(ev->tag, ev->tag_len),
               hex(ev->payload, ev->payload_len));
    FUZZ_CHECK(same_event(ev, &back), "style %d: re-encoded event decodes differently: "
               "tag %s became %s", style, hex(ev->tag, ev->tag_len), hex(back.tag, back.tag_len));
    salt_event_free(&back);
    msgpack_sbuffer_destroy(&out);
}

static void decode_one(const uint8_t *msg, size_t len, uint8_t ctl)
{
    size_t max_event_bytes;
    int max_depth;
    fuzz_limits(ctl, &max_event_bytes, &max_depth);
    salt_event_t ev;
    char err[256] = "";
    salt_frame_result_t r = salt_zmq_decode(msg, len, max_event_bytes, max_depth, &ev, err,
                                            sizeof err);
    FUZZ_CHECK(r == SALT_FRAME_OK || r == SALT_FRAME_MALFORMED || r == SALT_FRAME_OVERSIZE,
               "result %d", (int) r);
    FUZZ_CHECK((r == SALT_FRAME_OVERSIZE) == (len > max_event_bytes),
               "result %d for %zu bytes, limit %zu", (int) r, len, max_event_bytes);
    if (r != SALT_FRAME_OK) {
        FUZZ_CHECK(err[0] != '\0', "result %d without a reason", (int) r);
        FUZZ_CHECK(!ev.tag && !ev.payload, "result %d left an event behind", (int) r);
        return;
    }
    check_event(&ev, msg, len, max_depth);
    for (int style = 0; style < 3; style++)
        check_round_trip(&ev, style, max_depth);
    salt_event_free(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `len` bytes: ASan then catches a read past the message's end */
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy, "out of memory");
    memcpy(copy, data, size);
    decode_one(copy, size, 0);
    free(copy);

    size_t pos = 0;
    while (pos < size) {
        uint8_t ctl = 0;
        size_t len = size - pos;
        if (len >= 4) {
            uint32_t word = (uint32_t) data[pos] << 24 | (uint32_t) data[pos + 1] << 16 |
                            (uint32_t) data[pos + 2] << 8 | data[pos + 3];
            ctl = (uint8_t) (word >> 24);
            pos += 4;
            len = word & 0xffffff;
            if (len > size - pos)
                len = size - pos;
        }
        uint8_t *msg = malloc(len ? len : 1);
        FUZZ_CHECK(msg, "out of memory");
        memcpy(msg, data + pos, len);
        decode_one(msg, len, ctl);
        free(msg);
        pos += len;
    }
    return 0;
}
