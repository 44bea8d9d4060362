/* Tests for daemon/json_msgpack.c: JSON typed by an operator becomes the msgpack a Salt event
 * carries (checked by rendering it back with payload_to_json), and bad JSON is refused. */
#include "json_msgpack.h"
#include "payload.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

static void roundtrip(const char *json, const char *want)
{
    msgpack_sbuffer mp, out;
    msgpack_sbuffer_init(&mp);
    msgpack_sbuffer_init(&out);
    char err[256] = "";
    cr_assert(eq(int, json_to_msgpack(json, &mp, err, sizeof err), 0), "%s: %s", json, err);
    payload_t *p = payload_new(mp.data, mp.size, false, 32, err, sizeof err);
    cr_assert(p != NULL, "%s", err);
    payload_to_json(payload_root(p), &out);
    msgpack_sbuffer_write(&out, "", 1);
    cr_expect(eq(str, out.data, (char *) want), "%s", json);
    payload_destroy(&p);
    msgpack_sbuffer_destroy(&mp);
    msgpack_sbuffer_destroy(&out);
}

Test(json_msgpack, every_json_type)
{
    roundtrip("{\"fun\":\"test.ping\",\"retcode\":0,\"success\":true,\"return\":null,"
              "\"d\":1.5,\"list\":[1,\"two\",[3],{}],\"nested\":{\"a\":{\"b\":false}}}",
              "{\"fun\": \"test.ping\", \"retcode\": 0, \"success\": true, \"return\": null, "
              "\"d\": 1.5, \"list\": [1, \"two\", [3], {}], \"nested\": {\"a\": {\"b\": false}}}");
    roundtrip("[]", "[]");
    roundtrip("-9223372036854775808", "-9223372036854775808");
    roundtrip("\"caf\\u00e9 \\\"q\\\"\\n\"", "\"café \\\"q\\\"\\n\"");
    roundtrip("\"a\\\\u0000\"", "\"a\\\\u0000\"");   /* an escaped backslash, then text */
    roundtrip("[18446744073709551615, -9223372036854775809]",
              "[1.8446744073709552e+19, -9.223372036854776e+18]");
}

Test(json_msgpack, bad_json_is_refused)
{
    const char *bad[] = { "{", "{\"a\":}", "", "{'a': 1}", "[1,]x", "{\"x\": 1e999}",
                          "{\"a\\u0000b\": 1}", "[\"c\\u0000\"]" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        msgpack_sbuffer mp;
        msgpack_sbuffer_init(&mp);
        char err[256] = "";
        cr_expect(eq(int, json_to_msgpack(bad[i], &mp, err, sizeof err), -1), "'%s'", bad[i]);
        cr_expect(strstr(err, "not valid JSON") != NULL || strstr(err, "not supported") != NULL,
                  "%s", err);
        cr_expect(eq(sz, mp.size, 0));
        msgpack_sbuffer_destroy(&mp);
    }
}
