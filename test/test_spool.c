/* test_spool: the on-disk journal on a real directory (and a real tmpfs for a full disk):
 * append and read back, cursors across reopen, segment roll and deletion, recovery of torn
 * tails, corrupt segments and cursor files, max_bytes with both policies, the lock. */
#include "spool.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static char reports[8192];

static void make_dir(void)
{
    strcpy(dir, "/tmp/test_spool_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    reports[0] = '\0';
}

static void remove_dir(void)
{
    char cmd[128];
    umount2(dir, MNT_DETACH);   /* the tmpfs test mounts over it; harmless otherwise */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(spool, .init = make_dir, .fini = remove_dir);

static void collect(void *arg, const char *line)
{
    (void) arg;
    strncat(reports, line, sizeof reports - strlen(reports) - 2);
    strcat(reports, "\n");
}

static spool_config_t settings(long long segment_bytes, long long max_bytes, spool_full_t full)
{
    return (spool_config_t){ .dir = dir, .sync = SPOOL_SYNC_INTERVAL, .sync_ms = 10,
                             .segment_bytes = segment_bytes, .max_bytes = max_bytes,
                             .when_full = full };
}

static spool_t *open_spool(const spool_config_t *cfg)
{
    char err[512] = "";
    spool_t *s = spool_open(cfg, collect, NULL, err, sizeof err);
    cr_assert_not_null(s, "spool_open: %s", err);
    return s;
}

/* Event i: tag "t/<i>", a payload of size bytes of the letter for i, for worker "a" always
 * and worker "b" (priority) for even i. */
static spool_rc_t append(spool_t *s, int i, size_t size, uint64_t *seq)
{
    char tag[32], err[256];
    snprintf(tag, sizeof tag, "t/%d", i);
    uint8_t *payload = malloc(size + 1);
    memset(payload, 'a' + i % 26, size);
    spool_target_t targets[] = { { "a", false }, { "b", true } };
    spool_rc_t rc = spool_append(s, tag, strlen(tag), payload, size, targets, i % 2 ? 1 : 2, seq,
                                 err, sizeof err);
    free(payload);
    return rc;
}

static void append_n(spool_t *s, int from, int n, size_t size)
{
    uint64_t seq;
    for (int i = from; i < from + n; i++)
        cr_assert_eq(append(s, i, size, &seq), SPOOL_OK, "append %d", i);
}

/* Reads everything left for c and checks tags follow from first_i on; returns how many. */
static int read_all(spool_consumer_t *c, int first_i)
{
    spool_record_t rec;
    int n = 0, rc;
    while ((rc = spool_consumer_next(c, &rec)) != 0) {
        if (rc < 0)
            continue;
        char want[32];
        snprintf(want, sizeof want, "t/%d", first_i + n);
        cr_assert_eq(rec.tag_len, strlen(want));
        cr_assert(memcmp(rec.tag, want, rec.tag_len) == 0, "record %d: tag %.*s, want %s", n,
                  (int) rec.tag_len, rec.tag, want);
        n++;
    }
    return n;
}

static int count_files(const char *sub, const char *suffix)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s/%s 2>/dev/null | grep -c '%s$'", dir, sub, suffix);
    FILE *p = popen(cmd, "r");
    int n = 0;
    cr_assert_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static char *newest_segment(char *path, size_t len)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s/*.seg | sort | tail -1", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(fgets(path, (int) len, p));
    path[strcspn(path, "\n")] = '\0';
    pclose(p);
    return path;
}

Test(spool, appended_events_read_back_in_order_with_targets)
{
    spool_config_t cfg = settings(1 << 20, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer_t *a = spool_consumer(s, "a");
    uint64_t first = spool_next_seq(s);
    append_n(s, 0, 100, 300);
    spool_record_t rec;
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(spool_consumer_next(a, &rec), 1);
        cr_assert_eq(rec.seq, first + (uint64_t) i);
        cr_assert_eq(rec.payload_len, 300);
        cr_assert_eq(rec.payload[299], 'a' + i % 26);
        bool prio = true;
        cr_assert(spool_record_targets(&rec, "a", &prio));
        cr_assert(!prio);
        cr_assert_eq(spool_record_targets(&rec, "b", &prio), i % 2 == 0);
        if (i % 2 == 0)
            cr_assert(prio, "b is a priority target");
        cr_assert(!spool_record_targets(&rec, "c", NULL));
    }
    cr_assert_eq(spool_consumer_next(a, &rec), 0);
    cr_assert(spool_consumer_at_end(a));
    spool_destroy(&s);
    cr_assert_null(s);
}

Test(spool, a_consumer_at_the_end_follows_appends_one_behind_does_not)
{
    spool_config_t cfg = settings(1 << 20, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer_t *a = spool_consumer(s, "a"), *b = spool_consumer(s, "b");
    uint64_t seq;
    cr_assert_eq(append(s, 0, 10, &seq), SPOOL_OK);
    cr_assert(spool_consumer_follow(a, seq));
    cr_assert(spool_consumer_at_end(a));
    cr_assert_eq(append(s, 1, 10, &seq), SPOOL_OK);
    cr_assert(!spool_consumer_follow(b, seq), "b has not read record 0 yet");
    cr_assert_eq(read_all(b, 0), 2);
    cr_assert(!spool_consumer_follow(a, seq - 1), "only the record just appended");
    cr_assert_eq(read_all(a, 1), 1);
    spool_destroy(&s);
}

Test(spool, cursors_survive_reopen_and_new_workers_start_at_the_end)
{
    spool_config_t cfg = settings(1 << 20, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer_t *a = spool_consumer(s, "a");
    uint64_t first = spool_next_seq(s);
    append_n(s, 0, 50, 100);
    cr_assert_eq(read_all(a, 0), 50);
    spool_consumer_ack(a, first + 20);   /* 0..19 committed */
    spool_consumer_ack(a, first + 5);    /* never backwards */
    spool_destroy(&s);

    s = open_spool(&cfg);
    cr_assert(strstr(reports, "spool recovered") != NULL, "reports: %s", reports);
    a = spool_consumer(s, "a");
    spool_consumer_t *fresh = spool_consumer(s, "fresh");
    cr_assert_eq(spool_consumer_cursor(a), first + 20);
    cr_assert_eq(read_all(a, 20), 30, "replays from the cursor");
    cr_assert(spool_consumer_at_end(fresh));
    append_n(s, 50, 1, 100);
    cr_assert_eq(read_all(fresh, 50), 1);
    spool_destroy(&s);
}

Test(spool, segments_roll_and_passed_ones_are_deleted)
{
    spool_config_t cfg = settings(64 << 10, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer_t *a = spool_consumer(s, "a");
    append_n(s, 0, 400, 1000);   /* ~400 KB: 7 segments of 64 KiB */
    cr_assert_geq(spool_stats(s)->segments, 6);
    cr_assert_eq(read_all(a, 0), 400, "reads across segments");
    spool_flush(s);
    cr_assert_geq(count_files("", ".seg"), 6, "not acked: kept");
    spool_consumer_ack(a, spool_consumer_next_seq(a));
    spool_flush(s);
    cr_assert_eq(count_files("", ".seg"), 1, "acked: only the open segment stays");
    cr_assert_eq(spool_stats(s)->segments, 1);
    spool_destroy(&s);
}

Test(spool, torn_tail_is_truncated_to_the_last_good_record)
{
    spool_config_t cfg = settings(1 << 20, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer(s, "a");
    uint64_t first = spool_next_seq(s);
    append_n(s, 0, 10, 200);
    spool_destroy(&s);
    char path[256];
    newest_segment(path, sizeof path);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size - 50), 0);   /* the last record loses its end */

    s = open_spool(&cfg);
    cr_assert(strstr(reports, "torn or corrupt tail, truncated") != NULL, "reports: %s", reports);
    cr_assert(strstr(reports, "kept_events=9") != NULL, "reports: %s", reports);
    spool_consumer_t *a = spool_consumer(s, "a");
    cr_assert_eq(spool_consumer_next_seq(a), first);
    cr_assert_eq(read_all(a, 0), 9);
    cr_assert_eq(spool_next_seq(s), first + 9, "the lost seq is reused by the next event");
    spool_destroy(&s);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned char b;
    cr_assert_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x5a;
    cr_assert_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

Test(spool, bad_crc_in_the_tail_truncates_there)
{
    spool_config_t cfg = settings(1 << 20, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer(s, "a");
    append_n(s, 0, 10, 100);
    spool_destroy(&s);
    char path[256];
    newest_segment(path, sizeof path);
    /* record 5 starts at 16 + 5 * (16 + body); flip a payload byte inside it */
    spool_scan_t sc;
    char err[256];
    cr_assert_eq(spool_scan_file(path, &sc, err, sizeof err), 0, "%s", err);
    off_t rec = (off_t) ((sc.good_bytes - SPOOL_SEGMENT_HEADER) / 10);
    flip_byte(path, SPOOL_SEGMENT_HEADER + 5 * rec + 40);
    cr_assert_eq(spool_scan_file(path, &sc, err, sizeof err), 1);
    cr_assert(strstr(err, "bad CRC") != NULL, "%s", err);

    s = open_spool(&cfg);
    cr_assert(strstr(reports, "kept_events=5") != NULL, "reports: %s", reports);
    spool_consumer_t *a = spool_consumer(s, "a");
    cr_assert_eq(read_all(a, 0), 5);
    spool_destroy(&s);
}

Test(spool, corrupt_sealed_segment_goes_to_quarantine_and_the_rest_is_replayed)
{
    spool_config_t cfg = settings(64 << 10, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer(s, "a");
    append_n(s, 0, 200, 1000);
    spool_destroy(&s);
    char cmd[256], first_seg[256];
    snprintf(cmd, sizeof cmd, "ls %s/*.seg | sort | head -1", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(fgets(first_seg, sizeof first_seg, p));
    pclose(p);
    first_seg[strcspn(first_seg, "\n")] = '\0';
    spool_scan_t sc;
    char err[256];
    cr_assert_eq(spool_scan_file(first_seg, &sc, err, sizeof err), 0, "%s", err);
    flip_byte(first_seg, 3000);

    s = open_spool(&cfg);
    cr_assert(strstr(reports, "moved to quarantine") != NULL, "reports: %s", reports);
    cr_assert_eq(count_files("quarantine", ".seg"), 1);
    cr_assert_eq(spool_stats(s)->quarantined, 1);
    spool_consumer_t *a = spool_consumer(s, "a");
    cr_assert_eq(read_all(a, (int) sc.records), 200 - (int) sc.records,
                 "everything after the quarantined segment is replayed");
    spool_destroy(&s);
}

Test(spool, corrupt_cursor_file_replays_everything_instead_of_skipping)
{
    spool_config_t cfg = settings(1 << 20, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer_t *a = spool_consumer(s, "a");
    append_n(s, 0, 30, 100);
    cr_assert_eq(read_all(a, 0), 30);
    spool_consumer_ack(a, spool_consumer_next_seq(a) - 10);
    spool_destroy(&s);
    char path[128];
    snprintf(path, sizeof path, "%s/cursors", dir);
    FILE *f = fopen(path, "a");
    fputs("a 999999\n", f);   /* after the CRC line: not covered, but the CRC line moved */
    fclose(f);
    f = fopen(path, "r+");
    fputc('b', f);            /* the name "a" becomes "b": the CRC no longer matches */
    fclose(f);

    s = open_spool(&cfg);
    cr_assert(strstr(reports, "cursor file is corrupt") != NULL, "reports: %s", reports);
    a = spool_consumer(s, "a");
    cr_assert_eq(read_all(a, 0), 30, "replays from the oldest segment");
    spool_destroy(&s);
}

Test(spool, max_bytes_blocks_until_acked_segments_are_deleted)
{
    spool_config_t cfg = settings(64 << 10, 256 << 10, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    spool_consumer_t *a = spool_consumer(s, "a");
    uint64_t seq;
    int n = 0;
    spool_rc_t rc;
    while ((rc = append(s, n, 1000, &seq)) == SPOOL_OK)
        n++;
    cr_assert_eq(rc, SPOOL_FULL);
    cr_assert_leq(spool_stats(s)->bytes, 256 << 10);
    cr_assert_gt(n, 200);
    cr_assert_eq(spool_stats(s)->dropped_events, 0);
    cr_assert_eq(read_all(a, 0), n, "nothing was lost");
    spool_consumer_ack(a, spool_consumer_next_seq(a));
    spool_flush(s);
    cr_assert_eq(append(s, n, 1000, &seq), SPOOL_OK, "room again once acked segments went");
    spool_destroy(&s);
}

Test(spool, drop_oldest_deletes_unread_segments_and_counts_them)
{
    spool_config_t cfg = settings(64 << 10, 256 << 10, SPOOL_FULL_DROP_OLDEST);
    spool_t *s = open_spool(&cfg);
    spool_consumer_t *a = spool_consumer(s, "a");
    append_n(s, 0, 1000, 1000);   /* ~1 MB into 256 KiB */
    const spool_stats_t *st = spool_stats(s);
    cr_assert_leq(st->bytes, 256 << 10);
    cr_assert_gt(st->dropped_events, 600);
    cr_assert_eq(spool_consumer_dropped(a), st->dropped_events);
    cr_assert(strstr(reports, "dropped the oldest segment") != NULL, "reports: %s", reports);
    spool_record_t rec;
    int n = 0;
    uint64_t last = 0;
    while (spool_consumer_next(a, &rec) == 1) {
        cr_assert(rec.seq > last);
        last = rec.seq;
        n++;
    }
    cr_assert_eq((uint64_t) n + st->dropped_events, 1000, "read + dropped = appended");
    spool_destroy(&s);
}

Test(spool, a_second_process_cannot_open_the_same_spool)
{
    spool_config_t cfg = settings(1 << 20, 1 << 24, SPOOL_FULL_BLOCK);
    spool_t *s = open_spool(&cfg);
    pid_t pid = fork();
    if (pid == 0) {   /* flock is per open file: another process must be refused */
        char err[256] = "";
        spool_t *t = spool_open(&cfg, NULL, NULL, err, sizeof err);
        _exit(t == NULL && strstr(err, "in use by another eventsd") ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    spool_destroy(&s);
}

Test(spool, full_disk_blocks_without_a_torn_record_or_drops_with_drop_oldest)
{
    if (getuid() != 0 || mount("tmpfs", dir, "tmpfs", 0, "size=512k") != 0)
        cr_skip("needs root to mount a small tmpfs");
    for (int policy = 0; policy < 2; policy++) {
        spool_config_t cfg = settings(64 << 10, 64 << 20,
                                      policy ? SPOOL_FULL_DROP_OLDEST : SPOOL_FULL_BLOCK);
        spool_t *s = open_spool(&cfg);
        spool_consumer_t *a = spool_consumer(s, "a");
        uint64_t seq;
        int n = 0;
        spool_rc_t rc = SPOOL_OK;
        for (; n < 3000 && (rc = append(s, n, 1000, &seq)) == SPOOL_OK; n++)
            ;
        if (policy == 0) {
            cr_assert_eq(rc, SPOOL_FULL, "ENOSPC blocks");
            cr_assert_lt(n, 600);
            cr_assert_eq(read_all(a, 0), n, "every accepted event is readable");
        } else {
            cr_assert_eq(n, 3000, "drop-oldest keeps accepting: rc %d at %d", rc, n);
            cr_assert_gt(spool_stats(s)->dropped_events, 0);
        }
        spool_consumer_ack(a, spool_next_seq(s));
        spool_destroy(&s);
        char path[256];
        spool_scan_t sc;
        char err[256];
        cr_assert_eq(spool_scan_file(newest_segment(path, sizeof path), &sc, err, sizeof err), 0,
                     "no torn record left behind: %s", err);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s/*", dir);
        cr_assert_eq(system(cmd), 0);
    }
}
