/* libFuzzer harness: daemon/config.c, config_load on a libconfig file.
 *
 * Input: the text of an eventsd.conf. It is written to etc/eventsd.conf in a private temporary
 * directory (under $TMPDIR, else /tmp) that also holds a copy of the shipped SQL templates in
 * sql/<dialect>/, so that configs naming them with sql_dir = "../sql" (like the shipped etc/ configs) load
 * completely. Each input is loaded, checked, destroyed and its file removed; the directory
 * is removed at exit.
 *
 * Checked, beyond "no crash, no leak":
 *   - failure gives a non-empty message whose every line is "FILE:LINE: message" (one problem
 *     per line, as config.h promises), success an empty one;
 *   - a loaded config keeps its documented invariants: at least one worker and one rule,
 *     unique valid worker names, every rule names existing workers, limits within their
 *     ranges, paths absolute, log_level lower case, a fingerprint per worker. */
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_common.h"

#ifndef SRC_DIR
#define SRC_DIR "."
#endif

/* libconfig 1.5 leaks the text of a string token its parser rejects (a string where a
 * setting name belongs, `x = 1; "a";`, or `""""` glued to a name): the scanner's buffer
 * (strbuf_append) or empty string (calloc in libconfig_yylex) is never freed. That is inside
 * libconfig, not eventsd: config_load always calls config_destroy, and forgetting that would
 * still be reported through the setting tree's own allocations. So LeakSanitizer ignores
 * exactly those two allocation sites, quietly. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "print_suppressions=0";
}

static char tmp_dir[4096];
static char conf_path[4200];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (tmp_dir[0])
        nftw(tmp_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return;   /* a missing template only makes a seed fail to load fully */
    FILE *out = fopen(to, "wb");
    FUZZ_CHECK(out, "cannot create %s", to);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        FUZZ_CHECK(fwrite(buf, 1, n, out) == n, "cannot write %s", to);
    fclose(in);
    FUZZ_CHECK(fclose(out) == 0, "cannot write %s", to);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    static const char *const dialects[] = { "sqlite", "pgsql", "mysql" };
    static const char *const files[] = { "schema.sql", "salt_returns.sql", "jids.sql",
                                         "salt_events.sql", "salt_auth.sql" };
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/eventsd-fuzz-config.XXXXXX",
             base && *base ? base : "/tmp");
    FUZZ_CHECK(mkdtemp(tmp_dir), "cannot create %s", tmp_dir);
    atexit(cleanup);
    char path[4300], from[4300];
    snprintf(path, sizeof path, "%s/etc", tmp_dir);
    FUZZ_CHECK(mkdir(path, 0700) == 0, "mkdir %s", path);
    snprintf(path, sizeof path, "%s/sql", tmp_dir);
    FUZZ_CHECK(mkdir(path, 0700) == 0, "mkdir %s", path);
    for (size_t d = 0; d < 3; d++) {
        snprintf(path, sizeof path, "%s/sql/%s", tmp_dir, dialects[d]);
        FUZZ_CHECK(mkdir(path, 0700) == 0, "mkdir %s", path);
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
            snprintf(from, sizeof from, "%s/sql/%s/%s", SRC_DIR, dialects[d], files[f]);
            snprintf(path, sizeof path, "%s/sql/%s/%s", tmp_dir, dialects[d], files[f]);
            copy_file(from, path);
        }
    }
    snprintf(conf_path, sizeof conf_path, "%s/etc/eventsd.conf", tmp_dir);
    return 0;
}

/* Every line of a (not truncated) error text carries FILE:LINE: before its message. */
static void check_errors(const char *err, size_t errlen)
{
    size_t len = strlen(err);
    FUZZ_CHECK(len > 0, "config_load failed without a message");
    if (len + 1 >= errlen)
        return;   /* truncated: the last line may be cut anywhere */
    for (const char *line = err; line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t) (nl - line) : strlen(line);
        bool ok = false;
        for (size_t i = 0; i + 1 < n && !ok; i++) {
            if (line[i] != ':' || line[i + 1] < '0' || line[i + 1] > '9')
                continue;
            size_t k = i + 1;
            while (k < n && line[k] >= '0' && line[k] <= '9')
                k++;
            ok = k + 1 < n && line[k] == ':' && line[k + 1] == ' ';
        }
        FUZZ_CHECK(ok, "error line without FILE:LINE: '%.*s'\nwhole text:\n%s", (int) n, line,
                   err);
        line = nl ? nl + 1 : NULL;
    }
}

static bool absolute(const char *p)
{
    return p && p[0] == '/';
}

static void check_config(const eventsd_config_t *c)
{
    FUZZ_CHECK(c->n_workers >= 1 && c->n_rules >= 1, "%d workers, %d rules", c->n_workers,
               c->n_rules);
    FUZZ_CHECK(c->master_id && c->master_id[0], "no master_id");
    FUZZ_CHECK(absolute(c->runtime_dir) && absolute(c->sql_dir) && absolute(c->spool.dir),
               "relative runtime_dir, sql_dir or spool.dir");
    FUZZ_CHECK(absolute(c->bus.path) && c->bus.endpoint && c->bus.host, "bus paths");
    FUZZ_CHECK(c->log_level && (!strcmp(c->log_level, "debug") || !strcmp(c->log_level, "info") ||
                                !strcmp(c->log_level, "warning") ||
                                !strcmp(c->log_level, "error")),
               "log_level '%s'", c->log_level ? c->log_level : "(null)");
    FUZZ_CHECK(!c->group || c->user, "group without user");
    FUZZ_CHECK(c->bus.port >= 1 && c->bus.port <= 65535, "bus.port %d", c->bus.port);
    FUZZ_CHECK(c->bus.max_event_bytes >= 1024 && c->bus.max_event_bytes <= ((size_t) 1 << 30),
               "bus.max_event_bytes %zu", c->bus.max_event_bytes);
    FUZZ_CHECK(c->bus.max_depth >= 2 && c->bus.max_depth <= PAYLOAD_MSGPACK_MAX_DEPTH,
               "bus.max_depth %d", c->bus.max_depth);
    FUZZ_CHECK(c->bus.reconnect_min_ms >= 1 && c->bus.reconnect_max_ms >= c->bus.reconnect_min_ms,
               "reconnect %d..%d", c->bus.reconnect_min_ms, c->bus.reconnect_max_ms);
    FUZZ_CHECK(c->spool.max_bytes >= 2 * c->spool.segment_bytes, "spool sizes");
    for (int i = 0; i < c->n_workers; i++) {
        const worker_config_t *w = &c->workers[i];
        FUZZ_CHECK(w->name && w->name[0] && strlen(w->name) <= 64, "worker %d name", i);
        FUZZ_CHECK(config_worker_index(c, w->name) == i, "worker name '%s' twice", w->name);
        FUZZ_CHECK(w->sink && w->fingerprint, "worker '%s' sink or fingerprint", w->name);
        FUZZ_CHECK(w->processes >= 1 && w->processes <= 64, "processes %d", w->processes);
        FUZZ_CHECK(w->batch_size >= 1 && w->max_inflight >= w->batch_size, "batch %d, inflight %d",
                   w->batch_size, w->max_inflight);
        bool sqlite = !strcmp(w->sink, "sqlite"), file = !strcmp(w->sink, "file");
        bool pgsql = !strcmp(w->sink, "pgsql"), mysql = !strcmp(w->sink, "mysql");
        FUZZ_CHECK(sqlite || file || pgsql || mysql, "sink '%s'", w->sink);
        FUZZ_CHECK(file ? absolute(w->path) && !w->template_path : absolute(w->template_path),
                   "worker '%s' template/path", w->name);
        FUZZ_CHECK(!sqlite || (w->database && (absolute(w->database) ||
                                               !strcmp(w->database, ":memory:") ||
                                               !strncmp(w->database, "file:", 5))),
                   "sqlite database '%s'", w->database ? w->database : "(null)");
        FUZZ_CHECK(!pgsql || w->conninfo, "pgsql without conninfo");
        FUZZ_CHECK(!mysql || (w->database && w->user && w->host), "mysql keys");
        FUZZ_CHECK(!w->dead_letter || absolute(w->dead_letter), "dead_letter");
        FUZZ_CHECK(!w->socket || absolute(w->socket), "socket");
    }
    for (int i = 0; i < c->n_rules; i++) {
        const rule_config_t *r = &c->rules[i];
        FUZZ_CHECK(r->tag && r->n_workers >= 1, "rule %d", i);
        for (int k = 0; k < r->n_workers; k++)
            FUZZ_CHECK(config_worker_index(c, r->workers[k]) >= 0, "rule %d worker '%s'", i,
                       r->workers[k]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(conf_path, "wb");
    FUZZ_CHECK(f, "cannot create %s", conf_path);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s",
               conf_path);
    char err[4096];
    memset(err, 'x', sizeof err);
    eventsd_config_t *c = config_load(conf_path, err, sizeof err);
    FUZZ_CHECK(memchr(err, '\0', sizeof err), "error text not terminated");
    if (c) {
        FUZZ_CHECK(err[0] == '\0', "success with a message: %s", err);
        check_config(c);
        eventsd_config_destroy(&c);
        FUZZ_CHECK(!c, "destroy did not clear the pointer");
    } else
        check_errors(err, sizeof err);
    unlink(conf_path);
    return 0;
}
