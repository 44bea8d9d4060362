/* sink_file: appends one JSON line per event to a file:
 *   {"tag": "<tag>", "data": <payload JSON>, "event_hash": "<sha1>", "master_id": "<id>"}
 * with the separators and escaping of Python's json.dumps (payload_to_json renders every
 * part, the tag and master_id as JSON strings too, so all JSON here comes from one escaper).
 *
 * A batch is one write() followed by fdatasync(): it is on disk before the worker acks it.
 * A batch that fails part-way is cut off again (ftruncate to the size before the batch), so a
 * retry never leaves a torn line. Several worker processes may share the file: each batch
 * holds an exclusive flock() from measuring the size to the sync, so nobody truncates another
 * process's lines. A file that does not end in '\n' (a writer killed mid-line) gets one before
 * the next batch, so that torn line cannot swallow the next event.
 * Non-regular files (a FIFO, /dev/stdout) are written without lock, truncation or sync.
 */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int   fd;
    bool  regular;
    bool  readable;         /* opened O_RDWR: the torn-line check can read the last byte */
    char *path;
    char *master_id;
    msgpack_sbuffer line;   /* the batch being written, reused */
} file_sink_t;

static int file_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->path && *cfg->path)
        return 0;
    snprintf(err, errlen, "worker '%s': the file sink needs 'path'",
             cfg->name ? cfg->name : "?");
    return -1;
}

static void file_close(sink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    file_sink_t *self = (file_sink_t *) *self_p;
    if (self->fd >= 0)
        close(self->fd);
    msgpack_sbuffer_destroy(&self->line);
    free(self->path);
    free(self->master_id);
    free(self);
    *self_p = NULL;
}

/* Read access only serves the torn-line check: a file we may only append to is still fine. */
static int open_fd(file_sink_t *self, const char *path)
{
    int flags = O_APPEND | O_CREAT | O_CLOEXEC;
    self->fd = open(path, O_RDWR | flags, 0640);
    self->readable = self->fd >= 0;
    if (self->fd < 0 && (errno == EACCES || errno == EPERM))
        self->fd = open(path, O_WRONLY | flags, 0640);
    return self->fd < 0 ? -1 : 0;
}

static sink_t *file_open(const worker_config_t *cfg, const char *master_id, char *err,
                         size_t errlen)
{
    if (file_check(cfg, err, errlen) != 0)
        return NULL;
    file_sink_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fd = -1;
    msgpack_sbuffer_init(&self->line);
    self->path = strdup(cfg->path);
    self->master_id = master_id ? strdup(master_id) : NULL;
    struct stat st;
    const char *why = !self->path || (master_id && !self->master_id) ? "out of memory" : NULL;
    if (!why && (open_fd(self, cfg->path) != 0 || fstat(self->fd, &st) != 0))
        why = strerror(errno);
    if (why) {
        snprintf(err, errlen, "file: cannot open %s: %s", cfg->path, why);
        sink_t *s = (sink_t *) self;
        file_close(&s);
        return NULL;
    }
    self->regular = S_ISREG(st.st_mode);
    return (sink_t *) self;
}

/* ---------------------------------------------------------------- rendering */

static int put(msgpack_sbuffer *out, const char *s)
{
    return msgpack_sbuffer_write(out, s, strlen(s));
}

/* A JSON string through the payload escaper, so tags escape exactly like data. */
static int put_json_string(msgpack_sbuffer *out, const char *s, size_t n)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_STR };
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t) n;
    return payload_to_json(&o, out);
}

static int render_line(const file_sink_t *self, const worker_event_t *ev, msgpack_sbuffer *out)
{
    const char *tag = ev->tag ? ev->tag : "";
    if (put(out, "{\"tag\": ") || put_json_string(out, tag, ev->tag_len) ||
        put(out, ", \"data\": ") || payload_to_json(payload_root(ev->data), out) ||
        put(out, ", \"event_hash\": \"") || put(out, ev->hash) ||
        put(out, "\", \"master_id\": "))
        return -1;
    if (self->master_id ? put_json_string(out, self->master_id, strlen(self->master_id))
                        : put(out, "null"))
        return -1;
    return put(out, "}\n");
}

/* ---------------------------------------------------------------- writing */

static sink_result_t classify_errno(int e)
{
    switch (e) {
    case EINTR:
    case EAGAIN:
    case ENOSPC:
    case EIO:
    case EDQUOT:
        return SINK_RETRY;
    default:
        return SINK_FATAL;
    }
}

/* 0, or the errno of the failing write. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0)
            return errno;
        buf += n;
        len -= (size_t) n;
    }
    return 0;
}

/* Size of the file, after ending a torn last line. -1 with errno on failure. */
static off_t prepare_tail(int fd, bool readable)
{
    struct stat st;
    char last = '\n';
    if (fstat(fd, &st) != 0)
        return -1;
    if (readable && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
        return -1;
    if (last != '\n') {
        int e = write_all(fd, "\n", 1);
        if (e) {
            errno = e;
            return -1;
        }
        return st.st_size + 1;
    }
    return st.st_size;
}

/* Writes and syncs buf at the end of a regular file; cuts a failed batch off again. */
static sink_result_t append_regular(file_sink_t *self, const char *buf, size_t len, char *err,
                                    size_t errlen)
{
    off_t before = prepare_tail(self->fd, self->readable);
    if (before < 0) {
        int e = errno;
        snprintf(err, errlen, "file: %s: %s", self->path, strerror(e));
        return classify_errno(e);
    }
    int e = write_all(self->fd, buf, len);
    const char *what = "write";
    if (!e && fdatasync(self->fd) != 0) {
        e = errno;
        what = "fdatasync";
    }
    if (!e)
        return SINK_OK;
    snprintf(err, errlen, "file: %s: %s: %s", self->path, what, strerror(e));
    if (ftruncate(self->fd, before) != 0) {
        size_t used = strlen(err);
        snprintf(err + used, errlen - used, "; cannot cut the partial batch off: %s",
                 strerror(errno));
        return SINK_FATAL;
    }
    return classify_errno(e);
}

static sink_result_t file_write_batch(sink_t *sink, worker_event_t *const *events, size_t n,
                                      size_t *bad_index, char *err, size_t errlen)
{
    (void) bad_index;   /* any event renders as JSON: the file never rejects a row */
    file_sink_t *self = (file_sink_t *) sink;
    self->line.size = 0;
    for (size_t i = 0; i < n; i++)
        if (render_line(self, events[i], &self->line) != 0) {
            snprintf(err, errlen, "file: out of memory rendering seq=%llu",
                     (unsigned long long) events[i]->seq);
            return SINK_RETRY;
        }
    if (n == 0)
        return SINK_OK;
    if (!self->regular) {
        int e = write_all(self->fd, self->line.data, self->line.size);
        if (e)
            snprintf(err, errlen, "file: %s: write: %s", self->path, strerror(e));
        return e ? classify_errno(e) : SINK_OK;
    }
    if (flock(self->fd, LOCK_EX) != 0) {
        int e = errno;
        snprintf(err, errlen, "file: %s: flock: %s", self->path, strerror(e));
        return classify_errno(e);
    }
    sink_result_t res = append_regular(self, self->line.data, self->line.size, err, errlen);
    flock(self->fd, LOCK_UN);
    return res;
}

const sink_ops_t sink_file_ops = {
    .name = "file",
    .check = file_check,
    .open = file_open,
    .write_batch = file_write_batch,
    .close = file_close,
};
