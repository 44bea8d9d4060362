/* libFuzzer harness: proto/payload.c, msgpack -> JSON and text.
 *
 * Input: the msgpack bytes of one event payload (seeds are plain .msgpack files). It is
 * unpacked with the daemon's depth limit (bus.max_depth default 32; a map is required, as for
 * every Salt event, when the first byte is a map, otherwise any object is accepted so scalars
 * render too), then rendered with payload_to_json and payload_to_text, and looked up with a
 * few dotted paths, each found sub-tree rendered as well. The input bytes are also rendered as
 * a JSON string literal (payload_json_string: tags off the wire may be any bytes).
 *
 * Checked, beyond "no crash, no leak": payload_new accepts exactly the inputs that are one
 * complete msgpack object within the depth limit (and fails with a message otherwise);
 * require_map refuses exactly the non-maps; and every JSON text produced is valid UTF-8 and
 * valid JSON (with Python's NaN / Infinity / -Infinity, which json.dumps writes). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

/* ---------------------------------------------------------------- JSON validator */

typedef struct {
    const uint8_t *p;
    size_t         n, i;
    int            depth;
} json_t;

static void ws(json_t *j)
{
    while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' ||
                           j->p[j->i] == '\r'))
        j->i++;
}

static bool lit(json_t *j, const char *s)
{
    size_t k = strlen(s);
    if (j->n - j->i < k || memcmp(j->p + j->i, s, k) != 0)
        return false;
    j->i += k;
    return true;
}

/* Strict UTF-8 (no overlongs, surrogates, or > U+10FFFF): the length of the sequence at i. */
static size_t utf8_len(const json_t *j)
{
    const uint8_t *p = j->p + j->i;
    size_t left = j->n - j->i;
    uint8_t b = p[0];
    size_t need = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3
                : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (need == 0 || need > left)
        return 0;
    for (size_t k = 1; k < need; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    if ((b == 0xe0 && p[1] < 0xa0) || (b == 0xed && p[1] > 0x9f) ||
        (b == 0xf0 && p[1] < 0x90) || (b == 0xf4 && p[1] > 0x8f))
        return 0;
    return need;
}

static bool hex4(json_t *j)
{
    for (int k = 0; k < 4; k++, j->i++) {
        if (j->i >= j->n)
            return false;
        uint8_t c = j->p[j->i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static bool string(json_t *j)
{
    if (!lit(j, "\""))
        return false;
    while (j->i < j->n) {
        uint8_t c = j->p[j->i];
        if (c == '"') {
            j->i++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++j->i >= j->n)
                return false;
            c = j->p[j->i++];
            if (c == 'u') {
                if (!hex4(j))
                    return false;
            } else if (!strchr("\"\\/bfnrt", c))
                return false;
            continue;
        }
        size_t k = utf8_len(j);
        if (k == 0)
            return false;
        j->i += k;
    }
    return false;
}

static bool digits(json_t *j)
{
    size_t start = j->i;
    while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
        j->i++;
    return j->i > start;
}

static bool number(json_t *j)
{
    if (lit(j, "NaN") || lit(j, "Infinity") || lit(j, "-Infinity"))
        return true;
    lit(j, "-");
    if (lit(j, "0")) {
        if (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
            return false;   /* no leading zeros */
    } else if (!digits(j))
        return false;
    if (lit(j, ".") && !digits(j))
        return false;
    if (lit(j, "e") || lit(j, "E")) {
        if (!lit(j, "+"))
            lit(j, "-");
        if (!digits(j))
            return false;
    }
    return true;
}

static bool value(json_t *j);

static bool container(json_t *j, char open, char close, bool is_object)
{
    if (!lit(j, (char[]) { open, 0 }))
        return false;
    if (++j->depth > 200)
        return false;
    ws(j);
    if (lit(j, (char[]) { close, 0 })) {
        j->depth--;
        return true;
    }
    for (;;) {
        ws(j);
        if (is_object) {
            if (!string(j))
                return false;
            ws(j);
            if (!lit(j, ":"))
                return false;
            ws(j);
        }
        if (!value(j))
            return false;
        ws(j);
        if (lit(j, (char[]) { close, 0 })) {
            j->depth--;
            return true;
        }
        if (!lit(j, ","))
            return false;
    }
}

static bool value(json_t *j)
{
    if (j->i >= j->n)
        return false;
    switch (j->p[j->i]) {
    case '{': return container(j, '{', '}', true);
    case '[': return container(j, '[', ']', false);
    case '"': return string(j);
    case 't': return lit(j, "true");
    case 'f': return lit(j, "false");
    case 'n': return lit(j, "null");
    default:  return number(j);
    }
}

static bool json_valid(const char *s, size_t n)
{
    json_t j = { (const uint8_t *) s, n, 0, 0 };
    ws(&j);
    if (!value(&j))
        return false;
    ws(&j);
    return j.i == n;
}

/* ---------------------------------------------------------------- checks */

static void check_json(const msgpack_object *obj, const char *what)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    FUZZ_CHECK(payload_to_json(obj, &out) == 0, "payload_to_json failed (%s)", what);
    FUZZ_CHECK(out.size > 0 && json_valid(out.data, out.size), "invalid JSON for %s: %.*s",
               what, (int) (out.size > 2000 ? 2000 : out.size), out.data ? out.data : "");
    msgpack_sbuffer_destroy(&out);

    msgpack_sbuffer_init(&out);
    int rc = payload_to_text(obj, &out);
    FUZZ_CHECK(rc == 0 || rc == 1, "payload_to_text returned %d (%s)", rc, what);
    FUZZ_CHECK((rc == 1) == (obj->type == MSGPACK_OBJECT_NIL),
               "payload_to_text returned %d for type %d (%s)", rc, (int) obj->type, what);
    FUZZ_CHECK(rc == 0 || out.size == 0, "nil appended text (%s)", what);
    if (obj->type == MSGPACK_OBJECT_MAP || obj->type == MSGPACK_OBJECT_ARRAY)
        FUZZ_CHECK(json_valid(out.data, out.size), "text of a container is not JSON (%s)",
                   what);
    msgpack_sbuffer_destroy(&out);
}

static const char *const paths[] = {
    "", "fun", "jid", "id", "_stamp", "return", "retcode", "success", "arg", "arg.0",
    "data.fun", "data.data.fun", "return.1", "return.-7", "return.0.1", "0", "1", "-1",
    "4294967296", "18446744073709551615", "a..b", ".", "fun.", "return.99999999999",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* tags and other raw bytes as a JSON string literal */
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    FUZZ_CHECK(payload_json_string(&out, (const char *) data, size) == 0, "json_string failed");
    FUZZ_CHECK(json_valid(out.data, out.size), "payload_json_string wrote invalid JSON");
    msgpack_sbuffer_destroy(&out);

    if (size == 0)
        return 0;
    bool is_map = (data[0] >= 0x80 && data[0] <= 0x8f) || data[0] == 0xde || data[0] == 0xdf;
    char err[256] = "";
    payload_t *p = payload_new(data, size, is_map, FUZZ_DEFAULT_MAX_DEPTH, err, sizeof err);
    /* require_map refuses exactly the non-maps */
    char err2[256] = "";
    payload_t *q = payload_new(data, size, !is_map, FUZZ_DEFAULT_MAX_DEPTH, err2, sizeof err2);
    if (is_map)
        FUZZ_CHECK(!p == !q, "a map validates with require_map %s only", p ? "true" : "false");
    else
        FUZZ_CHECK(!q, "require_map accepted a payload whose first byte is 0x%02x", data[0]);
    payload_destroy(&q);
    if (!p) {
        FUZZ_CHECK(err[0] != '\0', "payload_new failed without a message");
        return 0;
    }
    const msgpack_object *root = payload_root(p);
    FUZZ_CHECK(root, "no root");
    FUZZ_CHECK(!is_map || root->type == MSGPACK_OBJECT_MAP, "root type %d", (int) root->type);
    check_json(root, "root");

    /* re-packed by msgpack-c, the payload validates again and renders the same JSON */
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    FUZZ_CHECK(msgpack_pack_object(&pk, *root) == 0, "re-pack failed");
    payload_t *again = payload_new(out.data, out.size, is_map, FUZZ_DEFAULT_MAX_DEPTH, err,
                                   sizeof err);
    FUZZ_CHECK(again, "re-packed payload does not validate: %s", err);
    msgpack_sbuffer a, b;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    FUZZ_CHECK(payload_to_json(root, &a) == 0 && payload_to_json(payload_root(again), &b) == 0,
               "payload_to_json failed");
    FUZZ_CHECK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0,
               "re-packed payload renders differently");
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
    payload_destroy(&again);
    msgpack_sbuffer_destroy(&out);

    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const msgpack_object *o = payload_lookup(root, paths[i]);
        if (paths[i][0] == '\0')
            FUZZ_CHECK(o == root, "empty path must return the root");
        if (o && o != root)
            check_json(o, paths[i]);
    }
    payload_destroy(&p);
    return 0;
}
