/* redis_conn: connecting to Redis with timeouts, AUTH and SELECT; checking replies.
 * See redis_conn.h. */
#include "redis_conn.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static struct timeval ms_to_tv(int ms)
{
    if (ms <= 0)
        ms = 1000;
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    return tv;
}

/* Overwrites every occurrence of secret in s with '*': defence in depth, since a password
 * in a log line is a leak that cannot be taken back. */
static void scrub(char *s, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n == 0)
        return;
    for (char *p = strstr(s, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}

/* The reason of a failed command: the server's error reply, or the context's own error. */
static const char *reason(const redisContext *c, const redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_ERROR)
        return reply->str;
    if (c && c->err)
        return c->err == REDIS_ERR_EOF ? "connection closed by server" : c->errstr;
    return "no reply";
}

int redis_conn_check(const redisContext *c, const redisReply *reply, const char *what,
                     char *err, size_t errlen)
{
    if (reply && reply->type != REDIS_REPLY_ERROR)
        return 0;
    const char *host = c && c->tcp.host ? c->tcp.host : "?";
    snprintf(err, errlen, "redis %s:%d: %s: %s", host, c ? c->tcp.port : 0, what,
             reason(c, reply));
    return -1;
}

redisReply *redis_conn_command(redisContext *c, int argc, const char **argv,
                               const size_t *argvlen, const char *what, char *err,
                               size_t errlen)
{
    redisReply *reply = redisCommandArgv(c, argc, argv, argvlen);
    if (redis_conn_check(c, reply, what, err, errlen) == 0)
        return reply;
    if (reply)
        freeReplyObject(reply);
    return NULL;
}

/* AUTH then SELECT; 0 or -1 with err. */
static int handshake(redisContext *c, const char *password, int db, char *err, size_t errlen)
{
    if (password && *password) {
        const char *argv[] = { "AUTH", password };
        redisReply *r = redis_conn_command(c, 2, argv, NULL, "AUTH", err, errlen);
        if (!r)
            return -1;
        freeReplyObject(r);
    }
    if (db != 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", db);
        const char *argv[] = { "SELECT", num };
        redisReply *r = redis_conn_command(c, 2, argv, NULL, "SELECT", err, errlen);
        if (!r)
            return -1;
        freeReplyObject(r);
    }
    return 0;
}

redisContext *redis_conn_open(const char *host, int port, const char *password, int db,
                              int timeout_ms, char *err, size_t errlen)
{
    struct timeval tv = ms_to_tv(timeout_ms);
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c) {
        snprintf(err, errlen, "redis %s:%d: connect: out of memory", host, port);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "redis %s:%d: connect: %s", host, port, c->errstr);
        redisFree(c);
        return NULL;
    }
    /* The connect timeout does not cover commands: without this a Redis that accepts and
     * then hangs would block the caller forever. */
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s:%d: cannot set the timeout: %s", host, port,
                 c->err ? c->errstr : "setsockopt failed");
        redisFree(c);
        return NULL;
    }
    if (handshake(c, password, db, err, errlen) < 0) {
        scrub(err, password);
        redisFree(c);
        return NULL;
    }
    return c;
}

void redis_conn_close(redisContext **c_p)
{
    if (*c_p)
        redisFree(*c_p);
    *c_p = NULL;
}

bool redis_conn_usable(const redisContext *c)
{
    return c && c->err == 0;
}
