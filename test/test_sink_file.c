/* test_sink_file: JSON lines appended to a real file; the retry path cuts torn batches off. */
#include "sink.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[64];
static char outpath[128];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/test_sink_file_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(outpath, sizeof outpath, "%s/events.jsonl", tmpdir);
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(file, .init = make_tmpdir, .fini = remove_tmpdir);

static worker_config_t config_for(const char *path)
{
    return (worker_config_t) { .name = "log", .sink = "file", .processes = 1,
                               .batch_size = 10, .path = (char *) path };
}

static sink_t *open_sink(const char *path, const char *master_id)
{
    char err[512] = "";
    worker_config_t cfg = config_for(path);
    sink_t *s = sink_file_ops.open(&cfg, master_id, err, sizeof err);
    cr_assert_not_null(s, "open: %s", err);
    return s;
}

static worker_event_t *event(uint64_t seq, const char *tag, const char *fun)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "fun", 3);
    msgpack_pack_str_with_body(&pk, fun, strlen(fun));
    msgpack_pack_str_with_body(&pk, "ok", 2);
    msgpack_pack_true(&pk);
    msgpack_pack_str_with_body(&pk, "n", 1);
    msgpack_pack_uint64(&pk, seq);
    char err[256] = "";
    worker_event_t *ev = worker_event_new(seq, false, tag, strlen(tag), sb.data, sb.size, 64,
                                          err, sizeof err);
    msgpack_sbuffer_destroy(&sb);
    cr_assert_not_null(ev, "%s", err);
    return ev;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *buf = NULL;
    size_t cap = 0;
    FILE *mem = open_memstream(&buf, &cap);
    int ch;
    while ((ch = fgetc(f)) != EOF)
        fputc(ch, mem);
    fclose(mem);
    fclose(f);
    *len = cap;
    return buf;
}

static void write_raw(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

/* ---------------------------------------------------------------- lines */

typedef struct {
    char tag[40];
    char fun[24];
    char master_id[16];   /* "" = none */
    char line_prefix[96]; /* the line up to "event_hash" */
    char line_suffix[40]; /* the line after the hash */
} line_case_t;

static const line_case_t line_cases[] = {
    { "salt/job/1/ret/web1", "test.ping", "m1_master",
      "{\"tag\": \"salt/job/1/ret/web1\", \"data\": {\"fun\": \"test.ping\", \"ok\": true, \"n\": 1}, ",
      "\", \"master_id\": \"m1_master\"}\n" },
    /* the tag is escaped like payload strings; UTF-8 passes through */
    { "a\"b\\c\nd\x01\xc3\xa9", "f\"", "",
      "{\"tag\": \"a\\\"b\\\\c\\nd\\u0001\xc3\xa9\", \"data\": {\"fun\": \"f\\\"\", \"ok\": true, \"n\": 1}, ",
      "\", \"master_id\": null}\n" },
};

ParameterizedTestParameters(file, one_json_line_per_event)
{
    return cr_make_param_array(line_case_t, line_cases, N_ELEMS(line_cases));
}

ParameterizedTest(const line_case_t *c, file, one_json_line_per_event)
{
    sink_t *s = open_sink(outpath, c->master_id[0] ? c->master_id : NULL);
    worker_event_t *ev = event(1, c->tag, c->fun);
    char err[256] = "", want[512];
    size_t bad = 99, len;
    cr_assert_eq(sink_file_ops.write_batch(s, &ev, 1, &bad, err, sizeof err), SINK_OK, "%s", err);
    snprintf(want, sizeof want, "%s\"event_hash\": \"%s%s", c->line_prefix, ev->hash,
             c->line_suffix);
    char *got = slurp(outpath, &len);
    cr_expect_str_eq(got, want);
    cr_expect_eq(len, strlen(want));
    free(got);
    sink_file_ops.close(&s);
    cr_expect_null(s);
    worker_event_destroy(&ev);
}

Test(file, batches_append_and_keep_existing_lines)
{
    write_raw(outpath, "{\"old\": 1}\n");
    sink_t *s = open_sink(outpath, "m");
    worker_event_t *evs[] = { event(1, "t/1", "a"), event(2, "t/2", "b"), event(3, "t/3", "c") };
    char err[256] = "";
    size_t bad = 0, len;
    cr_assert_eq(sink_file_ops.write_batch(s, evs, 2, &bad, err, sizeof err), SINK_OK, "%s", err);
    cr_assert_eq(sink_file_ops.write_batch(s, evs + 2, 1, &bad, err, sizeof err), SINK_OK);
    cr_assert_eq(sink_file_ops.write_batch(s, evs, 0, &bad, err, sizeof err), SINK_OK);
    char *got = slurp(outpath, &len);
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += got[i] == '\n';
    cr_expect_eq(lines, 4);
    cr_expect(starts_with(got, "{\"old\": 1}\n{\"tag\": \"t/1\", "), "%s", got);
    cr_expect_neq(strstr(got, "\n{\"tag\": \"t/3\", "), NULL);
    cr_expect_eq(got[len - 1], '\n');
    free(got);
    sink_file_ops.close(&s);
    for (size_t i = 0; i < N_ELEMS(evs); i++)
        worker_event_destroy(&evs[i]);
}

Test(file, created_with_mode_0640)
{
    umask(022);
    sink_t *s = open_sink(outpath, "m");
    struct stat st;
    cr_assert_eq(stat(outpath, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0640);
    sink_file_ops.close(&s);
}

/* A writer killed mid-line leaves no newline: the next batch starts on a line of its own. */
Test(file, torn_last_line_is_ended_first)
{
    write_raw(outpath, "{\"torn\": ");
    sink_t *s = open_sink(outpath, "m");
    worker_event_t *ev = event(1, "t", "f");
    char err[256] = "";
    size_t bad = 0, len;
    cr_assert_eq(sink_file_ops.write_batch(s, &ev, 1, &bad, err, sizeof err), SINK_OK, "%s", err);
    char *got = slurp(outpath, &len);
    cr_expect(starts_with(got, "{\"torn\": \n{\"tag\": \"t\", "), "%s", got);
    free(got);
    sink_file_ops.close(&s);
    worker_event_destroy(&ev);
}

/* ---------------------------------------------------------------- failures */

/* A write that stops part-way (here: the file size limit) leaves the file as it was. */
Test(file, partial_batch_is_cut_off)
{
    write_raw(outpath, "{\"old\": 1}\n");
    off_t before = file_size(outpath);
    sink_t *s = open_sink(outpath, "m");
    worker_event_t *evs[] = { event(1, "t/1", "a"), event(2, "t/2", "b") };
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t) before + 40;   /* room for part of the first line only */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char err[256] = "";
    size_t bad = 0;
    sink_result_t res = sink_file_ops.write_batch(s, evs, 2, &bad, err, sizeof err);
    cr_expect_eq(res, SINK_FATAL, "EFBIG cannot heal by retrying: %s", err);
    cr_expect(strstr(err, "File too large") != NULL, "%s", err);
    cr_expect_eq(file_size(outpath), before, "the partial batch was cut off");
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_expect_eq(sink_file_ops.write_batch(s, evs, 2, &bad, err, sizeof err), SINK_OK, "%s", err);
    size_t len;
    char *got = slurp(outpath, &len);
    cr_expect(starts_with(got, "{\"old\": 1}\n{\"tag\": \"t/1\", "), "%s", got);
    free(got);
    sink_file_ops.close(&s);
    for (size_t i = 0; i < N_ELEMS(evs); i++)
        worker_event_destroy(&evs[i]);
}

/* A full disk is transient: the worker retries later. */
Test(file, full_device_is_retried)
{
    sink_t *s = open_sink("/dev/full", "m");
    worker_event_t *ev = event(1, "t", "f");
    char err[256] = "";
    size_t bad = 0;
    cr_expect_eq(sink_file_ops.write_batch(s, &ev, 1, &bad, err, sizeof err), SINK_RETRY);
    cr_expect(strstr(err, "No space left on device") != NULL, "%s", err);
    sink_file_ops.close(&s);
    worker_event_destroy(&ev);
}

Test(file, check_and_open_errors)
{
    char err[256] = "";
    worker_config_t cfg = config_for(NULL);
    cr_expect_eq(sink_file_ops.check(&cfg, err, sizeof err), -1);
    cr_expect(strstr(err, "worker 'log': the file sink needs 'path'") != NULL, "%s", err);
    cfg = config_for("/nonexistent-dir/x.jsonl");
    cr_expect_eq(sink_file_ops.check(&cfg, err, sizeof err), 0);
    cr_expect_null(sink_file_ops.open(&cfg, "m", err, sizeof err));
    cr_expect(strstr(err, "cannot open /nonexistent-dir/x.jsonl: No such file") != NULL, "%s", err);
    sink_t *none = NULL;
    sink_file_ops.close(&none);
}
