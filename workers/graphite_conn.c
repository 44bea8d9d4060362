/* graphite_conn: see graphite_conn.h. */
#include "graphite_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct graphite_conn {
    char    *host;
    char     port[8];
    bool     udp;
    int      timeout_ms;
    int      fd;
    uint64_t connects;
};

graphite_conn_t *graphite_conn_new(const char *host, int port, bool udp, int timeout_ms)
{
    graphite_conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->host = strdup(host ? host : "127.0.0.1"))) {
        free(c);
        return NULL;
    }
    snprintf(c->port, sizeof c->port, "%d", port);
    c->udp = udp;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    c->fd = -1;
    return c;
}

static void conn_close(graphite_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void graphite_conn_destroy(graphite_conn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    conn_close(*self_p);
    free((*self_p)->host);
    free(*self_p);
    *self_p = NULL;
}

uint64_t graphite_conn_connects(const graphite_conn_t *self)
{
    return self->connects;
}

/* ---- connecting ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for a non-blocking connect until deadline. 0, or -1 with errno set. */
static int connect_wait(int fd, int64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int rc;
    do {
        int64_t left = deadline - now_ms();
        rc = poll(&pfd, 1, left > 0 ? (int) left : 0);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        errno = ETIMEDOUT;
    if (rc <= 0)
        return -1;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return -1;
    errno = soerr;
    return soerr ? -1 : 0;
}

/* A connected socket to ai, blocking, with the send timeout set; -1 with errno. */
static int connect_one(const graphite_conn_t *c, const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS)
        rc = connect_wait(fd, deadline);
    /* Blocking from here on, with a send timeout: a carbon that stops reading fails the
     * flush after timeout_ms instead of stalling the worker. */
    struct timeval tv = { .tv_sec = c->timeout_ms / 1000,
                          .tv_usec = (c->timeout_ms % 1000) * 1000 };
    int one = 1, flags = rc == 0 ? fcntl(fd, F_GETFL) : -1;
    if (rc == 0)
        rc = flags < 0 ? -1 : fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (rc == 0)
        rc = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rc == 0 && !c->udp)   /* the last, partial segment of a flush goes out at once */
        rc = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rc != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int conn_open(graphite_conn_t *c, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_flags = AI_NUMERICSERV,
                              .ai_socktype = c->udp ? SOCK_DGRAM : SOCK_STREAM };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(c->host, c->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "graphite: cannot resolve %s: %s", c->host, gai_strerror(gai));
        return -1;
    }
    int64_t deadline = now_ms() + c->timeout_ms;
    int saved = 0;
    for (const struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next)
        if ((c->fd = connect_one(c, ai, deadline)) < 0)
            saved = errno;
    freeaddrinfo(res);
    if (c->fd < 0) {
        snprintf(err, errlen, "graphite: cannot connect to %s:%s (%s): %s", c->host, c->port,
                 c->udp ? "udp" : "tcp", strerror(saved));
        return -1;
    }
    c->connects++;
    return 0;
}

/* A kept TCP connection the peer has closed (or reset) is closed here. Carbon never writes
 * on the plaintext port, so data read is discarded. */
static void drop_if_closed(graphite_conn_t *c)
{
    char buf[512];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            conn_close(c);
        return;
    }
}

/* ---- sending ---- */

static int send_all(graphite_conn_t *c, const char *p, size_t len, char *err, size_t errlen)
{
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bool stalled = errno == EAGAIN || errno == EWOULDBLOCK;
            snprintf(err, errlen, "graphite: send to %s:%s failed: %s", c->host, c->port,
                     stalled ? "carbon took nothing within the timeout" : strerror(errno));
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

/* Whole lines in datagrams of at most GRAPHITE_UDP_MAX bytes. */
static int send_datagrams(graphite_conn_t *c, const char *p, size_t len, char *err,
                          size_t errlen)
{
    while (len) {
        size_t take = len;
        if (take > GRAPHITE_UDP_MAX) {
            take = 0;
            for (size_t i = 0; i < GRAPHITE_UDP_MAX; i++)
                if (p[i] == '\n')
                    take = i + 1;
            if (take == 0) {   /* a line longer than a datagram: names are capped below it */
                const char *nl = memchr(p, '\n', len);
                take = nl ? (size_t) (nl - p) + 1 : len;
            }
        }
        if (send_all(c, p, take, err, errlen) != 0)
            return -1;
        p += take;
        len -= take;
    }
    return 0;
}

int graphite_conn_send(graphite_conn_t *self, const char *buf, size_t len, char *err,
                       size_t errlen)
{
    if (self->fd >= 0 && !self->udp)
        drop_if_closed(self);
    if (self->fd < 0 && conn_open(self, err, errlen) != 0)
        return -1;
    int rc = self->udp ? send_datagrams(self, buf, len, err, errlen)
                       : send_all(self, buf, len, err, errlen);
    if (rc != 0)
        conn_close(self);
    return rc;
}

/* ---- finishing ---- */

/* Reads until EOF or deadline; carbon sends nothing else, so any data is dropped. 0 on EOF. */
static int await_eof(int fd, int64_t deadline)
{
    char buf[512];
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int rc = poll(&pfd, 1, left > 0 ? (int) left : 0);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            errno = rc == 0 ? ETIMEDOUT : errno;
            return -1;
        }
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0)
            return 0;
        if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
    }
}

int graphite_conn_finish(graphite_conn_t *self, int timeout_ms, char *err, size_t errlen)
{
    if (self->fd < 0 || self->udp) {
        conn_close(self);
        return 0;
    }
    int rc = shutdown(self->fd, SHUT_WR);
    if (rc == 0)
        rc = await_eof(self->fd, now_ms() + (timeout_ms > 0 ? timeout_ms : 0));
    if (rc != 0)
        snprintf(err, errlen, "graphite: %s:%s did not confirm the end of the connection: %s",
                 self->host, self->port, strerror(errno));
    conn_close(self);
    return rc;
}
