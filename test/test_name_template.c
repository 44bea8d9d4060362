/* Tests for workers/name_template.c: compiling, expanding with each sanitising mode, missing
 * fields, literal braces, value length cap, field lookups and numbers. */
#include "name_template.h"
#include "payload.h"
#include "sink_events.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

/* data = { fun: "test.ping", id: "web 1.example\n", success: true, n: 42, d: 1.5,
 *          s: "2.25", nil: nil, list: ["a", "b"], _stamp: "2026-11-29T21:00:00.000000" } */
static payload_t *sample(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 9);
    pk_key(&pk, "fun"); pk_key(&pk, "test.ping");
    pk_key(&pk, "id"); pk_key(&pk, "web 1.example\n");
    pk_key(&pk, "success"); msgpack_pack_true(&pk);
    pk_key(&pk, "n"); msgpack_pack_int(&pk, 42);
    pk_key(&pk, "d"); msgpack_pack_double(&pk, 1.5);
    pk_key(&pk, "s"); pk_key(&pk, "2.25");
    pk_key(&pk, "nil"); msgpack_pack_nil(&pk);
    pk_key(&pk, "list"); msgpack_pack_array(&pk, 2); pk_key(&pk, "a"); pk_key(&pk, "b");
    pk_key(&pk, "_stamp"); pk_key(&pk, "2026-11-29T21:00:00.000000");
    char err[128];
    payload_t *p = payload_new(sb.data, sb.size, true, 32, err, sizeof err);
    cr_assert(p != NULL, "%s", err);
    msgpack_sbuffer_destroy(&sb);
    return p;
}

/* Expands text for the sample event; returns the rc, the name in out. */
static int expand(const char *text, name_mode_t mode, char *out, size_t outlen)
{
    char err[256] = "";
    name_template_t *t = name_template_compile(text, err, sizeof err);
    cr_assert(t != NULL, "%s: %s", text, err);
    payload_t *p = sample();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_write(&sb, "keep", 4);
    const char *tag = "salt/job/1/ret/web1";
    int rc = name_template_expand(t, tag, strlen(tag), payload_root(p), "m1", mode, &sb);
    snprintf(out, outlen, "%.*s", (int) sb.size, sb.data);
    msgpack_sbuffer_destroy(&sb);
    payload_destroy(&p);
    name_template_destroy(&t);
    return rc;
}

Test(name_template, expands_fields_with_graphite_sanitising)
{
    char out[1024];
    cr_expect(eq(int, expand("jobs.{data.fun}.{data.success}", NAME_GRAPHITE, out, sizeof out), 0));
    cr_expect(eq(str, out, "keepjobs.test_ping.True"));
    expand("m.{data.id}", NAME_GRAPHITE, out, sizeof out);
    cr_expect(eq(str, out, "keepm.web_1_example_"), "dots, spaces and newlines never split a name");
    expand("{tag}|{master_id}|{stamp}|{data.n}|{data.list.1}", NAME_GRAPHITE, out, sizeof out);
    cr_expect(eq(str, out, "keepsalt_job_1_ret_web1|m1|2026-11-29T21:00:00_000000|42|b"));
}

Test(name_template, key_and_raw_modes)
{
    char out[1024];
    expand("{data.id}", NAME_KEY, out, sizeof out);
    cr_expect(eq(str, out, "keepweb_1.example_"));
    expand("{data.id}", NAME_RAW, out, sizeof out);
    cr_expect(eq(str, out, "keepweb 1.example\n"));
    expand("{{literal}} {data.list}", NAME_RAW, out, sizeof out);
    cr_expect(eq(str, out, "keep{literal} [\"a\", \"b\"]"));
}

Test(name_template, missing_or_nil_field_leaves_the_buffer_alone)
{
    char out[1024];
    cr_expect(eq(int, expand("a.{data.nope}", NAME_GRAPHITE, out, sizeof out), 1));
    cr_expect(eq(str, out, "keep"));
    cr_expect(eq(int, expand("a.{data.fun}.{data.nil}", NAME_GRAPHITE, out, sizeof out), 1));
    cr_expect(eq(str, out, "keep"));
}

Test(name_template, compile_errors_and_constants)
{
    char err[256];
    const char *bad[][2] = {
        { "a.{fun}", "unknown field '{fun}' at offset 2 (fields: tag, master_id, stamp, data, "
                     "data.<path>)" },
        { "a.{data.x", "unclosed '{' at offset 2" },
        { "a}b", "stray '}' at offset 1" },
        { "{data..x}", "unknown field '{data..x}' at offset 0 (fields: tag, master_id, stamp, "
                       "data, data.<path>)" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        cr_expect(name_template_compile(bad[i][0], err, sizeof err) == NULL, "%s", bad[i][0]);
        cr_expect(eq(str, err, (char *) bad[i][1]));
    }
    name_template_t *t = name_template_compile("auth", err, sizeof err);
    cr_assert(t != NULL);
    cr_expect(name_template_is_constant(t));
    name_template_destroy(&t);
    t = name_template_compile("x{tag}", err, sizeof err);
    cr_expect(name_template_is_constant(t) == false);
    name_template_destroy(&t);
}

Test(name_template, long_values_are_cut)
{
    char long_tag[1000];
    memset(long_tag, 'x', sizeof long_tag);
    name_template_t *t = name_template_compile("{tag}", NULL, 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_expect(eq(int, name_template_expand(t, long_tag, sizeof long_tag, NULL, NULL,
                                           NAME_GRAPHITE, &sb), 0));
    cr_expect(eq(sz, sb.size, NAME_VALUE_MAX));
    msgpack_sbuffer_destroy(&sb);
    name_template_destroy(&t);
}

Test(name_template, field_lookup_and_numbers)
{
    payload_t *p = sample();
    msgpack_object o;
    double v = 0;
    cr_expect(name_field_lookup("data.n", "t", 1, payload_root(p), NULL, &o));
    cr_expect(name_object_number(&o, &v) && v == 42.0);
    cr_expect(name_field_lookup("data.d", "t", 1, payload_root(p), NULL, &o));
    cr_expect(name_object_number(&o, &v) && v == 1.5);
    cr_expect(name_field_lookup("data.s", "t", 1, payload_root(p), NULL, &o));
    cr_expect(name_object_number(&o, &v) && v == 2.25, "numeric strings count");
    cr_expect(name_field_lookup("data.fun", "t", 1, payload_root(p), NULL, &o));
    cr_expect(name_object_number(&o, &v) == false);
    cr_expect(name_field_lookup("data.nil", "t", 1, payload_root(p), NULL, &o) == false);
    cr_expect(name_field_lookup("master_id", "t", 1, payload_root(p), NULL, &o) == false);
    cr_expect(name_field_lookup("fun", "t", 1, payload_root(p), NULL, &o) == false);
    cr_expect(name_field_valid("data.a.b") && name_field_valid("tag"));
    cr_expect(name_field_valid("data.") == false && name_field_valid("x") == false);
    payload_destroy(&p);
}
