/* payload: the data of one Salt event, as msgpack bytes, and what eventsd needs from it.
 *
 * Owns: unpacking a payload with size/depth limits into a msgpack zone, looking up a
 * dotted field path ("data.fun", "return.1"), and rendering any sub-tree as JSON exactly
 * as Salt's returners would write it (Python json.dumps(x, ensure_ascii=False)):
 *   - separators ", " and ": "; UTF-8 passes through unescaped; control characters, '"' and
 *     '\\' escaped the way Python does (\n \r \t \b \f, others \u00XX);
 *   - ExtType 78 (Salt datetime) -> its ASCII payload as a JSON string;
 *   - other ExtTypes -> {"$ext": <type>, "$bin": "<base64>"};
 *   - bin, and raw/str bytes that are not valid UTF-8 -> {"$bin": "<base64>"} (the marker the
 *     Salt fixtures use; documented in the README);
 *   - integer map keys -> their decimal text as a string key; other non-string keys -> their
 *     JSON text as a string key;
 *   - floats as Python repr (shortest round-trip: 2.0, 1e-300, 1.7976931348623157e+308,
 *     inf/nan as Infinity/-Infinity/NaN);
 *   - nil/true/false -> null/true/false; integers in full 64-bit range.
 * Does not own: framing (salt_frame), the byte buffer (msgpack_sbuffer, caller-owned).
 */
#ifndef EVENTSD_PAYLOAD_H
#define EVENTSD_PAYLOAD_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAYLOAD_DEFAULT_MAX_DEPTH PAYLOAD_MSGPACK_MAX_DEPTH

typedef struct payload payload_t;

/* Unpacks `len` bytes of msgpack. The bytes are copied; the caller keeps its buffer.
 * Fails (NULL, message in err) when the bytes are not exactly one complete msgpack object,
 * when the top-level object is not a map (`require_map`), or when nesting exceeds max_depth. */
payload_t *payload_new(const void *bytes, size_t len, bool require_map, int max_depth,
                       char *err, size_t errlen);
void payload_destroy(payload_t **self_p);

/* The root object; valid until payload_destroy. */
const msgpack_object *payload_root(const payload_t *self);

/* Looks up a dotted path of map keys below `obj` ("" or NULL returns obj itself).
 * A component matches a str/raw key with the same bytes, or an integer key with the same
 * decimal text; on an array a component that is a decimal index selects that element.
 * Returns NULL when any component is missing. */
const msgpack_object *payload_lookup(const msgpack_object *obj, const char *path);

/* Appends the JSON text of obj to out. Returns 0, or -1 on allocation failure. */
int payload_to_json(const msgpack_object *obj, msgpack_sbuffer *out);

/* The text form of a scalar for SQL binding and metric names: str/raw (valid UTF-8) and
 * ExtType 78 -> the string itself; integers -> decimal; floats -> Python repr;
 * booleans -> "True"/"False" (Python's str(); Salt's mysql returner stored 1/0 through MySQLdb,
 * which is why salt_returns.sql casts success with |int); nil -> returns 1 (SQL NULL);
 * maps, arrays, bin and non-UTF-8 raw -> their JSON text.
 * Returns 0 (text appended), 1 (nil: nothing appended) or -1 (allocation failure). */
int payload_to_text(const msgpack_object *obj, msgpack_sbuffer *out);

/* Appends s (len bytes, UTF-8) as a JSON string literal, escaped exactly like payload_to_json
 * escapes strings. Returns 0 or -1. */
int payload_json_string(msgpack_sbuffer *out, const char *s, size_t len);

/* true when the object is a str/raw whose bytes equal the NUL-terminated s. */
bool payload_str_equals(const msgpack_object *obj, const char *s);

/* Added for salt_frame's stream scanner: the header of one msgpack token, read without
 * allocating, so that object boundaries (and declared sizes) are known before msgpack-c,
 * which preallocates arrays/maps from their declared counts, ever sees the bytes.
 * head_len: bytes of the type byte plus length/value field; skip_len: bytes that follow the
 * header and belong to this token (str/bin/ext data, fixed-width numbers); items: child
 * objects that follow (array: n, map: 2n). */
typedef struct {
    size_t   head_len;
    uint64_t skip_len;
    uint64_t items;
    bool     is_map;
    bool     is_container;
} payload_token_t;

/* Returns 1 (tok filled), 0 (fewer than head_len bytes available) or -1 (0xc1, never valid). */
int payload_token(const uint8_t *p, size_t avail, payload_token_t *tok);

/* Depth limit actually enforced: msgpack-c 4.0 refuses more than 32 nested containers
 * (MSGPACK_EMBED_STACK_SIZE), so max_depth is clamped to this. Top-level container = depth 1. */
#define PAYLOAD_MSGPACK_MAX_DEPTH 32

#endif
