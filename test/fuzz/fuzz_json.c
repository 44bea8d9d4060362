/* libFuzzer harness: daemon/json_msgpack.c, JSON text to msgpack through SQLite's json_tree
 * (what `eventsd --explain TAG --data JSON` reads).
 *
 * Input: JSON text (a copy is NUL-terminated, so it ends at its first NUL, as a command-line
 * argument would). It is converted with json_to_msgpack, after a name already in the buffer
 * or into an empty one, with an error buffer of exactly errlen bytes (16 or 256: ASan sees an
 * overrun).
 *
 * Checked, beyond "no crash, no leak":
 * - a failure returns -1 with a terminated one-line reason that says "not valid JSON" or names
 *   SQLite or memory, and appends nothing;
 * - a success appends exactly one msgpack object (walked with payload_token, so any depth),
 *   which payload_new unpacks exactly when it nests no deeper than PAYLOAD_MSGPACK_MAX_DEPTH;
 * - the object is the input's value: a reference parser in this file (RFC 8259, SQLite's
 *   nesting limit of 2000) packs what json_msgpack.h promises (objects -> maps with str keys
 *   in input order, duplicates kept, arrays, integers int64, reals float64, strings their
 *   UTF-8 bytes with \u escapes decoded, a lone surrogate as its 3 bytes, true/false/null),
 *   and the bytes must be equal; the reference accepts exactly the inputs json_to_msgpack
 *   accepts;
 * - its JSON text (payload_to_json) converts again and renders to the same text: a fixed
 *   point after one round.
 *
 * Known problems (README.md), stepped around unless FUZZ_STRICT=1 is in the environment:
 * 5: "\u0000" in a string or key cuts it there; 6: an integer outside int64 is clamped to
 * INT64_MIN/INT64_MAX (strict expects a float64, as for a real); 7: a number beyond a double
 * becomes +-inf, rendered as Infinity, which does not convert back. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "json_msgpack.h"

#define SENTINEL       "<previous bytes>"
#define SENTINEL_LEN   (sizeof SENTINEL - 1)
#define SQLITE_JSON_MAX_DEPTH 2000   /* SQLite 3.40's JSON_MAX_DEPTH: json_valid refuses more */

static bool strict;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    const char *s = getenv("FUZZ_STRICT");
    strict = true;   /* the known problems are fixed; FUZZ_STRICT is kept for old notes */
    (void) s;
    return 0;
}

static void sb_put(msgpack_sbuffer *sb, const void *p, size_t n)
{
    if (n > 0)
        FUZZ_CHECK(msgpack_sbuffer_write(sb, p, n) == 0, "out of memory");
}

/* ---------------------------------------------------------------- reference parser */

typedef struct {
    const char     *p;
    size_t          n, i;
    int             depth;
    msgpack_packer  pk;
    msgpack_sbuffer sb;
    msgpack_sbuffer str;      /* a decoded string */
    bool            nul;      /* a decoded string or key holds a NUL (known problem 5) */
} ref_t;

static void ref_ws(ref_t *r)
{
    while (r->i < r->n && (r->p[r->i] == ' ' || r->p[r->i] == '\t' || r->p[r->i] == '\n' ||
                           r->p[r->i] == '\r'))
        r->i++;
}

static bool ref_lit(ref_t *r, const char *s)
{
    size_t k = strlen(s);
    if (r->n - r->i < k || memcmp(r->p + r->i, s, k) != 0)
        return false;
    r->i += k;
    return true;
}

static bool ref_hex4(ref_t *r, unsigned *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++, r->i++) {
        if (r->i >= r->n)
            return false;
        char c = r->p[r->i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned) (c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned) (c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned) (c - 'A' + 10) : 16;
        if (d == 16)
            return false;
        *v = *v << 4 | d;
    }
    return true;
}

static void put_utf8(msgpack_sbuffer *sb, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char) cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char) (0xc0 | cp >> 6);
        b[1] = (unsigned char) (0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {   /* a lone surrogate too: its 3 bytes, as SQLite writes it */
        b[0] = (unsigned char) (0xe0 | cp >> 12);
        b[1] = (unsigned char) (0x80 | (cp >> 6 & 0x3f));
        b[2] = (unsigned char) (0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char) (0xf0 | cp >> 18);
        b[1] = (unsigned char) (0x80 | (cp >> 12 & 0x3f));
        b[2] = (unsigned char) (0x80 | (cp >> 6 & 0x3f));
        b[3] = (unsigned char) (0x80 | (cp & 0x3f));
        n = 4;
    }
    sb_put(sb, b, n);
}

/* A string literal, decoded into r->str; then packed as str (cut at a NUL unless strict). */
static bool ref_string(ref_t *r)
{
    if (!ref_lit(r, "\""))
        return false;
    r->str.size = 0;
    for (;;) {
        if (r->i >= r->n)
            return false;
        unsigned char c = (unsigned char) r->p[r->i++];
        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c != '\\') {
            sb_put(&r->str, &c, 1);
            continue;
        }
        if (r->i >= r->n)
            return false;
        char e = r->p[r->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = e ? strchr(from, e) : NULL;
        if (at) {
            sb_put(&r->str, to + (at - from), 1);
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || !ref_hex4(r, &cp))
            return false;
        if (cp >= 0xd800 && cp <= 0xdbff && r->n - r->i >= 6 && r->p[r->i] == '\\' &&
            r->p[r->i + 1] == 'u') {
            size_t save = r->i;
            r->i += 2;
            if (ref_hex4(r, &lo) && lo >= 0xdc00 && lo <= 0xdfff)
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else
                r->i = save;   /* not a low surrogate: this one stands alone */
        }
        if (cp == 0)
            return false;   /* refused by contract: SQLite would cut the string there */
        put_utf8(&r->str, cp);
    }
    size_t len = r->str.size;
    if (!strict && r->nul) {
        const char *z = len ? memchr(r->str.data, '\0', len) : NULL;
        if (z)
            len = (size_t) (z - r->str.data);
    }
    msgpack_pack_str_with_body(&r->pk, len ? r->str.data : "", len);
    return true;
}

static bool digits(ref_t *r)
{
    size_t start = r->i;
    while (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9')
        r->i++;
    return r->i > start;
}

static bool ref_number(ref_t *r)
{
    size_t start = r->i;
    ref_lit(r, "-");
    if (ref_lit(r, "0")) {
        /* no leading zeros */
    } else if (!(r->i < r->n && r->p[r->i] >= '1' && r->p[r->i] <= '9') || !digits(r)) {
        return false;
    }
    bool real = false;
    if (ref_lit(r, ".")) {
        real = true;
        if (!digits(r))
            return false;
    }
    if (r->i < r->n && (r->p[r->i] == 'e' || r->p[r->i] == 'E')) {
        real = true;
        r->i++;
        if (r->i < r->n && (r->p[r->i] == '+' || r->p[r->i] == '-'))
            r->i++;
        if (!digits(r))
            return false;
    }
    /* on the heap: this frame may sit 2000 containers deep */
    char *text = strndup(r->p + start, r->i - start);
    FUZZ_CHECK(text, "out of memory");
    if (!real) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0)
            msgpack_pack_int64(&r->pk, v);
        else if (!strict)   /* what SQLite's int64 of the real gives: known problem 6 */
            msgpack_pack_int64(&r->pk, text[0] == '-' ? INT64_MIN : INT64_MAX);
        else
            real = true;
    }
    double d = real ? strtod(text, NULL) : 0;
    free(text);
    if (real && !isfinite(d))
        return false;   /* refused by contract: beyond a double */
    if (real)
        msgpack_pack_double(&r->pk, d);
    return true;
}

static bool ref_value(ref_t *r);

static bool ref_container(ref_t *r, bool object)
{
    if (++r->depth > SQLITE_JSON_MAX_DEPTH)
        return false;
    r->i++;   /* '{' or '[' */
    /* children go to a buffer of their own: the header needs their count first */
    msgpack_sbuffer outer = r->sb;
    msgpack_sbuffer_init(&r->sb);
    uint32_t count = 0;
    bool ok = true;
    ref_ws(r);
    if (!ref_lit(r, object ? "}" : "]")) {
        for (;;) {
            ref_ws(r);
            if (object) {
                if (!ref_string(r)) {
                    ok = false;
                    break;
                }
                ref_ws(r);
                if (!ref_lit(r, ":")) {
                    ok = false;
                    break;
                }
            }
            if (!ref_value(r)) {
                ok = false;
                break;
            }
            count++;
            ref_ws(r);
            if (ref_lit(r, ","))
                continue;
            ok = ref_lit(r, object ? "}" : "]");
            break;
        }
    }
    msgpack_sbuffer inner = r->sb;
    r->sb = outer;
    if (ok) {
        if (object)
            msgpack_pack_map(&r->pk, count);
        else
            msgpack_pack_array(&r->pk, count);
        sb_put(&r->sb, inner.data, inner.size);
    }
    msgpack_sbuffer_destroy(&inner);
    r->depth--;
    return ok;
}

static bool ref_value(ref_t *r)
{
    ref_ws(r);
    if (r->i >= r->n)
        return false;
    switch (r->p[r->i]) {
    case '{': return ref_container(r, true);
    case '[': return ref_container(r, false);
    case '"': return ref_string(r);
    case 't':
        if (!ref_lit(r, "true"))
            return false;
        msgpack_pack_true(&r->pk);
        return true;
    case 'f':
        if (!ref_lit(r, "false"))
            return false;
        msgpack_pack_false(&r->pk);
        return true;
    case 'n':
        if (!ref_lit(r, "null"))
            return false;
        msgpack_pack_nil(&r->pk);
        return true;
    default:
        return ref_number(r);
    }
}

/* msgpack_packer writes through a pointer to r->sb, which ref_container swaps. */
static int ref_write(void *data, const char *buf, size_t len)
{
    ref_t *r = data;
    sb_put(&r->sb, buf, len);
    return 0;
}

/* The reference conversion of json into r->sb; false when it is not JSON. */
static bool ref_parse(const char *json, ref_t *r)
{
    memset(r, 0, sizeof *r);
    r->p = json;
    r->n = strlen(json);
    msgpack_sbuffer_init(&r->sb);
    msgpack_sbuffer_init(&r->str);
    msgpack_packer_init(&r->pk, r, ref_write);
    bool ok = ref_value(r);
    ref_ws(r);
    return ok && r->i == r->n;
}

static void ref_free(ref_t *r)
{
    msgpack_sbuffer_destroy(&r->sb);
    msgpack_sbuffer_destroy(&r->str);
}

/* ---------------------------------------------------------------- msgpack walk */

typedef struct {
    int  depth;         /* deepest container nesting (a container at the top = 1) */
    bool non_finite;    /* a float that is inf or NaN */
} walk_t;

/* true when p[0..n) is exactly one msgpack object (any depth). */
static bool walk_one(const uint8_t *p, size_t n, walk_t *w)
{
    *w = (walk_t){ 0 };
    /* pending children per open container; the bottom entry is the one top-level object */
    size_t cap = 64, top = 0;
    uint64_t *left = malloc(cap * sizeof *left);
    FUZZ_CHECK(left, "out of memory");
    left[0] = 1;
    size_t at = 0;
    bool ok = true;
    while (ok) {
        while (top > 0 && left[top] == 0)
            top--;
        if (top == 0 && left[0] == 0)
            break;
        payload_token_t tok;
        if (payload_token(p + at, n - at, &tok) != 1 || tok.skip_len > n - at - tok.head_len) {
            ok = false;
            break;
        }
        if (p[at] == 0xcb || p[at] == 0xca) {
            double d;
            if (p[at] == 0xcb) {
                uint64_t u = 0;
                for (int k = 1; k <= 8; k++)
                    u = u << 8 | p[at + (size_t) k];
                memcpy(&d, &u, sizeof d);
            } else {
                uint32_t u = 0;
                for (int k = 1; k <= 4; k++)
                    u = u << 8 | p[at + (size_t) k];
                float f;
                memcpy(&f, &u, sizeof f);
                d = f;
            }
            w->non_finite |= !isfinite(d);
        }
        at += tok.head_len + (size_t) tok.skip_len;
        left[top]--;
        if (tok.is_container) {
            if (++top == cap) {
                cap *= 2;
                left = realloc(left, cap * sizeof *left);
                FUZZ_CHECK(left, "out of memory");
            }
            left[top] = tok.items;
            if ((int) top > w->depth)
                w->depth = (int) top;
        }
    }
    free(left);
    return ok && at == n;
}

/* ---------------------------------------------------------------- the checks */

/* Converts json after pre bytes of SENTINEL; checks the failure contract. Returns the rc;
 * on success the object's bytes are out->data + pre. */
static int convert(const char *json, size_t pre, size_t errlen, msgpack_sbuffer *out)
{
    msgpack_sbuffer_init(out);
    sb_put(out, SENTINEL, pre);
    char *err = malloc(errlen);
    FUZZ_CHECK(err, "out of memory");
    memset(err, 'x', errlen);
    err[0] = '\0';
    int rc = json_to_msgpack(json, out, err, errlen);
    FUZZ_CHECK(rc == 0 || rc == -1, "json_to_msgpack returned %d", rc);
    FUZZ_CHECK(out->size >= pre && (pre == 0 || memcmp(out->data, SENTINEL, pre) == 0),
               "json_to_msgpack changed what was in the buffer before it");
    if (rc != 0) {
        FUZZ_CHECK(out->size == pre, "a failure appended %zu bytes", out->size - pre);
        FUZZ_CHECK(memchr(err, '\0', errlen), "error text not terminated");
        FUZZ_CHECK(err[0] && !strchr(err, '\n') && !strchr(err, '\r'), "error '%s' is not "
                   "one line of text", err);
        /* cut to errlen - 1 bytes: the start of the documented text is enough */
        size_t el = strlen(err);
        FUZZ_CHECK(strncmp(err, "not valid JSON", el < 14 ? el : 14) == 0 ||
                   strstr(err, "SQLite") || strstr(err, "memory") ||
                   strncmp(err, "not supported", el < 13 ? el : 13) == 0,
                   "error '%s' neither says 'not valid JSON' nor names SQLite or memory", err);
    }
    free(err);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    FUZZ_CHECK(json, "out of memory");
    memcpy(json, data, size);
    json[size] = '\0';
    size_t pre = size % 2 ? 0 : SENTINEL_LEN;
    size_t errlen = size % 3 ? 256 : 16;

    ref_t ref;
    bool ref_ok = ref_parse(json, &ref);
    msgpack_sbuffer m1;
    int rc = convert(json, pre, errlen, &m1);
    FUZZ_CHECK((rc == 0) == ref_ok, "json_to_msgpack %s valid JSON%s: '%.200s'",
               rc == 0 ? "accepted" : "refused", ref_ok ? "" : " (reference: not)", json);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&m1);
        ref_free(&ref);
        free(json);
        return 0;
    }

    const uint8_t *obj = (const uint8_t *) m1.data + pre;
    size_t obj_len = m1.size - pre;
    walk_t w;
    FUZZ_CHECK(obj_len > 0 && walk_one(obj, obj_len, &w),
               "the %zu bytes appended are not exactly one msgpack object", obj_len);
    /* unless strict, the reference packs what known problems 5 and 6 make */
    FUZZ_CHECK(ref.sb.size == obj_len && memcmp(ref.sb.data, obj, obj_len) == 0,
               "'%.200s' converted to %zu bytes of msgpack, not the %zu expected",
               json, obj_len, ref.sb.size);
    ref_free(&ref);

    char err[256] = "";
    payload_t *p = payload_new(obj, obj_len, false, PAYLOAD_MSGPACK_MAX_DEPTH, err, sizeof err);
    FUZZ_CHECK((p != NULL) == (w.depth <= PAYLOAD_MSGPACK_MAX_DEPTH),
               "payload_new %s a payload of depth %d: %s", p ? "took" : "refused", w.depth,
               err);
    if (p) {
        /* a fixed point after one round: JSON text -> msgpack -> the same JSON text */
        msgpack_sbuffer j1, m2, j2;
        msgpack_sbuffer_init(&j1);
        FUZZ_CHECK(payload_to_json(payload_root(p), &j1) == 0, "payload_to_json failed");
        sb_put(&j1, "", 1);
        int rc2 = convert(j1.data, 0, 256, &m2);
        if (rc2 != 0)
            FUZZ_CHECK(!strict && w.non_finite, "its JSON text '%.200s' does not convert back",
                       j1.data);   /* Infinity/NaN: known problem 7 */
        else {
            payload_t *p2 = payload_new(m2.data, m2.size, false, PAYLOAD_MSGPACK_MAX_DEPTH,
                                        err, sizeof err);
            FUZZ_CHECK(p2, "the second round does not unpack: %s", err);
            msgpack_sbuffer_init(&j2);
            FUZZ_CHECK(payload_to_json(payload_root(p2), &j2) == 0, "payload_to_json failed");
            sb_put(&j2, "", 1);
            FUZZ_CHECK(j2.size == j1.size && memcmp(j1.data, j2.data, j1.size) == 0,
                       "not a fixed point: '%.200s' became '%.200s'", j1.data, j2.data);
            msgpack_sbuffer_destroy(&j2);
            payload_destroy(&p2);
        }
        msgpack_sbuffer_destroy(&m2);
        msgpack_sbuffer_destroy(&j1);
        payload_destroy(&p);
    } else {
        FUZZ_CHECK(err[0], "payload_new failed without a message");
    }
    msgpack_sbuffer_destroy(&m1);
    free(json);
    return 0;
}
