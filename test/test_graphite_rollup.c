/* Tests for workers/graphite_rollup.c and graphite_name.c: which names a rollup source
 * matches, what its target becomes, and which patterns are refused at compile time. */
#include "graphite_name.h"
#include "graphite_rollup.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Applies (target, source) to name; returns the rc and the target in out. */
static int apply(const char *target, const char *source, const char *name, char *out,
                 size_t outlen)
{
    char err[256] = "";
    graphite_rollup_t *r = graphite_rollup_compile(target, source, err, sizeof err);
    cr_assert(r != NULL, "%s <- %s: %s", target, source, err);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_write(&sb, "|", 1);
    int rc = graphite_rollup_apply(r, name, strlen(name), &sb);
    snprintf(out, outlen, "%.*s", (int) sb.size, sb.data);
    msgpack_sbuffer_destroy(&sb);
    graphite_rollup_destroy(&r);
    return rc;
}

typedef struct {
    const char *target, *source, *name;
    const char *want;   /* NULL: no match */
} match_case_t;

static const match_case_t matches[] = {
    /* the example */
    { "salt.jobs.all.<result>", "salt.jobs.*.<result>", "salt.jobs.test_ping.True",
      "salt.jobs.all.True" },
    { "salt.jobs.all.<result>", "salt.jobs.*.<result>", "salt.jobs.test_ping.False",
      "salt.jobs.all.False" },
    /* '*' is one component: never zero, never two */
    { "salt.jobs.all.<result>", "salt.jobs.*.<result>", "salt.jobs.True", NULL },
    { "salt.jobs.all.<result>", "salt.jobs.*.<result>", "salt.jobs.state.apply.True", NULL },
    { "salt.jobs.all.<result>", "salt.jobs.*.<result>", "salt.jobs.a.b.c", NULL },
    /* literal components must be equal, whole */
    { "x", "salt.jobs.*", "salt.job.a", NULL },
    { "x", "salt.jobs.*", "salt.jobsx.a", NULL },
    { "x", "salt.jobs.*", "salt.jobs.a", "x" },
    { "x", "salt.jobs", "salt.jobs", "x" },
    { "x", "salt.jobs", "salt.jobs.more", NULL },
    { "x", "salt.jobs.more", "salt.jobs", NULL },
    /* captures reordered, repeated and embedded in a target component */
    { "by_result.<r>.<fun>", "salt.<fun>.<r>", "salt.ping.ok", "by_result.ok.ping" },
    { "<a>.<a>_total.<a>", "<a>.*", "m.n", "m.m_total.m" },
    { "pre-<x>:post", "*.<x>", "a.b", "pre-b:post" },
    /* a single-component source */
    { "all", "*", "anything", "all" },
    { "all", "*", "two.parts", NULL },
};

Test(graphite_rollup, matches_table)
{
    for (size_t i = 0; i < N_ELEMS(matches); i++) {
        const match_case_t *c = &matches[i];
        char out[256];
        int rc = apply(c->target, c->source, c->name, out, sizeof out);
        cr_expect(eq(int, rc, c->want ? 1 : 0), "#%zu %s <- %s on %s", i, c->target,
                  c->source, c->name);
        char want[256];
        snprintf(want, sizeof want, "|%s", c->want ? c->want : "");
        cr_expect(eq(str, out, want), "#%zu: the buffer holds the target only on a match", i);
    }
}

typedef struct {
    const char *target, *source, *error;   /* a fragment of the message */
} bad_case_t;

static const bad_case_t bad[] = {
    { "all.<result>", "salt.jobs.*", "target uses '<result>', which the source does not "
      "capture" },
    { "all.<b>", "<a>.<b>.<a>", "source captures '<a>' twice" },
    { "all", "salt..jobs", "source component '' is neither" },
    { "all", "salt.jo*bs", "source component 'jo*bs'" },
    { "all", "salt.<a>x", "source component '<a>x'" },
    { "all", "salt.<>", "source component '<>'" },
    { "all", "salt.jobs.", "source component ''" },
    { "all.*", "salt.*", "target 'all.*': character outside" },
    { "all..x", "salt.*", "target 'all..x': empty component" },
    { "<a>.", "<a>", "empty component" },
    { "all x", "salt", "character outside" },
    { NULL, "salt", "needs 'target' and 'source'" },
};

Test(graphite_rollup, refuses_bad_patterns)
{
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        char err[256] = "";
        graphite_rollup_t *r = graphite_rollup_compile(bad[i].target, bad[i].source, err,
                                                       sizeof err);
        cr_expect(r == NULL, "#%zu compiled", i);
        cr_expect(strstr(err, bad[i].error) != NULL, "#%zu: '%s' lacks '%s'", i, err,
                  bad[i].error);
        graphite_rollup_destroy(&r);
    }
}

Test(graphite_rollup, source_component_limit)
{
    char src[512] = "", err[256] = "";
    for (int i = 0; i < GRAPHITE_ROLLUP_MAX_COMPONENTS; i++)
        strcat(src, i ? ".*" : "*");
    graphite_rollup_t *r = graphite_rollup_compile("x", src, err, sizeof err);
    cr_expect(r != NULL, "%s", err);
    graphite_rollup_destroy(&r);
    strcat(src, ".*");
    r = graphite_rollup_compile("x", src, err, sizeof err);
    cr_expect(r == NULL);
    cr_expect(strstr(err, "more than 64 components") != NULL, "%s", err);
}

typedef struct {
    const char *name;
    bool        valid;
} name_case_t;

static const name_case_t names[] = {
    { "a", true }, { "salt.jobs.test_ping.True", true }, { "a-b:c_d.9", true },
    { "", false }, { ".a", false }, { "a.", false }, { "a..b", false }, { "a b", false },
    { "a\nb", false }, { "a/b", false }, { "caf\xc3\xa9", false }, { "a.{x}", false },
};

Test(graphite_name, valid_names_table)
{
    for (size_t i = 0; i < N_ELEMS(names); i++) {
        const char *why = graphite_name_problem(names[i].name, strlen(names[i].name));
        cr_expect(eq(int, why == NULL, names[i].valid), "#%zu '%s': %s", i, names[i].name,
                  why ? why : "valid");
    }
}

Test(graphite_name, length_limits)
{
    char s[GRAPHITE_NAME_MAX + 2];
    memset(s, 'a', GRAPHITE_COMPONENT_MAX);
    cr_expect(graphite_name_problem(s, GRAPHITE_COMPONENT_MAX) == NULL);
    cr_expect(graphite_name_problem(s, GRAPHITE_COMPONENT_MAX + 0) == NULL);
    s[GRAPHITE_COMPONENT_MAX] = 'a';
    cr_expect(graphite_name_problem(s, GRAPHITE_COMPONENT_MAX + 1) != NULL);
    for (size_t i = 0; i < sizeof s; i++)   /* components of 99 bytes and a dot */
        s[i] = i % 100 == 99 ? '.' : 'a';
    cr_expect(graphite_name_problem(s, GRAPHITE_NAME_MAX - 1) == NULL);
    cr_expect(graphite_name_problem(s, GRAPHITE_NAME_MAX + 1) != NULL);
}
