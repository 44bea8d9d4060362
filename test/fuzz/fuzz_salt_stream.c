/* libFuzzer harness: the unix-stream frame decoder (Salt >= 2016.3) in proto/salt_frame.c.
 *
 * Input: a byte stream as read from master_event_pub.ipc. When the first byte can start a
 * frame (a msgpack map), the whole input is the stream and the daemon's default limits apply,
 * so Salt captures work as seeds as they are. Otherwise the first three bytes are control:
 * byte 0 picks the limits (fuzz_limits: default or smallest max_event_bytes, max_depth
 * 2..32), bytes 1-2 seed the chunk sizes, and the rest is the stream.
 *
 * The stream is decoded twice: fed in one piece, and fed in pseudo-random chunks (1 byte to a
 * whole 256 KiB read) chosen from the first bytes of the input, draining with next() after
 * every feed as daemon/bus.c does. Checked, beyond "no crash, no leak":
 *   - both runs give the same results and the same events up to the first FATAL: where
 *     read() splits the stream must not matter;
 *   - every OK event has a NUL-free tag and a payload that is one msgpack map within
 *     max_depth; every other result says why and leaves the event empty;
 *   - after draining, the decoder holds at most max_event_bytes (+ a partial token header):
 *     memory stays bounded whatever the stream;
 *   - re-encoding an OK event (salt_frame_encode_stream) decodes back to the same event.
 * After a FATAL the chunked run resets the decoder and goes on, as the daemon does after it
 * reconnects. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

typedef struct {
    salt_frame_result_t rc;
    salt_event_t        ev;   /* OK only */
} record_t;

typedef struct {
    record_t *r;
    size_t    n, cap;
} records_t;

typedef struct {
    size_t max_event_bytes;
    int    max_depth;
} limits_t;

static void records_free(records_t *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        salt_event_free(&rs->r[i].ev);
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

static void records_add(records_t *rs, salt_frame_result_t rc, salt_event_t *ev)
{
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 16;
        rs->r = realloc(rs->r, rs->cap * sizeof *rs->r);
        FUZZ_CHECK(rs->r, "out of memory");
    }
    rs->r[rs->n].rc = rc;
    rs->r[rs->n].ev = *ev;   /* takes ownership */
    memset(ev, 0, sizeof *ev);
    rs->n++;
}

static bool same_event(const salt_event_t *a, const salt_event_t *b)
{
    return a->tag_len == b->tag_len && a->payload_len == b->payload_len &&
           memcmp(a->tag, b->tag, a->tag_len) == 0 &&
           memcmp(a->payload, b->payload, a->payload_len) == 0;
}

static void check_event(const salt_event_t *ev, const limits_t *lim)
{
    FUZZ_CHECK(ev->tag && ev->payload, "OK without tag or payload");
    FUZZ_CHECK(strlen(ev->tag) == ev->tag_len, "tag_len %zu, strlen %zu", ev->tag_len,
               strlen(ev->tag));
    FUZZ_CHECK(ev->payload_len > 0 && ev->payload_len <= lim->max_event_bytes,
               "payload_len %zu", ev->payload_len);
    char why[160];
    payload_t *p = payload_new(ev->payload, ev->payload_len, true, lim->max_depth, why,
                               sizeof why);
    FUZZ_CHECK(p, "an OK event's payload does not validate: %s", why);
    payload_destroy(&p);
}

/* The event written back with the stream encoder decodes to itself. */
static void check_round_trip(const salt_event_t *ev, const limits_t *lim)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    int rc = salt_frame_encode_stream(&out, ev->tag, ev->payload, ev->payload_len);
    FUZZ_CHECK(rc == 0, "encoder refused a decoded event (tag '%s')", ev->tag);
    salt_stream_decoder_t *d = salt_stream_decoder_new(0, lim->max_depth);
    FUZZ_CHECK(d, "out of memory");
    FUZZ_CHECK(salt_stream_decoder_feed(d, out.data, out.size) == 0, "feed failed");
    salt_event_t back;
    char err[256] = "";
    salt_frame_result_t r = salt_stream_decoder_next(d, &back, err, sizeof err);
    FUZZ_CHECK(r == SALT_FRAME_OK, "re-encoded event does not decode (rc %d: %s)", (int) r, err);
    FUZZ_CHECK(same_event(ev, &back), "re-encoded event decodes differently");
    salt_event_free(&back);
    FUZZ_CHECK(salt_stream_decoder_next(d, &back, err, sizeof err) == SALT_FRAME_NEED_MORE,
               "re-encoded event leaves bytes behind");
    salt_stream_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&out);
}

typedef struct {
    const limits_t *lim;
    records_t      *want;      /* NULL: this run records; else it compares against want */
    records_t       got;
    size_t          compared;  /* results compared so far */
    bool            diverged;  /* past the first FATAL: no more comparing */
} run_t;

/* next() until NEED_MORE; returns false after a FATAL (the caller resets). */
static bool drain(salt_stream_decoder_t *d, run_t *run)
{
    for (;;) {
        salt_event_t ev;
        char err[256] = "";
        salt_frame_result_t r = salt_stream_decoder_next(d, &ev, err, sizeof err);
        FUZZ_CHECK(r >= SALT_FRAME_OK && r <= SALT_FRAME_FATAL, "result %d", (int) r);
        if (r == SALT_FRAME_NEED_MORE)
            return true;
        if (r == SALT_FRAME_OK)
            check_event(&ev, run->lim);
        else {
            FUZZ_CHECK(err[0] != '\0', "result %d without a reason", (int) r);
            FUZZ_CHECK(!ev.tag && !ev.payload, "result %d left an event behind", (int) r);
        }
        if (!run->diverged) {
            if (!run->want) {
                if (r == SALT_FRAME_OK)
                    check_round_trip(&ev, run->lim);
                records_add(&run->got, r, &ev);
            } else {
                FUZZ_CHECK(run->compared < run->want->n,
                           "chunked run has more results than the one-piece run (%zu)",
                           run->compared);
                const record_t *w = &run->want->r[run->compared++];
                FUZZ_CHECK(w->rc == r, "result %zu: chunked %d, one piece %d",
                           run->compared - 1, (int) r, (int) w->rc);
                FUZZ_CHECK(r != SALT_FRAME_OK || same_event(&w->ev, &ev),
                           "event %zu differs between chunked and one-piece runs",
                           run->compared - 1);
            }
            if (r == SALT_FRAME_FATAL)
                run->diverged = true;
        }
        salt_event_free(&ev);
        if (r == SALT_FRAME_FATAL)
            return false;
    }
}

static void check_bounded(const salt_stream_decoder_t *d, const limits_t *lim)
{
    /* an incomplete frame within the limit, plus at most one partial token header (9 bytes) */
    size_t b = salt_stream_decoder_buffered(d);
    FUZZ_CHECK(b <= lim->max_event_bytes + 16, "%zu bytes buffered after draining (limit %zu)",
               b, lim->max_event_bytes);
}

/* Chunk sizes: tiny (1-8), small (1-64), medium (1-4096) or one whole daemon read. */
static size_t next_chunk(uint64_t *seed)
{
    uint64_t r = fuzz_rng(seed);
    switch (r & 3) {
    case 0:  return 1 + (size_t) ((r >> 8) % 8);
    case 1:  return 1 + (size_t) ((r >> 8) % 64);
    case 2:  return 1 + (size_t) ((r >> 8) % 4096);
    default: return FUZZ_BUS_READ_CHUNK;
    }
}

static void run_stream(const uint8_t *s, size_t len, uint64_t *seed, run_t *run)
{
    salt_stream_decoder_t *d = salt_stream_decoder_new(run->lim->max_event_bytes,
                                                       run->lim->max_depth);
    FUZZ_CHECK(d, "out of memory");
    for (size_t off = 0; off < len;) {
        size_t n = seed ? next_chunk(seed) : len;
        if (n > len - off)
            n = len - off;
        FUZZ_CHECK(salt_stream_decoder_feed(d, s + off, n) == 0, "feed failed");
        off += n;
        if (drain(d, run))
            check_bounded(d, run->lim);
        else if (seed)
            salt_stream_decoder_reset(d);   /* the daemon reconnects and goes on */
        else
            break;
    }
    salt_stream_decoder_destroy(&d);
}

static bool frame_start(uint8_t b)
{
    return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    limits_t lim = { FUZZ_DEFAULT_MAX_EVENT_BYTES, FUZZ_DEFAULT_MAX_DEPTH };
    uint64_t seed;
    if (frame_start(data[0])) {
        /* a plain stream: chunking from its first bytes (FNV-1a) and its length */
        seed = 1469598103934665603u ^ size;
        for (size_t i = 0; i < size && i < 32; i++)
            seed = (seed ^ data[i]) * 1099511628211u;
    } else {
        if (size < 3)
            return 0;
        fuzz_limits(data[0], &lim.max_event_bytes, &lim.max_depth);
        seed = 0x9e3779b97f4a7c15u ^ ((uint64_t) data[1] << 8 | data[2]);
        data += 3;
        size -= 3;
    }
    if (seed == 0)
        seed = 1;   /* xorshift's one fixed point */

    run_t whole = { .lim = &lim };
    run_stream(data, size, NULL, &whole);
    run_t chunked = { .lim = &lim, .want = &whole.got };
    run_stream(data, size, &seed, &chunked);
    if (!chunked.diverged)
        FUZZ_CHECK(chunked.compared == whole.got.n,
                   "chunked run ended after %zu results, one-piece run had %zu",
                   chunked.compared, whole.got.n);
    records_free(&whole.got);
    return 0;
}
