/* template: user-written SQL templates that turn an event into a row.
 *
 * A template file holds ONE SQL statement with named placeholders. The compiler scans the
 * SQL, skipping '...' literals, "..." and `...` identifiers, -- and / * * / comments and the
 * PostgreSQL "::" cast, and replaces each placeholder with the dialect's parameter marker
 * (? for SQLite and MySQL, $1.. for PostgreSQL). Values are always bound, never pasted.
 *
 * Placeholder grammar:   ':' field [ '|' filter ]*
 *   field:  tag | master_id | stamp | event_hash | data | data.<path>
 *           <path> = components separated by '.', each [A-Za-z0-9_@$-]+
 *           (an integer component also matches an integer map key or an array index)
 *           stamp = data._stamp
 *   filter: json            -> always the JSON text of the value (a string becomes "\"x\"")
 *           default('text') -> used when the field is missing or null ('' escapes ')
 *           int | float     -> bound as a number (SQL NULL if not convertible)
 *   without filters a scalar binds as its text (payload_to_text), a map/array as JSON,
 *   and a missing field as SQL NULL.
 * Unknown fields or filters are compile errors naming the template line.
 * Owns: the compiled SQL text and parameter list.
 */
#ifndef EVENTSD_TEMPLATE_H
#define EVENTSD_TEMPLATE_H

#include "worker_event.h"
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { SQL_DIALECT_SQLITE, SQL_DIALECT_PGSQL, SQL_DIALECT_MYSQL } sql_dialect_t;

typedef struct template template_t;

/* Compiles sql_text. `origin` names the text in errors ("FILE:LINE: message", LINE counted
 * inside sql_text from 1). */
template_t *template_compile(const char *sql_text, const char *origin, sql_dialect_t dialect,
                             char *err, size_t errlen);
/* Reads and compiles a file (errors name the file). */
template_t *template_load(const char *path, sql_dialect_t dialect, char *err, size_t errlen);
void template_destroy(template_t **self_p);

/* A template's companion schema: the schema.sql in the template's directory, which database
 * sinks run when they open (CREATE ... IF NOT EXISTS, so the shipped tables need no manual
 * step). Returns 1 with *path and *sql (both malloc'd, the caller frees), 0 when there is no
 * such file, -1 with err when it cannot be read. */
int template_schema(const char *template_path, char **path, char **sql, char *err,
                    size_t errlen);

const char *template_sql(const template_t *self);   /* SQL with dialect markers */
int template_n_params(const template_t *self);

typedef enum { TVAL_NULL, TVAL_TEXT, TVAL_INT, TVAL_REAL } tval_kind_t;

typedef struct {
    tval_kind_t kind;
    const char *text;  size_t text_len;   /* TVAL_TEXT: points into the caller's scratch buffer */
    int64_t     i;                        /* TVAL_INT */
    double      r;                        /* TVAL_REAL */
} tval_t;

/* Computes parameter i for ev. Text is written into scratch (caller-owned, caller clears it
 * between events); returned pointers stay valid until scratch is cleared or grows, so call
 * template_values for all parameters at once. master_id comes from the config. */
int template_values(const template_t *self, const worker_event_t *ev, const char *master_id,
                    msgpack_sbuffer *scratch, tval_t *values /* n_params */);

/* For `eventsd --explain`: loads the template at path and prints, one per line indented by
 * four spaces, each parameter and the value ev would bind to it (text cut at 200 bytes), or
 * the template's error. */
void template_explain(const char *path, sql_dialect_t dialect, const worker_event_t *ev,
                      const char *master_id, FILE *out);

#endif
