/* Tests for daemon/secrets.c: which worker settings count as passwords (mysql password, pgsql
 * conninfo in keyword and URI form, libpq's other secret options), the "others may read it"
 * file-mode check, and conninfo redaction: the secret never comes out, even truncated or when
 * libpq cannot parse the string, and everything else reads back the same through libpq. */
#include "config.h"
#include "secrets.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "Zq7-SeCrEt-4x"

/* ---- secrets_config_has_password ---- */

typedef struct {
    const char *name;
    const char *sink;
    const char *conninfo;   /* pgsql */
    const char *password;   /* mysql */
    bool        want;
} has_case_t;

static const has_case_t has_cases[] = {
    { "sqlite worker", "sqlite", NULL, NULL, false },
    { "mysql without password", "mysql", NULL, NULL, false },
    { "mysql password", "mysql", NULL, SECRET, true },
    { "mysql empty password", "mysql", NULL, "", false },
    { "pgsql keywords, no password", "pgsql", "host=127.0.0.1 dbname=salt user=eventsd", NULL,
      false },
    { "pgsql keyword password", "pgsql", "host=127.0.0.1 dbname=salt password=" SECRET, NULL,
      true },
    { "pgsql quoted password", "pgsql", "host=h password='a b \\' c'", NULL, true },
    { "pgsql empty password", "pgsql", "host=h password=''", NULL, false },
    { "pgsql sslpassword", "pgsql", "host=h sslpassword=" SECRET, NULL, true },
    { "pgsql passfile is a path", "pgsql", "host=h passfile=/etc/eventsd/pgpass", NULL, false },
    { "URI user:password", "pgsql", "postgresql://eventsd:" SECRET "@db.example:5432/salt", NULL,
      true },
    { "URI postgres:// user:password", "pgsql", "postgres://u:" SECRET "@h/db", NULL, true },
    { "URI user only", "pgsql", "postgresql://eventsd@db.example/salt", NULL, false },
    { "URI host only", "pgsql", "postgresql://db.example/salt?sslmode=require", NULL, false },
    { "URI query password", "pgsql", "postgresql://db.example/salt?password=" SECRET, NULL,
      true },
    { "URI percent-encoded key", "pgsql", "postgresql://h/db?pass%77ord=" SECRET, NULL, true },
    { "URI empty password", "pgsql", "postgresql://u:@h/db", NULL, false },
    { "plain database name", "pgsql", "salt", NULL, false },
    { "nested conninfo in dbname", "pgsql", "dbname='host=h password=" SECRET "'", NULL, true },
    { "nested URI in dbname", "pgsql", "dbname='postgresql://u:" SECRET "@h/d'", NULL, true },
    { "unparseable: counts", "pgsql", "host=h password=" SECRET " junk", NULL, true },
    { "unparseable URI: counts", "pgsql", "postgresql://h/db?pass%77ord=" SECRET "%zz", NULL,
      true },
};

Test(secrets, has_password_table)
{
    for (size_t i = 0; i < sizeof has_cases / sizeof *has_cases; i++) {
        const has_case_t *c = &has_cases[i];
        worker_config_t w = { .name = "w", .sink = (char *) c->sink,
                              .conninfo = (char *) c->conninfo,
                              .password = (char *) c->password };
        eventsd_config_t cfg = { .workers = &w, .n_workers = 1 };
        cr_expect_eq(secrets_config_has_password(&cfg), c->want, "%s", c->name);
    }
}

Test(secrets, has_password_any_worker)
{
    worker_config_t w[3] = {
        { .name = "a", .sink = "sqlite" },
        { .name = "b", .sink = "pgsql", .conninfo = "host=h" },
        { .name = "c", .sink = "pgsql", .conninfo = "postgresql://u:" SECRET "@h/db" },
    };
    eventsd_config_t cfg = { .workers = w, .n_workers = 3 };
    cr_expect(secrets_config_has_password(&cfg));
    cfg.n_workers = 2;
    cr_expect(!secrets_config_has_password(&cfg));
    cfg.n_workers = 0;
    cr_expect(!secrets_config_has_password(&cfg));
    cr_expect(!secrets_config_has_password(NULL));
    worker_config_t redis = { .name = "r", .sink = "redis", .password = SECRET };
    cfg = (eventsd_config_t){ .workers = &redis, .n_workers = 1 };
    cr_expect(secrets_config_has_password(&cfg), "a redis worker's password");
    cfg.n_workers = 0;
    cfg.redis.password = SECRET;
    cr_expect(secrets_config_has_password(&cfg), "the shared throttles' redis password");
}

/* The same through config_load, so the fields the loader fills are the ones looked at. */
Test(secrets, has_password_from_a_loaded_config)
{
    char dir[] = "/tmp/eventsd-test-secrets-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/eventsd.conf", dir);
    const struct { const char *worker; bool want; } cases[] = {
        { "sink = \"pgsql\"; conninfo = \"host=h dbname=salt\"; template = \"pgsql/jids.sql\";",
          false },
        { "sink = \"pgsql\"; conninfo = \"postgresql://u:" SECRET "@h/salt\"; "
          "template = \"pgsql/jids.sql\";", true },
        { "sink = \"mysql\"; user = \"u\"; password = \"" SECRET "\"; database = \"salt\"; "
          "template = \"mysql/jids.sql\";", true },
        { "sink = \"mysql\"; user = \"u\"; database = \"salt\"; template = \"mysql/jids.sql\";",
          false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *f = fopen(path, "w");
        cr_assert(f != NULL);
        fprintf(f, "sql_dir = \"%s/sql\";\nruntime_dir = \"%s/run\";\n"
                   "workers = ( { name = \"w\"; %s } );\n"
                   "rules = ( { tag = \"^\"; workers = [ \"w\" ]; } );\n",
                SRC_DIR, dir, cases[i].worker);
        cr_assert_eq(fclose(f), 0);
        char err[4096];
        eventsd_config_t *cfg = config_load(path, err, sizeof err);
        cr_assert(cfg != NULL, "case %zu: %s", i, err);
        cr_expect_eq(secrets_config_has_password(cfg), cases[i].want, "case %zu", i);
        eventsd_config_destroy(&cfg);
    }
    unlink(path);
    rmdir(dir);
}

/* ---- secrets_check_file_mode ---- */

typedef struct {
    mode_t      mode;
    int         want;
    const char *how;    /* expected in the message when want == 1 */
} mode_case_t;

static const mode_case_t mode_cases[] = {
    { 0600, 0, NULL },
    { 0640, 0, NULL },
    { 0660, 0, NULL },
    { 0400, 0, NULL },
    { 0644, 1, "is readable by others (mode 0644)" },
    { 0604, 1, "is readable by others (mode 0604)" },
    { 0602, 1, "is writable by others (mode 0602)" },
    { 0606, 1, "is readable and writable by others (mode 0606)" },
    { 0666, 1, "is readable and writable by others (mode 0666)" },
    { 0601, 0, NULL },   /* execute alone reveals nothing */
    { 0755, 1, "is readable by others (mode 0755)" },
};

Test(secrets, file_mode_table)
{
    char dir[] = "/tmp/eventsd-test-secrets-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char path[PATH_MAX], link[PATH_MAX];
    snprintf(path, sizeof path, "%s/eventsd.conf", dir);
    snprintf(link, sizeof link, "%s/link.conf", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fclose(f);
    cr_assert_eq(symlink(path, link), 0);
    for (size_t i = 0; i < sizeof mode_cases / sizeof *mode_cases; i++) {
        const mode_case_t *c = &mode_cases[i];
        cr_assert_eq(chmod(path, c->mode), 0);
        const char *paths[] = { path, link };   /* a symlink reports its target's mode */
        for (int k = 0; k < 2; k++) {
            char msg[512] = "stale";
            int rc = secrets_check_file_mode(paths[k], msg, sizeof msg);
            cr_expect_eq(rc, c->want, "mode %04o via %s: %d (%s)", (unsigned) c->mode,
                         paths[k], rc, msg);
            if (c->want == 0) {
                cr_expect_str_eq(msg, "", "mode %04o", (unsigned) c->mode);
                continue;
            }
            cr_expect(strstr(msg, paths[k]) != NULL, "message names the file: %s", msg);
            cr_expect(strstr(msg, c->how) != NULL, "'%s' lacks '%s'", msg, c->how);
            cr_expect(strchr(msg, '"') == NULL, "no double quotes: %s", msg);
        }
    }
    char msg[512];
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/missing.conf", dir);
    cr_expect_eq(secrets_check_file_mode(missing, msg, sizeof msg), -1);
    cr_expect(strstr(msg, missing) && strstr(msg, "No such file"), "%s", msg);
    cr_expect_eq(secrets_check_file_mode(NULL, msg, sizeof msg), -1);
    cr_expect_eq(secrets_check_file_mode(path, NULL, 0), 1, "NULL msg buffer is tolerated");
    char tiny[8];
    cr_expect_eq(secrets_check_file_mode(path, tiny, sizeof tiny), 1);
    cr_expect_eq(strlen(tiny), sizeof tiny - 1, "truncated, terminated");
    unlink(link);
    unlink(path);
    rmdir(dir);
}

/* ---- secrets_redact_conninfo ---- */

#define UNPARSEABLE "(conninfo not shown: libpq cannot parse it)"

typedef struct {
    const char *name;
    const char *in;
    const char *hidden[3];    /* must not appear in the output */
    const char *exact;        /* the whole expected output, or NULL */
    const char *kv[8];        /* "key=value" libpq reads back from the output (NULL-ended) */
} redact_case_t;

static const redact_case_t redact_cases[] = {
    { "only a password", "password=" SECRET, { SECRET }, "password=***", { "password=***" } },
    { "keyword form", "host=db.example port=5433 dbname=salt user=eventsd password=" SECRET,
      { SECRET }, NULL,
      { "host=db.example", "port=5433", "dbname=salt", "user=eventsd", "password=***" } },
    { "quoted password with blanks", "host=h password='" SECRET " x \\' y'",
      { SECRET, " x ' y" }, NULL, { "host=h", "password=***" } },
    { "no password: unchanged", "host=h dbname=salt user=eventsd application_name='a b'",
      { NULL }, NULL, { "host=h", "dbname=salt", "user=eventsd", "application_name=a b" } },
    { "values needing quotes survive", "options='-c search_path=x\\'y' host=h",
      { NULL }, NULL, { "options=-c search_path=x'y", "host=h" } },
    { "backslash in a value", "host=h application_name='a\\\\b'", { NULL }, NULL,
      { "host=h", "application_name=a\\b" } },
    { "sslpassword", "host=h sslpassword=" SECRET, { SECRET }, NULL,
      { "host=h", "sslpassword=***" } },
    { "URI user:password", "postgresql://eventsd:" SECRET "@db.example:5433/salt?sslmode=require",
      { SECRET }, NULL,
      { "user=eventsd", "password=***", "host=db.example", "port=5433", "dbname=salt",
        "sslmode=require" } },
    { "URI percent-encoded password", "postgres://u:Zq7%2DSeCrEt%2D4x@h/db",
      { SECRET, "Zq7%2DSeCrEt%2D4x" }, NULL, { "user=u", "password=***", "host=h", "dbname=db" } },
    { "URI query password", "postgresql://h/db?password=" SECRET "&application_name=eventsd",
      { SECRET }, NULL, { "host=h", "dbname=db", "password=***", "application_name=eventsd" } },
    { "URI without password", "postgresql://eventsd@h/db", { NULL }, NULL,
      { "user=eventsd", "host=h", "dbname=db" } },
    { "nested conninfo in dbname", "dbname='host=h password=" SECRET "'", { SECRET }, NULL,
      { NULL } },
    { "nested URI in dbname", "dbname='postgresql://u:" SECRET "@h/d'", { SECRET }, NULL,
      { NULL } },
    { "empty string", "", { NULL }, "", { NULL } },
    { "plain database name", "salt", { NULL }, "dbname=salt", { "dbname=salt" } },
    { "plain database name with a blank", "my db", { NULL }, "dbname='my db'", { "dbname=my db" } },
    { "unparseable keyword form", "host=h password=" SECRET " junk", { SECRET, "junk" },
      UNPARSEABLE, { NULL } },
    { "unparseable URI", "postgresql://h/db?pass%77ord=" SECRET "%zz", { SECRET, "Zq7" },
      UNPARSEABLE, { NULL } },
    { "unterminated quote", "host=h password='" SECRET, { SECRET }, UNPARSEABLE, { NULL } },
};

/* The value libpq reads for key from text, or NULL. Caller frees. */
static char *reparse(const char *text, const char *key, bool *parsed)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(text, &perr);
    PQfreemem(perr);
    *parsed = opts != NULL;
    if (!opts)
        return NULL;
    char *val = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, key) == 0 && o->val)
            val = strdup(o->val);
    PQconninfoFree(opts);
    return val;
}

static int count_values(const char *text)
{
    PQconninfoOption *opts = PQconninfoParse(text, NULL);
    if (!opts)
        return -1;
    int n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n += o->val != NULL;
    PQconninfoFree(opts);
    return n;
}

Test(secrets, redact_table)
{
    for (size_t i = 0; i < sizeof redact_cases / sizeof *redact_cases; i++) {
        const redact_case_t *c = &redact_cases[i];
        char out[1024];
        memset(out, 'X', sizeof out);
        secrets_redact_conninfo(c->in, out, sizeof out);
        cr_assert(memchr(out, '\0', sizeof out) != NULL, "%s: not terminated", c->name);
        for (int k = 0; k < 3 && c->hidden[k]; k++)
            cr_expect(strstr(out, c->hidden[k]) == NULL, "%s: '%s' shows '%s'", c->name, out,
                      c->hidden[k]);
        if (c->exact)
            cr_expect_str_eq(out, c->exact, "%s", c->name);
        if (c->hidden[0])
            cr_expect(strstr(out, "***") || strcmp(out, UNPARSEABLE) == 0, "%s: %s", c->name,
                      out);
        if (!c->kv[0])
            continue;
        int n = 0;
        for (; n < 8 && c->kv[n]; n++) {
            const char *eq = strchr(c->kv[n], '=');
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int) (eq - c->kv[n]), c->kv[n]);
            bool parsed;
            char *val = reparse(out, key, &parsed);
            cr_expect(parsed, "%s: output '%s' does not parse", c->name, out);
            cr_expect(val && strcmp(val, eq + 1) == 0, "%s: %s reads back as '%s' from '%s'",
                      c->name, key, val ? val : "(none)", out);
            free(val);
        }
        cr_expect_eq(count_values(out), n, "%s: '%s' holds other values", c->name, out);
    }
}

Test(secrets, redact_nested_dbname_reads_back)
{
    char out[512];
    secrets_redact_conninfo("host=h dbname='host=inner password=" SECRET " user=u'", out,
                            sizeof out);
    bool parsed;
    char *db = reparse(out, "dbname", &parsed);
    cr_assert(parsed && db, "%s", out);
    char *inner_pw = reparse(db, "password", &parsed);
    char *inner_user = reparse(db, "user", &parsed);
    cr_expect(inner_pw && strcmp(inner_pw, "***") == 0, "%s", db);
    cr_expect(inner_user && strcmp(inner_user, "u") == 0, "%s", db);
    free(inner_pw);
    free(inner_user);
    free(db);
}

/* Every buffer size: a terminated prefix of the full output, never a piece of the secret. */
Test(secrets, redact_truncated)
{
    const char *in = "postgresql://eventsd:" SECRET "@db.example:5433/salt?application_name=x";
    char full[512];
    secrets_redact_conninfo(in, full, sizeof full);
    size_t n = strlen(full);
    cr_assert_gt(n, 20);
    for (size_t len = 1; len <= n + 2; len++) {
        char buf[512];
        memset(buf, 'X', sizeof buf);
        secrets_redact_conninfo(in, buf, len);
        size_t got = strnlen(buf, len);
        cr_assert_lt(got, len, "len %zu: not terminated", len);
        cr_expect_eq(got, len - 1 < n ? len - 1 : n, "len %zu", len);
        cr_expect(strncmp(buf, full, got) == 0, "len %zu: not a prefix", len);
        cr_expect(strstr(buf, "Zq7") == NULL, "len %zu: %s", len, buf);
        cr_expect_eq(buf[len], 'X', "len %zu: wrote past the buffer", len);
    }
}

Test(secrets, redact_edges)
{
    char out[64] = "stale";
    secrets_redact_conninfo(NULL, out, sizeof out);
    cr_expect_str_eq(out, "");
    secrets_redact_conninfo("password=x", NULL, 10);   /* must not crash */
    out[0] = 'Q';
    secrets_redact_conninfo("password=x", out, 0);
    cr_expect_eq(out[0], 'Q', "len 0 writes nothing");
}
