/* throttle: de-duplication, min_count, max_count, windows anchored at the first event and
 * reset after the timeframe (injected time), the bounded key table and its eviction and
 * sweeping, unkeyed events, peek, long keys, key template errors; shared mode against the
 * real Redis from test/with-servers.sh (two instances sharing one window, the expiry, a
 * flushed script cache) and the local fallback when Redis is unreachable. */
#include "throttle.h"
#include "redis_conn.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    msgpack_sbuffer buf;
    msgpack_unpacked unpacked;
} event_t;

/* The data map {"id": id} (or {} when id is NULL), unpacked. */
static const msgpack_object *make_data(event_t *ev, const char *id)
{
    msgpack_sbuffer_init(&ev->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ev->buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, id ? 1 : 0);
    if (id) {
        msgpack_pack_str_with_body(&pk, "id", 2);
        msgpack_pack_str_with_body(&pk, id, strlen(id));
    }
    msgpack_unpacked_init(&ev->unpacked);
    cr_assert_eq(msgpack_unpack_next(&ev->unpacked, ev->buf.data, ev->buf.size, NULL),
                 MSGPACK_UNPACK_SUCCESS);
    return &ev->unpacked.data;
}

static void free_event(event_t *ev)
{
    msgpack_unpacked_destroy(&ev->unpacked);
    msgpack_sbuffer_destroy(&ev->buf);
}

static const char TAG[] = "salt/auth";

/* One event with data {"id": id} at now_ms. */
static bool pass_id(throttle_t *t, const char *id, int64_t now_ms)
{
    event_t ev;
    const msgpack_object *data = make_data(&ev, id);
    bool pass = throttle_pass(t, TAG, strlen(TAG), data, "m1", now_ms);
    free_event(&ev);
    return pass;
}

static throttle_t *local_throttle(int timeframe_s, long long min, long long max)
{
    throttle_config_t cfg = { .key = "{data.id}", .timeframe_s = timeframe_s,
                              .min_count = min, .max_count = max, .line = 7 };
    char err[256];
    throttle_t *t = throttle_new(&cfg, NULL, "test.conf", NULL, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    return t;
}

/* ---- local mode: pass/block sequences ----------------------------------------------------- */

typedef struct {
    const char *id;
    int64_t     at_ms;
    bool        pass;
} step_t;

static void run_steps(throttle_t *t, const step_t *steps, int n)
{
    for (int i = 0; i < n; i++) {
        bool got = pass_id(t, steps[i].id, steps[i].at_ms);
        cr_expect_eq(got, steps[i].pass, "step %d (%s at %lld ms): %s, want %s", i, steps[i].id,
                     (long long) steps[i].at_ms, got ? "pass" : "block",
                     steps[i].pass ? "pass" : "block");
    }
}

Test(throttle, defaults_deduplicate)
{
    throttle_t *t = local_throttle(60, 1, 1);
    const step_t steps[] = {
        { "a", 0, true },     { "a", 1000, false }, { "b", 1500, true },
        { "a", 59999, false }, { "b", 2000, false },
        { "a", 60000, true },  /* the window of timeframe ended: a new one, count 1 */
        { "a", 60001, false },
    };
    run_steps(t, steps, (int) (sizeof steps / sizeof steps[0]));
    const throttle_stats_t *s = throttle_stats(t);
    cr_expect_eq(s->passed, 3);
    cr_expect_eq(s->blocked, 4);
    cr_expect_eq(s->unkeyed, 0);
    throttle_destroy(&t);
    cr_expect_null(t);
}

Test(throttle, min_count_passes_from_the_nth)
{
    throttle_t *t = local_throttle(60, 3, 1000);
    const step_t steps[] = {
        { "a", 0, false }, { "a", 1, false }, { "b", 2, false },
        { "a", 3, true },  { "a", 4, true },  { "b", 5, false }, { "b", 6, true },
    };
    run_steps(t, steps, (int) (sizeof steps / sizeof steps[0]));
    throttle_destroy(&t);
}

Test(throttle, max_count_blocks_after_the_nth)
{
    throttle_t *t = local_throttle(10, 1, 3);
    const step_t steps[] = {
        { "a", 0, true }, { "a", 1, true }, { "a", 2, true }, { "a", 3, false },
        { "a", 9999, false }, { "a", 10000, true },
    };
    run_steps(t, steps, (int) (sizeof steps / sizeof steps[0]));
    throttle_destroy(&t);
}

/* max_count 0 (unset) follows min_count: exactly the Nth event of a window passes. */
Test(throttle, unset_max_count_follows_min_count)
{
    throttle_t *t = local_throttle(60, 3, 0);
    const step_t steps[] = {
        { "a", 0, false }, { "a", 1, false }, { "a", 2, true }, { "a", 3, false },
        { "a", 60000, false }, { "a", 60001, false }, { "a", 60002, true },
    };
    run_steps(t, steps, (int) (sizeof steps / sizeof steps[0]));
    throttle_destroy(&t);
}

/* The window starts at the key's first event and does not slide: events inside it do not
 * extend it, and the first event after it counts 1 although the previous events are recent. */
Test(throttle, window_anchored_at_first_event)
{
    throttle_t *t = local_throttle(10, 1, 2);
    const step_t steps[] = {
        { "a", 1000, true },   /* window [1000, 11000) */
        { "a", 9000, true },   /* 2 */
        { "a", 10999, false }, /* 3 */
        { "a", 11000, true },  /* new window [11000, 21000): 1 (a sliding window would hold 3) */
        { "a", 11001, true },  /* 2 */
        { "a", 20999, false }, /* 3 */
        { "a", 40000, true },  /* long after: 1 */
    };
    run_steps(t, steps, (int) (sizeof steps / sizeof steps[0]));
    throttle_destroy(&t);
}

Test(throttle, unkeyed_events_pass_and_are_counted)
{
    throttle_t *t = local_throttle(60, 1, 1);
    cr_expect(pass_id(t, NULL, 0));
    cr_expect(pass_id(t, NULL, 1));   /* not de-duplicated: there is no key to compare */
    cr_expect(throttle_pass(t, TAG, strlen(TAG), NULL, NULL, 2));   /* no data at all */
    const throttle_stats_t *s = throttle_stats(t);
    cr_expect_eq(s->unkeyed, 3);
    cr_expect_eq(s->passed, 3);
    cr_expect_eq(s->keys, 0);
    char key[64];
    uint64_t count;
    bool would;
    cr_expect_eq(throttle_peek(t, TAG, strlen(TAG), NULL, NULL, 3, key, sizeof key, &count,
                               &would), 1);
    cr_expect_str_eq(key, "");
    cr_expect(would);
    throttle_destroy(&t);
}

/* Keys from several fields, tag and master_id; whitespace in values becomes '_'. */
Test(throttle, key_template_over_several_fields)
{
    throttle_config_t cfg = { .key = "{tag}|{data.id}|{master_id}", .timeframe_s = 60,
                              .min_count = 1, .max_count = 1 };
    char err[256];
    throttle_t *t = throttle_new(&cfg, NULL, "test.conf", NULL, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    event_t ev;
    const msgpack_object *data = make_data(&ev, "web 1");
    char key[128];
    uint64_t count;
    bool would;
    cr_expect_eq(throttle_peek(t, TAG, strlen(TAG), data, "m1", 0, key, sizeof key, &count,
                               &would), 0);
    cr_expect_str_eq(key, "salt/auth|web_1|m1");
    cr_expect(throttle_pass(t, TAG, strlen(TAG), data, "m1", 0));
    cr_expect(throttle_pass(t, TAG, strlen(TAG), data, "m2", 0));    /* other master: other key */
    cr_expect_not(throttle_pass(t, TAG, strlen(TAG), data, "m1", 0));
    cr_expect(throttle_pass(t, TAG, strlen(TAG), data, NULL, 0));    /* unkeyed */
    cr_expect_eq(throttle_stats(t)->unkeyed, 1);
    free_event(&ev);
    throttle_destroy(&t);
}

Test(throttle, peek_does_not_count)
{
    throttle_t *t = local_throttle(10, 2, 3);
    event_t ev;
    const msgpack_object *data = make_data(&ev, "a");
    char key[64];
    uint64_t count = 99;
    bool would = true;
    cr_assert_eq(throttle_peek(t, TAG, 9, data, NULL, 0, key, sizeof key, &count, &would), 0);
    cr_expect_str_eq(key, "a");
    cr_expect_eq(count, 0);
    cr_expect_not(would);                        /* the first event is below min_count 2 */
    cr_expect_not(throttle_pass(t, TAG, 9, data, NULL, 0));
    throttle_peek(t, TAG, 9, data, NULL, 1, key, sizeof key, &count, &would);
    cr_expect_eq(count, 1);
    cr_expect(would);
    cr_expect(throttle_pass(t, TAG, 9, data, NULL, 2));
    cr_expect(throttle_pass(t, TAG, 9, data, NULL, 3));
    throttle_peek(t, TAG, 9, data, NULL, 4, key, sizeof key, &count, &would);
    cr_expect_eq(count, 3);
    cr_expect_not(would);                        /* a 4th is above max_count 3 */
    throttle_peek(t, TAG, 9, data, NULL, 10000, key, sizeof key, &count, &would);
    cr_expect_eq(count, 0, "an expired window counts 0");
    cr_expect_eq(throttle_stats(t)->passed + throttle_stats(t)->blocked, 3);
    free_event(&ev);
    throttle_destroy(&t);
}

/* ---- the bounded table -------------------------------------------------------------------- */

Test(throttle, full_table_evicts_the_oldest_live_window)
{
    throttle_t *t = local_throttle(60, 1, 1);
    throttle_set_max_keys(t, 3);
    cr_expect(pass_id(t, "a", 0));
    cr_expect(pass_id(t, "b", 1));
    cr_expect(pass_id(t, "c", 2));
    cr_expect_not(pass_id(t, "a", 3));          /* still known */
    cr_expect(pass_id(t, "d", 4));              /* full: a, the oldest, is evicted */
    const throttle_stats_t *s = throttle_stats(t);
    cr_expect_eq(s->keys, 3);
    cr_expect_eq(s->evicted, 1);
    cr_expect(pass_id(t, "a", 5), "an evicted key starts a new window");
    cr_expect_eq(s->evicted, 2);                /* ... and evicted b */
    cr_expect_not(pass_id(t, "c", 6));
    cr_expect_not(pass_id(t, "d", 7));
    throttle_destroy(&t);
}

/* A key whose window restarted is the newest again: it is not the one evicted. */
Test(throttle, restarted_window_moves_to_the_tail)
{
    throttle_t *t = local_throttle(10, 1, 1);
    throttle_set_max_keys(t, 2);
    cr_expect(pass_id(t, "a", 0));
    cr_expect(pass_id(t, "b", 5000));
    cr_expect(pass_id(t, "a", 10000));          /* a: sweep drops it (expired) then re-adds */
    cr_expect(pass_id(t, "c", 12000));          /* full: b (start 5000) goes, not a */
    cr_expect_not(pass_id(t, "a", 12001));
    cr_expect_eq(throttle_stats(t)->evicted, 1);
    throttle_destroy(&t);
}

Test(throttle, expired_windows_go_before_live_ones)
{
    throttle_t *t = local_throttle(10, 1, 1);
    throttle_set_max_keys(t, 3);
    cr_expect(pass_id(t, "a", 0));
    cr_expect(pass_id(t, "b", 8000));
    cr_expect(pass_id(t, "c", 9000));
    cr_expect(pass_id(t, "d", 10000));          /* a expired: removed, not evicted */
    cr_expect_eq(throttle_stats(t)->evicted, 0);
    cr_expect_eq(throttle_stats(t)->keys, 3);
    cr_expect_not(pass_id(t, "b", 10001));
    cr_expect_not(pass_id(t, "c", 10002));
    throttle_destroy(&t);
}

/* Expired windows are swept a few per call, never all at once. */
Test(throttle, sweep_is_incremental)
{
    throttle_t *t = local_throttle(1, 1, 1);
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "k%d", i);
        cr_assert(pass_id(t, id, i));
    }
    cr_expect_eq(throttle_stats(t)->keys, 100);
    uint64_t before = throttle_stats(t)->keys;
    for (int i = 0; i < 50; i++) {
        pass_id(t, NULL, 5000 + i);             /* unkeyed events still sweep */
        uint64_t now = throttle_stats(t)->keys;
        cr_assert_eq(before - now, 2, "swept %llu in one call",
                     (unsigned long long) (before - now));
        before = now;
    }
    cr_expect_eq(throttle_stats(t)->keys, 0);
    throttle_destroy(&t);
}

Test(throttle, default_bound_holds_many_keys)
{
    throttle_t *t = local_throttle(3600, 1, 1);
    char id[24];
    int n = THROTTLE_MAX_KEYS + 5000;
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "minion-%d", i);
        cr_assert(pass_id(t, id, i / 100));
    }
    const throttle_stats_t *s = throttle_stats(t);
    cr_expect_eq(s->keys, THROTTLE_MAX_KEYS);
    cr_expect_eq(s->evicted, 5000);
    cr_expect_not(pass_id(t, "minion-100000", n));   /* recent keys are all still there */
    cr_expect(pass_id(t, "minion-0", n), "the oldest were evicted");
    throttle_destroy(&t);
}

Test(throttle, set_max_keys_drops_at_once)
{
    throttle_t *t = local_throttle(60, 1, 1);
    cr_expect(pass_id(t, "a", 0));
    cr_expect(pass_id(t, "b", 1));
    cr_expect(pass_id(t, "c", 2));
    throttle_set_max_keys(t, 1);
    cr_expect_eq(throttle_stats(t)->keys, 1);
    cr_expect_eq(throttle_stats(t)->evicted, 2);
    cr_expect_not(pass_id(t, "c", 3));
    throttle_destroy(&t);
}

/* Keys are cut at THROTTLE_KEY_MAX with a hash of the whole key, so long keys that differ
 * only at the end stay distinct. */
Test(throttle, long_keys_are_cut_but_stay_distinct)
{
    throttle_config_t cfg = { .key = "{data.id}{data.id}{data.id}{data.id}{data.id}:{tag}",
                              .timeframe_s = 60, .min_count = 1, .max_count = 1 };
    char err[256];
    throttle_t *t = throttle_new(&cfg, NULL, "test.conf", NULL, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    char id[250];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    event_t ev;
    const msgpack_object *data = make_data(&ev, id);
    char key[THROTTLE_KEY_MAX + 64];
    uint64_t count;
    bool would;
    cr_assert_eq(throttle_peek(t, "t/1", 3, data, NULL, 0, key, sizeof key, &count, &would), 0);
    cr_expect_eq(strlen(key), THROTTLE_KEY_MAX);
    cr_expect_eq(key[THROTTLE_KEY_MAX - 17], '#');
    cr_expect(throttle_pass(t, "t/1", 3, data, NULL, 0));
    cr_expect(throttle_pass(t, "t/2", 3, data, NULL, 0), "differs only in the cut tail");
    cr_expect_not(throttle_pass(t, "t/1", 3, data, NULL, 0));
    free_event(&ev);
    throttle_destroy(&t);
}

Test(throttle, key_template_errors_name_file_and_line)
{
    throttle_config_t cfg = { .key = "{data.id", .timeframe_s = 60, .min_count = 1,
                              .max_count = 1, .line = 12 };
    char err[256] = "";
    cr_expect_null(throttle_new(&cfg, NULL, "eventsd.conf", NULL, err, sizeof err));
    cr_expect(strncmp(err, "eventsd.conf:12: throttle key '{data.id': unclosed", 50) == 0,
              "%s", err);
    cfg.key = "{nope}";
    cr_expect_null(throttle_new(&cfg, NULL, "eventsd.conf", NULL, err, sizeof err));
    cr_expect(strstr(err, "unknown field") != NULL, "%s", err);
    cfg.key = "{data.id}";
    cfg.shared = true;
    cr_expect_null(throttle_new(&cfg, NULL, "eventsd.conf", NULL, err, sizeof err));
    cr_expect_str_eq(err, "eventsd.conf:12: throttle is shared but no redis is configured");
}

/* ---- shared mode -------------------------------------------------------------------------- */

static bool redis_env(redis_config_t *r)
{
    const char *host = getenv("EVENTSD_REDIS_HOST");
    const char *port = getenv("EVENTSD_REDIS_PORT");
    if (!host || !port || !*host || !*port)
        return false;
    *r = (redis_config_t){ .host = (char *) host, .port = atoi(port), .timeout_ms = 1000 };
    return true;
}

#define NEED_REDIS(r)                                                                     \
    do {                                                                                  \
        if (!redis_env(r)) {                                                              \
            cr_skip_test("EVENTSD_REDIS_HOST/EVENTSD_REDIS_PORT not set: run under "      \
                         "test/with-servers.sh to test shared throttles");                \
        }                                                                                 \
    } while (0)

/* A scope no earlier run used, so leftovers of other runs cannot interfere. */
static void unique_scope(char *out, size_t n, const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, n, "test-%s-%d-%lld%09ld", what, (int) getpid(), (long long) ts.tv_sec,
             ts.tv_nsec);
}

static throttle_t *shared_throttle(const redis_config_t *r, const char *scope, int timeframe_s,
                                   long long min, long long max)
{
    throttle_config_t cfg = { .key = "{data.id}", .timeframe_s = timeframe_s,
                              .min_count = min, .max_count = max, .shared = true, .line = 3 };
    char err[256];
    throttle_t *t = throttle_new(&cfg, r, "test.conf", scope, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    return t;
}

static redisContext *admin(const redis_config_t *r)
{
    char err[256];
    redisContext *c = redis_conn_open(r->host, r->port, NULL, 0, 1000, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

Test(throttle_shared, two_instances_share_one_window)
{
    redis_config_t r;
    NEED_REDIS(&r);
    char scope[96];
    unique_scope(scope, sizeof scope, "share");
    throttle_t *a = shared_throttle(&r, scope, 60, 1, 2);
    throttle_t *b = shared_throttle(&r, scope, 60, 1, 2);
    cr_expect(pass_id(a, "m1", 0));
    cr_expect_null(throttle_error(a), "%s", throttle_error(a));
    cr_expect(pass_id(b, "m1", 0), "count 2 <= max 2");
    cr_expect_not(pass_id(a, "m1", 0), "count 3, counted by the other instance too");
    cr_expect_not(pass_id(b, "m1", 0));
    cr_expect(pass_id(b, "m2", 0));
    char key[64];
    uint64_t count;
    bool would;
    cr_expect_eq(throttle_peek(a, TAG, strlen(TAG), NULL, NULL, 0, key, sizeof key, &count,
                               &would), 1);
    event_t ev;
    const msgpack_object *data = make_data(&ev, "m1");
    cr_expect_eq(throttle_peek(a, TAG, strlen(TAG), data, NULL, 0, key, sizeof key, &count,
                               &would), 0);
    cr_expect_eq(count, 4);
    cr_expect_not(would);
    free_event(&ev);
    cr_expect_eq(throttle_stats(a)->keys, 0, "nothing counted locally");
    cr_expect_eq(throttle_stats(a)->redis_errors + throttle_stats(b)->redis_errors, 0);

    /* The window's expiry is set once, on the first event, and the key is where documented. */
    redisContext *c = admin(&r);
    char rkey[160];
    snprintf(rkey, sizeof rkey, "eventsd:throttle:%s:m1", scope);
    redisReply *rep = redisCommand(c, "PTTL %s", rkey);
    cr_assert_not_null(rep);
    cr_expect(rep->type == REDIS_REPLY_INTEGER && rep->integer > 55000 && rep->integer <= 60000,
              "PTTL %lld", (long long) rep->integer);
    freeReplyObject(rep);
    redis_conn_close(&c);
    throttle_destroy(&a);
    throttle_destroy(&b);
}

Test(throttle_shared, window_ends_with_the_key_expiry)
{
    redis_config_t r;
    NEED_REDIS(&r);
    char scope[96];
    unique_scope(scope, sizeof scope, "expiry");
    throttle_t *a = shared_throttle(&r, scope, 1, 1, 1);
    throttle_t *b = shared_throttle(&r, scope, 1, 1, 1);
    cr_expect(pass_id(a, "m1", 0));
    cr_expect_not(pass_id(b, "m1", 0));
    usleep(1200 * 1000);   /* Redis' clock ends shared windows: wait past the 1 s timeframe */
    cr_expect(pass_id(b, "m1", 0), "a new window after the timeframe");
    cr_expect_not(pass_id(a, "m1", 0));
    throttle_destroy(&a);
    throttle_destroy(&b);
}

/* After SCRIPT FLUSH (or a Redis restart) EVALSHA says NOSCRIPT: the script is sent again. */
Test(throttle_shared, flushed_script_cache)
{
    redis_config_t r;
    NEED_REDIS(&r);
    char scope[96];
    unique_scope(scope, sizeof scope, "flush");
    throttle_t *a = shared_throttle(&r, scope, 60, 1, 1);
    cr_expect(pass_id(a, "m1", 0));
    redisContext *c = admin(&r);
    redisReply *rep = redisCommand(c, "SCRIPT FLUSH");
    cr_assert_not_null(rep);
    freeReplyObject(rep);
    redis_conn_close(&c);
    cr_expect_not(pass_id(a, "m1", 0));
    cr_expect(pass_id(a, "m2", 0));
    cr_expect_null(throttle_error(a), "%s", throttle_error(a));
    cr_expect_eq(throttle_stats(a)->redis_errors, 0);
    throttle_destroy(&a);
}

/* A loopback port nobody listens on: bind one, read its number, close it. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    cr_assert(bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *) &sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

Test(throttle_shared, falls_back_to_local_counting_and_retries_rarely)
{
    redis_config_t r = { .host = "127.0.0.1", .port = closed_port(), .timeout_ms = 200 };
    throttle_t *t = shared_throttle(&r, "fallback", 60, 1, 1);
    cr_expect(pass_id(t, "m1", 0), "counted locally: first event");
    const char *e = throttle_error(t);
    cr_assert_not_null(e);
    cr_expect(strstr(e, "redis 127.0.0.1:") && strstr(e, "counting locally"), "%s", e);
    cr_expect_not(pass_id(t, "m1", 10), "counted locally: second event");
    const throttle_stats_t *s = throttle_stats(t);
    cr_expect_eq(s->redis_errors, 1, "no second connect within the retry period");
    cr_expect_eq(s->fallback, 2);
    cr_expect(strstr(throttle_error(t), "next retry in") != NULL, "%s", throttle_error(t));
    cr_expect(pass_id(t, "m2", THROTTLE_RETRY_MIN_MS - 1));
    cr_expect_eq(s->redis_errors, 1);
    cr_expect(pass_id(t, "m3", THROTTLE_RETRY_MIN_MS));
    cr_expect_eq(s->redis_errors, 2, "retried after the period");
    cr_expect(pass_id(t, "m4", THROTTLE_RETRY_MIN_MS + 1));
    cr_expect_eq(s->redis_errors, 2, "the period doubled");
    cr_expect(pass_id(t, "m5", 3 * THROTTLE_RETRY_MIN_MS));
    cr_expect_eq(s->redis_errors, 3);
    cr_expect_eq(s->keys, 5);
    throttle_destroy(&t);
}

/* A stream of events through a working Redis: exact counts, never an error. */
Test(throttle_shared, exact_counts_without_errors)
{
    redis_config_t r;
    NEED_REDIS(&r);
    char scope[96];
    unique_scope(scope, sizeof scope, "ok");
    throttle_t *t = shared_throttle(&r, scope, 60, 1, 1);
    for (int i = 0; i < 100; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%d", i % 10);
        cr_expect_eq(pass_id(t, id, i), i < 10);
        cr_assert_null(throttle_error(t), "%s", throttle_error(t));
    }
    cr_expect_eq(throttle_stats(t)->passed, 10);
    cr_expect_eq(throttle_stats(t)->blocked, 90);
    throttle_destroy(&t);
}

/* A private redis-server on port (no persistence), for the recovery test; its pid. */
static pid_t start_redis(int port)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *) NULL);
        _exit(127);
    }
    return pid;
}

static bool redis_answers(int port)
{
    char err[256];
    redisContext *c = redis_conn_open("127.0.0.1", port, NULL, 0, 200, err, sizeof err);
    bool ok = c != NULL;
    redis_conn_close(&c);
    return ok;
}

/* Redis down at the first event, up later: the first retry after the period reconnects and
 * the counts move to Redis; Redis dying under a connected throttle falls back again. */
Test(throttle_shared, reconnects_when_redis_comes_back)
{
    redis_config_t env;
    NEED_REDIS(&env);   /* runs where with-servers.sh found a redis-server */
    int port = closed_port();
    redis_config_t r = { .host = "127.0.0.1", .port = port, .timeout_ms = 500 };
    throttle_t *t = shared_throttle(&r, "recover", 60, 1, 1);
    const throttle_stats_t *s = throttle_stats(t);
    cr_expect(pass_id(t, "m1", 0), "local count 1");
    cr_expect_not_null(throttle_error(t));
    pid_t pid = start_redis(port);
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) {
        usleep(50 * 1000);
        up = redis_answers(port);
    }
    if (!up) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        cr_assert_fail("the private redis-server on port %d did not start", port);
    }
    cr_expect_not(pass_id(t, "m1", 10), "still within the retry period: local count 2");
    cr_expect_eq(s->redis_errors, 1);
    cr_expect(pass_id(t, "m1", THROTTLE_RETRY_MIN_MS), "reconnected: Redis count 1");
    cr_expect_null(throttle_error(t), "%s", throttle_error(t));
    cr_expect_not(pass_id(t, "m1", THROTTLE_RETRY_MIN_MS + 1), "Redis count 2");
    cr_expect_eq(s->redis_errors, 1);
    cr_expect_eq(s->fallback, 2);

    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    cr_expect(pass_id(t, "m2", THROTTLE_RETRY_MIN_MS + 2), "Redis gone: local count 1");
    cr_expect_not_null(throttle_error(t));
    cr_expect_eq(s->redis_errors, 2);
    cr_expect_not(pass_id(t, "m2", THROTTLE_RETRY_MIN_MS + 3));
    cr_expect_eq(s->redis_errors, 2, "no connect within the retry period");
    throttle_destroy(&t);
}
