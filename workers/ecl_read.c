/* ecl_read: ids by SCAN, values by pipelined GET. See ecl_read.h. */
#include "ecl_read.h"
#include "redis_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ecl_row_t *rows;
    size_t     n, cap;
} rows_t;

void ecl_read_free(ecl_row_t **rows, size_t n_rows)
{
    if (!*rows)
        return;
    for (size_t i = 0; i < n_rows; i++)
        free((*rows)[i].id);
    free(*rows);
    *rows = NULL;
}

static int rows_add(rows_t *r, const char *id, size_t len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        ecl_row_t *rows = realloc(r->rows, cap * sizeof *rows);
        if (!rows)
            return -1;
        r->rows = rows;
        r->cap = cap;
    }
    char *copy = strndup(id, len);
    if (!copy)
        return -1;
    r->rows[r->n++] = (ecl_row_t){ .id = copy, .len = len };
    return 0;
}

static int row_compare(const void *a, const void *b)
{
    const ecl_row_t *x = a, *y = b;
    return ecl_id_compare(x->id, x->len, y->id, y->len);
}

/* Sorts and removes duplicates (an id both declared and found in Redis). */
static void rows_unique(rows_t *r)
{
    if (r->n == 0)
        return;
    qsort(r->rows, r->n, sizeof *r->rows, row_compare);
    size_t kept = 1;
    for (size_t i = 1; i < r->n; i++) {
        if (row_compare(&r->rows[kept - 1], &r->rows[i]) == 0)
            free(r->rows[i].id);
        else
            r->rows[kept++] = r->rows[i];
    }
    r->n = kept;
}

/* Adds the ids of one SCAN page's keys (skipping prefix_len bytes; '@' ids are ECL's own). */
static int add_scanned(rows_t *r, const redisReply *keys, size_t prefix_len)
{
    for (size_t k = 0; k < keys->elements; k++) {
        const redisReply *key = keys->element[k];
        if (key->type != REDIS_REPLY_STRING || (size_t) key->len <= prefix_len ||
            key->str[prefix_len] == '@' || memchr(key->str, '\0', (size_t) key->len))
            continue;
        if (rows_add(r, key->str + prefix_len, (size_t) key->len - prefix_len) < 0)
            return -1;
    }
    return 0;
}

static int scan_ids(redisContext *c, const ecl_group_t *g, int interval, ecl_slot_t slot,
                    rows_t *r, char *err, size_t errlen)
{
    msgpack_sbuffer pattern, prefix;
    msgpack_sbuffer_init(&pattern);
    msgpack_sbuffer_init(&prefix);
    int rc = -1;
    char cursor[32] = "0";
    const char *iv = g->interval_names[interval];
    if (ecl_key_scan_pattern(&pattern, g->name, iv, slot) < 0 ||
        ecl_key_prefix(&prefix, g->name, iv, slot) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    do {
        const char *argv[] = { "SCAN", cursor, "MATCH", pattern.data, "COUNT", "1000" };
        size_t len[] = { 4, strlen(cursor), 5, pattern.size, 5, 4 };
        redisReply *reply = redis_conn_command(c, 6, argv, len, "SCAN", err, errlen);
        if (!reply)
            goto out;
        bool ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                  reply->element[0]->type == REDIS_REPLY_STRING &&
                  reply->element[1]->type == REDIS_REPLY_ARRAY;
        if (ok)
            snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        int added = ok ? add_scanned(r, reply->element[1], prefix.size) : -1;
        freeReplyObject(reply);
        if (added < 0) {
            snprintf(err, errlen, ok ? "out of memory" : "SCAN: unexpected reply");
            goto out;
        }
    } while (strcmp(cursor, "0") != 0);
    rc = 0;
out:
    msgpack_sbuffer_destroy(&pattern);
    msgpack_sbuffer_destroy(&prefix);
    return rc;
}

/* An integer reply or a string holding one; nil is 0. false for anything else. */
static bool reply_count(const redisReply *v, long long *out)
{
    *out = 0;
    if (v->type == REDIS_REPLY_NIL)
        return true;
    if (v->type == REDIS_REPLY_INTEGER)
        return *out = v->integer, true;
    if (v->type != REDIS_REPLY_STRING || v->len == 0)
        return false;
    char *end;
    errno = 0;
    long long n = strtoll(v->str, &end, 10);
    if (errno || *end)
        return false;
    *out = n;
    return true;
}

/* One pipelined GET per row. */
static int fetch_values(redisContext *c, const ecl_group_t *g, int interval, ecl_slot_t slot,
                        rows_t *r, char *err, size_t errlen)
{
    msgpack_sbuffer key;
    msgpack_sbuffer_init(&key);
    int rc = 0;
    for (size_t i = 0; i < r->n && rc == 0; i++) {
        key.size = 0;
        const char *argv[2] = { "GET", NULL };
        size_t len[2] = { 3, 0 };
        if (ecl_key_counter(&key, g->name, g->interval_names[interval], slot, r->rows[i].id,
                            r->rows[i].len) < 0)
            rc = -1;
        argv[1] = key.data;
        len[1] = key.size;
        if (rc == 0 && redisAppendCommandArgv(c, 2, argv, len) != REDIS_OK)
            rc = -1;
    }
    msgpack_sbuffer_destroy(&key);
    if (rc < 0)
        return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < r->n; i++) {
        void *v = NULL;
        if (redisGetReply(c, &v) != REDIS_OK)
            v = NULL;
        if (redis_conn_check(c, v, "GET", err, errlen) < 0) {
            if (v)
                freeReplyObject(v);
            return -1;   /* the connection is left mid-pipeline: callers close it */
        }
        r->rows[i].valid = reply_count(v, &r->rows[i].count);
        freeReplyObject(v);
    }
    return 0;
}

int ecl_read(redisContext *c, const ecl_group_t *g, int interval, ecl_slot_t slot,
             ecl_row_t **rows, size_t *n_rows, char *err, size_t errlen)
{
    rows_t r = { 0 };
    int rc = 0;
    for (int i = 0; i < g->n_declared && rc == 0; i++)
        if (rows_add(&r, g->declared[i], g->declared_len[i]) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    if (rc == 0 && g->auto_declare)
        rc = scan_ids(c, g, interval, slot, &r, err, errlen);
    if (rc == 0) {
        rows_unique(&r);
        rc = fetch_values(c, g, interval, slot, &r, err, errlen);
    }
    if (rc < 0) {
        ecl_read_free(&r.rows, r.n);
        return -1;
    }
    *rows = r.rows;
    *n_rows = r.n;
    return 0;
}
