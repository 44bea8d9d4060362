/* json_msgpack: JSON text to msgpack bytes, for `eventsd --explain --data JSON` (an operator
 * types the event's data as JSON). The parsing is SQLite's JSON1 (json_valid + json_tree) on
 * an in-memory database: eventsd links SQLite anyway, and a JSON parser is not something to
 * write by hand. Objects become maps with str keys, arrays arrays, integers int64, reals
 * float64, strings str, true/false/null the msgpack booleans and nil. An integer beyond int64
 * becomes a float64 (SQLite reads it as a real); a number beyond a double (1e999) is refused:
 * msgpack would hold inf, whose JSON rendering (Infinity) would not parse back; "\u0000" in a
 * string or key is refused: SQLite would cut the string there.
 * Owns nothing after it returns.
 */
#ifndef EVENTSD_JSON_MSGPACK_H
#define EVENTSD_JSON_MSGPACK_H

#include <msgpack.h>
#include <stddef.h>

/* Appends the msgpack form of json to out. Returns 0, or -1 with a one-line reason in err
 * ("not valid JSON", or SQLite's message). */
int json_to_msgpack(const char *json, msgpack_sbuffer *out, char *err, size_t errlen);

#endif
