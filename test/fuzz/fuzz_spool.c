/* libFuzzer harness: daemon/spool.c, the spool reader and recovery on arbitrary segment files.
 *
 * Input: the bytes of spool files. The first byte picks a layout: bit 0 puts a valid segment
 * header in front of the data (so that records, not just the header check, are exercised),
 * bit 1 splits the input into two segments (the first one then sealed: corruption there means
 * quarantine, in the newest one truncation), bit 2 also writes a cursor file from the input's
 * last bytes. The spool is opened (recovery), a consumer reads every record, one event is
 * appended and read back, and the spool is closed. The directory is private and removed after
 * each input.
 *
 * Checked, beyond "no crash, no leak": recovery leaves only segments that scan clean; records
 * come out in increasing seq order with a tag and target map as written; the appended event is
 * read back intact. */
#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "spool.h"

static char dir[4096];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

static void report(void *arg, const char *line)
{
    (void) arg;
    (void) line;
}

static void write_file(const char *name, const uint8_t *head, size_t head_len,
                       const uint8_t *data, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "%s", path);
    if (head_len)
        fwrite(head, 1, head_len, f);
    if (len)
        fwrite(data, 1, len, f);
    fclose(f);
}

static void check_clean_segments(void)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL, "%s", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".seg") != 0)
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        spool_scan_t sc;
        char err[256];
        FUZZ_CHECK(spool_scan_file(path, &sc, err, sizeof err) == 0,
                   "after recovery %s does not scan clean: %s", path, err);
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    snprintf(dir, sizeof dir, "%s/eventsd-fuzz-spool-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    uint8_t header[SPOOL_SEGMENT_HEADER] = { 'E', 'V', 'S', 'P', 'O', 'O', 'L', 0, 1, 0, 0, 0 };
    size_t head_len = ctl & 1 ? sizeof header : 0;
    size_t cursor_len = ctl & 4 ? (size < 64 ? size : 64) : 0;
    size_t body = size - cursor_len;
    size_t first = ctl & 2 ? body / 2 : 0;
    if (ctl & 2)
        write_file("00000000000000000001.seg", header, head_len, data, first);
    /* named after a seq the first one may well reach: a mismatch is corruption to handle */
    write_file(ctl & 2 ? "00000000000000000003.seg" : "00000000000000000001.seg", header,
               head_len, data + first, body - first);
    if (cursor_len)
        write_file("cursors", NULL, 0, data + body, cursor_len);

    spool_config_t cfg = { .dir = dir, .sync = SPOOL_SYNC_NONE, .sync_ms = 10,
                           .segment_bytes = 64 << 10, .max_bytes = 1 << 20,
                           .when_full = SPOOL_FULL_BLOCK };
    char err[512];
    spool_t *s = spool_open(&cfg, report, NULL, err, sizeof err);
    FUZZ_CHECK(s != NULL, "spool_open refused a corrupt spool instead of recovering: %s", err);
    check_clean_segments();
    spool_consumer_t *c = spool_consumer(s, "fuzz");
    spool_consumer_t *all = spool_consumer(s, "all");   /* no cursor: starts at the end */
    FUZZ_CHECK(c && all, "consumer");
    spool_record_t rec;
    uint64_t last = 0;
    int rc;
    while ((rc = spool_consumer_next(c, &rec)) != 0)
        if (rc > 0) {
            FUZZ_CHECK(rec.seq > last, "seq %llu after %llu", (unsigned long long) rec.seq,
                       (unsigned long long) last);
            last = rec.seq;
            (void) spool_record_targets(&rec, "fuzz", NULL);
        }
    spool_target_t t[] = { { "fuzz", true } };
    uint64_t seq;
    spool_rc_t arc = spool_append(s, "salt/fuzz", 9, (const uint8_t *) "\x80", 1, t, 1, &seq,
                                  err, sizeof err);
    FUZZ_CHECK(arc == SPOOL_OK, "append after recovery: %s", err);
    /* "all" has no cursor: it starts at the end, or at the oldest segment when the cursor
     * file was corrupt (everything is replayed then): either way the append comes last. */
    bool found = false;
    while ((rc = spool_consumer_next(all, &rec)) != 0)
        found = rc > 0 && rec.seq == seq;
    FUZZ_CHECK(found, "the appended event is not the last one read");
    FUZZ_CHECK(spool_consumer_next(c, &rec) == 1 && rec.seq == seq && rec.tag_len == 9 &&
               memcmp(rec.tag, "salt/fuzz", 9) == 0 && rec.payload_len == 1,
               "the appended event does not read back");
    bool prio = false;
    FUZZ_CHECK(spool_record_targets(&rec, "fuzz", &prio) && prio, "targets");
    spool_consumer_ack(all, seq + 1);
    spool_destroy(&s);
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
