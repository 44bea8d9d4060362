/* payload: see payload.h. msgpack-c does the parsing; this file adds what it lacks for
 * untrusted input (a size/depth pre-check) and the JSON/text rendering Salt's returners use. */
#include "payload.h"

#include <czmq.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_DATETIME_EXT 78   /* salt.utils.msgpack packs datetime as ExtType(78, isoformat) */

struct payload {
    uint8_t         *bytes;    /* our copy: msgpack-c's str/bin objects point into it */
    size_t           len;
    msgpack_unpacked unpacked; /* owns the zone holding the object tree */
};

/* ---------------------------------------------------------------- token headers */

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Token whose header is 1 + width bytes and whose size field (of `width` bytes) is the data
 * length (str/bin) or the child count (array/map). */
static int sized_token(const uint8_t *p, size_t avail, size_t width, int kind,
                       payload_token_t *tok)
{
    if (avail < 1 + width)
        return 0;
    uint64_t n = load_be(p + 1, width);
    tok->head_len = 1 + width;
    if (kind == 0)
        tok->skip_len = n;
    else {
        tok->is_container = true;
        tok->is_map = kind == 2;
        tok->items = kind == 2 ? 2 * n : n;
    }
    return 1;
}

/* ext 8/16/32: size field, then the type byte, then data. */
static int ext_token(const uint8_t *p, size_t avail, size_t width, payload_token_t *tok)
{
    if (avail < 2 + width)
        return 0;
    tok->head_len = 2 + width;
    tok->skip_len = load_be(p + 1, width);
    return 1;
}

static int fixed_token(size_t avail, size_t head, uint64_t skip, payload_token_t *tok)
{
    if (avail < head)
        return 0;
    tok->head_len = head;
    tok->skip_len = skip;
    return 1;
}

static int fix_family(uint8_t b, payload_token_t *tok)
{
    tok->head_len = 1;
    if (b >= 0xa0)                       /* fixstr */
        tok->skip_len = b & 0x1f;
    else {                               /* fixmap 0x80-0x8f, fixarray 0x90-0x9f */
        tok->is_container = true;
        tok->is_map = b < 0x90;
        tok->items = tok->is_map ? 2u * (b & 0x0f) : (b & 0x0f);
    }
    return 1;
}

int payload_token(const uint8_t *p, size_t avail, payload_token_t *tok)
{
    memset(tok, 0, sizeof *tok);
    if (avail < 1)
        return 0;
    uint8_t b = p[0];
    if (b <= 0x7f || b >= 0xe0)
        return fixed_token(avail, 1, 0, tok);
    if (b <= 0xbf)
        return fix_family(b, tok);
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return fixed_token(avail, 1, 0, tok);
    case 0xc1: return -1;
    case 0xc4: return sized_token(p, avail, 1, 0, tok);
    case 0xc5: return sized_token(p, avail, 2, 0, tok);
    case 0xc6: return sized_token(p, avail, 4, 0, tok);
    case 0xc7: return ext_token(p, avail, 1, tok);
    case 0xc8: return ext_token(p, avail, 2, tok);
    case 0xc9: return ext_token(p, avail, 4, tok);
    case 0xca: return fixed_token(avail, 1, 4, tok);
    case 0xcb: return fixed_token(avail, 1, 8, tok);
    case 0xcc: case 0xd0: return fixed_token(avail, 1, 1, tok);
    case 0xcd: case 0xd1: return fixed_token(avail, 1, 2, tok);
    case 0xce: case 0xd2: return fixed_token(avail, 1, 4, tok);
    case 0xcf: case 0xd3: return fixed_token(avail, 1, 8, tok);
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:   /* fixext: type byte + 2^k */
        return fixed_token(avail, 2, 1u << (b - 0xd4), tok);
    case 0xd9: return sized_token(p, avail, 1, 0, tok);
    case 0xda: return sized_token(p, avail, 2, 0, tok);
    case 0xdb: return sized_token(p, avail, 4, 0, tok);
    case 0xdc: return sized_token(p, avail, 2, 1, tok);
    case 0xdd: return sized_token(p, avail, 4, 1, tok);
    case 0xde: return sized_token(p, avail, 2, 2, tok);
    default:   return sized_token(p, avail, 4, 2, tok);  /* 0xdf map32 */
    }
}

/* ---------------------------------------------------------------- validation */

/* Walks the bytes once before msgpack-c parses them: msgpack-c allocates arrays/maps from
 * their declared counts (a 5-byte "dd ffffffff" would ask for ~100 GB) and has a fixed
 * nesting limit; here every count is checked against the bytes that remain (each child
 * takes at least one byte) and depth against the caller's limit. */
static int validate(const uint8_t *p, size_t len, bool require_map, int limit,
                    char *err, size_t errlen)
{
    uint64_t left[PAYLOAD_MSGPACK_MAX_DEPTH + 1];
    int depth = 0;
    size_t pos = 0;
    for (;;) {
        payload_token_t t;
        int r = payload_token(p + pos, len - pos, &t);
        if (r < 0) {
            snprintf(err, errlen, "invalid msgpack byte 0xc1 at offset %zu", pos);
            return -1;
        }
        if (r == 0 || t.skip_len > len - pos - t.head_len) {
            snprintf(err, errlen, "truncated msgpack (%zu bytes)", len);
            return -1;
        }
        if (pos == 0 && require_map && !t.is_map) {
            snprintf(err, errlen, "payload is not a map");
            return -1;
        }
        pos += t.head_len + t.skip_len;
        if (t.is_container && depth + 1 > limit) {
            snprintf(err, errlen, "nesting deeper than %d", limit);
            return -1;
        }
        if (t.is_container && t.items > len - pos) {
            snprintf(err, errlen, "container declares %" PRIu64 " items, %zu bytes left",
                     t.items, len - pos);
            return -1;
        }
        if (t.is_container && t.items > 0) {
            left[++depth] = t.items;
            continue;
        }
        while (depth > 0 && --left[depth] == 0)   /* an object ended: close finished parents */
            depth--;
        if (depth == 0)
            break;
    }
    if (pos != len) {
        snprintf(err, errlen, "%zu trailing bytes after the msgpack object", len - pos);
        return -1;
    }
    return 0;
}

static int effective_depth(int max_depth)
{
    if (max_depth <= 0)
        max_depth = PAYLOAD_DEFAULT_MAX_DEPTH;
    return max_depth < PAYLOAD_MSGPACK_MAX_DEPTH ? max_depth : PAYLOAD_MSGPACK_MAX_DEPTH;
}

payload_t *payload_new(const void *bytes, size_t len, bool require_map, int max_depth,
                       char *err, size_t errlen)
{
    if (!bytes || len == 0) {
        snprintf(err, errlen, "empty payload");
        return NULL;
    }
    if (validate(bytes, len, require_map, effective_depth(max_depth), err, errlen) < 0)
        return NULL;
    payload_t *self = calloc(1, sizeof *self);
    if (self)
        self->bytes = malloc(len);
    if (!self || !self->bytes) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(self->bytes, bytes, len);
    self->len = len;
    msgpack_unpacked_init(&self->unpacked);
    size_t off = 0;
    msgpack_unpack_return rc =
        msgpack_unpack_next(&self->unpacked, (const char *) self->bytes, len, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len) {
        snprintf(err, errlen, "msgpack-c refused the payload (rc %d)", (int) rc);
        payload_destroy(&self);
    }
    return self;
}

void payload_destroy(payload_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    payload_t *self = *self_p;
    msgpack_unpacked_destroy(&self->unpacked);
    free(self->bytes);
    free(self);
    *self_p = NULL;
}

const msgpack_object *payload_root(const payload_t *self)
{
    return self ? &self->unpacked.data : NULL;
}

/* ---------------------------------------------------------------- lookup */

static bool key_matches(const msgpack_object *key, const char *c, size_t n)
{
    char num[24];
    switch (key->type) {
    case MSGPACK_OBJECT_STR:
        return key->via.str.size == n && (n == 0 || memcmp(key->via.str.ptr, c, n) == 0);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(num, sizeof num, "%" PRIu64, key->via.u64);
        return strlen(num) == n && memcmp(num, c, n) == 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(num, sizeof num, "%" PRId64, key->via.i64);
        return strlen(num) == n && memcmp(num, c, n) == 0;
    default:
        return false;
    }
}

/* Decimal array index; rejects signs, empty text and values that would overflow. */
static bool parse_index(const char *c, size_t n, size_t *idx)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i] < '0' || c[i] > '9')
            return false;
        v = v * 10 + (uint64_t) (c[i] - '0');
    }
    *idx = (size_t) v;
    return true;
}

static const msgpack_object *child(const msgpack_object *obj, const char *c, size_t n)
{
    if (obj->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < obj->via.map.size; i++)
            if (key_matches(&obj->via.map.ptr[i].key, c, n))
                return &obj->via.map.ptr[i].val;
        return NULL;
    }
    size_t idx;
    if (obj->type == MSGPACK_OBJECT_ARRAY && parse_index(c, n, &idx) &&
        idx < obj->via.array.size)
        return &obj->via.array.ptr[idx];
    return NULL;
}

const msgpack_object *payload_lookup(const msgpack_object *obj, const char *path)
{
    if (!obj || !path || !*path)
        return obj;
    for (const char *c = path;;) {
        const char *dot = strchr(c, '.');
        size_t n = dot ? (size_t) (dot - c) : strlen(c);
        obj = child(obj, c, n);
        if (!obj || !dot)
            return obj;
        c = dot + 1;
    }
}

bool payload_str_equals(const msgpack_object *obj, const char *s)
{
    return obj && s && obj->type == MSGPACK_OBJECT_STR && key_matches(obj, s, strlen(s));
}

/* ---------------------------------------------------------------- UTF-8 */

/* Strict UTF-8 as Python's decoder accepts it: no overlongs, no surrogates, <= U+10FFFF.
 * Must agree with Python, or a raw string would render as text here and $bin in Salt. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    size_t need = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3
                : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (need == 0 || need > n)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((b == 0xe0 && p[1] < 0xa0) || (b == 0xed && p[1] > 0x9f) ||   /* overlong, surrogate */
        (b == 0xf0 && p[1] < 0x90) || (b == 0xf4 && p[1] > 0x8f))     /* overlong, > U+10FFFF */
        return 0;
    return need;
}

static bool utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *) s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* ---------------------------------------------------------------- output helpers */

static int put(msgpack_sbuffer *out, const char *s, size_t n)
{
    return n == 0 ? 0 : msgpack_sbuffer_write(out, s, n);   /* never memcpy from NULL */
}

static int puts_(msgpack_sbuffer *out, const char *s)
{
    return put(out, s, strlen(s));
}

/* Python json's escaping with ensure_ascii=False: only '"', '\\' and C0 controls. */
static int put_json_string(msgpack_sbuffer *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n == 0)   /* msgpack-c leaves ptr NULL for empty str/ext: no arithmetic on it */
        return put(out, "\"\"", 2);
    if (put(out, "\"", 1) < 0)
        return -1;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[7] = { '\\', 0 };
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (put(out, s + run, i - run) < 0 || put(out, esc, elen) < 0)
            return -1;
        run = i + 1;
    }
    if (put(out, s + run, n - run) < 0)
        return -1;
    return put(out, "\"", 1);
}

/* Standard base64 with padding and no line breaks: what Python's base64.b64encode gives. */
static int put_base64(msgpack_sbuffer *out, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    zarmour_t *armour = zarmour_new();
    if (!armour)
        return -1;
    zarmour_set_mode(armour, ZARMOUR_MODE_BASE64_STD);
    zarmour_set_pad(armour, true);
    zarmour_set_line_breaks(armour, false);
    char *text = zarmour_encode(armour, (const byte *) p, n);
    zarmour_destroy(&armour);
    if (!text)
        return -1;
    int rc = puts_(out, text);
    zstr_free(&text);
    return rc;
}

static int put_bin(msgpack_sbuffer *out, const char *p, size_t n)
{
    if (puts_(out, "{\"$bin\": \"") < 0 || put_base64(out, p, n) < 0)
        return -1;
    return puts_(out, "\"}");
}

static int put_ext(msgpack_sbuffer *out, const msgpack_object_ext *ext)
{
    char head[48];
    snprintf(head, sizeof head, "{\"$ext\": %d, \"$bin\": \"", (int) ext->type);
    if (puts_(out, head) < 0 || put_base64(out, ext->ptr, ext->size) < 0)
        return -1;
    return puts_(out, "\"}");
}

/* ---------------------------------------------------------------- Python float repr */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t) 0);
}

/* Shortest "%.Ne" that strtod reads back as x. Runs in the C locale so that a daemon that
 * called setlocale() never writes "1,5" into JSON. */
static void shortest_sci(double x, char *sci, size_t size)
{
    pthread_once(&c_locale_once, c_locale_init);
    locale_t old = c_locale ? uselocale(c_locale) : (locale_t) 0;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(sci, size, "%.*e", prec - 1, x);
        if (strtod(sci, NULL) == x)
            break;
    }
    if (c_locale)
        uselocale(old);
}

/* Lays the digits out like Python's repr: fixed notation for exponents -4..15 (with ".0"
 * for integral values), otherwise d.ddde+XX with at least two exponent digits. */
static void layout_repr(bool neg, const char *dig, size_t nd, int exp, char *buf, size_t size)
{
    char body[400];
    size_t k = 0;
    if (exp < -4 || exp >= 16) {
        body[k++] = dig[0];
        if (nd > 1) {
            body[k++] = '.';
            memcpy(body + k, dig + 1, nd - 1);
            k += nd - 1;
        }
        snprintf(body + k, sizeof body - k, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    } else if (exp >= 0) {
        for (int i = 0; i <= exp; i++)
            body[k++] = (size_t) i < nd ? dig[i] : '0';
        body[k++] = '.';
        if (nd > (size_t) exp + 1) {
            memcpy(body + k, dig + exp + 1, nd - (size_t) exp - 1);
            k += nd - (size_t) exp - 1;
        } else
            body[k++] = '0';
        body[k] = '\0';
    } else {
        body[k++] = '0';
        body[k++] = '.';
        for (int i = 0; i < -exp - 1; i++)
            body[k++] = '0';
        memcpy(body + k, dig, nd);
        body[k + nd] = '\0';
    }
    snprintf(buf, size, "%s%s", neg ? "-" : "", body);
}

/* Python repr(float): "inf", "-inf", "nan", else shortest round-trip digits. */
static void float_repr(double x, char *buf, size_t size)
{
    if (isnan(x) || isinf(x)) {
        snprintf(buf, size, "%s", isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
        return;
    }
    char sci[40];
    shortest_sci(x, sci, sizeof sci);
    bool neg = sci[0] == '-';
    char dig[20];
    size_t nd = 0;
    const char *p = sci + neg;
    for (; *p && *p != 'e' && nd < sizeof dig; p++)
        if (*p >= '0' && *p <= '9')
            dig[nd++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    layout_repr(neg, dig, nd, exp, buf, size);
}

static int put_float(msgpack_sbuffer *out, double x, bool json)
{
    char buf[64];
    if (json && (isnan(x) || isinf(x)))   /* json.dumps(allow_nan=True) spelling */
        return puts_(out, isnan(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity");
    float_repr(x, buf, sizeof buf);
    return puts_(out, buf);
}

/* ---------------------------------------------------------------- JSON */

/* Bytes that are not UTF-8 become U+FFFD (Python's errors="replace"), so that what this
 * writes is always a valid JSON string even when a tag off the wire is not UTF-8. */
static int put_json_string_lossy(msgpack_sbuffer *out, const char *s, size_t len)
{
    char *fixed = malloc(len * 3 + 1);   /* worst case: every byte replaced by 3 bytes */
    if (!fixed)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq((const uint8_t *) s + i, len - i);
        if (k == 0) {
            memcpy(fixed + n, "\xef\xbf\xbd", 3);
            n += 3;
            i++;
            continue;
        }
        memcpy(fixed + n, s + i, k);
        n += k;
        i += k;
    }
    int rc = put_json_string(out, fixed, n);
    free(fixed);
    return rc;
}

int payload_json_string(msgpack_sbuffer *out, const char *s, size_t len)
{
    if (!s)
        len = 0;
    if (len == 0 || utf8_valid(s, len))
        return put_json_string(out, s ? s : "", len);
    return put_json_string_lossy(out, s, len);
}

static int put_int(msgpack_sbuffer *out, const msgpack_object *obj)
{
    char num[24];
    if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        snprintf(num, sizeof num, "%" PRIu64, obj->via.u64);
    else
        snprintf(num, sizeof num, "%" PRId64, obj->via.i64);
    return puts_(out, num);
}

static bool is_datetime(const msgpack_object *obj)
{
    return obj->type == MSGPACK_OBJECT_EXT && obj->via.ext.type == SALT_DATETIME_EXT &&
           utf8_valid(obj->via.ext.ptr, obj->via.ext.size);
}

/* json.dumps turns keys into strings; for keys Python could not dump (bin, maps...) the JSON
 * text of the key is used, so that no key is ever dropped. */
static int put_key(msgpack_sbuffer *out, const msgpack_object *key)
{
    if (key->type == MSGPACK_OBJECT_STR && utf8_valid(key->via.str.ptr, key->via.str.size))
        return put_json_string(out, key->via.str.ptr, key->via.str.size);
    if (is_datetime(key))
        return put_json_string(out, key->via.ext.ptr, key->via.ext.size);
    msgpack_sbuffer text;
    msgpack_sbuffer_init(&text);
    int rc = payload_to_json(key, &text);
    if (rc == 0)
        rc = put_json_string(out, text.data, text.size);
    msgpack_sbuffer_destroy(&text);
    return rc;
}

static int put_array(msgpack_sbuffer *out, const msgpack_object_array *a)
{
    if (put(out, "[", 1) < 0)
        return -1;
    for (uint32_t i = 0; i < a->size; i++)
        if ((i > 0 && put(out, ", ", 2) < 0) || payload_to_json(&a->ptr[i], out) < 0)
            return -1;
    return put(out, "]", 1);
}

static int put_map(msgpack_sbuffer *out, const msgpack_object_map *m)
{
    if (put(out, "{", 1) < 0)
        return -1;
    for (uint32_t i = 0; i < m->size; i++) {
        if ((i > 0 && put(out, ", ", 2) < 0) || put_key(out, &m->ptr[i].key) < 0 ||
            put(out, ": ", 2) < 0 || payload_to_json(&m->ptr[i].val, out) < 0)
            return -1;
    }
    return put(out, "}", 1);
}

int payload_to_json(const msgpack_object *obj, msgpack_sbuffer *out)
{
    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        return puts_(out, "null");
    case MSGPACK_OBJECT_BOOLEAN:
        return puts_(out, obj->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return put_int(out, obj);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return put_float(out, obj->via.f64, true);
    case MSGPACK_OBJECT_STR:
        if (utf8_valid(obj->via.str.ptr, obj->via.str.size))
            return put_json_string(out, obj->via.str.ptr, obj->via.str.size);
        return put_bin(out, obj->via.str.ptr, obj->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return put_bin(out, obj->via.bin.ptr, obj->via.bin.size);
    case MSGPACK_OBJECT_ARRAY:
        return put_array(out, &obj->via.array);
    case MSGPACK_OBJECT_MAP:
        return put_map(out, &obj->via.map);
    case MSGPACK_OBJECT_EXT:
        if (is_datetime(obj))
            return put_json_string(out, obj->via.ext.ptr, obj->via.ext.size);
        return put_ext(out, &obj->via.ext);
    }
    return puts_(out, "null");   /* unreachable with msgpack-c 4.0's object types */
}

/* ---------------------------------------------------------------- text */

int payload_to_text(const msgpack_object *obj, msgpack_sbuffer *out)
{
    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        return 1;
    case MSGPACK_OBJECT_BOOLEAN:
        return puts_(out, obj->via.boolean ? "True" : "False");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return put_int(out, obj);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return put_float(out, obj->via.f64, false);
    case MSGPACK_OBJECT_STR:
        if (utf8_valid(obj->via.str.ptr, obj->via.str.size))
            return put(out, obj->via.str.ptr, obj->via.str.size);
        break;
    case MSGPACK_OBJECT_EXT:
        if (is_datetime(obj))
            return put(out, obj->via.ext.ptr, obj->via.ext.size);
        break;
    default:
        break;
    }
    return payload_to_json(obj, out);
}
