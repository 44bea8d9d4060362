/* secrets: knowing where the config holds passwords, and keeping them out of sight.
 *
 *   secrets_config_has_password  does any worker carry a secret: a mysql `password`, or a
 *                                pgsql `conninfo` with a password (keyword form password=...,
 *                                URI form postgresql://user:pass@host/db or ?password=...)?
 *   secrets_check_file_mode      is that config file open to "others" (mode & 006)?
 *   secrets_redact_conninfo      a conninfo fit for a log line: every secret value -> "***".
 *
 * Conninfo strings are parsed by libpq's own PQconninfoParse, never by hand, so that whatever
 * libpq would send as a password is what is found and hidden. libpq marks its secret options
 * (password, sslpassword) with dispchar "*"; all of them count and are redacted. A dbname that
 * is itself a connection string is looked into too. A string that is neither a URI nor holds an
 * '=' is, as for libpq's expand_dbname (which the pgsql sink uses), a plain database name.
 *
 * Owns: nothing (no allocation survives a call); no printing: results go to caller buffers.
 */
#ifndef EVENTSD_SECRETS_H
#define EVENTSD_SECRETS_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>

/* True when any worker has a non-empty `password`, or a `conninfo` that holds a non-empty
 * secret option. A conninfo libpq cannot parse counts as holding one (it cannot be shown to
 * hold none). cfg NULL: false. */
bool secrets_config_has_password(const eventsd_config_t *cfg);

/* 1 when the file at path (symlinks followed: the mode of what is read counts) is readable or
 * writable by others (mode & 006), with a one-line message naming the file and its mode in msg
 * (no double quotes in it, so it can go inside msg="..." of a log line); 0 when it is not, msg
 * ""; -1 when it cannot be stat'ed, with the reason in msg. */
int secrets_check_file_mode(const char *path, char *msg, size_t len);

/* Writes conninfo into out with every secret value replaced by "***", re-serialised from
 * PQconninfoParse as keyword=value pairs in libpq's option order (a URI comes out in keyword
 * form; values are quoted as libpq reads them back). A conninfo that does not parse is not
 * shown at all (libpq's parse error could quote any part of it): out gets a fixed text.
 * NULL conninfo: "". Truncated to len; never writes a secret, even truncated. */
void secrets_redact_conninfo(const char *conninfo, char *out, size_t len);

#endif
