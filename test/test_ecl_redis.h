/* Helpers for the tests that talk to a real Redis (test_sink_redis, test_ecl_rotate,
 * test_ecl_read): the shared server from with-servers.sh (EVENTSD_REDIS_HOST/PORT), a
 * private one started through test/servers.sh for tests that stop or break it, key reads,
 * a group name per test process (Criterion runs tests in parallel processes on one Redis),
 * deadlines. Header-only, static inline (each test is one translation unit). */
#ifndef EVENTSD_TEST_ECL_REDIS_H
#define EVENTSD_TEST_ECL_REDIS_H

#include "redis_conn.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline const char *test_redis_host(void)
{
    const char *h = getenv("EVENTSD_REDIS_HOST");
    return h && *h ? h : "127.0.0.1";
}

static inline int test_redis_port(void)
{
    const char *p = getenv("EVENTSD_REDIS_PORT");
    cr_assert(p && *p, "EVENTSD_REDIS_PORT is not set: run under test/with-servers.sh or "
              "eval \"$(test/servers.sh start redis DIR)\"");
    return atoi(p);
}

static inline redisContext *test_redis_at(int port)
{
    char err[256];
    redisContext *c = redis_conn_open(test_redis_host(), port, NULL, 0, 5000, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

static inline redisContext *test_redis(void)
{
    return test_redis_at(test_redis_port());
}

/* The reply of a command given as a printf-free argv; asserts it is not an error. */
static inline redisReply *test_cmd(redisContext *c, int argc, const char **argv)
{
    char err[256];
    redisReply *r = redis_conn_command(c, argc, argv, NULL, argv[0], err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    return r;
}

/* The integer in key, -1 when it does not exist. */
static inline long long test_get(redisContext *c, const char *key)
{
    const char *argv[] = { "GET", key };
    redisReply *r = test_cmd(c, 2, argv);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v;
}

static inline long long test_getf(redisContext *c, const char *fmt, const char *a,
                                  const char *b, const char *d)
{
    char key[1024];
    snprintf(key, sizeof key, fmt, a, b, d);
    return test_get(c, key);
}

static inline void test_set(redisContext *c, const char *key, const char *value)
{
    const char *argv[] = { "SET", key, value };
    freeReplyObject(test_cmd(c, 3, argv));
}

/* A group name no other test process uses. */
static inline void test_group(char *out, size_t size, const char *name)
{
    snprintf(out, size, "t%ld_%d_%s", (long) time(NULL), (int) getpid(), name);
}

static inline int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (polling every 10 ms) until the wall clock reaches at_ms. A deadline on the wall
 * clock is the condition itself here: interval boundaries are wall-clock instants. */
static inline void test_wait_until_ms(int64_t at_ms)
{
    while (test_now_ms() < at_ms)
        usleep(10000);
}

/* ---- a private redis-server (test/servers.sh) for tests that stop or restart it ---- */

typedef struct {
    char dir[64];
    int  port;
} test_private_redis_t;

static inline void test_servers(const char *action, test_private_redis_t *r)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s/test/servers.sh %s redis '%s' >/dev/null", SRC_DIR, action,
             r->dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static inline void test_private_start(test_private_redis_t *r)
{
    strcpy(r->dir, "/tmp/test_ecl_redis_XXXXXX");
    cr_assert_not_null(mkdtemp(r->dir));
    test_servers("start", r);
    char path[128];
    snprintf(path, sizeof path, "%s/redis/port", r->dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fscanf(f, "%d", &r->port), 1);
    fclose(f);
}

static inline void test_private_stop(test_private_redis_t *r)
{
    test_servers("stop", r);
}

static inline void test_private_destroy(test_private_redis_t *r)
{
    test_servers("stop", r);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    cr_expect_eq(system(cmd), 0);
}

#endif
