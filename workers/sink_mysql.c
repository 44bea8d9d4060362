/* sink_mysql: writes events into MySQL / MariaDB through a compiled template (MariaDB
 * Connector/C, libmariadb).
 *
 * One connection per worker process, opened after fork, in utf8mb4, autocommit off and
 * sql_mode STRICT_ALL_TABLES so a value that does not fit is an error (the row is rejected and
 * dead-lettered), never a silent truncation. The template is prepared once per connection
 * (server-side prepared statement, values always bound, binary-safe).
 *
 * Schema bootstrap: like the sqlite sink, open() runs schema.sql from the template's directory
 * when there is one (split on ';' at end of line, one mysql_real_query each). The shipped
 * sql/mysql/schema.sql only holds CREATE TABLE IF NOT EXISTS.
 *
 * Batches: START TRANSACTION, the rows, COMMIT. When the server supports MariaDB's bulk
 * protocol (COM_STMT_BULK_EXECUTE, MariaDB 10.2+) the rows are sent with array binding
 * (STMT_ATTR_ARRAY_SIZE), in chunks that stay well under max_allowed_packet: one round trip
 * per chunk instead of one per row. Array binding cannot say which row failed, so any error
 * other than a lost connection / deadlock rolls back and replays the batch row by row, which
 * names the row (SINK_REJECT_ROW) or gives the exact error. The same row-by-row path is used
 * when the server has no bulk support (MySQL), when the statement kind is not bulk-capable
 * (ER_UNSUPPORTED_PS: the sink stops trying bulk), or when a column's values do not share one
 * type in the batch (e.g. `:x|int|default('0')` gives an integer or a text).
 *
 * Errors: a lost / killed connection or server shutdown closes the connection (the server
 * rolls back) and returns SINK_RETRY; the next write_batch reconnects and re-prepares.
 * Deadlock / lock wait timeout: ROLLBACK, SINK_RETRY on the same connection. A data error on
 * a row (too long, wrong value, NOT NULL, duplicate key not covered by ON DUPLICATE KEY,
 * CHECK constraint, out of range, ...): ROLLBACK, SINK_REJECT_ROW with its index. Anything
 * else: SINK_FATAL, naming the template. The password is never put in a message.
 */
#include "sink.h"
#include "template.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A bulk chunk's bound bytes stay under min(this, max_allowed_packet / 2). */
#define BULK_CHUNK_BYTES (4u << 20)
/* Protocol bytes per parameter and per row on top of the values, generously. */
#define ROW_OVERHEAD(np) (64u + 16u * (size_t) (np))

typedef enum { ERR_RETRY_CONN, ERR_RETRY, ERR_REJECT, ERR_FATAL } err_class_t;

typedef struct {
    MYSQL        *db;
    MYSQL_STMT   *stmt;
    template_t   *tpl;
    int           n_params;
    char         *template_path, *master_id;
    char         *host, *socket, *user, *password, *database;
    int           port, connect_timeout_ms;
    bool          bulk;          /* try array binding on this connection */
    bool          bulk_refused;  /* the server refused bulk for this statement: never again */
    unsigned long max_packet;    /* the server's max_allowed_packet */
    msgpack_sbuffer scratch;     /* bound text: one event (per row) or the batch (bulk) */
    /* n_params * cap each: */
    tval_t       *values;
    void        **ptrs;
    unsigned long *lens;
    char         *ind;
    long long    *ints;
    double       *reals;
    size_t        cap;           /* rows the arrays above hold */
    MYSQL_BIND   *binds;         /* n_params */
} mysql_sink_t;

static my_bool TRUE_FLAG = 1;

/* ---------------------------------------------------------------- helpers */

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static err_class_t classify(unsigned int code)
{
    switch (code) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_COMMANDS_OUT_OF_SYNC:
    case ER_CONNECTION_KILLED:          /* 1927 */
    case ER_SERVER_SHUTDOWN:            /* 1053 */
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
    case ER_NEW_ABORTING_CONNECTION:
    case ER_CON_COUNT_ERROR:            /* too many connections */
    case ER_TOO_MANY_USER_CONNECTIONS:
        return ERR_RETRY_CONN;
    case ER_LOCK_DEADLOCK:              /* 1213 */
    case ER_LOCK_WAIT_TIMEOUT:          /* 1205 */
    case ER_QUERY_INTERRUPTED:          /* KILL QUERY */
    case ER_STATEMENT_TIMEOUT:
    case ER_RECORD_FILE_FULL:           /* table full */
    case ER_DISK_FULL:
    case ER_OUT_OF_RESOURCES:
    case ER_OUTOFMEMORY:
    case ER_ERROR_DURING_COMMIT:
    case ER_LOCK_TABLE_FULL:
        return ERR_RETRY;
    case ER_DATA_TOO_LONG:              /* 1406 */
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: /* 1366 */
    case ER_TRUNCATED_WRONG_VALUE:      /* 1292 */
    case ER_BAD_NULL_ERROR:             /* 1048 */
    case ER_DUP_ENTRY:                  /* 1062 */
    case ER_CONSTRAINT_FAILED:          /* 4025 CHECK */
    case ER_WARN_DATA_OUT_OF_RANGE:     /* 1264 */
    case WARN_DATA_TRUNCATED:           /* 1265 */
    case ER_WARN_NULL_TO_NOTNULL:       /* 1263 */
    case ER_NO_DEFAULT_FOR_FIELD:       /* 1364 */
    case ER_DIVISION_BY_ZERO:           /* 1365 */
    case ER_ILLEGAL_VALUE_FOR_TYPE:     /* 1367 */
    case ER_INVALID_CHARACTER_STRING:   /* 1300 */
    case ER_DATA_OUT_OF_RANGE:          /* 1690 */
    case ER_NO_REFERENCED_ROW_2:        /* 1452 foreign key */
    case ER_SIGNAL_EXCEPTION:           /* 1644 a trigger's SIGNAL */
        return ERR_REJECT;
    default:
        return ERR_FATAL;
    }
}

/* ---------------------------------------------------------------- check */

static int check_settings(const worker_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->template_path && cfg->database && cfg->user)
        return 0;
    snprintf(err, errlen, "worker '%s': the mysql sink needs 'template', 'database' and 'user'",
             cfg->name ? cfg->name : "?");
    return -1;
}

/* Compiles the template for the MySQL dialect; no server is contacted. */
static int mysql_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    if (check_settings(cfg, err, errlen) != 0)
        return -1;
    template_t *tpl = template_load(cfg->template_path, SQL_DIALECT_MYSQL, err, errlen);
    if (!tpl)
        return -1;
    template_destroy(&tpl);
    return 0;
}

/* ---------------------------------------------------------------- connection */

static void disconnect(mysql_sink_t *self)
{
    if (self->stmt)
        mysql_stmt_close(self->stmt);
    self->stmt = NULL;
    if (self->db)
        mysql_close(self->db);
    self->db = NULL;
}

/* "user@host:port/db" or "user@socket/db": for messages (never the password). */
static void where(const mysql_sink_t *self, char *buf, size_t size)
{
    if (self->socket)
        snprintf(buf, size, "%s@%s/%s", self->user, self->socket, self->database);
    else
        snprintf(buf, size, "%s@%s:%d/%s", self->user, self->host, self->port,
                 self->database);
}

/* Result of a failed call on the connection: the class of its error, message in err. */
static sink_result_t conn_error(mysql_sink_t *self, const char *what, char *err, size_t errlen)
{
    unsigned int code = mysql_errno(self->db);
    char w[512];
    where(self, w, sizeof w);
    snprintf(err, errlen, "mysql: %s: %s: %s (error %u)", w, what, mysql_error(self->db), code);
    err_class_t c = classify(code);
    if (c == ERR_RETRY_CONN || c == ERR_RETRY) {
        disconnect(self);
        return SINK_RETRY;
    }
    disconnect(self);
    return SINK_FATAL;
}

static int query(MYSQL *db, const char *sql)
{
    return mysql_real_query(db, sql, strlen(sql));
}

/* Runs schema.sql beside the template, if any. */
/* Runs every statement of sql; 0, or -1 with the error left on db. */
static int run_statements(MYSQL *db, const char *sql)
{
    if (mysql_real_query(db, sql, strlen(sql)) != 0)
        return -1;
    int rc;
    do {
        mysql_free_result(mysql_store_result(db));
    } while ((rc = mysql_next_result(db)) == 0);
    return rc > 0 ? -1 : 0;   /* -1 from mysql_next_result: no more results */
}

static sink_result_t load_schema(mysql_sink_t *self, char *err, size_t errlen)
{
    char *path, *sql;
    int found = template_schema(self->template_path, &path, &sql, err, errlen);
    if (found < 0)
        return SINK_FATAL;
    sink_result_t res = SINK_OK;
    /* The server splits the statements (multi-statement mode, on only for this query). */
    if (found > 0 && (mysql_set_server_option(self->db, MYSQL_OPTION_MULTI_STATEMENTS_ON) != 0 ||
                      run_statements(self->db, sql) != 0)) {
        unsigned int code = mysql_errno(self->db);
        snprintf(err, errlen, "%s: mysql: %s (error %u)", path, mysql_error(self->db), code);
        res = classify(code) == ERR_RETRY_CONN || classify(code) == ERR_RETRY ? SINK_RETRY
                                                                               : SINK_FATAL;
        disconnect(self);
    } else if (found > 0 &&
               mysql_set_server_option(self->db, MYSQL_OPTION_MULTI_STATEMENTS_OFF) != 0) {
        snprintf(err, errlen, "%s: mysql: %s", path, mysql_error(self->db));
        res = SINK_RETRY;
        disconnect(self);
    }
    free(sql);
    free(path);
    return res;
}

static sink_result_t prepare(mysql_sink_t *self, char *err, size_t errlen)
{
    const char *sql = template_sql(self->tpl);
    self->stmt = mysql_stmt_init(self->db);
    if (!self->stmt)
        return conn_error(self, "mysql_stmt_init", err, errlen);
    if (mysql_stmt_prepare(self->stmt, sql, strlen(sql)) != 0) {
        unsigned int code = mysql_stmt_errno(self->stmt);
        err_class_t c = classify(code);
        if (code == ER_NO_SUCH_TABLE)
            snprintf(err, errlen, "%s: mysql: %s (error %u): load sql/mysql/schema.sql (or put "
                     "a schema.sql beside the template)", self->template_path,
                     mysql_stmt_error(self->stmt), code);
        else
            snprintf(err, errlen, "%s: mysql: %s (error %u)", self->template_path,
                     mysql_stmt_error(self->stmt), code);
        disconnect(self);
        return c == ERR_RETRY_CONN || c == ERR_RETRY ? SINK_RETRY : SINK_FATAL;
    }
    if (mysql_stmt_param_count(self->stmt) != (unsigned long) self->n_params) {
        snprintf(err, errlen, "%s: mysql sees %lu parameters but the template has %d "
                 "placeholders", self->template_path, mysql_stmt_param_count(self->stmt),
                 self->n_params);
        disconnect(self);
        return SINK_FATAL;
    }
    /* array binding needs the server's COM_STMT_BULK_EXECUTE (MariaDB 10.2+) */
    unsigned long ext = 0;
    if (mariadb_get_infov(self->db, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &ext) != 0)
        ext = 0;
    self->bulk = !self->bulk_refused && self->n_params > 0 &&
                 (ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)) != 0;
    return SINK_OK;
}

static sink_result_t fetch_max_packet(mysql_sink_t *self, char *err, size_t errlen)
{
    if (query(self->db, "SELECT @@max_allowed_packet") != 0)
        return conn_error(self, "SELECT @@max_allowed_packet", err, errlen);
    MYSQL_RES *r = mysql_store_result(self->db);
    if (!r)
        return conn_error(self, "SELECT @@max_allowed_packet", err, errlen);
    MYSQL_ROW row = mysql_fetch_row(r);
    self->max_packet = row && row[0] ? strtoul(row[0], NULL, 10) : 0;
    if (self->max_packet < 1024)
        self->max_packet = 4u << 20;
    mysql_free_result(r);
    return SINK_OK;
}

/* Connects, sets the session up, optionally loads the schema, prepares the template. */
static sink_result_t connect_db(mysql_sink_t *self, bool with_schema, char *err, size_t errlen)
{
    self->db = mysql_init(NULL);
    if (!self->db) {
        snprintf(err, errlen, "mysql: out of memory");
        return SINK_FATAL;
    }
    unsigned int timeout = (unsigned int) ((self->connect_timeout_ms + 999) / 1000);
    if (timeout == 0)
        timeout = 1;
    my_bool no = 0;
    unsigned long max_packet = 1024ul << 20;   /* the server's limit is the one that counts */
    mysql_options(self->db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(self->db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(self->db, MYSQL_OPT_RECONNECT, &no);  /* a silent reconnect loses the tx */
    mysql_optionsv(self->db, MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
    if (!mysql_real_connect(self->db, self->socket ? NULL : self->host, self->user,
                            self->password, self->database, self->socket ? 0u
                            : (unsigned int) self->port, self->socket, 0)) {
        unsigned int code = mysql_errno(self->db);
        char w[512];
        where(self, w, sizeof w);
        snprintf(err, errlen, "mysql: cannot connect to %s: %s (error %u)", w,
                 mysql_error(self->db), code);
        disconnect(self);
        /* the server is down or busy: retry; bad credentials / unknown db: retry too, since
         * an operator may fix them without restarting us, but say so in the message */
        return SINK_RETRY;
    }
    if (query(self->db, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
        != 0)
        return conn_error(self, "SET sql_mode", err, errlen);
    sink_result_t res = fetch_max_packet(self, err, errlen);
    if (res == SINK_OK && with_schema)
        res = load_schema(self, err, errlen);
    if (res != SINK_OK)
        return res;
    if (mysql_autocommit(self->db, 0) != 0)
        return conn_error(self, "autocommit off", err, errlen);
    return prepare(self, err, errlen);
}

/* ---------------------------------------------------------------- open / close */

static void mysql_sink_close(sink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mysql_sink_t *self = (mysql_sink_t *) *self_p;
    disconnect(self);
    template_destroy(&self->tpl);
    msgpack_sbuffer_destroy(&self->scratch);
    free(self->values);
    free(self->ptrs);
    free(self->lens);
    free(self->ind);
    free(self->ints);
    free(self->reals);
    free(self->binds);
    free(self->template_path);
    free(self->master_id);
    free(self->host);
    free(self->socket);
    free(self->user);
    free_secret(self->password);
    free(self->database);
    free(self);
    *self_p = NULL;
}

/* Grows the per-row arrays to hold `rows` rows. */
static int reserve(mysql_sink_t *self, size_t rows)
{
    if (rows <= self->cap)
        return 0;
    size_t np = (size_t) (self->n_params > 0 ? self->n_params : 1), cap = self->cap ? self->cap : 16;
    while (cap < rows)
        cap *= 2;
    tval_t *v = realloc(self->values, cap * np * sizeof *v);
    if (v)
        self->values = v;
    void **p = realloc(self->ptrs, cap * np * sizeof *p);
    if (p)
        self->ptrs = p;
    unsigned long *l = realloc(self->lens, cap * np * sizeof *l);
    if (l)
        self->lens = l;
    char *in = realloc(self->ind, cap * np);
    if (in)
        self->ind = in;
    long long *ii = realloc(self->ints, cap * np * sizeof *ii);
    if (ii)
        self->ints = ii;
    double *rr = realloc(self->reals, cap * np * sizeof *rr);
    if (rr)
        self->reals = rr;
    if (!v || !p || !l || !in || !ii || !rr)
        return -1;
    self->cap = cap;
    return 0;
}

static sink_t *mysql_sink_open(const worker_config_t *cfg, const char *master_id, char *err,
                               size_t errlen)
{
    if (check_settings(cfg, err, errlen) != 0)
        return NULL;
    mysql_sink_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sink_t *s = (sink_t *) self;
    msgpack_sbuffer_init(&self->scratch);
    bool ok = true;
    self->template_path = dup_or_null(cfg->template_path, &ok);
    self->master_id = dup_or_null(master_id, &ok);
    self->host = dup_or_null(cfg->host ? cfg->host : "127.0.0.1", &ok);
    self->socket = cfg->socket && *cfg->socket ? dup_or_null(cfg->socket, &ok) : NULL;
    self->user = dup_or_null(cfg->user, &ok);
    self->password = dup_or_null(cfg->password, &ok);
    self->database = dup_or_null(cfg->database, &ok);
    self->port = cfg->port > 0 ? cfg->port : 3306;
    self->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        mysql_sink_close(&s);
        return NULL;
    }
    self->tpl = template_load(cfg->template_path, SQL_DIALECT_MYSQL, err, errlen);
    if (!self->tpl) {
        mysql_sink_close(&s);
        return NULL;
    }
    self->n_params = template_n_params(self->tpl);
    self->binds = calloc((size_t) self->n_params + 1, sizeof *self->binds);
    if (!self->binds || reserve(self, 64) != 0) {
        snprintf(err, errlen, "out of memory");
        mysql_sink_close(&s);
        return NULL;
    }
    if (connect_db(self, true, err, errlen) != SINK_OK) {
        mysql_sink_close(&s);
        return NULL;
    }
    return s;
}

/* ---------------------------------------------------------------- write_batch */

/* After an error inside the transaction: ROLLBACK (or drop the connection, which rolls back
 * too) and return res. */
static sink_result_t abort_batch(mysql_sink_t *self, sink_result_t res)
{
    if (self->db && query(self->db, "ROLLBACK") != 0)
        disconnect(self);
    return res;
}

/* Error of the statement on `row` (SIZE_MAX: no particular row). */
static sink_result_t stmt_error(mysql_sink_t *self, size_t row, const worker_event_t *ev,
                                size_t *bad_index, char *err, size_t errlen)
{
    unsigned int code = mysql_stmt_errno(self->stmt);
    const char *msg = mysql_stmt_error(self->stmt);
    if (row != SIZE_MAX)
        snprintf(err, errlen, "mysql: %s: row %zu seq=%llu: %s (error %u)",
                 self->template_path, row, (unsigned long long) ev->seq, msg, code);
    else
        snprintf(err, errlen, "mysql: %s: %s (error %u)", self->template_path, msg, code);
    switch (classify(code)) {
    case ERR_RETRY_CONN:
        disconnect(self);
        return SINK_RETRY;
    case ERR_RETRY:
        return abort_batch(self, SINK_RETRY);
    case ERR_REJECT:
        if (row == SIZE_MAX)
            return abort_batch(self, SINK_FATAL);
        if (bad_index)
            *bad_index = row;
        return abort_batch(self, SINK_REJECT_ROW);
    case ERR_FATAL:
        break;
    }
    return abort_batch(self, SINK_FATAL);
}

/* A failed plain query (START TRANSACTION, COMMIT) inside write_batch. */
static sink_result_t query_error(mysql_sink_t *self, const char *what, char *err,
                                 size_t errlen)
{
    unsigned int code = mysql_errno(self->db);
    snprintf(err, errlen, "mysql: %s: %s: %s (error %u)", self->template_path, what,
             mysql_error(self->db), code);
    switch (classify(code)) {
    case ERR_RETRY_CONN:
        disconnect(self);
        return SINK_RETRY;
    case ERR_RETRY:
        return abort_batch(self, SINK_RETRY);
    default:
        return abort_batch(self, SINK_FATAL);
    }
}

static size_t row_bytes(const tval_t *v, int np)
{
    size_t bytes = ROW_OVERHEAD(np);
    for (int j = 0; j < np; j++)
        if (v[j].kind == TVAL_TEXT)
            bytes += v[j].text_len;
    return bytes;
}

static sink_result_t too_big(mysql_sink_t *self, size_t row, const worker_event_t *ev,
                             size_t bytes, size_t *bad_index, char *err, size_t errlen)
{
    snprintf(err, errlen, "mysql: %s: row %zu seq=%llu: %zu bytes of values exceed the "
             "server's max_allowed_packet (%lu)", self->template_path, row,
             (unsigned long long) ev->seq, bytes, self->max_packet);
    if (bad_index)
        *bad_index = row;
    return abort_batch(self, SINK_REJECT_ROW);
}

/* Binds one row's values (array size 0). */
static void bind_row(mysql_sink_t *self, const tval_t *v)
{
    memset(self->binds, 0, (size_t) self->n_params * sizeof *self->binds);
    for (int j = 0; j < self->n_params; j++) {
        MYSQL_BIND *b = &self->binds[j];
        switch (v[j].kind) {
        case TVAL_TEXT:
            self->lens[j] = (unsigned long) v[j].text_len;
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = (void *) (v[j].text ? v[j].text : "");
            b->buffer_length = (unsigned long) v[j].text_len;
            b->length = &self->lens[j];
            break;
        case TVAL_INT:
            self->ints[j] = (long long) v[j].i;
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &self->ints[j];
            break;
        case TVAL_REAL:
            self->reals[j] = v[j].r;
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &self->reals[j];
            break;
        case TVAL_NULL:
            b->buffer_type = MYSQL_TYPE_STRING;
            b->is_null = &TRUE_FLAG;
            break;
        }
    }
}

/* The batch one row per execute, inside the open transaction. */
static sink_result_t write_rows(mysql_sink_t *self, worker_event_t *const *events, size_t n,
                                size_t *bad_index, char *err, size_t errlen)
{
    unsigned int zero = 0;
    mysql_stmt_attr_set(self->stmt, STMT_ATTR_ARRAY_SIZE, &zero);
    for (size_t i = 0; i < n; i++) {
        self->scratch.size = 0;
        if (template_values(self->tpl, events[i], self->master_id, &self->scratch,
                            self->values) != 0) {
            snprintf(err, errlen, "mysql: seq=%llu: out of memory computing values",
                     (unsigned long long) events[i]->seq);
            return abort_batch(self, SINK_RETRY);
        }
        size_t bytes = row_bytes(self->values, self->n_params);
        if (bytes > self->max_packet)
            return too_big(self, i, events[i], bytes, bad_index, err, errlen);
        bind_row(self, self->values);
        if (mysql_stmt_bind_param(self->stmt, self->binds) != 0 ||
            mysql_stmt_execute(self->stmt) != 0)
            return stmt_error(self, i, events[i], bad_index, err, errlen);
    }
    return SINK_OK;
}

/* Computes every row's values into one scratch; false when a row is too big for one packet
 * or a column mixes types (the caller then writes row by row). -1: out of memory. */
static int compute_all(mysql_sink_t *self, worker_event_t *const *events, size_t n)
{
    int np = self->n_params;
    self->scratch.size = 0;
    for (size_t i = 0; i < n; i++) {
        tval_t *v = &self->values[i * (size_t) np];
        if (template_values(self->tpl, events[i], self->master_id, &self->scratch, v) != 0)
            return -1;
        /* scratch may move later: keep text inside it as an offset (in .i) */
        for (int j = 0; j < np; j++)
            if (v[j].kind == TVAL_TEXT && v[j].text && self->scratch.data &&
                v[j].text >= self->scratch.data &&
                v[j].text <= self->scratch.data + self->scratch.size) {
                v[j].i = (int64_t) (v[j].text - self->scratch.data);
                v[j].text = NULL;
            } else if (v[j].kind == TVAL_TEXT) {
                v[j].i = -1;
            }
    }
    bool uniform = true;
    for (size_t i = 0; i < n; i++) {
        tval_t *v = &self->values[i * (size_t) np];
        for (int j = 0; j < np; j++)
            if (v[j].kind == TVAL_TEXT && v[j].i >= 0)
                v[j].text = self->scratch.data + v[j].i;
        if (row_bytes(v, np) > self->max_packet / 2)
            uniform = false;
    }
    for (int j = 0; j < np && uniform; j++) {
        tval_kind_t kind = TVAL_NULL;
        for (size_t i = 0; i < n && uniform; i++) {
            tval_kind_t k = self->values[i * (size_t) np + (size_t) j].kind;
            if (k != TVAL_NULL && kind != TVAL_NULL && k != kind)
                uniform = false;
            else if (k != TVAL_NULL)
                kind = k;
        }
    }
    return uniform ? 1 : 0;
}

/* Binds rows [a, b) column-wise and executes them as one array. */
static int execute_array(mysql_sink_t *self, size_t a, size_t b)
{
    int np = self->n_params;
    size_t rows = b - a;
    memset(self->binds, 0, (size_t) np * sizeof *self->binds);
    for (int j = 0; j < np; j++) {
        size_t base = (size_t) j * self->cap;
        tval_kind_t kind = TVAL_NULL;
        for (size_t r = 0; r < rows; r++) {
            const tval_t *v = &self->values[(a + r) * (size_t) np + (size_t) j];
            self->ind[base + r] = v->kind == TVAL_NULL ? STMT_INDICATOR_NULL
                                                       : STMT_INDICATOR_NONE;
            if (v->kind != TVAL_NULL)
                kind = v->kind;
            switch (v->kind) {
            case TVAL_TEXT:
                self->ptrs[base + r] = (void *) (v->text ? v->text : "");
                self->lens[base + r] = (unsigned long) v->text_len;
                break;
            case TVAL_INT:  self->ints[base + r] = (long long) v->i; break;
            case TVAL_REAL: self->reals[base + r] = v->r; break;
            case TVAL_NULL:
                self->ptrs[base + r] = (void *) "";
                self->lens[base + r] = 0;
                self->ints[base + r] = 0;
                self->reals[base + r] = 0;
                break;
            }
        }
        MYSQL_BIND *bd = &self->binds[j];
        bd->u.indicator = &self->ind[base];
        switch (kind) {
        case TVAL_INT:
            bd->buffer_type = MYSQL_TYPE_LONGLONG;
            bd->buffer = &self->ints[base];
            break;
        case TVAL_REAL:
            bd->buffer_type = MYSQL_TYPE_DOUBLE;
            bd->buffer = &self->reals[base];
            break;
        default:
            bd->buffer_type = MYSQL_TYPE_STRING;
            bd->buffer = &self->ptrs[base];
            bd->length = &self->lens[base];
            break;
        }
    }
    unsigned int size = (unsigned int) rows;
    if (mysql_stmt_attr_set(self->stmt, STMT_ATTR_ARRAY_SIZE, &size) != 0 ||
        mysql_stmt_bind_param(self->stmt, self->binds) != 0)
        return -1;
    return mysql_stmt_execute(self->stmt);
}

/* The batch as arrays. SINK_OK, SINK_RETRY (connection / lock trouble: handled), or
 * SINK_REJECT_ROW meaning "replay row by row" (the transaction is rolled back and a new one
 * started). */
static sink_result_t write_bulk(mysql_sink_t *self, worker_event_t *const *events, size_t n,
                                char *err, size_t errlen, bool *fallback)
{
    *fallback = true;
    int rc = compute_all(self, events, n);
    if (rc < 0) {
        snprintf(err, errlen, "mysql: out of memory computing values");
        return abort_batch(self, SINK_RETRY);
    }
    if (rc == 0)
        return SINK_OK;   /* caller writes row by row in the same transaction */
    size_t limit = self->max_packet / 2 < BULK_CHUNK_BYTES ? self->max_packet / 2
                                                           : BULK_CHUNK_BYTES;
    size_t a = 0;
    while (a < n) {
        size_t b = a, bytes = 0;
        while (b < n) {
            size_t rb = row_bytes(&self->values[b * (size_t) self->n_params], self->n_params);
            if (b > a && bytes + rb > limit)
                break;
            bytes += rb;
            b++;
        }
        if (execute_array(self, a, b) != 0) {
            unsigned int code = mysql_stmt_errno(self->stmt);
            err_class_t c = classify(code);
            if (c == ERR_RETRY_CONN || c == ERR_RETRY)
                return stmt_error(self, SIZE_MAX, events[a], NULL, err, errlen);
            if (code == ER_UNSUPPORTED_PS) {
                self->bulk_refused = true;
                self->bulk = false;
            }
            /* which row? replay row by row in a fresh transaction */
            if (query(self->db, "ROLLBACK") != 0 || query(self->db, "START TRANSACTION") != 0)
                return query_error(self, "ROLLBACK / START TRANSACTION", err, errlen);
            return SINK_OK;
        }
        a = b;
    }
    *fallback = false;
    return SINK_OK;
}

static sink_result_t mysql_sink_write_batch(sink_t *sink, worker_event_t *const *events,
                                            size_t n, size_t *bad_index, char *err,
                                            size_t errlen)
{
    mysql_sink_t *self = (mysql_sink_t *) sink;
    if (n == 0)
        return SINK_OK;
    if (!self->db) {
        sink_result_t res = connect_db(self, false, err, errlen);
        if (res != SINK_OK)
            return res;
    }
    if (reserve(self, n) != 0) {
        snprintf(err, errlen, "mysql: out of memory for a batch of %zu", n);
        return SINK_RETRY;
    }
    if (query(self->db, "START TRANSACTION") != 0)
        return query_error(self, "START TRANSACTION", err, errlen);
    bool fallback = true;
    sink_result_t res = SINK_OK;
    if (self->bulk && n > 1)
        res = write_bulk(self, events, n, err, errlen, &fallback);
    if (res == SINK_OK && fallback)
        res = write_rows(self, events, n, bad_index, err, errlen);
    if (res != SINK_OK)
        return res;
    if (query(self->db, "COMMIT") != 0)
        return query_error(self, "COMMIT", err, errlen);
    return SINK_OK;
}

static void mysql_explain(const worker_config_t *cfg, const char *master_id,
                       const worker_event_t *ev, FILE *out)
{
    template_explain(cfg->template_path, SQL_DIALECT_MYSQL, ev, master_id, out);
}

const sink_ops_t sink_mysql_ops = {
    .name = "mysql",
    .check = mysql_check,
    .open = mysql_sink_open,
    .write_batch = mysql_sink_write_batch,
    .close = mysql_sink_close,
    .explain = mysql_explain,
};
