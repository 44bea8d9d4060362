/* spool: on-disk journal of accepted events (see spool.h). */
#include "spool.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <isa-l/crc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SEGMENT_MAGIC   "EVSPOOL"          /* 7 chars + NUL = 8 bytes */
#define SEGMENT_VERSION 1u
#define CURSOR_PERIOD_MS 250
#define CURSOR_FILE     "cursors"
#define QUARANTINE_DIR  "quarantine"

typedef struct {
    uint64_t first_seq;   /* from the file name; the id of the segment */
    uint64_t last_seq;    /* first_seq - 1 while empty */
    uint64_t records;
    uint64_t bytes;       /* file size, header included */
} segment_t;

typedef struct {
    char    *name;
    uint64_t cursor;
} saved_cursor_t;

struct spool_consumer {
    spool_t          *spool;
    char             *name;
    uint64_t          next_seq;    /* records below are skipped */
    uint64_t          cursor;      /* acked: every seq below is committed */
    uint64_t          seg;         /* first_seq of the segment of the position, 0 = not placed */
    uint64_t          off;         /* offset of the next record in that segment */
    int               fd;
    uint64_t          fd_seg;
    uint8_t          *buf;
    size_t            cap;
    msgpack_unpacked  unpacked;
    uint64_t          dropped;
    spool_consumer_t *next;
};

struct spool {
    spool_config_t    cfg;          /* numbers only; dir is below */
    char             *dir;
    int               dir_fd, lock_fd, wfd;
    segment_t        *segs;         /* oldest first; the last one is open for appends */
    size_t            n_segs, cap_segs;
    uint64_t          next_seq, total_bytes;
    bool              dirty;        /* appended since the last fdatasync */
    int64_t           dirty_since_ms, cursors_written_ms;
    bool              cursors_changed, cursors_failing;
    msgpack_sbuffer   body;
    msgpack_packer    pk;
    uint64_t          last_seq, last_seg, last_off, last_end;   /* the last append */
    spool_consumer_t *consumers;
    saved_cursor_t   *saved;        /* read from the cursor file at open */
    int               n_saved;
    bool              cursors_lost; /* the cursor file was corrupt: replay everything */
    spool_stats_t     stats;
    spool_report_fn  *report;
    void             *report_arg;
};

/* ---- small helpers ---- */

static void report(spool_t *s, const char *fmt, ...)
{
    if (!s->report)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->report(s->report_arg, line);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t record_crc(uint64_t seq, const uint8_t *body, size_t len)
{
    uint8_t seq_le[8];
    uint64_t v = htole64(seq);
    memcpy(seq_le, &v, 8);
    uint32_t crc = crc32_iscsi(seq_le, 8, 0xFFFFFFFFu);
    return crc32_iscsi((unsigned char *) body, (int) len, crc);
}

static void put_header(uint8_t h[SPOOL_RECORD_HEADER], uint32_t len, uint32_t crc, uint64_t seq)
{
    uint32_t l = htole32(len), c = htole32(crc);
    uint64_t q = htole64(seq);
    memcpy(h, &l, 4);
    memcpy(h + 4, &c, 4);
    memcpy(h + 8, &q, 8);
}

static void get_header(const uint8_t h[SPOOL_RECORD_HEADER], uint32_t *len, uint32_t *crc,
                       uint64_t *seq)
{
    uint32_t l, c;
    uint64_t q;
    memcpy(&l, h, 4);
    memcpy(&c, h + 4, 4);
    memcpy(&q, h + 8, 8);
    *len = le32toh(l);
    *crc = le32toh(c);
    *seq = le64toh(q);
}

static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *) buf + done, len - done, (off_t) (off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t) n;
    }
    return 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 65536;
    while (c < need)
        c *= 2;
    uint8_t *b = realloc(*buf, c);
    if (!b)
        return -1;
    *buf = b;
    *cap = c;
    return 0;
}

static void segment_name(char *out, size_t len, uint64_t first_seq)
{
    snprintf(out, len, "%020" PRIu64 ".seg", first_seq);
}

static void sync_dir(spool_t *s)
{
    if (s->cfg.sync != SPOOL_SYNC_NONE)
        fsync(s->dir_fd);
}

/* ---- decoding a record body ---- */

static bool decode_body(msgpack_unpacked *u, const uint8_t *body, size_t len, spool_record_t *rec)
{
    size_t off = 0;
    msgpack_unpacked_destroy(u);
    msgpack_unpacked_init(u);
    if (msgpack_unpack_next(u, (const char *) body, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len)
        return false;
    const msgpack_object *o = &u->data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
        return false;
    const msgpack_object *a = o->via.array.ptr;
    if (a[0].type != MSGPACK_OBJECT_STR || a[1].type != MSGPACK_OBJECT_BIN ||
        a[2].type != MSGPACK_OBJECT_MAP)
        return false;
    for (uint32_t i = 0; i < a[2].via.map.size; i++)
        if (a[2].via.map.ptr[i].key.type != MSGPACK_OBJECT_STR ||
            a[2].via.map.ptr[i].val.type != MSGPACK_OBJECT_BOOLEAN)
            return false;
    rec->tag = a[0].via.str.ptr;
    rec->tag_len = a[0].via.str.size;
    rec->payload = (const uint8_t *) a[1].via.bin.ptr;
    rec->payload_len = a[1].via.bin.size;
    rec->targets = a[2].via.map;
    return true;
}

bool spool_record_targets(const spool_record_t *rec, const char *worker, bool *priority)
{
    size_t n = strlen(worker);
    for (uint32_t i = 0; i < rec->targets.size; i++) {
        const msgpack_object_kv *kv = &rec->targets.ptr[i];
        if (kv->key.via.str.size == n && memcmp(kv->key.via.str.ptr, worker, n) == 0) {
            if (priority)
                *priority = kv->val.via.boolean;
            return true;
        }
    }
    return false;
}

/* ---- scanning a segment file ---- */

static int scan_fd(int fd, spool_scan_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "stat: %s", strerror(errno));
        return -1;
    }
    out->file_bytes = (uint64_t) st.st_size;
    uint8_t head[SPOOL_SEGMENT_HEADER];
    if (out->file_bytes < SPOOL_SEGMENT_HEADER || read_full(fd, head, sizeof head, 0) < 0) {
        snprintf(err, errlen, "segment header missing (file has %" PRIu64 " bytes)",
                 out->file_bytes);
        return -1;
    }
    uint32_t version;
    memcpy(&version, head + 8, 4);
    if (memcmp(head, SEGMENT_MAGIC, 8) != 0 || le32toh(version) != SEGMENT_VERSION) {
        snprintf(err, errlen, "not a spool segment of version %u", SEGMENT_VERSION);
        return -1;
    }
    uint64_t off = SPOOL_SEGMENT_HEADER;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    while (off < out->file_bytes) {
        uint8_t h[SPOOL_RECORD_HEADER];
        uint32_t len, crc;
        uint64_t seq;
        if (out->file_bytes - off < SPOOL_RECORD_HEADER) {
            snprintf(err, errlen, "torn record header at offset %" PRIu64, off);
            rc = 1;
            break;
        }
        if (read_full(fd, h, sizeof h, off) < 0) {
            snprintf(err, errlen, "read error at offset %" PRIu64 ": %s", off, strerror(errno));
            rc = 1;
            break;
        }
        get_header(h, &len, &crc, &seq);
        if (len > SPOOL_MAX_BODY || len > out->file_bytes - off - SPOOL_RECORD_HEADER) {
            snprintf(err, errlen, "torn or oversized record at offset %" PRIu64 " (length %u)",
                     off, len);
            rc = 1;
            break;
        }
        if (grow(&buf, &cap, len ? len : 1) < 0 ||
            read_full(fd, buf, len, off + SPOOL_RECORD_HEADER) < 0) {
            snprintf(err, errlen, "cannot read record at offset %" PRIu64, off);
            rc = 1;
            break;
        }
        if (record_crc(seq, buf, len) != crc) {
            snprintf(err, errlen, "bad CRC at offset %" PRIu64 " (seq %" PRIu64 ")", off, seq);
            rc = 1;
            break;
        }
        if (out->records && seq != out->last_seq + 1) {
            snprintf(err, errlen, "sequence jumps from %" PRIu64 " to %" PRIu64
                     " at offset %" PRIu64, out->last_seq, seq, off);
            rc = 1;
            break;
        }
        if (!out->records)
            out->first_seq = seq;
        out->last_seq = seq;
        out->records++;
        off += SPOOL_RECORD_HEADER + len;
    }
    out->good_bytes = off;
    free(buf);
    return rc;
}

int spool_scan_file(const char *path, spool_scan_t *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        memset(out, 0, sizeof *out);
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = scan_fd(fd, out, err, errlen);
    close(fd);
    return rc;
}

/* ---- segments ---- */

static int segs_push(spool_t *s, segment_t seg)
{
    if (s->n_segs == s->cap_segs) {
        size_t cap = s->cap_segs ? s->cap_segs * 2 : 16;
        segment_t *g = realloc(s->segs, cap * sizeof *g);
        if (!g)
            return -1;
        s->segs = g;
        s->cap_segs = cap;
    }
    s->segs[s->n_segs++] = seg;
    return 0;
}

static segment_t *newest(spool_t *s)
{
    return &s->segs[s->n_segs - 1];
}

static long find_seg(const spool_t *s, uint64_t first_seq)
{
    for (size_t i = 0; i < s->n_segs; i++)
        if (s->segs[i].first_seq == first_seq)
            return (long) i;
    return -1;
}

static void segs_remove_first(spool_t *s)
{
    s->total_bytes -= s->segs[0].bytes;
    memmove(s->segs, s->segs + 1, (s->n_segs - 1) * sizeof *s->segs);
    s->n_segs--;
}

/* Creates the segment whose first record will be next_seq and makes it the append target. */
static int segment_create(spool_t *s, char *err, size_t errlen)
{
    char name[64];
    segment_name(name, sizeof name, s->next_seq);
    int fd = openat(s->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s/%s: %s", s->dir, name, strerror(errno));
        return -1;
    }
    uint8_t head[SPOOL_SEGMENT_HEADER] = { 0 };
    memcpy(head, SEGMENT_MAGIC, 8);
    uint32_t version = htole32(SEGMENT_VERSION);
    memcpy(head + 8, &version, 4);
    ssize_t n = write(fd, head, sizeof head);
    segment_t seg = { .first_seq = s->next_seq, .last_seq = s->next_seq - 1,
                      .bytes = SPOOL_SEGMENT_HEADER };
    if (n != (ssize_t) sizeof head || segs_push(s, seg) < 0) {
        int e = n < 0 ? errno : ENOSPC;
        snprintf(err, errlen, "%s/%s: %s", s->dir, name, strerror(e));
        close(fd);
        unlinkat(s->dir_fd, name, 0);
        errno = e;
        return -1;
    }
    if (s->wfd >= 0)
        close(s->wfd);
    s->wfd = fd;
    s->total_bytes += SPOOL_SEGMENT_HEADER;
    sync_dir(s);
    return 0;
}

/* Seals the newest segment (it stays; appends go to a new one). */
static int segment_roll(spool_t *s, char *err, size_t errlen)
{
    if (s->cfg.sync != SPOOL_SYNC_NONE && s->dirty)
        fdatasync(s->wfd);
    s->dirty = false;
    return segment_create(s, err, errlen);
}

static void segment_unlink(spool_t *s, uint64_t first_seq)
{
    char name[64];
    segment_name(name, sizeof name, first_seq);
    unlinkat(s->dir_fd, name, 0);
}

/* drop-oldest: the oldest sealed segment goes, read or not. */
static bool drop_oldest(spool_t *s)
{
    if (s->n_segs < 2)
        return false;
    segment_t seg = s->segs[0];
    for (spool_consumer_t *c = s->consumers; c; c = c->next)
        if (c->next_seq <= seg.last_seq) {
            uint64_t from = c->next_seq > seg.first_seq ? c->next_seq : seg.first_seq;
            c->dropped += seg.last_seq - from + 1;
            c->next_seq = seg.last_seq + 1;
        }
    segment_unlink(s, seg.first_seq);
    segs_remove_first(s);
    sync_dir(s);
    s->stats.dropped_events += seg.records;
    s->stats.dropped_segments++;
    report(s, "msg=\"spool full, dropped the oldest segment (when_full=drop-oldest)\" "
              "first_seq=%" PRIu64 " last_seq=%" PRIu64 " events=%" PRIu64 " bytes=%" PRIu64,
           seg.first_seq, seg.last_seq, seg.records, seg.bytes);
    return true;
}

/* ---- cursors ---- */

static void cursors_load(spool_t *s)
{
    int fd = openat(s->dir_fd, CURSOR_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            report(s, "msg=\"cannot read the spool cursors, replaying every spooled event\" "
                      "error=\"%s\"", strerror(errno));
            s->cursors_lost = true;
        }
        return;
    }
    FILE *f = fdopen(fd, "r");
    char line[256];
    char *text = NULL;
    size_t text_len = 0;
    FILE *acc = open_memstream(&text, &text_len);
    bool ok = false;
    while (f && acc && fgets(line, sizeof line, f)) {
        unsigned crc;
        if (sscanf(line, "end %8x", &crc) == 1) {
            fflush(acc);
            ok = crc32_iscsi((unsigned char *) text, (int) text_len, 0xFFFFFFFFu) == crc;
            break;
        }
        fputs(line, acc);
    }
    if (acc)
        fclose(acc);
    if (f)
        fclose(f);
    else
        close(fd);
    if (!ok) {
        report(s, "msg=\"spool cursor file is corrupt, replaying every spooled event (sinks "
                  "ignore duplicates)\" file=%s/" CURSOR_FILE, s->dir);
        s->cursors_lost = true;
        free(text);
        return;
    }
    for (char *p = text, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        char name[128];
        uint64_t v;
        if (sscanf(p, "%127s %" SCNu64, name, &v) != 2)
            continue;
        saved_cursor_t *g = realloc(s->saved, (size_t) (s->n_saved + 1) * sizeof *g);
        if (!g)
            break;
        s->saved = g;
        s->saved[s->n_saved].name = strdup(name);
        s->saved[s->n_saved].cursor = v;
        if (s->saved[s->n_saved].name)
            s->n_saved++;
    }
    free(text);
}

static int cursors_write(spool_t *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *acc = open_memstream(&text, &len);
    if (!acc)
        return -1;
    for (spool_consumer_t *c = s->consumers; c; c = c->next)
        fprintf(acc, "%s %" PRIu64 "\n", c->name, c->cursor);
    fclose(acc);
    uint32_t crc = crc32_iscsi((unsigned char *) text, (int) len, 0xFFFFFFFFu);
    int fd = openat(s->dir_fd, CURSOR_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = -1;
    if (fd >= 0) {
        char end[32];
        int n = snprintf(end, sizeof end, "end %08x\n", crc);
        struct iovec iov[2] = { { text, len }, { end, (size_t) n } };
        rc = writev(fd, iov, 2) == (ssize_t) (len + (size_t) n) ? 0 : -1;
        if (rc == 0 && s->cfg.sync != SPOOL_SYNC_NONE)
            rc = fdatasync(fd);
        close(fd);
        if (rc == 0)
            rc = renameat(s->dir_fd, CURSOR_FILE ".tmp", s->dir_fd, CURSOR_FILE);
        if (rc == 0)
            sync_dir(s);
        else
            unlinkat(s->dir_fd, CURSOR_FILE ".tmp", 0);   /* give back what it took */
    }
    free(text);
    if (rc == 0)
        s->cursors_changed = false;
    return rc;
}

/* Sealed segments every consumer has passed are deleted (after the cursors were written). */
static void delete_passed(spool_t *s)
{
    if (!s->consumers)
        return;
    uint64_t min = UINT64_MAX;
    for (spool_consumer_t *c = s->consumers; c; c = c->next)
        if (c->cursor < min)
            min = c->cursor;
    bool any = false;
    while (s->n_segs > 1 && s->segs[0].last_seq < min) {
        segment_unlink(s, s->segs[0].first_seq);
        segs_remove_first(s);
        any = true;
    }
    if (any)
        sync_dir(s);
}

/* ---- open and recovery ---- */

int spool_make_dir(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return -1;
    for (char *q = p + 1; *q; q++)
        if (*q == '/') {
            *q = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *q = '/';
        }
    int rc = mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* The first seqs of the segment files in dir, sorted. */
static uint64_t *list_segments(spool_t *s, size_t *n_out)
{
    DIR *d = fdopendir(dup(s->dir_fd));
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (!d)
        return NULL;
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        char tail[8];
        uint64_t id;
        if (strlen(e->d_name) != 24 || sscanf(e->d_name, "%20" SCNu64 "%7s", &id, tail) != 2 ||
            strcmp(tail, ".seg") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *g = realloc(ids, cap * sizeof *g);
            if (!g)
                break;
            ids = g;
        }
        ids[n++] = id;
    }
    closedir(d);
    if (n)
        qsort(ids, n, sizeof *ids, cmp_u64);
    *n_out = n;
    return ids;
}

static void quarantine(spool_t *s, const char *name, const char *why)
{
    char to[128];
    snprintf(to, sizeof to, QUARANTINE_DIR "/%s", name);
    if (renameat(s->dir_fd, name, s->dir_fd, to) == 0) {
        s->stats.quarantined++;
        report(s, "msg=\"corrupt spool segment moved to quarantine; its events are not "
                  "replayed\" file=%s/%s reason=\"%s\"", s->dir, to, why);
    } else {
        report(s, "msg=\"corrupt spool segment could not be moved to quarantine, ignoring it\" "
                  "file=%s/%s reason=\"%s\" error=\"%s\"", s->dir, name, why, strerror(errno));
    }
}

/* The newest segment may end in a torn write: cut it back to its last good record. */
static bool truncate_tail(spool_t *s, const char *name, const spool_scan_t *sc, const char *why)
{
    int fd = openat(s->dir_fd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t) sc->good_bytes) < 0 || fsync(fd) < 0) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    close(fd);
    s->stats.truncated_bytes += sc->file_bytes - sc->good_bytes;
    report(s, "msg=\"spool segment had a torn or corrupt tail, truncated to its last good "
              "record\" file=%s/%s kept_events=%" PRIu64 " cut_bytes=%" PRIu64 " reason=\"%s\"",
           s->dir, name, sc->records, sc->file_bytes - sc->good_bytes, why);
    return true;
}

static void recover_one(spool_t *s, uint64_t id, bool is_newest)
{
    char name[64], path[4096], why[256] = "";
    segment_name(name, sizeof name, id);
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    spool_scan_t sc;
    int rc = spool_scan_file(path, &sc, why, sizeof why);
    uint64_t prev_last = s->n_segs ? newest(s)->last_seq : 0;
    if (rc == 0 && sc.records && (sc.first_seq != id || sc.first_seq <= prev_last)) {
        snprintf(why, sizeof why, "first sequence %" PRIu64 " does not fit the file name or "
                 "follows %" PRIu64, sc.first_seq, prev_last);
        rc = 2;
    }
    if (rc == 1 && is_newest && (!sc.records || sc.first_seq == id) && truncate_tail(s, name, &sc, why))
        rc = 0;
    else if (rc == -1 && is_newest && sc.file_bytes < SPOOL_SEGMENT_HEADER)
        sc.records = 0, rc = 0;   /* killed while creating it: nothing was in it */
    if (rc != 0) {
        quarantine(s, name, why);
        return;
    }
    if (!sc.records) {
        unlinkat(s->dir_fd, name, 0);
        return;
    }
    segment_t seg = { .first_seq = id, .last_seq = sc.last_seq, .records = sc.records,
                      .bytes = sc.good_bytes };
    if (segs_push(s, seg) == 0)
        s->total_bytes += seg.bytes;
}

static void recover(spool_t *s)
{
    size_t n = 0;
    uint64_t *ids = list_segments(s, &n);
    uint64_t events = 0;
    for (size_t i = 0; i < n; i++)
        recover_one(s, ids[i], i + 1 == n);
    free(ids);
    for (size_t i = 0; i < s->n_segs; i++)
        events += s->segs[i].records;
    s->next_seq = s->n_segs ? newest(s)->last_seq + 1 : 1;
    for (int i = 0; i < s->n_saved; i++)
        if (s->saved[i].cursor > s->next_seq)
            s->next_seq = s->saved[i].cursor;
    if (n)
        report(s, "msg=\"spool recovered\" dir=%s segments=%zu events=%" PRIu64
                  " bytes=%" PRIu64 " next_seq=%" PRIu64, s->dir, s->n_segs, events,
               s->total_bytes, s->next_seq);
}

static void copy_settings(spool_t *s, const spool_config_t *cfg)
{
    s->cfg = *cfg;
    s->cfg.dir = NULL;
}

spool_t *spool_open(const spool_config_t *cfg, spool_report_fn *report_fn, void *arg,
                    char *err, size_t errlen)
{
    spool_t *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(cfg->dir))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    copy_settings(s, cfg);
    s->report = report_fn;
    s->report_arg = arg;
    s->dir_fd = s->lock_fd = s->wfd = -1;
    msgpack_sbuffer_init(&s->body);
    msgpack_packer_init(&s->pk, &s->body, msgpack_sbuffer_write);
    if (spool_make_dir(s->dir) < 0 || (s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "spool.dir %s: %s", s->dir, strerror(errno));
        spool_destroy(&s);
        return NULL;
    }
    fchmod(s->dir_fd, 0700);
    s->lock_fd = openat(s->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "spool.dir %s: %s", s->dir,
                 errno == EWOULDBLOCK ? "in use by another eventsd (locked)" : strerror(errno));
        spool_destroy(&s);
        return NULL;
    }
    if (mkdirat(s->dir_fd, QUARANTINE_DIR, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool.dir %s/" QUARANTINE_DIR ": %s", s->dir, strerror(errno));
        spool_destroy(&s);
        return NULL;
    }
    cursors_load(s);
    recover(s);
    if (segment_create(s, err, errlen) < 0) {
        spool_destroy(&s);
        return NULL;
    }
    s->cursors_written_ms = now_ms();
    return s;
}

static void consumer_free(spool_consumer_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    msgpack_unpacked_destroy(&c->unpacked);
    free(c->buf);
    free(c->name);
    free(c);
}

void spool_destroy(spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    spool_t *s = *self_p;
    if (s->wfd >= 0) {
        spool_flush(s);
        close(s->wfd);
    }
    while (s->consumers) {
        spool_consumer_t *c = s->consumers;
        s->consumers = c->next;
        consumer_free(c);
    }
    for (int i = 0; i < s->n_saved; i++)
        free(s->saved[i].name);
    free(s->saved);
    free(s->segs);
    msgpack_sbuffer_destroy(&s->body);
    if (s->lock_fd >= 0)
        close(s->lock_fd);   /* releases the flock */
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    free(s->dir);
    free(s);
    *self_p = NULL;
}

int spool_reconfigure(spool_t *s, const spool_config_t *cfg)
{
    if (strcmp(cfg->dir, s->dir) != 0)
        return -1;
    copy_settings(s, cfg);
    return 0;
}

/* ---- appending ---- */

static bool is_full_errno(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

static void pack_body(spool_t *s, const char *tag, size_t tag_len, const uint8_t *payload,
                      size_t payload_len, const spool_target_t *targets, int n_targets)
{
    msgpack_sbuffer_clear(&s->body);
    msgpack_pack_array(&s->pk, 3);
    msgpack_pack_str_with_body(&s->pk, tag, tag_len);
    msgpack_pack_bin_with_body(&s->pk, payload, payload_len);
    msgpack_pack_map(&s->pk, (size_t) n_targets);
    for (int i = 0; i < n_targets; i++) {
        msgpack_pack_str_with_body(&s->pk, targets[i].name, strlen(targets[i].name));
        if (targets[i].priority)
            msgpack_pack_true(&s->pk);
        else
            msgpack_pack_false(&s->pk);
    }
}

/* Room under max_bytes for need more bytes, dropping old segments when the policy says so. */
static bool make_room(spool_t *s, uint64_t need)
{
    while (s->total_bytes + need > (uint64_t) s->cfg.max_bytes)
        if (s->cfg.when_full != SPOOL_FULL_DROP_OLDEST || !drop_oldest(s))
            return false;
    return true;
}

static int write_record(spool_t *s, uint64_t seq)
{
    uint8_t h[SPOOL_RECORD_HEADER];
    put_header(h, (uint32_t) s->body.size,
               record_crc(seq, (const uint8_t *) s->body.data, s->body.size), seq);
    struct iovec iov[2] = { { h, sizeof h }, { s->body.data, s->body.size } };
    size_t want = sizeof h + s->body.size, done = 0;
    while (done < want) {
        ssize_t n = writev(s->wfd, iov, 2);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            /* Never leave half a record: cut back to where it started. */
            if (ftruncate(s->wfd, (off_t) newest(s)->bytes) < 0) { /* reported by the caller */ }
            errno = e;
            return -1;
        }
        done += (size_t) n;
        if (done < want) {   /* short write (disk filling up): finish it or cut it back */
            size_t skip = (size_t) n;
            for (int i = 0; i < 2; i++) {
                size_t k = skip < iov[i].iov_len ? skip : iov[i].iov_len;
                iov[i].iov_base = (char *) iov[i].iov_base + k;
                iov[i].iov_len -= k;
                skip -= k;
            }
        }
    }
    return 0;
}

spool_rc_t spool_append(spool_t *s, const char *tag, size_t tag_len, const uint8_t *payload,
                        size_t payload_len, const spool_target_t *targets, int n_targets,
                        uint64_t *seq_out, char *err, size_t errlen)
{
    pack_body(s, tag, tag_len, payload, payload_len, targets, n_targets);
    if (s->body.size > SPOOL_MAX_BODY) {
        snprintf(err, errlen, "event of %zu bytes is larger than a spool record may be",
                 s->body.size);
        return SPOOL_ERROR;
    }
    uint64_t need = SPOOL_RECORD_HEADER + s->body.size;
    for (int attempt = 0; attempt < 64; attempt++) {
        if (!make_room(s, need)) {
            s->stats.full_events++;
            return SPOOL_FULL;
        }
        segment_t *seg = newest(s);
        if (seg->records && seg->bytes + need > (uint64_t) s->cfg.segment_bytes &&
            segment_roll(s, err, errlen) < 0) {
            if (!is_full_errno(errno))
                return SPOOL_ERROR;
            if (s->cfg.when_full == SPOOL_FULL_DROP_OLDEST && drop_oldest(s))
                continue;
            s->stats.full_events++;
            return SPOOL_FULL;
        }
        uint64_t seq = s->next_seq;
        if (write_record(s, seq) < 0) {
            int e = errno;
            snprintf(err, errlen, "%s: write: %s", s->dir, strerror(e));
            if (!is_full_errno(e))
                return SPOOL_ERROR;
            if (s->cfg.when_full == SPOOL_FULL_DROP_OLDEST && drop_oldest(s))
                continue;
            s->stats.full_events++;
            return SPOOL_FULL;
        }
        seg = newest(s);
        s->last_seq = seq;
        s->last_seg = seg->first_seq;
        s->last_off = seg->bytes;
        s->last_end = seg->bytes + need;
        seg->last_seq = seq;
        seg->records++;
        seg->bytes += need;
        s->total_bytes += need;
        s->next_seq = seq + 1;
        s->stats.appended++;
        if (!s->dirty) {
            s->dirty = true;
            s->dirty_since_ms = now_ms();
        }
        if (s->cfg.sync == SPOOL_SYNC_ALWAYS) {
            fdatasync(s->wfd);
            s->dirty = false;
            s->stats.synced_batches++;
        }
        *seq_out = seq;
        return SPOOL_OK;
    }
    snprintf(err, errlen, "%s: no room after dropping old segments", s->dir);
    return SPOOL_FULL;
}

/* ---- periodic work ---- */

void spool_tick(spool_t *s, int64_t now)
{
    if (s->dirty && (s->cfg.sync == SPOOL_SYNC_NONE ||
                     now - s->dirty_since_ms >= s->cfg.sync_ms)) {
        if (s->cfg.sync != SPOOL_SYNC_NONE) {
            fdatasync(s->wfd);
            s->stats.synced_batches++;
        }
        s->dirty = false;
    }
    if (now - s->cursors_written_ms >= CURSOR_PERIOD_MS) {
        s->cursors_written_ms = now;
        if (s->cursors_changed && cursors_write(s) < 0) {
            if (!s->cursors_failing)
                report(s, "msg=\"cannot write the spool cursors, retrying every %d ms\" dir=%s "
                          "error=\"%s\"", CURSOR_PERIOD_MS, s->dir, strerror(errno));
            s->cursors_failing = true;
        } else if (s->cursors_failing && !s->cursors_changed) {
            s->cursors_failing = false;
            report(s, "msg=\"spool cursors written again\" dir=%s", s->dir);
        }
        /* Even when the cursors could not be written (a full disk): the segments every worker
         * passed go, or the disk would never get room again. A crash before the next write
         * leaves older cursors, which start at the oldest segment left: replays, no loss. */
        delete_passed(s);
    }
}

int spool_timeout_ms(const spool_t *s, int64_t now)
{
    int64_t t = -1;
    if (s->dirty && s->cfg.sync == SPOOL_SYNC_INTERVAL)
        t = s->dirty_since_ms + s->cfg.sync_ms - now;
    if (s->cursors_changed) {
        int64_t c = s->cursors_written_ms + CURSOR_PERIOD_MS - now;
        if (t < 0 || c < t)
            t = c;
    }
    return t < 0 ? (s->dirty || s->cursors_changed ? 0 : -1) : (int) t;
}

int spool_flush(spool_t *s)
{
    int rc = 0;
    if (s->dirty && s->cfg.sync != SPOOL_SYNC_NONE)
        rc = fdatasync(s->wfd);
    s->dirty = false;
    if (s->consumers && cursors_write(s) < 0)
        rc = -1;
    if (s->consumers)
        delete_passed(s);
    return rc;
}

uint64_t spool_next_seq(const spool_t *s)
{
    return s->next_seq;
}

const spool_stats_t *spool_stats(const spool_t *s)
{
    spool_t *m = (spool_t *) s;
    m->stats.bytes = s->total_bytes;
    m->stats.segments = s->n_segs;
    return &s->stats;
}

/* ---- consumers ---- */

spool_consumer_t *spool_consumer(spool_t *s, const char *name)
{
    for (spool_consumer_t *c = s->consumers; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    spool_consumer_t *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return NULL;
    }
    c->spool = s;
    c->fd = -1;
    msgpack_unpacked_init(&c->unpacked);
    c->next_seq = s->next_seq;   /* a new worker starts with the events accepted from now on */
    if (s->cursors_lost)
        c->next_seq = s->n_segs ? s->segs[0].first_seq : s->next_seq;
    for (int i = 0; i < s->n_saved; i++)
        if (strcmp(s->saved[i].name, name) == 0)
            c->next_seq = s->saved[i].cursor;
    c->cursor = c->next_seq;
    c->next = s->consumers;
    s->consumers = c;
    s->cursors_changed = true;
    return c;
}

void spool_consumer_remove(spool_t *s, const char *name)
{
    for (spool_consumer_t **link = &s->consumers; *link; link = &(*link)->next)
        if (strcmp((*link)->name, name) == 0) {
            spool_consumer_t *c = *link;
            *link = c->next;
            consumer_free(c);
            s->cursors_changed = true;
            return;
        }
}

/* Index of the consumer's segment, placing it first when needed; -1 when nothing to read. */
static long consumer_locate(spool_consumer_t *c)
{
    spool_t *s = c->spool;
    long i = c->seg ? find_seg(s, c->seg) : -1;
    if (i >= 0)
        return i;
    if (c->next_seq > newest(s)->last_seq) {   /* nothing spooled for it yet: at the end */
        c->seg = newest(s)->first_seq;
        c->off = newest(s)->bytes;
        return (long) s->n_segs - 1;
    }
    /* Not placed yet, or its segment was deleted: the oldest segment that may hold next_seq. */
    for (size_t k = 0; k < s->n_segs; k++)
        if (s->segs[k].last_seq >= c->next_seq || k + 1 == s->n_segs) {
            c->seg = s->segs[k].first_seq;
            c->off = SPOOL_SEGMENT_HEADER;
            return (long) k;
        }
    return -1;
}

bool spool_consumer_at_end(const spool_consumer_t *c)
{
    spool_t *s = c->spool;
    if (c->next_seq >= s->next_seq)
        return true;
    return c->seg == newest(s)->first_seq && c->off >= newest(s)->bytes;
}

static int consumer_open(spool_consumer_t *c, uint64_t seg)
{
    if (c->fd >= 0 && c->fd_seg == seg)
        return 0;
    if (c->fd >= 0)
        close(c->fd);
    char name[64];
    segment_name(name, sizeof name, seg);
    c->fd = openat(c->spool->dir_fd, name, O_RDONLY | O_CLOEXEC);
    c->fd_seg = seg;
    return c->fd < 0 ? -1 : 0;
}

/* The rest of the consumer's segment cannot be read: skip to the next one. */
static void consumer_skip_segment(spool_consumer_t *c, long i, const char *why)
{
    spool_t *s = c->spool;
    s->stats.corrupt_skipped++;
    report(s, "msg=\"unreadable spool record, skipping the rest of the segment\" worker=%s "
              "segment=%" PRIu64 " offset=%" PRIu64 " reason=\"%s\"", c->name, c->seg, c->off,
           why);
    c->off = s->segs[i].bytes;
    if (c->next_seq <= s->segs[i].last_seq)
        c->next_seq = s->segs[i].last_seq + 1;
}

int spool_consumer_next(spool_consumer_t *c, spool_record_t *rec)
{
    spool_t *s = c->spool;
    for (;;) {
        long i = consumer_locate(c);
        if (i < 0)
            return 0;
        segment_t *seg = &s->segs[i];
        if (c->off >= seg->bytes) {
            if ((size_t) i + 1 == s->n_segs)
                return 0;
            c->seg = s->segs[i + 1].first_seq;
            c->off = SPOOL_SEGMENT_HEADER;
            continue;
        }
        uint8_t h[SPOOL_RECORD_HEADER];
        uint32_t len, crc;
        uint64_t seq;
        if (consumer_open(c, seg->first_seq) < 0 || read_full(c->fd, h, sizeof h, c->off) < 0) {
            consumer_skip_segment(c, i, strerror(errno ? errno : EIO));
            return -1;
        }
        get_header(h, &len, &crc, &seq);
        if (len > SPOOL_MAX_BODY || c->off + SPOOL_RECORD_HEADER + len > seg->bytes ||
            grow(&c->buf, &c->cap, len ? len : 1) < 0 ||
            read_full(c->fd, c->buf, len, c->off + SPOOL_RECORD_HEADER) < 0 ||
            record_crc(seq, c->buf, len) != crc) {
            consumer_skip_segment(c, i, "bad length or CRC");
            return -1;
        }
        c->off += SPOOL_RECORD_HEADER + len;
        if (seq < c->next_seq)
            continue;
        if (!decode_body(&c->unpacked, c->buf, len, rec)) {
            c->next_seq = seq + 1;
            s->stats.corrupt_skipped++;
            report(s, "msg=\"spool record body is not an event, skipped\" worker=%s seq=%" PRIu64,
                   c->name, seq);
            return -1;
        }
        rec->seq = seq;
        c->next_seq = seq + 1;
        return 1;
    }
}

bool spool_consumer_follow(spool_consumer_t *c, uint64_t seq)
{
    spool_t *s = c->spool;
    if (seq != s->last_seq || c->next_seq != seq)
        return false;
    if (consumer_locate(c) < 0 || c->seg != s->last_seg || c->off != s->last_off)
        return false;
    c->off = s->last_end;
    c->next_seq = seq + 1;
    return true;
}

void spool_consumer_ack(spool_consumer_t *c, uint64_t cursor)
{
    if (cursor > c->cursor) {
        c->cursor = cursor;
        c->spool->cursors_changed = true;
    }
}

uint64_t spool_consumer_next_seq(const spool_consumer_t *c)
{
    return c->next_seq;
}

uint64_t spool_consumer_cursor(const spool_consumer_t *c)
{
    return c->cursor;
}

uint64_t spool_consumer_dropped(const spool_consumer_t *c)
{
    return c->dropped;
}
