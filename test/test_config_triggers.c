/* Tests for daemon/config_triggers.c: trigger workers, triggers and pipelines, with their
 * defaults, and each kind of error as an exact "FILE:LINE: message". */
#include "config.h"
#include "config_test_dir.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(config_triggers, .init = config_dir_setup, .fini = config_dir_teardown);

#define JOBS_WORKER \
    "workers = ( { name = \"jobs\"; sink = \"trigger\"; state = \"t.db\"; " \
    "triggers = [ \"salt_jobs\" ]; } );\n" \
    "rules = ( { tag = \"^salt/job/\"; workers = \"jobs\"; } );\n"

Test(config_triggers, a_job_tracker_loads_with_defaults)
{
    char err[4096];
    eventsd_config_t *c = load_text(
        JOBS_WORKER
        "triggers = (\n"
        "  { name = \"salt_jobs\";\n"
        "    match = ( { tag = \"^salt/job/[0-9]+/new$\"; },\n"
        "              { tag = \"^salt/job/[0-9]+/ret/\"; where = [ \"data.id exists\", "
        "\"data.retcode != 0\", \"data.fun =~ ^state\\\\.\" ]; } );\n"
        "    distinguished_by = [ \"data.jid\", \"stamp|day\" ];\n"
        "    fire = ( { tag = \"^salt/job/[0-9]+/ret/\"; count = 2; } );\n"
        "    all_expected = true; expire = \"first + 15m\"; fire_delay = \"30s\";\n"
        "    fire_pipeline = \"done\"; expire_pipeline = \"late\"; }\n"
        ");\n"
        "pipelines = (\n"
        "  { name = \"done\"; handlers = (\n"
        "      { type = \"sql\"; sink = \"sqlite\"; database = \"s.db\"; template = \"t.sql\";\n"
        "        missing_template = \"m.sql\"; },\n"
        "      { type = \"emit\"; tag = \"eventsd/job/{data.jid}/complete\"; },\n"
        "      { type = \"log\"; } ); },\n"
        "  { name = \"late\"; handlers = ( { type = \"counter\"; sink = \"redis\"; group = \"g\";\n"
        "      intervals = [ \"5m\" ]; counter = \"{data.fun}\"; },\n"
        "      { type = \"graphite\"; sink = \"graphite\"; metrics = ( { name = \"x\"; } ); } ); }\n"
        ");\n", err, sizeof err);
    /* t.sql does not exist: only that may be reported */
    if (!c) {
        for (char *l = strtok(err, "\n"); l; l = strtok(NULL, "\n"))
            cr_expect(strstr(l, "cannot read template") != NULL, "%s", l);
        FILE *f = fopen(strcat(strcpy((char[PATH_MAX + 16]){ 0 }, tmp), "/t.sql"), "w");
        cr_assert(f != NULL);
        fputs("INSERT INTO t (a) VALUES (:data.jid);\n", f);
        fclose(f);
        c = config_load(conf, err, sizeof err);
    }
    cr_assert(c != NULL, "%s", err);
    const worker_config_t *w = &c->workers[0];
    cr_expect(eq(str, w->sink, "trigger"));
    cr_expect(strstr(w->state, "/t.db") != NULL);
    cr_expect(eq(int, w->n_triggers, 1));
    cr_expect(eq(int, w->max_streams, 100000));
    cr_expect(w->root == c);
    const trigger_config_t *t = config_trigger(c, "salt_jobs");
    cr_assert(t != NULL);
    cr_expect(eq(int, t->n_match, 2));
    cr_assert(eq(int, t->match[1].n_where, 3));
    cr_expect(eq(int, t->match[1].where[0].op, COND_EXISTS));
    cr_expect(eq(str, t->match[1].where[1].field, "data.retcode"));
    cr_expect(eq(int, t->match[1].where[1].op, COND_NE));
    cr_expect(eq(str, t->match[1].where[1].value, "0"));
    cr_expect(eq(int, t->match[1].where[2].op, COND_MATCH));
    cr_expect(eq(str, t->match[1].where[2].value, "^state\\."));
    cr_expect(eq(int, t->n_distinguished_by, 2));
    cr_expect(eq(int, t->n_fire, 1));
    cr_expect(eq(int, t->fire[0].count, 2));
    cr_expect(t->all_expected);
    cr_expect(eq(str, t->expected_tag, "^salt/job/[0-9]+/new$"));
    cr_expect(eq(str, t->expected_field, "data.minions"));
    cr_expect(eq(str, t->returned_field, "data.id"));
    cr_expect(eq(int, t->expire_from, EXPIRE_FROM_FIRST));
    cr_expect(eq(int, t->expire_s, 900));
    cr_expect(eq(int, t->fire_delay_s, 30));
    const pipeline_config_t *p = config_pipeline(c, "done");
    cr_assert(p != NULL);
    cr_assert(eq(int, p->n_handlers, 3));
    cr_expect(eq(int, p->handlers[0].type, HANDLER_SQL));
    cr_expect(eq(str, p->handlers[0].sink->sink, "sqlite"));
    cr_expect(eq(str, p->handlers[0].sink->name, "done.1"));
    cr_expect(strstr(p->handlers[0].missing_template, "/m.sql") != NULL);
    cr_expect(eq(str, p->handlers[1].tag, "eventsd/job/{data.jid}/complete"));
    cr_expect(eq(int, p->handlers[2].type, HANDLER_LOG));
    p = config_pipeline(c, "late");
    cr_expect(eq(int, p->handlers[0].type, HANDLER_COUNTER));
    cr_expect(eq(int, p->handlers[0].sink->intervals_s[0], 300));
    cr_expect(eq(int, p->handlers[1].sink->port, 2003));
    eventsd_config_destroy(&c);
}

typedef struct {
    const char *text;
    const char *want[5];
} error_case_t;

#define PIPE "pipelines = ( { name = \"p\"; handlers = ( { type = \"log\"; } ); } );\n"

static const error_case_t cases[] = {
    { JOBS_WORKER
      "triggers = ( { name = \"salt_jobs\"; match = ( { tag = \"^\"; where = [ \"data.x ~ 1\" ]; } );\n"
      "  distinguished_by = [ \"jid\" ]; expire = \"first 15m\"; fire_delay = \"soon\";\n"
      "  fire_pipeline = \"nope\"; } );\n" PIPE,
      { "3: condition 'data.x ~ 1' in match #1 of trigger 'salt_jobs': expected an operator == "
        "!= < <= > >= =~ !~ or exists, then a value",
        "4: 'distinguished_by' in trigger 'salt_jobs': 'jid' is not a field, or a field|day or "
        "field|hour bucket",
        "4: 'fire_delay' in trigger 'salt_jobs' must be a duration (30s, 15m, 1h, 1d), got 'soon'",
        "4: 'expire' in trigger 'salt_jobs' must be \"first + DURATION\" or \"last + DURATION\" "
        "(DURATION: 30s, 15m, 1h, 1d; at most 366d), got 'first 15m'",
        "5: 'fire_pipeline' in trigger 'salt_jobs' names unknown pipeline 'nope'" } },
    { "workers = ( { name = \"jobs\"; sink = \"trigger\"; state = \"t.db\"; processes = 2;\n"
      "  triggers = [ \"a\", \"b\" ]; } );\n"
      "rules = ( { tag = \"^\"; workers = \"jobs\"; } );\n"
      "triggers = ( { name = \"c\"; match = ( { tag = \"^\"; } ); distinguished_by = [ \"tag\" ];\n"
      "  expire = \"last + 1h\"; expire_pipeline = \"p\"; } );\n" PIPE,
      { "1: 'processes' in worker 'jobs' must be 1: a trigger worker owns its streams",
        "1: worker 'jobs' names unknown trigger 'a'",
        "1: worker 'jobs' names unknown trigger 'b'",
        "4: trigger 'c' is run by 0 trigger workers (it must be named in the 'triggers' of "
        "exactly one)" } },
    { JOBS_WORKER
      "triggers = ( { name = \"salt_jobs\"; match = ( { tag = \"^\"; } ); distinguished_by = [ \"tag\" ];\n"
      "  expire = \"last + 1h\"; expire_pipeline = \"p\"; } );\n"
      "pipelines = ( { name = \"p\"; handlers = (\n"
      "  { type = \"sql\"; sink = \"graphite\"; metrics = ( { name = \"x\"; } ); },\n"
      "  { type = \"emit\"; },\n"
      "  { type = \"mail\"; } ); } );\n",
      { "6: handler #1 of pipeline 'p' is of type 'sql': its sink must be sqlite, pgsql or mysql",
        "7: missing key 'tag' in handler #2 of pipeline 'p' (e.g. "
        "\"eventsd/job/{data.jid}/complete\")",
        "8: unknown value 'mail' for 'type' (expected sql, graphite, counter, emit or log)" } },
};

Test(config_triggers, errors_name_file_line_and_key)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[8192], want[8192] = "";
        eventsd_config_t *c = load_text(cases[i].text, err, sizeof err);
        cr_expect(c == NULL, "case %zu loaded", i);
        for (int k = 0; k < 5 && cases[i].want[k]; k++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s:%s",
                     k ? "\n" : "", conf, cases[i].want[k]);
        cr_expect(eq(str, err, want), "case %zu", i);
        eventsd_config_destroy(&c);
    }
}
