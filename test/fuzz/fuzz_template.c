/* libFuzzer harness: workers/template.c, the SQL template compiler.
 *
 * Input: the text of a template file. It is written to an anonymous memory file (memfd, so
 * nothing is left on disk even after a crash) and loaded with template_load through
 * /proc/self/fd/N for each dialect (SQLite, PostgreSQL, MySQL), as the sinks load their
 * templates; template_load applies the daemon's own size limit (1 MiB) and NUL check. A
 * template that compiles is then evaluated (template_values) against two fixed events: a job
 * return with every kind of msgpack value and an empty payload.
 *
 * Checked, beyond "no crash, no leak": a failure names the file ("PATH:..."); a success has
 * SQL text holding, for PostgreSQL, every marker $1..$n; every computed value is of a valid
 * kind and its text lies inside the scratch buffer. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "template.h"
#include "worker_event.h"

static int mem_fd = -1;
static char mem_path[64];
static worker_event_t *events[2];

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static worker_event_t *make_event(const char *tag, bool full)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (!full)
        msgpack_pack_map(&pk, 0);
    else {
        msgpack_pack_map(&pk, 18);
        pk_str(&pk, "fun");       pk_str(&pk, "state.apply");
        pk_str(&pk, "jid");       pk_str(&pk, "20251118095000000600");
        pk_str(&pk, "id");        pk_str(&pk, "db01.example.com");
        pk_str(&pk, "retcode");   msgpack_pack_int(&pk, 2);
        pk_str(&pk, "success");   msgpack_pack_true(&pk);
        pk_str(&pk, "_stamp");
        msgpack_pack_ext(&pk, 24, 78);
        msgpack_pack_ext_body(&pk, "20251118T09:50:00.123456", 24);
        pk_str(&pk, "return");
        msgpack_pack_map(&pk, 3);
        pk_str(&pk, "a");
        msgpack_pack_array(&pk, 5);
        msgpack_pack_int(&pk, 1);
        msgpack_pack_int(&pk, -2);
        msgpack_pack_double(&pk, 3.5);
        msgpack_pack_nil(&pk);
        msgpack_pack_false(&pk);
        msgpack_pack_int(&pk, 1);  pk_str(&pk, "int key");
        pk_str(&pk, "nested");
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "k");          pk_str(&pk, "O'Brien'); DROP TABLE t;--");
        pk_str(&pk, "num");       pk_str(&pk, " 42 ");
        pk_str(&pk, "real");      pk_str(&pk, "1e308");
        pk_str(&pk, "huge");      pk_str(&pk, "1180591620717411303424");
        pk_str(&pk, "big");       msgpack_pack_uint64(&pk, UINT64_MAX);
        pk_str(&pk, "neg");       msgpack_pack_int64(&pk, INT64_MIN);
        pk_str(&pk, "nan");       msgpack_pack_double(&pk, NAN);
        pk_str(&pk, "raw");
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "\xff\x00\xfe", 3);
        pk_str(&pk, "bin");
        msgpack_pack_bin(&pk, 2);
        msgpack_pack_bin_body(&pk, "\x00\x01", 2);
        pk_str(&pk, "nil");       msgpack_pack_nil(&pk);
        pk_str(&pk, "data");
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "fun");       pk_str(&pk, "deploy.release");
        pk_str(&pk, "fun_args");  msgpack_pack_array(&pk, 0);
    }
    char err[256] = "";
    worker_event_t *ev = worker_event_new(1, false, tag, strlen(tag), sb.data, sb.size,
                                          FUZZ_DEFAULT_MAX_DEPTH, err, sizeof err);
    FUZZ_CHECK(ev, "cannot build the test event: %s", err);
    msgpack_sbuffer_destroy(&sb);
    return ev;
}

static void cleanup(void)
{
    worker_event_destroy(&events[0]);
    worker_event_destroy(&events[1]);
    if (mem_fd >= 0)
        close(mem_fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    mem_fd = memfd_create("eventsd-fuzz-template.sql", MFD_CLOEXEC);
    FUZZ_CHECK(mem_fd >= 0, "memfd_create failed");
    snprintf(mem_path, sizeof mem_path, "/proc/self/fd/%d", mem_fd);
    events[0] = make_event("salt/job/20251118095000000600/ret/db01.example.com", true);
    events[1] = make_event("", false);
    atexit(cleanup);
    return 0;
}

static void check_compiled(const template_t *t, sql_dialect_t dialect)
{
    const char *sql = template_sql(t);
    int n = template_n_params(t);
    FUZZ_CHECK(sql && n >= 0, "no SQL or %d params", n);
    if (dialect == SQL_DIALECT_PGSQL) {
        /* every marker $1..$n is in the SQL text */
        for (int i = 1; i <= n && i <= 64; i++) {
            char m[16];
            snprintf(m, sizeof m, "$%d", i);
            FUZZ_CHECK(strstr(sql, m), "marker %s missing from: %s", m, sql);
        }
    }
    tval_t *vals = calloc((size_t) n + 1, sizeof *vals);
    FUZZ_CHECK(vals, "out of memory");
    for (size_t e = 0; e < 2; e++) {
        msgpack_sbuffer scratch;
        msgpack_sbuffer_init(&scratch);
        int rc = template_values(t, events[e], e ? NULL : "fuzz_master", &scratch, vals);
        FUZZ_CHECK(rc == 0, "template_values failed");
        for (int i = 0; i < n; i++) {
            const tval_t *v = &vals[i];
            FUZZ_CHECK(v->kind >= TVAL_NULL && v->kind <= TVAL_REAL, "value kind %d",
                       (int) v->kind);
            if (v->kind != TVAL_TEXT)
                continue;
            FUZZ_CHECK(v->text, "text value without text");
            if (v->text_len > 0)
                FUZZ_CHECK(scratch.data && v->text >= scratch.data &&
                           v->text + v->text_len <= scratch.data + scratch.size,
                           "value %d points outside scratch", i);
        }
        msgpack_sbuffer_destroy(&scratch);
    }
    free(vals);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FUZZ_CHECK(ftruncate(mem_fd, 0) == 0, "ftruncate failed");
    FUZZ_CHECK(pwrite(mem_fd, data, size, 0) == (ssize_t) size, "pwrite failed");
    static const sql_dialect_t dialects[] = { SQL_DIALECT_SQLITE, SQL_DIALECT_PGSQL,
                                              SQL_DIALECT_MYSQL };
    for (size_t d = 0; d < 3; d++) {
        char err[512];
        memset(err, 'x', sizeof err);
        template_t *t = template_load(mem_path, dialects[d], err, sizeof err);
        if (!t) {
            FUZZ_CHECK(memchr(err, '\0', sizeof err), "error text not terminated");
            size_t plen = strlen(mem_path);
            FUZZ_CHECK(strncmp(err, mem_path, plen) == 0 && err[plen] == ':',
                       "error does not name the file: %s", err);
            continue;
        }
        check_compiled(t, dialects[d]);
        template_destroy(&t);
        FUZZ_CHECK(!t, "destroy did not clear the pointer");
    }
    return 0;
}
