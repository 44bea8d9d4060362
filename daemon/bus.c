#include "bus.h"
#include "log.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define BUS_READ_CHUNK (256 * 1024)

typedef enum { BUS_DOWN, BUS_DETECT, BUS_STREAM, BUS_ZMQ_UP } bus_state_t;

struct bus {
    bus_config_t           cfg;          /* own copies of the strings: a reload frees the config */
    bus_state_t            state;
    int                    fd;
    zsock_t               *sub;
    salt_stream_decoder_t *decoder;
    bool                   buffered;     /* decoder may hold complete frames */
    int64_t                next_attempt_ms;
    int                    backoff_ms;
    uint8_t               *chunk;
    bus_stats_t            stats;
    log_complaint_t        connect_complaint, malformed_complaint;
};

bus_t *bus_new(const bus_config_t *cfg)
{
    bus_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->cfg.path = cfg->path ? strdup(cfg->path) : NULL;
    self->cfg.endpoint = cfg->endpoint ? strdup(cfg->endpoint) : NULL;
    self->cfg.host = cfg->host ? strdup(cfg->host) : NULL;
    self->fd = -1;
    self->decoder = salt_stream_decoder_new(cfg->max_event_bytes, cfg->max_depth);
    self->chunk = malloc(BUS_READ_CHUNK);
    if (!self->decoder || !self->chunk || (cfg->path && !self->cfg.path) ||
        (cfg->endpoint && !self->cfg.endpoint) || (cfg->host && !self->cfg.host)) {
        bus_destroy(&self);
        return NULL;
    }
    self->backoff_ms = cfg->reconnect_min_ms;
    self->malformed_complaint.interval_ms = 10000;
    self->connect_complaint.interval_ms = 30000;
    return self;
}

static void bus_close(bus_t *self)
{
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    zsock_destroy(&self->sub);
    salt_stream_decoder_reset(self->decoder);
    self->buffered = false;
    self->state = BUS_DOWN;
}

void bus_destroy(bus_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_t *self = *self_p;
    bus_close(self);
    salt_stream_decoder_destroy(&self->decoder);
    free(self->chunk);
    free(self->cfg.path);
    free(self->cfg.endpoint);
    free(self->cfg.host);
    free(self);
    *self_p = NULL;
}

/* Exponential backoff with +-25% jitter, so many daemons do not hammer a restarting master
 * in lockstep. */
static void schedule_reconnect(bus_t *self, int64_t now)
{
    int jitter = self->backoff_ms / 4;
    int delay = self->backoff_ms + (jitter ? (rand() % (2 * jitter + 1)) - jitter : 0);
    self->next_attempt_ms = now + delay;
    self->backoff_ms = self->backoff_ms * 2 > self->cfg.reconnect_max_ms
                           ? self->cfg.reconnect_max_ms
                           : self->backoff_ms * 2;
}

static void complain_connect(bus_t *self, const char *where, int err)
{
    const char *hint = "";
    if (err == EACCES)
        hint = " hint=\"run eventsd as the Salt master's user or grant it access to the socket"
               " (the master creates it with umask 0177)\"";
    log_complain(&self->connect_complaint, LOG_LVL_WARNING,
                 "msg=\"cannot connect to the Salt bus, will retry\" bus=%s address=%s "
                 "error=\"%s\"%s",
                 config_bus_type_name(self->cfg.type), where, strerror(err), hint);
}

/* connect() honours SO_SNDTIMEO: a peer that never answers must not freeze the master (which
 * would stop reading acks and miss the systemd watchdog). */
static void set_connect_timeout(int fd)
{
    struct timeval tv = { .tv_sec = 2 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int connect_unix(bus_t *self)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(self->cfg.path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, self->cfg.path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_connect_timeout(fd);
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int connect_tcp(bus_t *self)
{
    char port[16];
    snprintf(port, sizeof port, "%d", self->cfg.port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(self->cfg.host, port, &hints, &res);
    if (rc != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = -1, e = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0)
            set_connect_timeout(fd);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = e;
    return fd;
}

static int connect_zmq(bus_t *self)
{
    char endpoint[1100];
    if (self->cfg.endpoint)
        snprintf(endpoint, sizeof endpoint, ">%s", self->cfg.endpoint);
    else
        snprintf(endpoint, sizeof endpoint, ">ipc://%s", self->cfg.path);
    /* Before czmq's first socket (zsys_init): czmq must not install its SIGINT/SIGTERM
     * handlers. The master takes those signals through a signalfd, and the worker processes it
     * forks inherit the handlers: a worker would then survive SIGTERM, PDEATHSIG's included. */
    zsys_handler_set(NULL);
    zsock_t *sub = zsock_new(ZMQ_SUB);
    if (!sub)
        return -1;
    /* Salt's own subscribers use a large HWM: a burst must wait in memory, not be dropped. */
    zsock_set_rcvhwm(sub, 1000000);
    zsock_set_subscribe(sub, "");
    if (zsock_attach(sub, endpoint, false) < 0) {
        zsock_destroy(&sub);
        errno = EINVAL;
        return -1;
    }
    self->sub = sub;
    return 0;
}

static void connected(bus_t *self, bus_state_t state, const char *where)
{
    self->state = state;
    self->stats.connects++;
    log_recovered(&self->connect_complaint, "msg=\"Salt bus reachable again\" address=%s", where);
    log_info("msg=\"bus connected\" bus=%s address=%s", config_bus_type_name(self->cfg.type),
             where);
}

void bus_tick(bus_t *self, int64_t now)
{
    if (self->state != BUS_DOWN || now < self->next_attempt_ms)
        return;
    char where[1100];
    int fd = -1;
    switch (self->cfg.type) {
    case BUS_ZMQ:
        snprintf(where, sizeof where, "%s", self->cfg.endpoint ? self->cfg.endpoint : self->cfg.path);
        if (connect_zmq(self) == 0) {
            connected(self, BUS_ZMQ_UP, where);
        } else {
            complain_connect(self, where, errno);
            schedule_reconnect(self, now);
        }
        return;
    case BUS_SALT_TCP:
        snprintf(where, sizeof where, "%s:%d", self->cfg.host, self->cfg.port);
        fd = connect_tcp(self);
        break;
    case BUS_SALT_IPC:
    case BUS_AUTO:
        snprintf(where, sizeof where, "%s", self->cfg.path);
        fd = connect_unix(self);
        break;
    }
    if (fd < 0) {
        complain_connect(self, where, errno);
        schedule_reconnect(self, now);
        return;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    self->fd = fd;
    connected(self, self->cfg.type == BUS_AUTO ? BUS_DETECT : BUS_STREAM, where);
}

int bus_pollitem(bus_t *self, zmq_pollitem_t *item)
{
    memset(item, 0, sizeof *item);
    if (self->state == BUS_ZMQ_UP) {
        item->socket = zsock_resolve(self->sub);
        item->events = ZMQ_POLLIN;
        return 1;
    }
    if (self->fd >= 0) {
        item->fd = self->fd;
        item->events = ZMQ_POLLIN;
        return 1;
    }
    return 0;
}

int bus_timeout_ms(const bus_t *self, int64_t now)
{
    if (self->state != BUS_DOWN)
        return -1;
    return self->next_attempt_ms > now ? (int) (self->next_attempt_ms - now) : 0;
}

bool bus_connected(const bus_t *self)
{
    return self->state != BUS_DOWN;
}

static bool same_string(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool bus_config_differs(const bus_t *self, const bus_config_t *cfg)
{
    const bus_config_t *c = &self->cfg;
    return c->type != cfg->type || !same_string(c->path, cfg->path) ||
           !same_string(c->endpoint, cfg->endpoint) || !same_string(c->host, cfg->host) ||
           c->port != cfg->port || c->max_event_bytes != cfg->max_event_bytes ||
           c->max_depth != cfg->max_depth || c->reconnect_min_ms != cfg->reconnect_min_ms ||
           c->reconnect_max_ms != cfg->reconnect_max_ms;
}

bool bus_has_buffered(const bus_t *self)
{
    return self->buffered;
}

const bus_stats_t *bus_stats(const bus_t *self)
{
    return &self->stats;
}

static void lost_connection(bus_t *self, const char *why)
{
    log_warning("msg=\"bus connection lost, reconnecting\" bus=%s reason=\"%s\"",
                config_bus_type_name(self->cfg.type), why);
    bus_close(self);
    self->backoff_ms = self->cfg.reconnect_min_ms;
    schedule_reconnect(self, clock_ms());
}

static void count_bad_frame(bus_t *self, salt_frame_result_t rc, const char *err)
{
    if (rc == SALT_FRAME_OVERSIZE)
        self->stats.oversize++;
    else
        self->stats.malformed++;
    log_complain(&self->malformed_complaint, LOG_LVL_WARNING,
                 "msg=\"skipped a bad frame from the Salt bus\" kind=%s error=\"%s\" "
                 "malformed_total=%llu oversize_total=%llu",
                 rc == SALT_FRAME_OVERSIZE ? "oversize" : "malformed", err,
                 (unsigned long long) self->stats.malformed,
                 (unsigned long long) self->stats.oversize);
}

static void deliver(bus_t *self, salt_event_t *ev, bus_event_fn *fn, void *arg)
{
    self->stats.received++;
    self->backoff_ms = self->cfg.reconnect_min_ms;
    fn(ev, arg);
    salt_event_free(ev);
}

/* Hands out decoded stream events; returns how many, or -1 when the stream lost sync. */
static int drain_decoder(bus_t *self, bus_event_fn *fn, void *arg, int max_events)
{
    int n = 0;
    char err[256];
    while (n < max_events) {
        salt_event_t ev = { 0 };
        salt_frame_result_t rc = salt_stream_decoder_next(self->decoder, &ev, err, sizeof err);
        if (rc == SALT_FRAME_NEED_MORE) {
            self->buffered = false;
            return n;
        }
        if (rc == SALT_FRAME_FATAL) {
            count_bad_frame(self, rc, err);
            return -1;
        }
        if (rc != SALT_FRAME_OK) {
            count_bad_frame(self, rc, err);
            continue;
        }
        deliver(self, &ev, fn, arg);
        n++;
    }
    self->buffered = true;
    return n;
}

/* auto: a ZeroMQ publisher greets with 0xFF at once; a Salt stream never does. */
static bool detect_zmq(bus_t *self, const uint8_t *bytes, ssize_t n)
{
    if (self->state != BUS_DETECT || n <= 0)
        return false;
    if (bytes[0] != 0xFF) {
        self->state = BUS_STREAM;
        log_info("msg=\"bus speaks the Salt stream framing (2016.3+)\" path=%s", self->cfg.path);
        return false;
    }
    log_info("msg=\"bus speaks ZeroMQ (Salt <= 2015.8), switching to a SUB socket\" path=%s",
             self->cfg.path);
    close(self->fd);
    self->fd = -1;
    if (connect_zmq(self) == 0) {
        self->state = BUS_ZMQ_UP;
    } else {
        complain_connect(self, self->cfg.path, errno);
        self->state = BUS_DOWN;
        schedule_reconnect(self, clock_ms());
    }
    return true;
}

static int read_stream(bus_t *self, bus_event_fn *fn, void *arg, int max_events)
{
    int n = 0;
    if (self->buffered) {
        n = drain_decoder(self, fn, arg, max_events);
        if (n < 0 || self->buffered) {
            if (n < 0)
                lost_connection(self, "stream lost frame sync");
            return n < 0 ? 0 : n;
        }
    }
    ssize_t got = read(self->fd, self->chunk, BUS_READ_CHUNK);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return n;
    if (got <= 0) {
        lost_connection(self, got == 0 ? "EOF (master restarted?)" : strerror(errno));
        return n;
    }
    if (detect_zmq(self, self->chunk, got))
        return n;
    self->stats.bytes += (uint64_t) got;
    salt_stream_decoder_feed(self->decoder, self->chunk, (size_t) got);
    int m = drain_decoder(self, fn, arg, max_events - n);
    if (m < 0) {
        lost_connection(self, "stream lost frame sync");
        return n;
    }
    return n + m;
}

static int read_zmq(bus_t *self, bus_event_fn *fn, void *arg, int max_events)
{
    void *handle = zsock_resolve(self->sub);
    int n = 0;
    char err[256];
    while (n < max_events) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        bool multipart = zmq_msg_more(&msg);
        self->stats.bytes += zmq_msg_size(&msg);
        salt_event_t ev = { 0 };
        salt_frame_result_t rc =
            multipart ? SALT_FRAME_MALFORMED
                      : salt_zmq_decode(zmq_msg_data(&msg), zmq_msg_size(&msg),
                                        self->cfg.max_event_bytes, self->cfg.max_depth, &ev, err,
                                        sizeof err);
        if (multipart)
            snprintf(err, sizeof err, "multipart message (Salt sends one part)");
        zmq_msg_close(&msg);
        if (rc != SALT_FRAME_OK) {
            count_bad_frame(self, rc, err);
            continue;
        }
        deliver(self, &ev, fn, arg);
        n++;
    }
    return n;
}

int bus_read(bus_t *self, bus_event_fn *fn, void *arg, int max_events)
{
    if (self->state == BUS_ZMQ_UP)
        return read_zmq(self, fn, arg, max_events);
    if (self->fd >= 0)
        return read_stream(self, fn, arg, max_events);
    return 0;
}
