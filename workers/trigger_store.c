/* trigger_store: see trigger_store.h. */
#include "trigger_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 1

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS streams ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, trigger TEXT NOT NULL, key TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0, reason INTEGER,"
    " first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, first_stamp TEXT, last_stamp TEXT,"
    " events INTEGER NOT NULL DEFAULT 0, counts BLOB,"
    " held_since INTEGER, retry_at INTEGER, due_at INTEGER,"
    " listed INTEGER NOT NULL DEFAULT 0, expected INTEGER NOT NULL DEFAULT 0,"
    " settled INTEGER NOT NULL DEFAULT 0, returned INTEGER NOT NULL DEFAULT 0,"
    " returned_expected INTEGER NOT NULL DEFAULT 0, succeeded INTEGER NOT NULL DEFAULT 0,"
    " failed INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,"
    " jid TEXT, fun TEXT, target BLOB, user TEXT);"
    "CREATE UNIQUE INDEX IF NOT EXISTS streams_key ON streams(trigger, key) WHERE state = 0;"
    "CREATE INDEX IF NOT EXISTS streams_due ON streams(due_at) WHERE due_at IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS streams_age ON streams(first_ms) WHERE state = 0;"
    "CREATE TABLE IF NOT EXISTS members ("
    " stream INTEGER NOT NULL, minion TEXT NOT NULL, flags INTEGER NOT NULL,"
    " prev INTEGER NOT NULL DEFAULT 0, dups INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (stream, minion)) WITHOUT ROWID;";

#define COLUMNS "id, trigger, key, state, reason, first_ms, last_ms, first_stamp, last_stamp, " \
                "events, counts, held_since, retry_at, due_at, listed, expected, settled, " \
                "returned, returned_expected, succeeded, failed, duplicates, jid, fun, "      \
                "target, user"

typedef enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_FIND, S_LOAD, S_CREATE, S_SAVE, S_MEMBER, S_MISSING,
    S_DEL_MEMBERS, S_DEL_STREAM, S_DEFER, S_OLDEST, S_EVICT, S_NEXT_DUE, S_DUE, S_PARK,
    S_COUNT_OPEN, S_RECOVER, S_RESCHEDULE, S_COUNT
} stmt_id_t;

static const char *const SQL[S_COUNT] = {
    [S_BEGIN]    = "BEGIN IMMEDIATE",
    [S_COMMIT]   = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_FIND]     = "SELECT " COLUMNS " FROM streams WHERE trigger = ?1 AND key = ?2 AND state = 0",
    [S_LOAD]     = "SELECT " COLUMNS " FROM streams WHERE id = ?1",
    [S_CREATE]   = "INSERT INTO streams (trigger, key, state, first_ms, last_ms) "
                   "VALUES (?1, ?2, 0, ?3, ?4)",
    [S_SAVE]     = "UPDATE streams SET state = ?2, reason = ?3, first_ms = ?4, last_ms = ?5, "
                   "first_stamp = ?6, last_stamp = ?7, events = ?8, counts = ?9, "
                   "held_since = ?10, retry_at = ?11, due_at = ?12, listed = ?13, "
                   "expected = ?14, settled = ?15, returned = ?16, returned_expected = ?17, "
                   "succeeded = ?18, failed = ?19, duplicates = ?20, jid = ?21, fun = ?22, "
                   "target = ?23, user = ?24 WHERE id = ?1",
    /* prev = flags reads the old value: SQLite evaluates every SET expression on the row as
     * it was, so RETURNING tells the engine exactly what this upsert changed */
    [S_MEMBER]   = "INSERT INTO members (stream, minion, flags, prev, dups) "
                   "VALUES (?1, ?2, ?3, 0, 0) ON CONFLICT (stream, minion) DO UPDATE SET "
                   "prev = flags, "
                   "flags = CASE WHEN (excluded.flags & 2) != 0 AND (flags & 2) != 0 "
                   "THEN flags ELSE flags | excluded.flags END, "
                   "dups = dups + ((excluded.flags & 2) != 0 AND (flags & 2) != 0) "
                   "RETURNING prev, flags",
    [S_MISSING]  = "SELECT minion FROM members WHERE stream = ?1 AND (flags & 3) = 1 "
                   "ORDER BY minion",
    [S_DEL_MEMBERS] = "DELETE FROM members WHERE stream = ?1",
    [S_DEL_STREAM]  = "DELETE FROM streams WHERE id = ?1 AND state = 1",
    [S_DEFER]    = "UPDATE streams SET retry_at = ?2, due_at = ?2 WHERE id = ?1 AND state = 1",
    [S_OLDEST]   = "SELECT id FROM streams WHERE state = 0 ORDER BY first_ms, id LIMIT 1",
    [S_EVICT]    = "UPDATE streams SET state = 1, reason = ?2, due_at = 0, retry_at = NULL "
                   "WHERE id = ?1 AND state = 0",
    [S_NEXT_DUE] = "SELECT due_at FROM streams WHERE due_at IS NOT NULL ORDER BY due_at LIMIT 1",
    [S_DUE]      = "SELECT id FROM streams WHERE due_at <= ?1 ORDER BY due_at, id LIMIT 1",
    [S_PARK]     = "UPDATE streams SET due_at = NULL WHERE id = ?1",
    [S_COUNT_OPEN] = "SELECT count(*) FROM streams WHERE state = 0",
    [S_RECOVER]  = "UPDATE streams SET due_at = 0 WHERE state = 1 AND due_at IS NULL",
    [S_RESCHEDULE] = "UPDATE streams SET due_at = min("
                     "CASE WHEN ?2 THEN first_ms ELSE last_ms END + ?3, "
                     "CASE WHEN held_since IS NULL THEN 9223372036854775807 "
                     "ELSE held_since + ?4 END) WHERE trigger = ?1 AND state = 0",
};

struct trigger_store {
    sqlite3      *db;
    char         *path;
    sqlite3_stmt *stmt[S_COUNT];
    uint64_t      statements;
};

/* ---------------------------------------------------------------- streams */

void trigger_stream_clear(trigger_stream_t *s)
{
    free(s->trigger);
    free(s->key);
    free(s->first_stamp);
    free(s->last_stamp);
    free(s->counts);
    free(s->jid);
    free(s->fun);
    free(s->target);
    free(s->user);
    memset(s, 0, sizeof *s);
}

int trigger_stream_set_target(trigger_stream_t *s, const void *bytes, size_t n)
{
    unsigned char *copy = NULL;
    if (bytes && n && !(copy = malloc(n)))
        return -1;
    if (copy)
        memcpy(copy, bytes, n);
    free(s->target);
    s->target = copy;
    s->target_len = copy ? n : 0;
    return 0;
}

int trigger_stream_set(char **dst, const char *s, size_t n)
{
    char *copy = NULL;
    if (s && !(copy = strndup(s, n)))
        return -1;
    free(*dst);
    *dst = copy;
    return 0;
}

/* ---------------------------------------------------------------- errors and steps */

static int fail(trigger_store_t *self, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s: %s: %s (code %d)", self->path, what,
             sqlite3_errmsg(self->db), sqlite3_extended_errcode(self->db));
    return -1;
}

/* Steps a statement to its end (rows ignored), resets it and clears its bindings: bound
 * text is SQLITE_STATIC, valid only during the call. 0 or -1. */
static int run(trigger_store_t *self, stmt_id_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st = self->stmt[id];
    int rc;
    self->statements++;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        fail(self, SQL[id], err, errlen);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Steps once: 1 (a row, the statement stays positioned on it: call finish after reading),
 * 0 (no row, already finished) or -1. */
static int first_row(trigger_store_t *self, stmt_id_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st = self->stmt[id];
    self->statements++;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc != SQLITE_DONE)
        fail(self, SQL[id], err, errlen);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void finish(trigger_store_t *self, stmt_id_t id)
{
    sqlite3_reset(self->stmt[id]);
    sqlite3_clear_bindings(self->stmt[id]);
}

static void bind_text(sqlite3_stmt *st, int col, const char *s)
{
    if (s)
        sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

static void bind_time(sqlite3_stmt *st, int col, int64_t t)
{
    if (t == TRIGGER_NO_TIME)
        sqlite3_bind_null(st, col);
    else
        sqlite3_bind_int64(st, col, t);
}

/* ---------------------------------------------------------------- open / close */

/* journal_mode=WAL needs the exclusive lock and a busy answer to it skips the busy handler
 * (see sink_sqlite.c), so the switch is retried here up to busy_ms. */
static int set_wal(trigger_store_t *self, int busy_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(self->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    for (int waited = 0; rc == SQLITE_OK; waited += 10) {
        rc = sqlite3_step(st);
        if ((rc & 0xff) != SQLITE_BUSY || waited >= busy_ms)
            break;
        sqlite3_reset(st);
        sqlite3_sleep(10);
        rc = SQLITE_OK;
    }
    const char *mode = rc == SQLITE_ROW ? (const char *) sqlite3_column_text(st, 0) : NULL;
    int ok = mode && strcmp(mode, "wal") == 0;
    if (!ok && rc == SQLITE_ROW)
        snprintf(err, errlen, "sqlite: %s: cannot switch to WAL journal mode (got %s)",
                 self->path, mode ? mode : "nothing");
    else if (!ok)
        fail(self, "PRAGMA journal_mode=WAL", err, errlen);
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

static int user_version(trigger_store_t *self, int *version, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(self->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(self, "PRAGMA user_version", err, errlen);
}

static int create_schema(trigger_store_t *self, char *err, size_t errlen)
{
    int version = 0;
    if (user_version(self, &version, err, errlen) != 0)
        return -1;
    if (version != 0 && version != SCHEMA_VERSION) {
        snprintf(err, errlen, "sqlite: %s: the streams are stored in schema version %d, this "
                 "eventsd knows version %d", self->path, version, SCHEMA_VERSION);
        return -1;
    }
    char sql[sizeof SCHEMA + 64];
    snprintf(sql, sizeof sql, "BEGIN IMMEDIATE;%sPRAGMA user_version=%d;COMMIT;", SCHEMA,
             SCHEMA_VERSION);
    if (sqlite3_exec(self->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        fail(self, "creating the schema", err, errlen);
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int prepare_all(trigger_store_t *self, char *err, size_t errlen)
{
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v3(self->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &self->stmt[i], NULL) != SQLITE_OK)
            return fail(self, SQL[i], err, errlen);
    return 0;
}

trigger_store_t *trigger_store_open(const char *path, int busy_timeout_ms, char *err,
                                    size_t errlen)
{
    trigger_store_t *self = calloc(1, sizeof *self);
    if (!self || !(self->path = strdup(path ? path : ""))) {
        snprintf(err, errlen, "out of memory");
        free(self);
        return NULL;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int busy_ms = busy_timeout_ms > 0 ? busy_timeout_ms : 10000;
    bool ok = false;
    if (sqlite3_open_v2(self->path, &self->db, flags, NULL) != SQLITE_OK)
        snprintf(err, errlen, "sqlite: cannot open %s: %s", self->path,
                 self->db ? sqlite3_errmsg(self->db) : "out of memory");
    else {
        sqlite3_extended_result_codes(self->db, 1);
        sqlite3_busy_timeout(self->db, busy_ms);
        ok = set_wal(self, busy_ms, err, errlen) == 0;
        if (ok && sqlite3_exec(self->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != 0) {
            fail(self, "PRAGMA synchronous=NORMAL", err, errlen);
            ok = false;
        }
        ok = ok && create_schema(self, err, errlen) == 0 && prepare_all(self, err, errlen) == 0;
    }
    if (!ok)
        trigger_store_close(&self);
    return self;
}

void trigger_store_close(trigger_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trigger_store_t *self = *self_p;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(self->stmt[i]);
    sqlite3_close(self->db);
    free(self->path);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- transactions */

int trigger_store_begin(trigger_store_t *self, char *err, size_t errlen)
{
    return run(self, S_BEGIN, err, errlen);
}

int trigger_store_commit(trigger_store_t *self, char *err, size_t errlen)
{
    return run(self, S_COMMIT, err, errlen);
}

void trigger_store_rollback(trigger_store_t *self)
{
    char ignored[8];
    if (!sqlite3_get_autocommit(self->db))
        run(self, S_ROLLBACK, ignored, sizeof ignored);
}

/* ---------------------------------------------------------------- stream rows */

static int column_text(sqlite3_stmt *st, int col, char **out)
{
    const char *s = (const char *) sqlite3_column_text(st, col);
    return trigger_stream_set(out, s, s ? (size_t) sqlite3_column_bytes(st, col) : 0);
}

static int64_t column_time(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? TRIGGER_NO_TIME
                                                       : sqlite3_column_int64(st, col);
}

/* counts: stored little-endian; n_counts < 0 takes the stored length, else the array is cut
 * or zero-padded to it (a trigger whose fire criteria changed). */
static int column_counts(sqlite3_stmt *st, int col, int n_counts, trigger_stream_t *s)
{
    const unsigned char *b = sqlite3_column_blob(st, col);
    int stored = sqlite3_column_bytes(st, col) / 8;
    s->n_counts = n_counts < 0 ? stored : n_counts;
    if (s->n_counts && !(s->counts = calloc((size_t) s->n_counts, sizeof *s->counts)))
        return -1;
    for (int i = 0; i < s->n_counts && i < stored; i++) {
        uint64_t v = 0;
        for (int k = 7; k >= 0; k--)
            v = v << 8 | b[i * 8 + k];
        s->counts[i] = (int64_t) v;
    }
    return 0;
}

static int read_row(sqlite3_stmt *st, int n_counts, trigger_stream_t *s)
{
    memset(s, 0, sizeof *s);
    s->id = sqlite3_column_int64(st, 0);
    s->state = sqlite3_column_int(st, 3);
    s->reason = sqlite3_column_int(st, 4);
    s->first_ms = sqlite3_column_int64(st, 5);
    s->last_ms = sqlite3_column_int64(st, 6);
    s->events = sqlite3_column_int64(st, 9);
    s->held_since = column_time(st, 11);
    s->retry_at = column_time(st, 12);
    s->due_at = column_time(st, 13);
    s->listed = sqlite3_column_int(st, 14) != 0;
    int64_t *n[] = { &s->expected, &s->settled, &s->returned, &s->returned_expected,
                     &s->succeeded, &s->failed, &s->duplicates };
    for (int i = 0; i < 7; i++)
        *n[i] = sqlite3_column_int64(st, 15 + i);
    char **t[] = { &s->trigger, &s->key, &s->first_stamp, &s->last_stamp, &s->jid, &s->fun,
                   &s->user };
    const int tcol[] = { 1, 2, 7, 8, 22, 23, 25 };
    for (int i = 0; i < 7; i++)
        if (column_text(st, tcol[i], t[i]) != 0)
            return -1;
    if (trigger_stream_set_target(s, sqlite3_column_blob(st, 24),
                                  (size_t) sqlite3_column_bytes(st, 24)) != 0)
        return -1;
    return column_counts(st, 10, n_counts, s);
}

static int load_row(trigger_store_t *self, stmt_id_t id, int n_counts, trigger_stream_t *out,
                    char *err, size_t errlen)
{
    int rc = first_row(self, id, err, errlen);
    if (rc != 1)
        return rc;
    if (read_row(self->stmt[id], n_counts, out) != 0) {
        trigger_stream_clear(out);
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    finish(self, id);
    return rc;
}

int trigger_store_find(trigger_store_t *self, const char *trigger, const char *key,
                       int n_counts, trigger_stream_t *out, char *err, size_t errlen)
{
    bind_text(self->stmt[S_FIND], 1, trigger);
    bind_text(self->stmt[S_FIND], 2, key);
    return load_row(self, S_FIND, n_counts, out, err, errlen);
}

int trigger_store_load(trigger_store_t *self, int64_t id, trigger_stream_t *out, char *err,
                       size_t errlen)
{
    sqlite3_bind_int64(self->stmt[S_LOAD], 1, id);
    return load_row(self, S_LOAD, -1, out, err, errlen);
}

int trigger_store_create(trigger_store_t *self, trigger_stream_t *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = self->stmt[S_CREATE];
    bind_text(st, 1, s->trigger);
    bind_text(st, 2, s->key);
    sqlite3_bind_int64(st, 3, s->first_ms);
    sqlite3_bind_int64(st, 4, s->last_ms);
    if (run(self, S_CREATE, err, errlen) != 0)
        return -1;
    s->id = sqlite3_last_insert_rowid(self->db);
    return 0;
}

int trigger_store_save(trigger_store_t *self, const trigger_stream_t *s, char *err,
                       size_t errlen)
{
    sqlite3_stmt *st = self->stmt[S_SAVE];
    unsigned char *blob = NULL;
    if (s->n_counts > 0 && !(blob = malloc((size_t) s->n_counts * 8))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < s->n_counts; i++)
        for (int k = 0; k < 8; k++)
            blob[i * 8 + k] = (unsigned char) ((uint64_t) s->counts[i] >> (8 * k));
    sqlite3_bind_int64(st, 1, s->id);
    sqlite3_bind_int(st, 2, s->state);
    sqlite3_bind_int(st, 3, s->reason);
    sqlite3_bind_int64(st, 4, s->first_ms);
    sqlite3_bind_int64(st, 5, s->last_ms);
    bind_text(st, 6, s->first_stamp);
    bind_text(st, 7, s->last_stamp);
    sqlite3_bind_int64(st, 8, s->events);
    if (blob)
        sqlite3_bind_blob(st, 9, blob, s->n_counts * 8, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 9);
    bind_time(st, 10, s->held_since);
    bind_time(st, 11, s->retry_at);
    bind_time(st, 12, s->due_at);
    sqlite3_bind_int(st, 13, s->listed);
    const int64_t n[] = { s->expected, s->settled, s->returned, s->returned_expected,
                          s->succeeded, s->failed, s->duplicates };
    for (int i = 0; i < 7; i++)
        sqlite3_bind_int64(st, 14 + i, n[i]);
    bind_text(st, 21, s->jid);
    bind_text(st, 22, s->fun);
    if (s->target)
        sqlite3_bind_blob(st, 23, s->target, (int) s->target_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 23);
    bind_text(st, 24, s->user);
    int rc = run(self, S_SAVE, err, errlen);
    free(blob);
    return rc;
}

/* ---------------------------------------------------------------- members */

int trigger_store_member(trigger_store_t *self, int64_t stream, const char *minion, size_t len,
                         int flags, int *prev, int *now, char *err, size_t errlen)
{
    sqlite3_stmt *st = self->stmt[S_MEMBER];
    sqlite3_bind_int64(st, 1, stream);
    sqlite3_bind_text64(st, 2, minion, len, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_int(st, 3, flags);
    int rc = first_row(self, S_MEMBER, err, errlen);
    if (rc == 0) {   /* RETURNING always yields the row */
        snprintf(err, errlen, "sqlite: %s: member upsert returned no row", self->path);
        return -1;
    }
    if (rc < 0)
        return -1;
    *prev = sqlite3_column_int(st, 0);
    *now = sqlite3_column_int(st, 1);
    /* SQLite made the change at the first step; stepping on completes the statement */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        fail(self, "member upsert", err, errlen);
    finish(self, S_MEMBER);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

int trigger_store_missing(trigger_store_t *self, int64_t stream, char ***out, size_t *n,
                          char *err, size_t errlen)
{
    sqlite3_stmt *st = self->stmt[S_MISSING];
    size_t cap = 16;
    char **v = malloc(cap * sizeof *v);
    int rc = SQLITE_NOMEM;
    *n = 0;
    sqlite3_bind_int64(st, 1, stream);
    self->statements++;
    while (v && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        char **grown = *n + 1 < cap ? v : realloc(v, (cap *= 2) * sizeof *v);
        if (!grown || !(grown[*n] = strdup((const char *) sqlite3_column_text(st, 0)))) {
            v = grown ? grown : v;
            rc = SQLITE_NOMEM;
            break;
        }
        v = grown;
        (*n)++;
    }
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_NOMEM)
            snprintf(err, errlen, "out of memory");
        else
            fail(self, SQL[S_MISSING], err, errlen);
        free_list(v, *n);
        *n = 0;
    } else {
        v[*n] = NULL;
        *out = v;
    }
    finish(self, S_MISSING);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---------------------------------------------------------------- due streams */

int trigger_store_delete(trigger_store_t *self, int64_t id, char *err, size_t errlen)
{
    sqlite3_bind_int64(self->stmt[S_DEL_STREAM], 1, id);
    if (run(self, S_DEL_STREAM, err, errlen) != 0)
        return -1;
    if (sqlite3_changes(self->db) == 0)
        return 0;
    sqlite3_bind_int64(self->stmt[S_DEL_MEMBERS], 1, id);
    return run(self, S_DEL_MEMBERS, err, errlen) == 0 ? 1 : -1;
}

int trigger_store_defer(trigger_store_t *self, int64_t id, int64_t retry_at, char *err,
                        size_t errlen)
{
    sqlite3_bind_int64(self->stmt[S_DEFER], 1, id);
    sqlite3_bind_int64(self->stmt[S_DEFER], 2, retry_at);
    if (run(self, S_DEFER, err, errlen) != 0)
        return -1;
    return sqlite3_changes(self->db) > 0 ? 1 : 0;
}

/* A query answering one integer: 1 (*out), 0 (no row) or -1. */
static int one_int(trigger_store_t *self, stmt_id_t id, int64_t *out, char *err,
                   size_t errlen)
{
    int rc = first_row(self, id, err, errlen);
    if (rc == 1) {
        *out = sqlite3_column_int64(self->stmt[id], 0);
        finish(self, id);
    }
    return rc;
}

int trigger_store_oldest_open(trigger_store_t *self, int64_t *id, char *err, size_t errlen)
{
    return one_int(self, S_OLDEST, id, err, errlen);
}

int trigger_store_evict(trigger_store_t *self, int64_t id, int reason, char *err,
                        size_t errlen)
{
    sqlite3_bind_int64(self->stmt[S_EVICT], 1, id);
    sqlite3_bind_int(self->stmt[S_EVICT], 2, reason);
    return run(self, S_EVICT, err, errlen);
}

int trigger_store_next_due(trigger_store_t *self, int64_t *due, char *err, size_t errlen)
{
    return one_int(self, S_NEXT_DUE, due, err, errlen);
}

int trigger_store_due(trigger_store_t *self, int64_t now_ms, int64_t *id, char *err,
                      size_t errlen)
{
    sqlite3_bind_int64(self->stmt[S_DUE], 1, now_ms);
    return one_int(self, S_DUE, id, err, errlen);
}

int trigger_store_park(trigger_store_t *self, int64_t id, char *err, size_t errlen)
{
    sqlite3_bind_int64(self->stmt[S_PARK], 1, id);
    return run(self, S_PARK, err, errlen);
}

/* ---------------------------------------------------------------- open-time upkeep */

int64_t trigger_store_count_open(trigger_store_t *self, char *err, size_t errlen)
{
    int64_t n = 0;
    return one_int(self, S_COUNT_OPEN, &n, err, errlen) < 0 ? -1 : n;
}

int trigger_store_recover(trigger_store_t *self, char *err, size_t errlen)
{
    return run(self, S_RECOVER, err, errlen);
}

int trigger_store_reschedule(trigger_store_t *self, const char *trigger, bool expire_from_first,
                             int64_t expire_ms, int64_t delay_ms, char *err, size_t errlen)
{
    sqlite3_stmt *st = self->stmt[S_RESCHEDULE];
    bind_text(st, 1, trigger);
    sqlite3_bind_int(st, 2, expire_from_first);
    sqlite3_bind_int64(st, 3, expire_ms);
    sqlite3_bind_int64(st, 4, delay_ms);
    return run(self, S_RESCHEDULE, err, errlen);
}

void trigger_store_counters(const trigger_store_t *self, uint64_t *statements,
                            uint64_t *changes)
{
    *statements = self->statements;
    *changes = (uint64_t) sqlite3_total_changes64(self->db);
}
