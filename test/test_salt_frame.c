/* Unit tests for proto/salt_frame.c against Salt's own byte captures (fixtures/salt) and
 * hand-built hostile frames. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "salt_frame.h"

#define BIG_LIMIT ((size_t) 1 << 20)

/* ---------------------------------------------------------------- fixture loading */

typedef struct {
    uint8_t *data;
    size_t   len;
} blob_t;

static blob_t load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    blob_t b = { 0 };
    fseek(f, 0, SEEK_END);
    b.len = (size_t) ftell(f);
    fseek(f, 0, SEEK_SET);
    b.data = malloc(b.len + 1);
    cr_assert_eq(fread(b.data, 1, b.len, f), b.len);
    b.data[b.len] = '\0';
    fclose(f);
    return b;
}

typedef struct {
    char  *tag;
    char  *json;     /* the text of "data" exactly as Python's json.dumps wrote it */
    size_t offset;
    size_t length;
} expect_t;

/* Decodes the JSON string starting after its opening quote (tags here are plain; the
 * usual escapes are still handled so a failure message stays readable). */
static char *json_string(const char *p, const char **end)
{
    char *out = malloc(strlen(p) + 1);
    size_t n = 0;
    for (; *p && *p != '"'; p++) {
        if (*p != '\\') {
            out[n++] = *p;
            continue;
        }
        p++;
        out[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p;
    }
    out[n] = '\0';
    *end = p;
    return out;
}

static size_t load_jsonl(const char *name, expect_t **out)
{
    blob_t b = load(name);
    size_t cap = 64, n = 0;
    expect_t *ev = calloc(cap, sizeof *ev);
    char *save = NULL;
    for (char *line = strtok_r((char *) b.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        cr_assert_eq(strncmp(line, "{\"tag\": \"", 9), 0, "line %zu", n);
        if (n == cap)
            ev = realloc(ev, (cap *= 2) * sizeof *ev);
        const char *end;
        ev[n].tag = json_string(line + 9, &end);
        const char *data = strstr(end, "\"data\": ");
        cr_assert_not_null(data);
        data += 8;
        const char *tail = NULL;
        for (const char *s = data; (s = strstr(s, ", \"offset\": ")); s++)
            tail = s;   /* the LAST one: payloads may contain the same text */
        cr_assert_not_null(tail);
        ev[n].json = strndup(data, (size_t) (tail - data));
        cr_assert_eq(sscanf(tail, ", \"offset\": %zu, \"length\": %zu}", &ev[n].offset,
                            &ev[n].length), 2);
        n++;
    }
    free(b.data);
    *out = ev;
    return n;
}

static void free_expect(expect_t *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ev[i].tag);
        free(ev[i].json);
    }
    free(ev);
}

/* ---------------------------------------------------------------- event checks */

static char *payload_json(const salt_event_t *ev)
{
    char err[256];
    payload_t *p = payload_new(ev->payload, ev->payload_len, true, 0, err, sizeof err);
    cr_assert_not_null(p, "decoded payload does not reparse: %s", err);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    cr_assert_eq(payload_to_json(payload_root(p), &out), 0);
    char *s = strndup(out.data, out.size);
    msgpack_sbuffer_destroy(&out);
    payload_destroy(&p);
    return s;
}

static void expect_event(const salt_event_t *ev, const expect_t *want, size_t i)
{
    cr_assert_str_eq(ev->tag, want->tag, "event %zu", i);
    cr_assert_eq(ev->tag_len, strlen(want->tag), "event %zu", i);
    char *json = payload_json(ev);
    cr_assert_str_eq(json, want->json, "event %zu (%s)", i, want->tag);
    free(json);
}

/* ---------------------------------------------------------------- stream driver */

typedef struct {
    salt_event_t *ev;
    size_t        n, cap;
    size_t        counts[SALT_FRAME_FATAL + 1];
    salt_frame_result_t seq[64];   /* first results other than NEED_MORE, in order */
    size_t        nseq;
    size_t        max_buffered;    /* after draining */
} collect_t;

static void drain(salt_stream_decoder_t *d, collect_t *c)
{
    for (;;) {
        salt_event_t ev;
        char err[256] = "";
        salt_frame_result_t r = salt_stream_decoder_next(d, &ev, err, sizeof err);
        if (r == SALT_FRAME_NEED_MORE)
            break;
        c->counts[r]++;
        if (c->nseq < 64)
            c->seq[c->nseq++] = r;
        if (r != SALT_FRAME_OK)
            cr_assert_neq(err[0], '\0', "a non-OK result must say why");
        if (r == SALT_FRAME_FATAL) {
            salt_stream_decoder_reset(d);
            break;
        }
        if (r != SALT_FRAME_OK)
            continue;
        if (c->n == c->cap)
            c->ev = realloc(c->ev, (c->cap = c->cap ? 2 * c->cap : 64) * sizeof *c->ev);
        c->ev[c->n++] = ev;
    }
    size_t b = salt_stream_decoder_buffered(d);
    if (b > c->max_buffered)
        c->max_buffered = b;
}

/* Feeds buf in pieces of `chunk` bytes (0: all at once), draining after every feed. */
static void run_stream(const uint8_t *buf, size_t len, size_t chunk, size_t max_bytes,
                       int max_depth, collect_t *c)
{
    memset(c, 0, sizeof *c);
    salt_stream_decoder_t *d = salt_stream_decoder_new(max_bytes, max_depth);
    cr_assert_not_null(d);
    for (size_t off = 0; off < len;) {
        size_t n = chunk == 0 || chunk > len - off ? len - off : chunk;
        cr_assert_eq(salt_stream_decoder_feed(d, buf + off, n), 0);
        off += n;
        drain(d, c);
    }
    salt_stream_decoder_destroy(&d);
    cr_assert_null(d);
}

static void collect_free(collect_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        salt_event_free(&c->ev[i]);
    free(c->ev);
}

/* ---------------------------------------------------------------- fixtures: stream */

typedef struct {
    char   bin[32];
    char   jsonl[32];
    size_t chunk;
    size_t events;
} stream_param_t;

ParameterizedTestParameters(salt_stream, fixtures)
{
    static stream_param_t params[] = {
        { "frames-3006.bin", "frames-3006.jsonl", 0, 55 },
        { "frames-3006.bin", "frames-3006.jsonl", 1, 55 },
        { "frames-3006.bin", "frames-3006.jsonl", 7, 55 },
        { "frames-3006.bin", "frames-3006.jsonl", 977, 55 },
        { "frames-3007.bin", "frames-3007.jsonl", 0, 55 },
        { "frames-3007.bin", "frames-3007.jsonl", 1, 55 },
        { "frames-3007.bin", "frames-3007.jsonl", 7, 55 },
        { "frames-3007.bin", "frames-3007.jsonl", 977, 55 },
    };
    return cr_make_param_array(stream_param_t, params, sizeof params / sizeof params[0]);
}

ParameterizedTest(stream_param_t *p, salt_stream, fixtures)
{
    blob_t bin = load(p->bin);
    expect_t *want;
    size_t n = load_jsonl(p->jsonl, &want);
    cr_assert_eq(n, p->events);
    collect_t c;
    run_stream(bin.data, bin.len, p->chunk, BIG_LIMIT, PAYLOAD_DEFAULT_MAX_DEPTH, &c);
    cr_assert_eq(c.n, n, "%s chunk %zu: %zu events", p->bin, p->chunk, c.n);
    cr_assert_eq(c.n, c.counts[SALT_FRAME_OK], "no MALFORMED/OVERSIZE/FATAL in a capture");
    for (size_t i = 0; i < n; i++)
        expect_event(&c.ev[i], &want[i], i);
    collect_free(&c);
    free_expect(want, n);
    free(bin.data);
}

/* Our encoder writes what Salt 3006/3007 wrote, byte for byte. */
Test(salt_stream, encoder_reproduces_capture)
{
    blob_t bin = load("frames-3006.bin");
    expect_t *want;
    size_t n = load_jsonl("frames-3006.jsonl", &want);
    collect_t c;
    run_stream(bin.data, bin.len, 0, BIG_LIMIT, 0, &c);
    cr_assert_eq(c.n, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        cr_assert_eq(salt_frame_encode_stream(&out, c.ev[i].tag, c.ev[i].payload,
                                              c.ev[i].payload_len), 0);
        cr_assert_eq(out.size, want[i].length, "event %zu", i);
        cr_assert_eq(memcmp(out.data, bin.data + want[i].offset, out.size), 0, "event %zu", i);
        msgpack_sbuffer_destroy(&out);
    }
    collect_free(&c);
    free_expect(want, n);
    free(bin.data);
}

/* A limit below the 202 KB frame: that one frame is skipped, all others decode. */
Test(salt_stream, capture_with_small_limit_skips_only_the_big_frame)
{
    blob_t bin = load("frames-3006.bin");
    static const size_t chunks[] = { 0, 1, 977, 4096 };
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        collect_t c;
        run_stream(bin.data, bin.len, chunks[k], 65536, 0, &c);
        cr_expect_eq(c.n, 54, "chunk %zu", chunks[k]);
        cr_expect_eq(c.counts[SALT_FRAME_OVERSIZE], 1, "chunk %zu", chunks[k]);
        if (chunks[k])
            cr_expect_leq(c.max_buffered, 65536 + 16, "chunk %zu", chunks[k]);
        collect_free(&c);
    }
    free(bin.data);
}

/* ---------------------------------------------------------------- fixtures: ZeroMQ era */

typedef struct {
    char             bin[32];
    char             jsonl[32];
    size_t           events;
    salt_zmq_style_t style;
} zmq_param_t;

ParameterizedTestParameters(salt_zmq, fixtures)
{
    static zmq_param_t params[] = {
        { "frames-zmq-2015.bin", "frames-zmq-2015.jsonl", 23, SALT_ZMQ_2015 },
        { "frames-zmq-2014.bin", "frames-zmq-2014.jsonl", 15, SALT_ZMQ_2014 },
    };
    return cr_make_param_array(zmq_param_t, params, sizeof params / sizeof params[0]);
}

static size_t be32(const uint8_t *p)
{
    return (size_t) p[0] << 24 | (size_t) p[1] << 16 | (size_t) p[2] << 8 | p[3];
}

ParameterizedTest(zmq_param_t *p, salt_zmq, fixtures)
{
    blob_t bin = load(p->bin);
    expect_t *want;
    size_t n = load_jsonl(p->jsonl, &want);
    cr_assert_eq(n, p->events);
    size_t i = 0;
    for (size_t off = 0; off + 4 <= bin.len; i++) {
        size_t len = be32(bin.data + off);
        off += 4;
        cr_assert_leq(len, bin.len - off);
        cr_assert_lt(i, n);
        cr_assert_eq(off, want[i].offset);
        salt_event_t ev;
        char err[256] = "";
        cr_assert_eq(salt_zmq_decode(bin.data + off, len, BIG_LIMIT, 0, &ev, err, sizeof err),
                     SALT_FRAME_OK, "message %zu: %s", i, err);
        expect_event(&ev, &want[i], i);
        msgpack_sbuffer out;   /* and the encoder writes the same message back */
        msgpack_sbuffer_init(&out);
        cr_assert_eq(salt_frame_encode_zmq(&out, p->style, ev.tag, ev.payload, ev.payload_len), 0);
        cr_assert_eq(out.size, len, "message %zu", i);
        cr_assert_eq(memcmp(out.data, bin.data + off, len), 0, "message %zu", i);
        msgpack_sbuffer_destroy(&out);
        salt_event_free(&ev);
        cr_assert_null(ev.tag);
        off += len;
    }
    cr_assert_eq(i, n);
    free_expect(want, n);
    free(bin.data);
}

/* ---------------------------------------------------------------- hand-built frames */

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void pack_nested_maps(msgpack_packer *pk, int levels)
{
    for (int i = 0; i < levels; i++) {
        msgpack_pack_map(pk, 1);
        pack_str(pk, "k");
    }
    msgpack_pack_int(pk, 1);
}

/* msgpack of {"a": 1}, or a deeper map when depth > 1 */
static void payload_bytes(msgpack_sbuffer *out, int depth)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (depth > 1)
        pack_nested_maps(&pk, depth);
    else {
        msgpack_pack_map(&pk, 1);
        pack_str(&pk, "a");
        msgpack_pack_int(&pk, 1);
    }
}

typedef enum {
    F_GOOD, F_BODY_FIRST, F_BODY_STR, F_EXTRA_KEY, F_NO_HEAD, F_NO_SEP, F_BODY_ARRAY,
    F_HEAD_INT, F_BODY_INT, F_NO_BODY, F_TAG_NUL, F_DEEP_PAYLOAD, F_DEEP_HEAD, F_BAD_PAYLOAD,
    F_INT_KEYS
} frame_kind_t;

static void pack_body(msgpack_packer *pk, bool as_str, const char *tag, size_t tag_len,
                      const char *sep, const msgpack_sbuffer *payload)
{
    size_t n = tag_len + strlen(sep) + payload->size;
    if (as_str)
        msgpack_pack_str(pk, n);
    else
        msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, tag, tag_len);
    msgpack_pack_bin_body(pk, sep, strlen(sep));
    msgpack_pack_bin_body(pk, payload->data, payload->size);
}

static void build_frame(msgpack_sbuffer *out, frame_kind_t kind, const char *tag)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_sbuffer payload;
    payload_bytes(&payload, kind == F_DEEP_PAYLOAD ? 6 : 1);
    if (kind == F_BODY_ARRAY || kind == F_BAD_PAYLOAD) {
        msgpack_sbuffer_clear(&payload);
        msgpack_sbuffer_write(&payload, kind == F_BODY_ARRAY ? "\x91\x01" : "\x81\xa1", 2);
    }
    size_t keys = kind == F_EXTRA_KEY ? 3 : kind == F_NO_HEAD || kind == F_NO_BODY ? 1 : 2;
    msgpack_pack_map(&pk, keys);
    if (kind == F_EXTRA_KEY) {
        msgpack_pack_int(&pk, 7);
        pack_str(&pk, "ignored");
    }
    if (kind != F_NO_HEAD && kind != F_BODY_FIRST) {
        pack_str(&pk, "head");
        if (kind == F_HEAD_INT)
            msgpack_pack_int(&pk, 5);
        else if (kind == F_DEEP_HEAD)
            pack_nested_maps(&pk, 40);
        else
            msgpack_pack_map(&pk, 0);
    }
    if (kind != F_NO_BODY) {
        pack_str(&pk, "body");
        if (kind == F_BODY_INT)
            msgpack_pack_int(&pk, 3);
        else
            pack_body(&pk, kind == F_BODY_STR, tag, kind == F_TAG_NUL ? strlen(tag) + 1
                      : strlen(tag), kind == F_NO_SEP ? "\n" : "\n\n", &payload);
    }
    if (kind == F_BODY_FIRST) {
        pack_str(&pk, "head");
        msgpack_pack_map(&pk, 0);
    }
    msgpack_sbuffer_destroy(&payload);
}

typedef struct {
    frame_kind_t        kind;
    salt_frame_result_t result;
} frame_case_t;

static const frame_case_t frame_cases[] = {
    { F_GOOD, SALT_FRAME_OK },
    { F_BODY_FIRST, SALT_FRAME_OK },           /* Python 2 masters: any key order */
    { F_BODY_STR, SALT_FRAME_OK },             /* Python 2 masters: body is raw */
    { F_EXTRA_KEY, SALT_FRAME_OK },
    { F_NO_HEAD, SALT_FRAME_OK },              /* Salt itself never reads head */
    { F_NO_SEP, SALT_FRAME_MALFORMED },
    { F_BODY_ARRAY, SALT_FRAME_MALFORMED },
    { F_BAD_PAYLOAD, SALT_FRAME_MALFORMED },
    { F_HEAD_INT, SALT_FRAME_MALFORMED },
    { F_BODY_INT, SALT_FRAME_MALFORMED },
    { F_NO_BODY, SALT_FRAME_MALFORMED },
    { F_TAG_NUL, SALT_FRAME_MALFORMED },
    { F_DEEP_PAYLOAD, SALT_FRAME_MALFORMED },  /* 6 levels, decoder allows 4 */
    { F_DEEP_HEAD, SALT_FRAME_MALFORMED },     /* past msgpack-c's 32 */
};

/* Each case, followed by a good frame that must still decode, in several splits. */
Test(salt_stream, malformed_frames_are_skipped)
{
    static const size_t chunks[] = { 0, 1, 3, 64 };
    for (size_t i = 0; i < sizeof frame_cases / sizeof frame_cases[0]; i++) {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        build_frame(&buf, frame_cases[i].kind, "test/case");
        build_frame(&buf, F_GOOD, "test/after");
        for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
            collect_t c;
            run_stream((uint8_t *) buf.data, buf.size, chunks[k], 4096, 4, &c);
            cr_assert_geq(c.nseq, 2, "case %zu", i);
            cr_expect_eq(c.seq[0], frame_cases[i].result, "case %zu chunk %zu", i, chunks[k]);
            cr_expect_eq(c.seq[1], SALT_FRAME_OK, "case %zu chunk %zu", i, chunks[k]);
            cr_assert_gt(c.n, 0);
            cr_expect_str_eq(c.ev[c.n - 1].tag, "test/after", "case %zu", i);
            collect_free(&c);
        }
        msgpack_sbuffer_destroy(&buf);
    }
}

Test(salt_stream, truncated_frame_needs_more)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    build_frame(&buf, F_GOOD, "test/truncated");
    salt_stream_decoder_t *d = salt_stream_decoder_new(4096, 8);
    salt_event_t ev;
    char err[128];
    cr_assert_eq(salt_stream_decoder_next(d, &ev, err, sizeof err), SALT_FRAME_NEED_MORE);
    cr_assert_eq(salt_stream_decoder_feed(d, buf.data, buf.size - 1), 0);
    cr_expect_eq(salt_stream_decoder_next(d, &ev, err, sizeof err), SALT_FRAME_NEED_MORE);
    cr_expect_null(ev.tag);
    cr_expect_eq(salt_stream_decoder_buffered(d), buf.size - 1);
    salt_stream_decoder_reset(d);   /* a reconnect forgets the half frame */
    cr_expect_eq(salt_stream_decoder_buffered(d), 0);
    cr_assert_eq(salt_stream_decoder_feed(d, buf.data, buf.size), 0);
    cr_assert_eq(salt_stream_decoder_next(d, &ev, err, sizeof err), SALT_FRAME_OK);
    cr_expect_str_eq(ev.tag, "test/truncated");
    salt_event_free(&ev);
    cr_expect_eq(salt_stream_decoder_next(d, &ev, err, sizeof err), SALT_FRAME_NEED_MORE);
    cr_expect_eq(salt_stream_decoder_buffered(d), 0);
    salt_stream_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&buf);
}

typedef struct {
    const char *bytes;
    size_t      len;
} garbage_t;

static const garbage_t garbage_cases[] = {
    { "GET / HTTP/1.1\r\n\r\n", 18 },
    { "\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f", 10 },   /* a ZMTP greeting */
    { "\xc1\xc1\xc1", 3 },
    { "\x92\x01\x02", 3 },                                  /* msgpack, but not a map */
    { "\xdf\xff\xff\xff\xff", 5 },                          /* a map of 4G keys */
    { "\x81\xdd\xff\xff\xff\xff\xdd\xff\xff\xff\xff", 11 },
};

Test(salt_stream, garbage_is_fatal_until_reset)
{
    msgpack_sbuffer good;
    msgpack_sbuffer_init(&good);
    build_frame(&good, F_GOOD, "test/good");
    for (size_t i = 0; i < sizeof garbage_cases / sizeof garbage_cases[0]; i++) {
        salt_stream_decoder_t *d = salt_stream_decoder_new(1 << 30, 8);
        salt_event_t ev;
        char err[128];
        cr_assert_eq(salt_stream_decoder_feed(d, garbage_cases[i].bytes, garbage_cases[i].len), 0);
        cr_assert_eq(salt_stream_decoder_feed(d, good.data, good.size), 0);
        cr_expect_eq(salt_stream_decoder_next(d, &ev, err, sizeof err), SALT_FRAME_FATAL,
                     "case %zu", i);
        cr_expect_eq(salt_stream_decoder_next(d, &ev, err, sizeof err), SALT_FRAME_FATAL,
                     "case %zu: FATAL sticks", i);
        size_t before = salt_stream_decoder_buffered(d);
        cr_assert_eq(salt_stream_decoder_feed(d, good.data, good.size), 0);
        cr_expect_eq(salt_stream_decoder_buffered(d), before, "case %zu: no growth", i);
        salt_stream_decoder_reset(d);
        cr_assert_eq(salt_stream_decoder_feed(d, good.data, good.size), 0);
        cr_expect_eq(salt_stream_decoder_next(d, &ev, err, sizeof err), SALT_FRAME_OK);
        salt_event_free(&ev);
        salt_stream_decoder_destroy(&d);
    }
    msgpack_sbuffer_destroy(&good);
}

/* Oversize frames are skipped without buffering them: by a big body, and by a head whose
 * size is only known by walking it (no single length field gives it away). */
Test(salt_stream, oversize_frames_are_skipped_with_bounded_memory)
{
    const size_t limit = 1000;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    build_frame(&buf, F_GOOD, "test/one");
    msgpack_sbuffer big;   /* payload {"a": "x" * 5000} */
    msgpack_sbuffer_init(&big);
    msgpack_packer bp;
    msgpack_packer_init(&bp, &big, msgpack_sbuffer_write);
    msgpack_pack_map(&bp, 1);
    pack_str(&bp, "a");
    char *xs = malloc(5000);
    memset(xs, 'x', 5000);
    msgpack_pack_str_with_body(&bp, xs, 5000);
    free(xs);
    cr_assert_eq(salt_frame_encode_stream(&buf, "test/big", big.data, big.size), 0);
    build_frame(&buf, F_GOOD, "test/two");
    msgpack_pack_map(&pk, 2);   /* head: 900 short strings (2.7 KB), then a normal body */
    pack_str(&pk, "head");
    msgpack_pack_array(&pk, 900);
    for (int i = 0; i < 900; i++)
        pack_str(&pk, "ab");
    pack_str(&pk, "body");
    msgpack_pack_bin_with_body(&pk, "t\n\n\x80", 4);
    build_frame(&buf, F_GOOD, "test/three");
    msgpack_sbuffer_destroy(&big);

    static const size_t chunks[] = { 0, 1, 7, 977 };
    static const salt_frame_result_t want[] = { SALT_FRAME_OK, SALT_FRAME_OVERSIZE,
        SALT_FRAME_OK, SALT_FRAME_OVERSIZE, SALT_FRAME_OK };
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        collect_t c;
        run_stream((uint8_t *) buf.data, buf.size, chunks[k], limit, 8, &c);
        cr_assert_eq(c.nseq, 5, "chunk %zu", chunks[k]);
        for (size_t i = 0; i < 5; i++)
            cr_expect_eq(c.seq[i], want[i], "chunk %zu result %zu", chunks[k], i);
        cr_assert_eq(c.n, 3);
        cr_expect_str_eq(c.ev[2].tag, "test/three");
        if (chunks[k])
            cr_expect_leq(c.max_buffered, limit + 16, "chunk %zu", chunks[k]);
        collect_free(&c);
    }
    msgpack_sbuffer_destroy(&buf);
}

/* ---------------------------------------------------------------- ZeroMQ-era malformed */

typedef struct {
    const char         *bytes;
    size_t              len;
    salt_frame_result_t result;
    const char         *tag;
} zmq_case_t;

static const zmq_case_t zmq_cases[] = {
    { "salt/auth\n\n\x81\xa1" "a\x01", 15, SALT_FRAME_OK, "salt/auth" },
    { "salt/auth|||||||||||\x81\xa1" "a\x01", 24, SALT_FRAME_OK, "salt/auth" },
    { "20151118093012345678\x80", 21, SALT_FRAME_OK, "20151118093012345678" },
    { "app/deploy/started\n\n\x80", 21, SALT_FRAME_OK, "app/deploy/started" },
    { "||||||||||||||||||||\x80", 21, SALT_FRAME_OK, "" },
    { "no separator at all", 19, SALT_FRAME_MALFORMED, NULL },
    { "", 0, SALT_FRAME_MALFORMED, NULL },
    { "tag\n\n", 5, SALT_FRAME_MALFORMED, NULL },                  /* no payload */
    { "tag\n\n\x91\x01", 7, SALT_FRAME_MALFORMED, NULL },          /* not a map */
    { "tag\n\n\x81\xa1", 7, SALT_FRAME_MALFORMED, NULL },          /* truncated */
    { "tag\n\n\x80\x80", 7, SALT_FRAME_MALFORMED, NULL },          /* trailing */
    { "t\0g\n\n\x80", 6, SALT_FRAME_MALFORMED, NULL },             /* NUL in tag */
    { "salt/auth|||||||||||\x91\x01", 22, SALT_FRAME_MALFORMED, NULL },
    { "salt/auth|||||||||||\xdd\xff\xff\xff\xff", 25, SALT_FRAME_MALFORMED, NULL },
};

Test(salt_zmq, decode_table)
{
    for (size_t i = 0; i < sizeof zmq_cases / sizeof zmq_cases[0]; i++) {
        const zmq_case_t *c = &zmq_cases[i];
        salt_event_t ev;
        char err[128] = "";
        salt_frame_result_t r = salt_zmq_decode(c->bytes, c->len, 4096, 8, &ev, err, sizeof err);
        cr_expect_eq(r, c->result, "case %zu: %s", i, err);
        if (r == SALT_FRAME_OK && c->tag)
            cr_expect_str_eq(ev.tag, c->tag, "case %zu", i);
        if (r != SALT_FRAME_OK)
            cr_expect_null(ev.tag, "case %zu", i);
        salt_event_free(&ev);
    }
}

Test(salt_zmq, oversize)
{
    salt_event_t ev;
    char err[128];
    cr_expect_eq(salt_zmq_decode("salt/auth\n\n\x80", 12, 11, 8, &ev, err, sizeof err),
                 SALT_FRAME_OVERSIZE);
    cr_expect_eq(salt_zmq_decode("salt/auth\n\n\x80", 12, 12, 8, &ev, err, sizeof err),
                 SALT_FRAME_OK);
    salt_event_free(&ev);
}

/* ---------------------------------------------------------------- round trips */

static const char *const round_trip_tags[] = {
    "a", "salt/auth", "app/deploy/started", "salt/presence/chang", "20151118093012345678",
    "salt/presence/present", "salt/job/20251118095000000600/ret/db01.example.com",
    "custom/j\xc3\xbcrgen/\xe2\x9c\x93", "aaaaaaaaaaaaaaaaaaa\xc3\xbc/after", "",
    "salt/beacon/web01/inotify//etc/nginx/nginx.conf", "with|inside", "x\ny",
};

Test(salt_frame, encode_decode_round_trips)
{
    msgpack_sbuffer payload;
    payload_bytes(&payload, 3);
    for (size_t i = 0; i < sizeof round_trip_tags / sizeof round_trip_tags[0]; i++) {
        const char *tag = round_trip_tags[i];
        for (int style = 0; style < 3; style++) {
            msgpack_sbuffer out;
            msgpack_sbuffer_init(&out);
            int rc = style == 0 ? salt_frame_encode_stream(&out, tag, payload.data, payload.size)
                                : salt_frame_encode_zmq(&out, style == 1 ? SALT_ZMQ_2015
                                                        : SALT_ZMQ_2014, tag, payload.data,
                                                        payload.size);
            cr_assert_eq(rc, 0, "tag %zu style %d", i, style);
            salt_event_t ev;
            char err[128] = "";
            if (style == 0) {
                collect_t c;
                run_stream((uint8_t *) out.data, out.size, 1, 4096, 8, &c);
                cr_assert_eq(c.n, 1, "tag %zu", i);
                ev = c.ev[0];
                free(c.ev);
            } else
                cr_assert_eq(salt_zmq_decode(out.data, out.size, 4096, 8, &ev, err, sizeof err),
                             SALT_FRAME_OK, "tag %zu style %d: %s", i, style, err);
            cr_expect_str_eq(ev.tag, tag, "tag %zu style %d", i, style);
            cr_expect_eq(ev.payload_len, payload.size);
            cr_expect_eq(memcmp(ev.payload, payload.data, payload.size), 0);
            salt_event_free(&ev);
            msgpack_sbuffer_destroy(&out);
        }
    }
    msgpack_sbuffer_destroy(&payload);
}

Test(salt_frame, encoders_refuse_what_cannot_be_decoded)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    cr_expect_eq(salt_frame_encode_stream(&out, "a\n\nb", "\x80", 1), -1);
    cr_expect_eq(salt_frame_encode_stream(&out, "tag", "\x91\x01", 2), -1);
    cr_expect_eq(salt_frame_encode_stream(&out, "tag", "\x80", 0), -1);
    cr_expect_eq(salt_frame_encode_zmq(&out, SALT_ZMQ_2015, "a\n\nb", "\x80", 1), -1);
    cr_expect_eq(salt_frame_encode_zmq(&out, SALT_ZMQ_2014, "ends|", "\x80", 1), -1);
    cr_expect_eq(salt_frame_encode_zmq(&out, SALT_ZMQ_2014, "tag", "\x80\x80", 2), -1);
    cr_expect_eq(out.size, 0, "nothing written on refusal");
    cr_expect_eq(salt_frame_encode_zmq(&out, SALT_ZMQ_2015, "ends|", "\x80", 1), 0);
    msgpack_sbuffer_destroy(&out);
}

/* Tags the decoders would give back changed (found by test/fuzz/fuzz_salt_zmq's round-trip
 * check; seed salt_zmq/tag_ends_in_newline.bin): a tag ending in '\n' in any "tag\n\n" form,
 * and a long ZeroMQ tag whose bytes from offset 20 on, with the separator and the payload,
 * form a valid map (the decoder would take the message for the 20-byte padded form). An
 * accepted tag must decode back unchanged. */
typedef struct {
    int  style;      /* 0 stream, 1 SALT_ZMQ_2015, 2 SALT_ZMQ_2014 */
    char tag[48];
    int  rc;
} encode_case_t;

#define AMBIGUOUS_TAG "xxxxxxxxxxxxxxxxxxxx\x81\xa1" "a\xd9\x03"   /* + "\n\n\x80": {"a": "\n\n\x80"} */

static const encode_case_t encode_cases[] = {
    { 0, "app/deploy/started*\n", -1 },
    { 1, "app/deploy/started*\n", -1 },
    { 2, "app/deploy/started*\n", 0 },           /* padded form: the '\n' survives */
    { 2, "short\n", 0 },
    { 2, "salt/job/20151118093012345678/new\n", -1 },   /* long: "tag\n\n" form */
    { 0, "\n", -1 },
    { 1, "\n", -1 },
    { 0, "a\nb", 0 },
    { 1, "a\nb", 0 },
    { 0, AMBIGUOUS_TAG, 0 },                     /* the stream form is not ambiguous */
    { 1, AMBIGUOUS_TAG, -1 },
    { 2, AMBIGUOUS_TAG, -1 },
    { 1, "xxxxxxxxxxxxxxxxxxxx\x81\xa1" "a\xd9\x04", 0 },   /* not one map: fine */
    { 1, "aaaaaaaaaaaaaaaaaaa\xc3\xbc/after", 0 },
};

Test(salt_frame, encoder_refusal_table)
{
    for (size_t i = 0; i < sizeof encode_cases / sizeof encode_cases[0]; i++) {
        const encode_case_t *c = &encode_cases[i];
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        int rc = c->style == 0 ? salt_frame_encode_stream(&out, c->tag, "\x80", 1)
                               : salt_frame_encode_zmq(&out, c->style == 1 ? SALT_ZMQ_2015
                                                       : SALT_ZMQ_2014, c->tag, "\x80", 1);
        cr_expect_eq(rc, c->rc, "case %zu", i);
        if (rc != 0) {
            cr_expect_eq(out.size, 0, "case %zu: nothing written on refusal", i);
            msgpack_sbuffer_destroy(&out);
            continue;
        }
        salt_event_t ev;
        char err[128] = "";
        if (c->style == 0) {
            collect_t col;
            run_stream((uint8_t *) out.data, out.size, 0, 4096, 8, &col);
            cr_assert_eq(col.n, 1, "case %zu", i);
            ev = col.ev[0];
            free(col.ev);
        } else
            cr_assert_eq(salt_zmq_decode(out.data, out.size, 4096, 8, &ev, err, sizeof err),
                         SALT_FRAME_OK, "case %zu: %s", i, err);
        cr_expect_str_eq(ev.tag, c->tag, "case %zu", i);
        cr_expect_eq(ev.payload_len, 1, "case %zu", i);
        salt_event_free(&ev);
        msgpack_sbuffer_destroy(&out);
    }
}

/* ---------------------------------------------------------------- mutations */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mutate(uint8_t *p, size_t len)
{
    int flips = 1 + (int) (rng() % 4);
    for (int i = 0; i < flips; i++) {
        size_t at = rng() % len;
        p[at] = rng() % 2 ? (uint8_t) (p[at] ^ (1u << (rng() % 8))) : (uint8_t) rng();
    }
}

static size_t fuzz_totals[SALT_FRAME_FATAL + 1];

/* Decodes and renders whatever comes out: every OK event must be a valid map payload. */
static void consume(collect_t *c)
{
    for (int r = 0; r <= SALT_FRAME_FATAL; r++)
        fuzz_totals[r] += c->counts[r];
    for (size_t i = 0; i < c->n; i++) {
        char *json = payload_json(&c->ev[i]);
        free(json);
    }
    collect_free(c);
}

Test(salt_fuzz, stream_byte_flips_never_crash, .timeout = 300)
{
    blob_t bin = load("frames-3006.bin");
    /* drop the 202 KB frame (offset 6518, 202120 bytes) to keep 2000 runs quick */
    size_t cut = 6518, cut_len = 202120;
    size_t len = bin.len - cut_len;
    uint8_t *base = malloc(len), *work = malloc(len);
    memcpy(base, bin.data, cut);
    memcpy(base + cut, bin.data + cut + cut_len, bin.len - cut - cut_len);
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(work, base, len);
        mutate(work, len);
        size_t chunk = iter % 3 == 0 ? 0 : 1 + rng() % 2048;
        collect_t c;
        run_stream(work, len, chunk, iter % 2 ? 4096 : BIG_LIMIT, 16, &c);
        consume(&c);
    }
    for (int iter = 0; iter < 50; iter++) {   /* and the whole capture, big frame included */
        uint8_t *whole = malloc(bin.len);
        memcpy(whole, bin.data, bin.len);
        mutate(whole, bin.len);
        collect_t c;
        run_stream(whole, bin.len, 65536, BIG_LIMIT, 0, &c);
        consume(&c);
        free(whole);
    }
    free(base);
    free(work);
    free(bin.data);
    /* the mutations must reach every path, not just die on the first byte */
    cr_expect_gt(fuzz_totals[SALT_FRAME_OK], 2000 * 40);
    cr_expect_gt(fuzz_totals[SALT_FRAME_MALFORMED], 100);
    cr_expect_gt(fuzz_totals[SALT_FRAME_FATAL], 10);
    cr_log_info("fuzz: ok %zu malformed %zu oversize %zu fatal %zu",
                fuzz_totals[SALT_FRAME_OK], fuzz_totals[SALT_FRAME_MALFORMED],
                fuzz_totals[SALT_FRAME_OVERSIZE], fuzz_totals[SALT_FRAME_FATAL]);
}

Test(salt_fuzz, zmq_byte_flips_never_crash, .timeout = 300)
{
    static const char *const files[] = { "frames-zmq-2015.bin", "frames-zmq-2014.bin" };
    for (size_t f = 0; f < 2; f++) {
        blob_t bin = load(files[f]);
        for (int iter = 0; iter < 2000; iter++) {
            size_t off = 4, len = be32(bin.data), pick = rng() % 15;
            for (size_t r = 0; r < pick && off + len + 4 <= bin.len; r++) {
                off += len + 4;
                len = be32(bin.data + off - 4);
            }
            uint8_t *msg = malloc(len);
            memcpy(msg, bin.data + off, len);
            mutate(msg, len);
            size_t cut = iter % 5 == 0 ? rng() % (len + 1) : len;   /* truncations too */
            salt_event_t ev;
            char err[128];
            if (salt_zmq_decode(msg, cut, BIG_LIMIT, 16, &ev, err, sizeof err) == SALT_FRAME_OK) {
                free(payload_json(&ev));
                salt_event_free(&ev);
            }
            free(msg);
        }
        free(bin.data);
    }
}
