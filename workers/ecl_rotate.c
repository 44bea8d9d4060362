/* ecl_rotate: the rotation script and its arguments. See ecl_rotate.h. */
#include "ecl_rotate.h"
#include "ecl_key.h"
#include "redis_conn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS[1] <group>:<interval>:cur:@ts
 * ARGV[1] boundary (Unix s), ARGV[2] interval length (s), ARGV[3] "<group>:<interval>:",
 * ARGV[4] / ARGV[5] SCAN patterns of the cur / last keys ("" when the group declares its
 * ids only: nothing else to find), ARGV[6..] declared ids.
 * redis.replicate_commands: Redis 3.2 and 4 refuse writes after SCAN in a script without it
 * (5 and later replicate effects anyway; pcall because 7.x may deprecate it). */
const char ecl_rotate_lua[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local b = tonumber(ARGV[1])\n"
    "local ts = tonumber(redis.call('GET', KEYS[1]) or '')\n"
    "if ts and ts >= b then return 0 end\n"
    "local stale = ts ~= nil and ts < b - tonumber(ARGV[2])\n"
    "local p = ARGV[3]\n"
    "local declared = {}\n"
    "for i = 6, #ARGV do declared[ARGV[i]] = true end\n"
    "local function ids(pattern, from)\n"
    "  local found, cursor = {}, '0'\n"
    "  if pattern == '' then return found end\n"
    "  repeat\n"
    "    local r = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)\n"
    "    cursor = r[1]\n"
    "    for _, k in ipairs(r[2]) do\n"
    "      local id = string.sub(k, from)\n"
    "      if id ~= '' and string.sub(id, 1, 1) ~= '@' then found[id] = true end\n"
    "    end\n"
    "  until cursor == '0'\n"
    "  return found\n"
    "end\n"
    "local cur, last = ids(ARGV[4], #p + 5), ids(ARGV[5], #p + 6)\n"
    "for id in pairs(last) do\n"
    "  if not declared[id] and (stale or not cur[id]) then redis.call('DEL', p .. 'last:' .. id) end\n"
    "end\n"
    "for id in pairs(cur) do\n"
    "  if not declared[id] then\n"
    "    if stale then redis.call('DEL', p .. 'cur:' .. id)\n"
    "    else redis.call('RENAME', p .. 'cur:' .. id, p .. 'last:' .. id) end\n"
    "  end\n"
    "end\n"
    "for i = 6, #ARGV do\n"
    "  local c, l = p .. 'cur:' .. ARGV[i], p .. 'last:' .. ARGV[i]\n"
    "  if stale then redis.call('SET', l, 0)\n"
    "  else redis.call('SETNX', c, 0); redis.call('RENAME', c, l) end\n"
    "  redis.call('SET', c, 0)\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "return 1\n";

/* The fixed arguments, each in its own buffer so argv can point into them. */
typedef struct {
    msgpack_sbuffer ts_key, prefix, cur_pattern, last_pattern;
    char boundary[24], length[16];
} rotate_args_t;

static void args_free(rotate_args_t *a)
{
    msgpack_sbuffer_destroy(&a->ts_key);
    msgpack_sbuffer_destroy(&a->prefix);
    msgpack_sbuffer_destroy(&a->cur_pattern);
    msgpack_sbuffer_destroy(&a->last_pattern);
}

static int args_build(rotate_args_t *a, const ecl_group_t *g, int i, int64_t boundary)
{
    memset(a, 0, sizeof *a);
    const char *iv = g->interval_names[i];
    snprintf(a->boundary, sizeof a->boundary, "%" PRId64, boundary);
    snprintf(a->length, sizeof a->length, "%d", g->intervals_s[i]);
    if (ecl_key_ts(&a->ts_key, g->name, iv) < 0 ||
        msgpack_sbuffer_write(&a->prefix, g->name, strlen(g->name)) != 0 ||
        msgpack_sbuffer_write(&a->prefix, ":", 1) != 0 ||
        msgpack_sbuffer_write(&a->prefix, iv, strlen(iv)) != 0 ||
        msgpack_sbuffer_write(&a->prefix, ":", 1) != 0)
        return -1;
    if (g->auto_declare && (ecl_key_scan_pattern(&a->cur_pattern, g->name, iv, ECL_CUR) < 0 ||
                            ecl_key_scan_pattern(&a->last_pattern, g->name, iv, ECL_LAST) < 0))
        return -1;
    return 0;
}

int ecl_rotate_append(redisContext *c, const ecl_group_t *g, int i, int64_t boundary)
{
    rotate_args_t a;
    int argc = 9 + g->n_declared, rc = -1;
    const char **argv = calloc((size_t) argc, sizeof *argv);
    size_t *len = calloc((size_t) argc, sizeof *len);
    if (argv && len && args_build(&a, g, i, boundary) == 0) {
        const char *fixed[] = { "EVAL", ecl_rotate_lua, "1", a.ts_key.data, a.boundary,
                                a.length, a.prefix.data, a.cur_pattern.data,
                                a.last_pattern.data };
        size_t fixed_len[] = { 4, strlen(ecl_rotate_lua), 1, a.ts_key.size, strlen(a.boundary),
                               strlen(a.length), a.prefix.size, a.cur_pattern.size,
                               a.last_pattern.size };
        for (int k = 0; k < 9; k++) {
            argv[k] = fixed[k] ? fixed[k] : "";   /* an empty sbuffer has no data */
            len[k] = fixed_len[k];
        }
        for (int k = 0; k < g->n_declared; k++) {
            argv[9 + k] = g->declared[k];
            len[9 + k] = g->declared_len[k];
        }
        rc = redisAppendCommandArgv(c, argc, argv, len) == REDIS_OK ? 0 : -1;
    }
    if (argv && len)
        args_free(&a);
    free(argv);
    free(len);
    return rc;
}

int ecl_rotate_run(redisContext *c, const ecl_group_t *g, int i, int64_t boundary, char *err,
                   size_t errlen)
{
    if (ecl_rotate_append(c, g, i, boundary) < 0) {
        snprintf(err, errlen, "rotate: out of memory");
        return -1;
    }
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK)
        r = NULL;
    redisReply *reply = r;
    int rc = redis_conn_check(c, reply, "rotate", err, errlen);
    if (rc == 0 && reply->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "rotate: unexpected reply type %d", reply->type);
        rc = -1;
    }
    if (rc == 0)
        rc = reply->integer ? 1 : 0;
    if (reply)
        freeReplyObject(reply);
    return rc;
}
