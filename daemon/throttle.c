/* throttle: per-key event windows, in a local table or shared through Redis. See throttle.h. */
#include "throttle.h"
#include "name_template.h"
#include "redis_conn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SWEEP_PER_CALL 2     /* expired windows removed per call: constant work per event */
#define MIN_BUCKETS    64

/* INCR, and start the window's expiry only on its first event, atomically: a crash between
 * two separate commands would leave a key that never expires (a window that never ends). */
static const char INCR_SCRIPT[] =
    "local c = redis.call('INCR', KEYS[1]) "
    "if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "return c";

typedef struct entry entry_t;
struct entry {
    entry_t  *chain;          /* next in the same bucket */
    entry_t  *older, *newer;  /* the list ordered by window start */
    uint64_t  hash;
    int64_t   start_ms;
    uint64_t  count;
    size_t    len;
    char      key[];
};

typedef struct {
    redisContext *ctx;        /* NULL: not connected */
    char         *host;
    char         *password;
    int           port, db, timeout_ms;
    char         *prefix;     /* "eventsd:throttle:<scope>:" */
    char          sha[48];    /* of INCR_SCRIPT, from SCRIPT LOAD */
    int64_t       retry_at_ms;
    int           backoff_ms;
    char          last_err[256];
} link_t;

struct throttle {
    name_template_t *key;
    int64_t          timeframe_ms;
    uint64_t         min_count, max_count;
    bool             shared;
    entry_t        **buckets;
    size_t           n_buckets;
    size_t           max_keys;
    entry_t         *oldest, *newest;
    uint64_t         seed;
    msgpack_sbuffer  keybuf;   /* the current event's key */
    msgpack_sbuffer  rkey;     /* prefix + key, for Redis */
    link_t           redis;
    throttle_stats_t stats;
    char             error[512];
    bool             has_error;
};

/* ---- hashing ------------------------------------------------------------------------------ */

/* FNV-1a with a per-process random basis: keys come from event fields, which a minion
 * controls, so a fixed hash would let it aim every key at one bucket. */
static uint64_t hash_bytes(uint64_t seed, const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char) p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t) sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 20) ^ (uint64_t) (uintptr_t) &s;
    }
    return s;
}

/* ---- the local table ---------------------------------------------------------------------- */

static bool expired(const throttle_t *t, const entry_t *e, int64_t now_ms)
{
    return now_ms - e->start_ms >= t->timeframe_ms;
}

static entry_t **bucket_of(const throttle_t *t, uint64_t hash)
{
    return &t->buckets[hash & (t->n_buckets - 1)];
}

static entry_t *table_find(const throttle_t *t, const char *key, size_t len, uint64_t hash)
{
    for (entry_t *e = *bucket_of(t, hash); e; e = e->chain)
        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static void list_unlink(throttle_t *t, entry_t *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        t->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        t->newest = e->older;
    e->older = e->newer = NULL;
}

static void list_append(throttle_t *t, entry_t *e)
{
    e->older = t->newest;
    e->newer = NULL;
    if (t->newest)
        t->newest->newer = e;
    else
        t->oldest = e;
    t->newest = e;
}

static void table_remove(throttle_t *t, entry_t *e)
{
    for (entry_t **pp = bucket_of(t, e->hash); *pp; pp = &(*pp)->chain)
        if (*pp == e) {
            *pp = e->chain;
            break;
        }
    list_unlink(t, e);
    free(e);
    t->stats.keys--;
}

/* Drops the oldest window (the list head); one that is still live counts as evicted. */
static void drop_oldest(throttle_t *t, int64_t now_ms)
{
    if (!expired(t, t->oldest, now_ms))
        t->stats.evicted++;
    table_remove(t, t->oldest);
}

static void sweep(throttle_t *t, int64_t now_ms)
{
    for (int i = 0; i < SWEEP_PER_CALL && t->oldest && expired(t, t->oldest, now_ms); i++)
        table_remove(t, t->oldest);
}

/* Doubles the bucket array up to the power of two that holds max_keys at load factor 1.
 * A failed allocation keeps the old array: longer chains, still correct. */
static void table_maybe_grow(throttle_t *t)
{
    if (t->stats.keys <= t->n_buckets || t->n_buckets >= t->max_keys)
        return;
    size_t n = t->n_buckets * 2;
    entry_t **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < t->n_buckets; i++)
        for (entry_t *e = t->buckets[i], *next; e; e = next) {
            next = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = n;
}

static entry_t *table_insert(throttle_t *t, const char *key, size_t len, uint64_t hash,
                             int64_t now_ms)
{
    while (t->stats.keys >= t->max_keys && t->oldest)
        drop_oldest(t, now_ms);
    entry_t *e = malloc(sizeof *e + len);
    if (!e)
        return NULL;
    *e = (entry_t){ .hash = hash, .start_ms = now_ms, .len = len };
    memcpy(e->key, key, len);
    entry_t **b = bucket_of(t, hash);
    e->chain = *b;
    *b = e;
    list_append(t, e);
    t->stats.keys++;
    table_maybe_grow(t);
    return e;
}

/* Counts the event in the local table; returns its count, 0 when out of memory (the caller
 * lets it pass). A key whose window ended starts a new one and moves to the list's tail,
 * which keeps the list ordered by window start. */
static uint64_t local_count(throttle_t *t, const char *key, size_t len, int64_t now_ms)
{
    uint64_t hash = hash_bytes(t->seed, key, len);
    entry_t *e = table_find(t, key, len, hash);
    if (e && expired(t, e, now_ms)) {
        e->start_ms = now_ms;
        e->count = 0;
        list_unlink(t, e);
        list_append(t, e);
    }
    if (!e && !(e = table_insert(t, key, len, hash, now_ms)))
        return 0;
    if (e->count < UINT64_MAX)
        e->count++;
    return e->count;
}

static uint64_t local_peek(const throttle_t *t, const char *key, size_t len, int64_t now_ms)
{
    const entry_t *e = table_find(t, key, len, hash_bytes(t->seed, key, len));
    return e && !expired(t, e, now_ms) ? e->count : 0;
}

/* ---- keys --------------------------------------------------------------------------------- */

/* Expands the key into t->keybuf. Returns 0, 1 (a field is missing) or -1 (out of memory). */
static int build_key(throttle_t *t, const char *tag, size_t tag_len,
                     const msgpack_object *data, const char *master_id)
{
    t->keybuf.size = 0;
    int rc = name_template_expand(t->key, tag, tag_len, data, master_id, NAME_KEY, &t->keybuf);
    if (rc != 0 || t->keybuf.size <= THROTTLE_KEY_MAX)
        return rc;
    /* Cut, but keep distinct keys distinct: the tail becomes a hash of the whole key. */
    char tail[18];
    snprintf(tail, sizeof tail, "#%016" PRIx64, hash_bytes(0, t->keybuf.data, t->keybuf.size));
    memcpy(t->keybuf.data + THROTTLE_KEY_MAX - 17, tail, 17);
    t->keybuf.size = THROTTLE_KEY_MAX;
    return 0;
}

/* ---- Redis -------------------------------------------------------------------------------- */

static void set_error(throttle_t *t, const char *reason)
{
    snprintf(t->error, sizeof t->error, "%s; counting locally", reason);
    t->has_error = true;
}

/* A Redis operation failed: remember why, and if the connection is gone, schedule the next
 * connect attempt (doubling the wait) so a dead Redis costs one attempt per period. */
static void link_failed(throttle_t *t, int64_t now_ms, const char *reason)
{
    link_t *l = &t->redis;
    t->stats.redis_errors++;
    snprintf(l->last_err, sizeof l->last_err, "%s", reason);
    set_error(t, reason);
    if (redis_conn_usable(l->ctx))
        return;
    redis_conn_close(&l->ctx);
    l->retry_at_ms = now_ms + l->backoff_ms;
    l->backoff_ms = l->backoff_ms * 2 > THROTTLE_RETRY_MAX_MS ? THROTTLE_RETRY_MAX_MS
                                                              : l->backoff_ms * 2;
}

static int load_script(throttle_t *t, char *err, size_t errlen)
{
    link_t *l = &t->redis;
    const char *argv[] = { "SCRIPT", "LOAD", INCR_SCRIPT };
    redisReply *r = redis_conn_command(l->ctx, 3, argv, NULL, "SCRIPT LOAD", err, errlen);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING && r->len < sizeof l->sha)
        snprintf(l->sha, sizeof l->sha, "%s", r->str);
    else {
        snprintf(err, errlen, "redis %s:%d: SCRIPT LOAD: unexpected reply", l->host, l->port);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Makes sure there is a connection; -1 (error set) while Redis is down or backing off. */
static int link_ready(throttle_t *t, int64_t now_ms)
{
    link_t *l = &t->redis;
    if (l->ctx)
        return 0;
    if (now_ms < l->retry_at_ms) {
        snprintf(t->error, sizeof t->error, "%s; counting locally, next retry in %" PRId64
                 " ms", l->last_err, l->retry_at_ms - now_ms);
        t->has_error = true;
        return -1;
    }
    char err[256];
    l->ctx = redis_conn_open(l->host, l->port, l->password, l->db, l->timeout_ms, err,
                             sizeof err);
    if (l->ctx && load_script(t, err, sizeof err) == 0) {
        l->backoff_ms = THROTTLE_RETRY_MIN_MS;
        return 0;
    }
    redis_conn_close(&l->ctx);
    link_failed(t, now_ms, err);
    return -1;
}

/* The Redis key of t->keybuf in t->rkey; -1 when out of memory. */
static int redis_key(throttle_t *t)
{
    t->rkey.size = 0;
    if (msgpack_sbuffer_write(&t->rkey, t->redis.prefix, strlen(t->redis.prefix)) < 0 ||
        msgpack_sbuffer_write(&t->rkey, t->keybuf.data, t->keybuf.size) < 0)
        return -1;
    return 0;
}

/* EVALSHA, or EVAL when Redis lost the script (restart, SCRIPT FLUSH). */
static redisReply *run_incr(throttle_t *t, const char *ttl)
{
    link_t *l = &t->redis;
    const char *argv[] = { "EVALSHA", l->sha, "1", t->rkey.data, ttl };
    size_t lens[] = { 7, strlen(l->sha), 1, t->rkey.size, strlen(ttl) };
    redisReply *r = redisCommandArgv(l->ctx, 5, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = INCR_SCRIPT;
        lens[0] = 4;
        lens[1] = strlen(INCR_SCRIPT);
        r = redisCommandArgv(l->ctx, 5, argv, lens);
    }
    return r;
}

/* Counts the event in Redis: 0 with *count, or -1 (error set, the caller counts locally). */
static int shared_count(throttle_t *t, int64_t now_ms, uint64_t *count)
{
    if (link_ready(t, now_ms) < 0)
        return -1;
    if (redis_key(t) < 0) {
        set_error(t, "out of memory for the redis key");
        return -1;
    }
    char ttl[24], err[256];
    snprintf(ttl, sizeof ttl, "%" PRId64, t->timeframe_ms);
    redisReply *r = run_incr(t, ttl);
    int rc = redis_conn_check(t->redis.ctx, r, "EVALSHA throttle", err, sizeof err);
    if (rc == 0 && (r->type != REDIS_REPLY_INTEGER || r->integer < 1)) {
        snprintf(err, sizeof err, "redis %s:%d: EVALSHA throttle: unexpected reply",
                 t->redis.host, t->redis.port);
        rc = -1;
    }
    if (rc == 0)
        *count = (uint64_t) r->integer;
    else
        link_failed(t, now_ms, err);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* The key's count in Redis without counting (GET; a missing key is 0). */
static int shared_peek(throttle_t *t, int64_t now_ms, uint64_t *count)
{
    if (link_ready(t, now_ms) < 0)
        return -1;
    if (redis_key(t) < 0) {
        set_error(t, "out of memory for the redis key");
        return -1;
    }
    char err[256];
    const char *argv[] = { "GET", t->rkey.data };
    size_t lens[] = { 3, t->rkey.size };
    redisReply *r = redis_conn_command(t->redis.ctx, 2, argv, lens, "GET", err, sizeof err);
    if (!r) {
        link_failed(t, now_ms, err);
        return -1;
    }
    *count = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return 0;
}

/* ---- public ------------------------------------------------------------------------------- */

static int link_init(link_t *l, const redis_config_t *redis, const char *scope, int line)
{
    char prefix[512];
    if (scope)
        snprintf(prefix, sizeof prefix, "eventsd:throttle:%s:", scope);
    else
        snprintf(prefix, sizeof prefix, "eventsd:throttle:line%d:", line);
    l->prefix = strdup(prefix);
    l->host = strdup(redis->host ? redis->host : "127.0.0.1");
    l->password = redis->password ? strdup(redis->password) : NULL;
    l->port = redis->port ? redis->port : 6379;
    l->db = redis->db;
    l->timeout_ms = redis->timeout_ms > 0 && redis->timeout_ms < THROTTLE_REDIS_TIMEOUT_MAX_MS
                        ? redis->timeout_ms : THROTTLE_REDIS_TIMEOUT_MAX_MS;
    l->backoff_ms = THROTTLE_RETRY_MIN_MS;
    return l->prefix && l->host && (l->password || !redis->password) ? 0 : -1;
}

throttle_t *throttle_new(const throttle_config_t *cfg, const redis_config_t *redis,
                         const char *file, const char *scope, char *err, size_t errlen)
{
    file = file ? file : "?";
    if (cfg->shared && !redis) {
        snprintf(err, errlen, "%s:%d: throttle is shared but no redis is configured", file,
                 cfg->line);
        return NULL;
    }
    throttle_t *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char msg[256];
    t->key = name_template_compile(cfg->key ? cfg->key : "", msg, sizeof msg);
    if (!t->key) {
        snprintf(err, errlen, "%s:%d: throttle key '%s': %s", file, cfg->line,
                 cfg->key ? cfg->key : "", msg);
        throttle_destroy(&t);
        return NULL;
    }
    t->timeframe_ms = (int64_t) (cfg->timeframe_s > 0 ? cfg->timeframe_s : 60) * 1000;
    t->min_count = cfg->min_count > 0 ? (uint64_t) cfg->min_count : 1;
    /* An unset max_count follows min_count (as eventsd.conf(5) documents): min_count = 5
     * alone lets exactly the 5th event of a window through. */
    t->max_count = cfg->max_count > 0 ? (uint64_t) cfg->max_count : t->min_count;
    t->shared = cfg->shared;
    t->max_keys = THROTTLE_MAX_KEYS;
    t->n_buckets = MIN_BUCKETS;
    t->buckets = calloc(t->n_buckets, sizeof *t->buckets);
    t->seed = random_seed();
    msgpack_sbuffer_init(&t->keybuf);
    msgpack_sbuffer_init(&t->rkey);
    if (!t->buckets || (t->shared && link_init(&t->redis, redis, scope, cfg->line) < 0)) {
        snprintf(err, errlen, "out of memory");
        throttle_destroy(&t);
        return NULL;
    }
    return t;
}

void throttle_destroy(throttle_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    throttle_t *t = *self_p;
    while (t->oldest)
        table_remove(t, t->oldest);
    free(t->buckets);
    name_template_destroy(&t->key);
    msgpack_sbuffer_destroy(&t->keybuf);
    msgpack_sbuffer_destroy(&t->rkey);
    redis_conn_close(&t->redis.ctx);
    free(t->redis.host);
    free(t->redis.password);
    free(t->redis.prefix);
    free(t);
    *self_p = NULL;
}

bool throttle_pass(throttle_t *self, const char *tag, size_t tag_len,
                   const msgpack_object *data, const char *master_id, int64_t now_ms)
{
    self->has_error = false;
    sweep(self, now_ms);
    int rc = build_key(self, tag, tag_len, data, master_id);
    if (rc != 0) {
        self->stats.unkeyed += rc > 0;
        self->stats.passed++;
        return true;
    }
    uint64_t count = 0;
    if (!self->shared || shared_count(self, now_ms, &count) < 0) {
        self->stats.fallback += self->shared;
        count = local_count(self, self->keybuf.data, self->keybuf.size, now_ms);
    }
    /* count 0: the local table had no memory for the key; let the event through. */
    bool pass = count == 0 || (count >= self->min_count && count <= self->max_count);
    if (pass)
        self->stats.passed++;
    else
        self->stats.blocked++;
    return pass;
}

int throttle_peek(throttle_t *self, const char *tag, size_t tag_len,
                  const msgpack_object *data, const char *master_id, int64_t now_ms,
                  char *key, size_t keylen, uint64_t *count, bool *would_pass)
{
    self->has_error = false;
    *count = 0;
    *would_pass = true;
    if (keylen)
        key[0] = '\0';
    int rc = build_key(self, tag, tag_len, data, master_id);
    if (rc != 0)
        return rc;
    if (keylen)
        snprintf(key, keylen, "%.*s", (int) self->keybuf.size, self->keybuf.data);
    if (!self->shared || shared_peek(self, now_ms, count) < 0)
        *count = local_peek(self, self->keybuf.data, self->keybuf.size, now_ms);
    uint64_t next = *count < UINT64_MAX ? *count + 1 : UINT64_MAX;
    *would_pass = next >= self->min_count && next <= self->max_count;
    return 0;
}

const char *throttle_error(const throttle_t *self)
{
    return self->has_error ? self->error : NULL;
}

const throttle_stats_t *throttle_stats(const throttle_t *self)
{
    return &self->stats;
}

void throttle_set_max_keys(throttle_t *self, size_t n)
{
    self->max_keys = n < 1 ? 1 : n;
    /* "Now" for liveness is the newest window's start: no later time is known here. */
    int64_t now_ms = self->newest ? self->newest->start_ms : 0;
    while (self->stats.keys > self->max_keys)
        drop_oldest(self, now_ms);
}
