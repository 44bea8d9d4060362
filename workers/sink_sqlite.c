/* sink_sqlite: writes events into a SQLite database through a compiled template.
 *
 * One connection per worker process, opened after fork. The database runs in WAL mode with
 * synchronous=NORMAL: a commit is durable against a process crash and the WAL is fsynced at
 * checkpoints, which is what lets several worker processes and readers share one file.
 *
 * Schema bootstrap: open() (and check(), against an in-memory database) runs the file
 * schema.sql found in the template's directory, when there is one, before preparing the
 * template. The shipped sql/sqlite/schema.sql only holds CREATE ... IF NOT EXISTS
 * statements, so this is idempotent and makes a fresh database work out of the box; a
 * user who keeps templates in a directory without schema.sql manages the schema alone.
 *
 * Batches: BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout_ms), so
 * a batch never fails half-way on a lock upgrade; each event is bound and stepped with the
 * one statement prepared at open; COMMIT. Any failure rolls the whole batch back.
 */
#include "sink.h"
#include "template.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    sqlite3      *db;
    sqlite3_stmt *insert, *begin, *commit, *rollback;
    template_t   *tpl;
    char         *master_id;
    msgpack_sbuffer scratch;   /* bound text of the current event (SQLITE_STATIC) */
    tval_t       *values;
} sqlite_sink_t;

/* ---------------------------------------------------------------- helpers */

/* "<dir of template>/schema.sql", or NULL when out of memory. */
/* Runs schema.sql beside the template if it exists. 0, or -1 with err. */
static int load_schema(sqlite3 *db, const char *template_path, char *err, size_t errlen)
{
    char *path, *sql, *msg = NULL;
    int found = template_schema(template_path, &path, &sql, err, errlen);
    int rc = found < 0 ? -1 : 0;
    if (found > 0 && sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: sqlite: %s", path, msg ? msg : sqlite3_errmsg(db));
        rc = -1;
    }
    sqlite3_free(msg);
    free(sql);
    free(path);
    return rc;
}

/* Line of the SQLite error offset inside sql (1 when unknown). */
static int error_line(sqlite3 *db, const char *sql)
{
    int off = sqlite3_error_offset(db), line = 1;
    for (int i = 0; off > 0 && i < off && sql[i]; i++)
        line += sql[i] == '\n';
    return line;
}

/* Prepares the template. `tolerate_missing_table` (check without the real database): a
 * table absent from the in-memory copy may exist in the real one. */
static int prepare_template(sqlite3 *db, const template_t *tpl, const char *template_path,
                            const char *database, bool tolerate_missing_table,
                            sqlite3_stmt **stmt, char *err, size_t errlen)
{
    const char *sql = template_sql(tpl);
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) != SQLITE_OK) {
        const char *msg = sqlite3_errmsg(db);
        int line = error_line(db, sql);
        if (strncmp(msg, "no such table: ", 15) == 0) {
            if (tolerate_missing_table)
                return 0;
            snprintf(err, errlen, "%s:%d: table %s missing in %s: load sql/sqlite/schema.sql "
                     "(or put a schema.sql beside the template)", template_path, line,
                     msg + 15, database);
        } else {
            snprintf(err, errlen, "%s:%d: sqlite: %s", template_path, line, msg);
        }
        return -1;
    }
    if (*stmt && sqlite3_bind_parameter_count(*stmt) != template_n_params(tpl)) {
        snprintf(err, errlen, "%s: sqlite sees %d parameters but the template has %d "
                 "placeholders: remove ?NNN, @name or $name parameters", template_path,
                 sqlite3_bind_parameter_count(*stmt), template_n_params(tpl));
        sqlite3_finalize(*stmt);
        *stmt = NULL;
        return -1;
    }
    return 0;
}

static int prepare_plain(sqlite3 *db, const char *sql, sqlite3_stmt **stmt, char *err,
                         size_t errlen)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "sqlite: %s: %s", sql, sqlite3_errmsg(db));
    return -1;
}

/* Steps a statement without results; returns SQLITE_DONE or the error code. */
static int run(sqlite3_stmt *stmt)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        ;
    sqlite3_reset(stmt);
    return rc;
}

/* ---------------------------------------------------------------- check */

static sqlite3 *open_memory(char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL)
        != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open an in-memory database: %s",
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static int check_settings(const worker_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->template_path && cfg->database)
        return 0;
    snprintf(err, errlen, "worker '%s': the sqlite sink needs 'template' and 'database'",
             cfg->name ? cfg->name : "?");
    return -1;
}

/* Compiles the template and prepares it against an in-memory database holding only the
 * schema.sql beside the template: catches SQL syntax errors without touching the real DB. */
static int sqlite_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    if (check_settings(cfg, err, errlen) != 0)
        return -1;
    template_t *tpl = template_load(cfg->template_path, SQL_DIALECT_SQLITE, err, errlen);
    if (!tpl)
        return -1;
    sqlite3_stmt *stmt = NULL;
    sqlite3 *db = open_memory(err, errlen);
    int rc = db && load_schema(db, cfg->template_path, err, errlen) == 0 &&
             prepare_template(db, tpl, cfg->template_path, cfg->database, true, &stmt, err,
                              errlen) == 0 ? 0 : -1;
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    template_destroy(&tpl);
    return rc;
}

/* ---------------------------------------------------------------- open / close */

static void sqlite_close(sink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sqlite_sink_t *self = (sqlite_sink_t *) *self_p;
    sqlite3_finalize(self->insert);
    sqlite3_finalize(self->begin);
    sqlite3_finalize(self->commit);
    sqlite3_finalize(self->rollback);
    sqlite3_close(self->db);
    template_destroy(&self->tpl);
    msgpack_sbuffer_destroy(&self->scratch);
    free(self->values);
    free(self->master_id);
    free(self);
    *self_p = NULL;
}

/* journal_mode=WAL answers with the mode in effect: anything else is worth a message.
 * Switching a fresh database to WAL needs the exclusive lock; when several workers open it at
 * once, SQLite answers SQLITE_BUSY at once, without the busy handler, to the connections it
 * would otherwise deadlock (each holds SHARED, all want EXCLUSIVE). So a busy switch is
 * retried here, up to busy_ms: the winner switches, the others then find WAL in place. */
static int set_pragmas(sqlite3 *db, const char *database, int busy_ms, char *err,
                       size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL);
    for (int waited = 0; rc == SQLITE_OK; waited += 10) {
        rc = sqlite3_step(stmt);
        if ((rc & 0xff) != SQLITE_BUSY || waited >= busy_ms)
            break;
        sqlite3_reset(stmt);
        sqlite3_sleep(10);
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *) sqlite3_column_text(stmt, 0);
        if (!mode || strcmp(mode, "wal") != 0) {
            snprintf(err, errlen, "sqlite: %s: cannot switch to WAL journal mode (got %s)",
                     database, mode ? mode : "nothing");
            sqlite3_finalize(stmt);
            return -1;
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s: %s", database, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static int open_db(sqlite_sink_t *self, const worker_config_t *cfg, char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(cfg->database, &self->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", cfg->database,
                 self->db ? sqlite3_errmsg(self->db) : "out of memory");
        return -1;
    }
    sqlite3_extended_result_codes(self->db, 1);
    /* before anything that may need a lock: other workers open the same file */
    int busy_ms = cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 10000;
    sqlite3_busy_timeout(self->db, busy_ms);
    return set_pragmas(self->db, cfg->database, busy_ms, err, errlen);
}

static sink_t *sqlite_open(const worker_config_t *cfg, const char *master_id, char *err,
                           size_t errlen)
{
    if (check_settings(cfg, err, errlen) != 0)
        return NULL;
    sqlite_sink_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    msgpack_sbuffer_init(&self->scratch);
    self->tpl = template_load(cfg->template_path, SQL_DIALECT_SQLITE, err, errlen);
    self->master_id = master_id ? strdup(master_id) : NULL;
    bool ok = self->tpl && (!master_id || self->master_id) &&
              (self->values = calloc((size_t) template_n_params(self->tpl) + 1,
                                     sizeof *self->values)) != NULL;
    if (self->tpl && !ok)
        snprintf(err, errlen, "out of memory");
    ok = ok && open_db(self, cfg, err, errlen) == 0 &&
         load_schema(self->db, cfg->template_path, err, errlen) == 0 &&
         prepare_template(self->db, self->tpl, cfg->template_path, cfg->database, false,
                          &self->insert, err, errlen) == 0 &&
         prepare_plain(self->db, "BEGIN IMMEDIATE", &self->begin, err, errlen) == 0 &&
         prepare_plain(self->db, "COMMIT", &self->commit, err, errlen) == 0 &&
         prepare_plain(self->db, "ROLLBACK", &self->rollback, err, errlen) == 0;
    if (!ok) {
        sink_t *s = (sink_t *) self;
        sqlite_close(&s);
        return NULL;
    }
    return (sink_t *) self;
}

/* ---------------------------------------------------------------- write_batch */

static sink_result_t classify(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
        return SINK_RETRY;
    case SQLITE_CONSTRAINT:   /* one the template's OR IGNORE / ON CONFLICT does not cover */
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
        return SINK_REJECT_ROW;
    default:
        return SINK_FATAL;
    }
}

static int bind_value(sqlite3_stmt *stmt, int col, const tval_t *v)
{
    switch (v->kind) {
    case TVAL_TEXT:
        /* scratch outlives the step; bindings are cleared before scratch is reused */
        return sqlite3_bind_text64(stmt, col, v->text, v->text_len, SQLITE_STATIC,
                                   SQLITE_UTF8);
    case TVAL_INT:  return sqlite3_bind_int64(stmt, col, v->i);
    case TVAL_REAL: return sqlite3_bind_double(stmt, col, v->r);
    case TVAL_NULL: break;
    }
    return sqlite3_bind_null(stmt, col);
}

/* Binds and steps one event. SQLITE_DONE, or the error with its message in err. */
static int insert_one(sqlite_sink_t *self, const worker_event_t *ev, size_t row, char *err,
                      size_t errlen)
{
    int rc = SQLITE_DONE, n = template_n_params(self->tpl);
    self->scratch.size = 0;
    if (template_values(self->tpl, ev, self->master_id, &self->scratch, self->values) != 0) {
        snprintf(err, errlen, "sqlite: seq=%llu: out of memory computing values",
                 (unsigned long long) ev->seq);
        return SQLITE_NOMEM;
    }
    for (int i = 0; i < n && rc == SQLITE_DONE; i++)
        if ((rc = bind_value(self->insert, i + 1, &self->values[i])) == SQLITE_OK)
            rc = SQLITE_DONE;
    if (rc == SQLITE_DONE)
        while ((rc = sqlite3_step(self->insert)) == SQLITE_ROW)
            ;   /* INSERT ... RETURNING: rows are not needed */
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "sqlite: row %zu seq=%llu: %s (code %d)", row,
                 (unsigned long long) ev->seq, sqlite3_errmsg(self->db), rc);
    sqlite3_reset(self->insert);
    sqlite3_clear_bindings(self->insert);
    return rc;
}

/* Rolls back whatever is open; FATAL when the transaction cannot be closed. */
static sink_result_t abort_batch(sqlite_sink_t *self, sink_result_t res, char *err,
                                 size_t errlen)
{
    if (!sqlite3_get_autocommit(self->db) && run(self->rollback) != SQLITE_DONE &&
        !sqlite3_get_autocommit(self->db)) {
        size_t used = strlen(err);
        snprintf(err + used, errlen - used, "; ROLLBACK failed: %s", sqlite3_errmsg(self->db));
        return SINK_FATAL;
    }
    return res;
}

static sink_result_t step_error(sqlite_sink_t *self, int rc, const char *what, char *err,
                                size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s: %s (code %d)", what, sqlite3_errmsg(self->db), rc);
    sink_result_t res = classify(rc);
    /* a deferred constraint failing at COMMIT names no row */
    return abort_batch(self, res == SINK_REJECT_ROW ? SINK_FATAL : res, err, errlen);
}

static sink_result_t sqlite_write_batch(sink_t *sink, worker_event_t *const *events, size_t n,
                                        size_t *bad_index, char *err, size_t errlen)
{
    sqlite_sink_t *self = (sqlite_sink_t *) sink;
    if (n == 0)
        return SINK_OK;
    int rc = run(self->begin);
    if (rc != SQLITE_DONE)
        return step_error(self, rc, "BEGIN IMMEDIATE", err, errlen);
    for (size_t i = 0; i < n; i++) {
        rc = insert_one(self, events[i], i, err, errlen);
        if (rc == SQLITE_DONE)
            continue;
        /* The statement prepared fine, so a generic error while stepping one row comes from
         * that row's data (json() on malformed text, a user function): reject the row rather
         * than let one event restart the worker forever. */
        sink_result_t res = (rc & 0xff) == SQLITE_ERROR ? SINK_REJECT_ROW : classify(rc);
        if (res == SINK_REJECT_ROW && bad_index)
            *bad_index = i;
        return abort_batch(self, res, err, errlen);
    }
    rc = run(self->commit);
    if (rc != SQLITE_DONE)
        return step_error(self, rc, "COMMIT", err, errlen);
    return SINK_OK;
}

static void sqlite_explain(const worker_config_t *cfg, const char *master_id,
                       const worker_event_t *ev, FILE *out)
{
    template_explain(cfg->template_path, SQL_DIALECT_SQLITE, ev, master_id, out);
}

const sink_ops_t sink_sqlite_ops = {
    .name = "sqlite",
    .check = sqlite_check,
    .open = sqlite_open,
    .write_batch = sqlite_write_batch,
    .close = sqlite_close,
    .explain = sqlite_explain,
};
