/* sink_pgsql: writes events into PostgreSQL through a compiled template (libpq).
 *
 * One connection per worker process, opened after fork: PQconnectStartParams + PQconnectPoll,
 * bounded by connect_timeout_ms (host name resolution inside PQconnectStartParams is still a
 * blocking getaddrinfo), with TCP keepalives and application_name=eventsd placed before the
 * user's conninfo so that the conninfo can override them.
 *
 * Schema bootstrap (as the sqlite sink): open() runs schema.sql from the template's directory,
 * when there is one, under an advisory lock (several workers start at once and concurrent
 * CREATE ... IF NOT EXISTS can collide in the catalog), then prepares the template once as the
 * named statement "eventsd_tpl" with parameter types left to the server.
 *
 * Batches: pipeline mode, one round trip: BEGIN, one PQsendQueryPrepared per event, COMMIT,
 * Sync; the connection is non-blocking while sending so that a large batch cannot deadlock
 * against the server's results. Values are bound as text parameters (numbers as their decimal
 * text, NULL as NULL), never pasted into SQL. The first failed result names the row.
 *
 * Errors: connection loss (CONNECTION_BAD, SQLSTATE 08xxx, 57P0x) drops the connection and
 * returns SINK_RETRY: the next write_batch reconnects. 40001/40P01, 53xxx, 55P03, 57014 roll
 * back and return SINK_RETRY. A row failing with 22xxx, 23xxx, 54xxx or P0001 (a trigger's
 * RAISE EXCEPTION) rolls back and returns SINK_REJECT_ROW for that row, as does a text value
 * holding a NUL byte (PostgreSQL text cannot store one). Anything else is SINK_FATAL.
 * The conninfo password never appears in err: it is scrubbed from every message.
 */
#include "sink.h"
#include "template.h"

#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define STMT_NAME "eventsd_tpl"
#define SCHEMA_LOCK_KEY "7301583200418"   /* pg_advisory_lock key for the schema bootstrap */

typedef struct {
    PGconn       *conn;
    template_t   *tpl;
    char         *template_path;
    char         *conninfo;
    char         *password;      /* from the conninfo, to scrub from messages */
    char         *master_id;
    int           connect_timeout_ms;
    int           n_params;
    msgpack_sbuffer scratch;     /* template_values text */
    msgpack_sbuffer params;      /* NUL-terminated parameter texts of the current event */
    tval_t       *values;
    const char  **pvals;
    size_t       *offs;
} pgsql_sink_t;

/* ---------------------------------------------------------------- messages */

/* Replaces every occurrence of the password in err with "***". */
static void scrub(const char *password, char *err, size_t errlen)
{
    size_t pl = password ? strlen(password) : 0;
    if (pl == 0 || !err)
        return;
    char *p, *from = err;
    while ((p = strstr(from, password)) != NULL) {   /* on from the replacement: a password of
                                                        stars must not match again forever */
        size_t tail = strlen(p + pl);
        if (pl >= 3) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + pl, tail + 1);
            from = p + 3;
        } else {   /* a 1-2 byte password: '*' in place, the message keeps its length */
            memset(p, '*', pl);
            from = p + pl;
        }
        (void) errlen;
    }
}

/* One line: newlines and tabs of server messages become spaces, trailing blanks go. */
static void one_line(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
}

static void finish_err(const pgsql_sink_t *self, char *err, size_t errlen)
{
    if (!err || errlen == 0)
        return;
    one_line(err);
    scrub(self ? self->password : NULL, err, errlen);
}

/* "SQLSTATE: primary message (detail)" of a failed result, or the connection's message. */
static void describe(const PGconn *conn, const PGresult *res, char *buf, size_t len)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    if (!msg)
        msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                : PQerrorMessage(conn);
    if (!msg || !*msg)
        msg = "unknown error";
    snprintf(buf, len, "%s%s%s%s%s%s", state ? state : "", state ? ": " : "", msg,
             detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
    one_line(buf);
}

/* ---------------------------------------------------------------- classification */

typedef enum { ERR_RETRY_RECONNECT, ERR_RETRY, ERR_DATA, ERR_FATAL } err_kind_t;

static bool class_is(const char *state, const char *prefix)
{
    return state && strncmp(state, prefix, strlen(prefix)) == 0;
}

static err_kind_t classify(const PGconn *conn, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(conn) == CONNECTION_BAD || class_is(state, "08") || class_is(state, "57P0"))
        return ERR_RETRY_RECONNECT;
    if (class_is(state, "40001") || class_is(state, "40P01") || class_is(state, "53") ||
        class_is(state, "55P03") || class_is(state, "57014"))
        return ERR_RETRY;
    if (class_is(state, "22") || class_is(state, "23") || class_is(state, "54") ||
        class_is(state, "P0001"))
        return ERR_DATA;
    if (!state)   /* a client-side failure on a live connection: do not trust it further */
        return ERR_RETRY_RECONNECT;
    return ERR_FATAL;
}

/* ---------------------------------------------------------------- helpers */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The conninfo's password (may be NULL). -1 when the conninfo does not parse: the message then
 * leaves out libpq's text, which can quote any part of the string, the password included. */
static int parse_conninfo(const char *conninfo, char **password, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        /* A URI can spell any key percent-encoded (pass%77ord) and its errors quote whole
         * tokens or the whole URI: never show libpq's text for one. */
        bool uri = strncmp(conninfo, "postgresql://", 13) == 0 ||
                   strncmp(conninfo, "postgres://", 11) == 0;
        bool quiet = uri || strcasestr(conninfo, "password") != NULL ||
                     strchr(conninfo, '@') != NULL;
        snprintf(err, errlen, "pgsql: conninfo is not a valid libpq connection string or URI%s%s",
                 quiet || !perr ? "" : ": ", quiet || !perr ? "" : perr);
        PQfreemem(perr);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "dbname") == 0 && o->val &&
            (strchr(o->val, '=') || strncmp(o->val, "postgresql://", 13) == 0 ||
             strncmp(o->val, "postgres://", 11) == 0)) {
            /* libpq expands only the outer string: this would be sent as a database name and
             * come back quoted, password and all, in "database ... does not exist". */
            snprintf(err, errlen, "pgsql: conninfo: 'dbname' holds a connection string; libpq "
                     "does not expand a nested one: put its settings in the conninfo itself");
            PQconninfoFree(opts);
            return -1;
        }
    if (password) {
        *password = NULL;
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
                *password = strdup(o->val);
    }
    PQconninfoFree(opts);
    return 0;
}

static int check_settings(const worker_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->template_path && cfg->conninfo)
        return 0;
    snprintf(err, errlen, "worker '%s': the pgsql sink needs 'template' and 'conninfo'",
             cfg->name ? cfg->name : "?");
    return -1;
}

/* ---------------------------------------------------------------- check */

/* Compiles the template for PostgreSQL and parses the conninfo; no server is contacted. */
static int pgsql_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    if (check_settings(cfg, err, errlen) != 0)
        return -1;
    template_t *tpl = template_load(cfg->template_path, SQL_DIALECT_PGSQL, err, errlen);
    if (!tpl)
        return -1;
    template_destroy(&tpl);
    return parse_conninfo(cfg->conninfo, NULL, err, errlen);
}

/* ---------------------------------------------------------------- connection */

static void drop_connection(pgsql_sink_t *self)
{
    PQfinish(self->conn);
    self->conn = NULL;
}

/* NOTICEs (schema.sql's "already exists, skipping" on every start) are not worth stderr. */
static void ignore_notice(void *arg, const char *message)
{
    (void) arg;
    (void) message;
}

/* Non-blocking connect bounded by connect_timeout_ms. 0, or -1 with err. */
static int connect_db(pgsql_sink_t *self, char *err, size_t errlen)
{
    const char *keys[] = { "application_name", "keepalives", "keepalives_idle",
                           "keepalives_interval", "keepalives_count", "dbname",
                           "client_encoding", NULL };
    const char *vals[] = { "eventsd", "1", "30", "10", "3", self->conninfo, "UTF8", NULL };
    int64_t deadline = now_ms() + (self->connect_timeout_ms > 0 ? self->connect_timeout_ms
                                                                : 5000);
    PGconn *conn = PQconnectStartParams(keys, vals, 1);
    if (!conn) {
        snprintf(err, errlen, "pgsql: out of memory");
        return -1;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "pgsql: cannot connect: no answer within %d ms "
                     "(connect_timeout_ms)", self->connect_timeout_ms);
            PQfinish(conn);
            return -1;
        }
        struct pollfd pfd = { .fd = PQsocket(conn),
                              .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
        if (pfd.fd < 0)
            break;
        int r = poll(&pfd, 1, (int) left);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0)
            st = PQconnectPoll(conn);
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "pgsql: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    self->conn = conn;
    return 0;
}

/* Line of a 1-based character position inside sql (UTF-8). */
static int line_of(const char *sql, const char *position)
{
    long pos = position ? strtol(position, NULL, 10) : 0;
    int line = 1;
    for (const unsigned char *p = (const unsigned char *) sql; *p && pos > 1; p++) {
        if ((*p & 0xC0) != 0x80)
            pos--;
        line += *p == '\n';
    }
    return line;
}

/* Result of a failed setup step: reconnectable trouble, or something only the user can fix. */
static sink_result_t setup_error(pgsql_sink_t *self, PGresult *res, const char *what,
                                 const char *file, const char *sql, char *err, size_t errlen)
{
    char msg[768];
    describe(self->conn, res, msg, sizeof msg);
    err_kind_t kind = classify(self->conn, res);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (kind == ERR_RETRY_RECONNECT || kind == ERR_RETRY) {
        snprintf(err, errlen, "pgsql: %s: %s", what, msg);
        PQclear(res);
        drop_connection(self);
        return SINK_RETRY;
    }
    int line = sql ? line_of(sql, PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION)) : 1;
    if (state && strcmp(state, "42P01") == 0)
        snprintf(err, errlen, "%s:%d: pgsql: %s: load sql/pgsql/schema.sql (or put a schema.sql "
                 "beside the template)", file, line, msg);
    else
        snprintf(err, errlen, "%s:%d: pgsql: %s", file, line, msg);
    PQclear(res);
    return SINK_FATAL;
}

static sink_result_t exec_ok(pgsql_sink_t *self, const char *sql, const char *what,
                             const char *file, char *err, size_t errlen)
{
    PGresult *res = PQexec(self->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return SINK_OK;
    }
    return setup_error(self, res, what, file, file ? NULL : sql, err, errlen);
}

/* Runs schema.sql beside the template, if any, under a session advisory lock. */
static sink_result_t load_schema(pgsql_sink_t *self, char *err, size_t errlen)
{
    char *path, *sql;
    int found = template_schema(self->template_path, &path, &sql, err, errlen);
    if (found < 0)
        return SINK_FATAL;
    sink_result_t rc = SINK_OK;
    if (found > 0) {
        rc = exec_ok(self, "SELECT pg_advisory_lock(" SCHEMA_LOCK_KEY ")", "schema lock", NULL,
                     err, errlen);
        if (rc == SINK_OK) {
            PGresult *res = PQexec(self->conn, sql);
            ExecStatusType st = PQresultStatus(res);
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                rc = setup_error(self, res, path, path, sql, err, errlen);
            else
                PQclear(res);
            if (self->conn)
                PQclear(PQexec(self->conn, "SELECT pg_advisory_unlock_all()"));
        }
    }
    free(sql);
    free(path);
    return rc;
}

static sink_result_t prepare_template(pgsql_sink_t *self, char *err, size_t errlen)
{
    const char *sql = template_sql(self->tpl);
    PGresult *res = PQprepare(self->conn, STMT_NAME, sql, self->n_params, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return setup_error(self, res, "prepare", self->template_path, sql, err, errlen);
    PQclear(res);
    res = PQdescribePrepared(self->conn, STMT_NAME);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return setup_error(self, res, "describe", self->template_path, NULL, err, errlen);
    int n = PQnparams(res);
    PQclear(res);
    if (n != self->n_params) {
        snprintf(err, errlen, "%s: PostgreSQL sees %d parameters but the template has %d "
                 "placeholders", self->template_path, n, self->n_params);
        return SINK_FATAL;
    }
    return SINK_OK;
}

/* Connects, bootstraps the schema and prepares the template. SINK_OK, SINK_RETRY (server
 * unreachable or connection lost) or SINK_FATAL (the template or schema is wrong). */
static sink_result_t connect_and_prepare(pgsql_sink_t *self, char *err, size_t errlen)
{
    if (connect_db(self, err, errlen) != 0)
        return SINK_RETRY;
    sink_result_t rc = load_schema(self, err, errlen);
    if (rc == SINK_OK)
        rc = prepare_template(self, err, errlen);
    if (rc != SINK_OK)
        drop_connection(self);
    return rc;
}

/* ---------------------------------------------------------------- open / close */

static void pgsql_close(sink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pgsql_sink_t *self = (pgsql_sink_t *) *self_p;
    drop_connection(self);
    template_destroy(&self->tpl);
    msgpack_sbuffer_destroy(&self->scratch);
    msgpack_sbuffer_destroy(&self->params);
    free(self->values);
    free(self->pvals);
    free(self->offs);
    free(self->template_path);
    if (self->password) {
        explicit_bzero(self->password, strlen(self->password));
        free(self->password);
    }
    if (self->conninfo) {
        explicit_bzero(self->conninfo, strlen(self->conninfo));
        free(self->conninfo);
    }
    free(self->master_id);
    free(self);
    *self_p = NULL;
}

static sink_t *pgsql_open(const worker_config_t *cfg, const char *master_id, char *err,
                          size_t errlen)
{
    if (check_settings(cfg, err, errlen) != 0)
        return NULL;
    pgsql_sink_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sink_t *s = (sink_t *) self;
    msgpack_sbuffer_init(&self->scratch);
    msgpack_sbuffer_init(&self->params);
    self->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    if (parse_conninfo(cfg->conninfo, &self->password, err, errlen) != 0) {
        pgsql_close(&s);
        return NULL;
    }
    self->tpl = template_load(cfg->template_path, SQL_DIALECT_PGSQL, err, errlen);
    if (!self->tpl) {
        pgsql_close(&s);
        return NULL;
    }
    self->n_params = template_n_params(self->tpl);
    size_t np = (size_t) self->n_params + 1;
    self->template_path = strdup(cfg->template_path);
    self->conninfo = strdup(cfg->conninfo);
    self->master_id = master_id ? strdup(master_id) : NULL;
    self->values = calloc(np, sizeof *self->values);
    self->pvals = calloc(np, sizeof *self->pvals);
    self->offs = calloc(np, sizeof *self->offs);
    if (!self->template_path || !self->conninfo || (master_id && !self->master_id) ||
        !self->values || !self->pvals || !self->offs) {
        snprintf(err, errlen, "out of memory");
        pgsql_close(&s);
        return NULL;
    }
    if (connect_and_prepare(self, err, errlen) != SINK_OK) {
        finish_err(self, err, errlen);
        pgsql_close(&s);
        return NULL;
    }
    return s;
}

/* ---------------------------------------------------------------- write_batch */

/* Fills self->pvals for ev: 0; 1 when a text value holds a NUL byte (err set); -1 on OOM. */
static int event_params(pgsql_sink_t *self, const worker_event_t *ev, size_t row, char *err,
                        size_t errlen)
{
    self->scratch.size = 0;
    self->params.size = 0;
    if (template_values(self->tpl, ev, self->master_id, &self->scratch, self->values) != 0) {
        snprintf(err, errlen, "pgsql: row %zu seq=%llu: out of memory computing values", row,
                 (unsigned long long) ev->seq);
        return -1;
    }
    for (int i = 0; i < self->n_params; i++) {
        const tval_t *v = &self->values[i];
        char num[64];
        const char *text = num;
        size_t len = 0;
        self->offs[i] = SIZE_MAX;
        switch (v->kind) {
        case TVAL_NULL:
            continue;
        case TVAL_TEXT:
            if (memchr(v->text, '\0', v->text_len)) {
                snprintf(err, errlen, "pgsql: row %zu seq=%llu: parameter $%d holds a NUL "
                         "byte, which PostgreSQL text cannot store", row,
                         (unsigned long long) ev->seq, i + 1);
                return 1;
            }
            text = v->text;
            len = v->text_len;
            break;
        case TVAL_INT:
            len = (size_t) snprintf(num, sizeof num, "%lld", (long long) v->i);
            break;
        case TVAL_REAL:
            if (isnan(v->r))
                len = (size_t) snprintf(num, sizeof num, "NaN");
            else if (isinf(v->r))
                len = (size_t) snprintf(num, sizeof num, "%sInfinity", v->r < 0 ? "-" : "");
            else
                len = (size_t) snprintf(num, sizeof num, "%.17g", v->r);
            break;
        }
        self->offs[i] = self->params.size;
        if (msgpack_sbuffer_write(&self->params, text, len) != 0 ||
            msgpack_sbuffer_write(&self->params, "", 1) != 0) {
            snprintf(err, errlen, "pgsql: out of memory");
            return -1;
        }
    }
    for (int i = 0; i < self->n_params; i++)
        self->pvals[i] = self->offs[i] == SIZE_MAX ? NULL : self->params.data + self->offs[i];
    return 0;
}

/* Flushes the output buffer, reading input meanwhile so the server never blocks on us. */
static int flush_all(PGconn *conn)
{
    int r;
    while ((r = PQflush(conn)) == 1) {
        struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN | POLLOUT };
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -1;
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(conn))
            return -1;
    }
    return r;
}

/* The next result, waiting for it. */
static PGresult *next_result(PGconn *conn, bool *failed)
{
    while (PQisBusy(conn)) {
        if (PQflush(conn) < 0) {
            *failed = true;
            return NULL;
        }
        struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            *failed = true;
            return NULL;
        }
        if (!PQconsumeInput(conn)) {
            *failed = true;
            return NULL;
        }
    }
    return PQgetResult(conn);
}

static sink_result_t lost(pgsql_sink_t *self, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "pgsql: %s: connection lost: %s", what,
             self->conn ? PQerrorMessage(self->conn) : "not connected");
    drop_connection(self);
    return SINK_RETRY;
}

static sink_result_t pgsql_write_batch(sink_t *sink, worker_event_t *const *events, size_t n,
                                       size_t *bad_index, char *err, size_t errlen)
{
    pgsql_sink_t *self = (pgsql_sink_t *) sink;
    sink_result_t rc = SINK_OK;
    if (n == 0)
        return SINK_OK;
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK) {
        drop_connection(self);
        rc = connect_and_prepare(self, err, errlen);
        if (rc != SINK_OK) {
            finish_err(self, err, errlen);
            return rc;
        }
    }
    PGconn *conn = self->conn;
    if (!PQenterPipelineMode(conn) || PQsetnonblocking(conn, 1) != 0) {
        rc = lost(self, "pipeline", err, errlen);
        finish_err(self, err, errlen);
        return rc;
    }

    /* send: BEGIN, the rows, COMMIT, Sync (the rows stop early at a row we cannot send) */
    size_t sent = 0, client_bad = SIZE_MAX;
    bool send_failed = !PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    char row_err[512] = "";
    for (size_t i = 0; i < n && !send_failed; i++) {
        int pr = event_params(self, events[i], i, row_err, sizeof row_err);
        if (pr != 0) {
            client_bad = i;
            rc = pr > 0 ? SINK_REJECT_ROW : SINK_RETRY;
            break;
        }
        /* libpq buffers and writes in 64 KB pieces without blocking (non-blocking mode); a
         * flush per row would cost one send() and, over TCP, one segment per row */
        if (!PQsendQueryPrepared(conn, STMT_NAME, self->n_params, self->pvals, NULL, NULL, 0))
            send_failed = true;
        else
            sent++;
    }
    if (!send_failed && client_bad == SIZE_MAX &&
        !PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        send_failed = true;
    if (!send_failed && (!PQpipelineSync(conn) || flush_all(conn) < 0))
        send_failed = true;
    if (send_failed) {
        rc = lost(self, "send", err, errlen);
        finish_err(self, err, errlen);
        return rc;
    }

    /* receive: query 0 is BEGIN, 1..sent the rows, sent+1 COMMIT (when sent), then the Sync */
    size_t q = 0, failed_q = SIZE_MAX;
    PGresult *failed_res = NULL;
    bool io_failed = false;
    while (PQstatus(conn) != CONNECTION_BAD && q <= sent + 2) {
        PGresult *res = next_result(conn, &io_failed);
        if (io_failed)
            break;
        if (!res) {   /* end of one query's results */
            q++;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (st == PGRES_FATAL_ERROR && failed_q == SIZE_MAX) {
            failed_q = q;
            failed_res = res;
            continue;
        }
        PQclear(res);
    }
    if (io_failed || PQstatus(conn) == CONNECTION_BAD || q > sent + 2) {
        char why[512] = "";
        if (failed_res)
            describe(conn, failed_res, why, sizeof why);
        PQclear(failed_res);
        snprintf(err, errlen, "pgsql: connection lost: %s",
                 *why ? why : PQerrorMessage(conn));
        drop_connection(self);
        finish_err(self, err, errlen);
        return SINK_RETRY;
    }
    PQsetnonblocking(conn, 0);
    if (!PQexitPipelineMode(conn)) {
        PQclear(failed_res);
        rc = lost(self, "pipeline", err, errlen);
        finish_err(self, err, errlen);
        return rc;
    }

    if (failed_q != SIZE_MAX) {
        char why[512];
        describe(conn, failed_res, why, sizeof why);
        err_kind_t kind = classify(conn, failed_res);
        PQclear(failed_res);
        bool is_row = failed_q >= 1 && failed_q <= sent;
        size_t row = failed_q - 1;
        if (is_row)
            snprintf(err, errlen, "pgsql: row %zu seq=%llu: %s", row,
                     (unsigned long long) events[row]->seq, why);
        else
            snprintf(err, errlen, "pgsql: %s: %s", failed_q == 0 ? "BEGIN" : "COMMIT", why);
        switch (kind) {
        case ERR_RETRY_RECONNECT: rc = SINK_RETRY; break;
        case ERR_RETRY:           rc = SINK_RETRY; break;
        case ERR_DATA:            rc = is_row ? SINK_REJECT_ROW : SINK_FATAL; break;
        case ERR_FATAL:           rc = SINK_FATAL; break;
        }
        if (rc == SINK_REJECT_ROW && bad_index)
            *bad_index = row;
        if (kind == ERR_RETRY_RECONNECT) {
            drop_connection(self);
            finish_err(self, err, errlen);
            return rc;
        }
    } else if (client_bad != SIZE_MAX) {
        snprintf(err, errlen, "%s", row_err);
        if (rc == SINK_REJECT_ROW && bad_index)
            *bad_index = client_bad;
    }

    /* an explicit transaction that did not commit is still open (or aborted): roll it back */
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(conn, "ROLLBACK");
        if (PQresultStatus(res) != PGRES_COMMAND_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) {
            size_t used = strlen(err);
            snprintf(err + used, errlen - used, "; ROLLBACK failed: %s", PQerrorMessage(conn));
            drop_connection(self);
            if (rc == SINK_OK || rc == SINK_REJECT_ROW)
                rc = SINK_RETRY;   /* the batch is not committed: write it again, reconnected */
        }
        PQclear(res);
    }
    finish_err(self, err, errlen);
    return rc;
}

static void pgsql_explain(const worker_config_t *cfg, const char *master_id,
                       const worker_event_t *ev, FILE *out)
{
    template_explain(cfg->template_path, SQL_DIALECT_PGSQL, ev, master_id, out);
}

const sink_ops_t sink_pgsql_ops = {
    .name = "pgsql",
    .check = pgsql_check,
    .open = pgsql_open,
    .write_batch = pgsql_write_batch,
    .close = pgsql_close,
    .explain = pgsql_explain,
};
