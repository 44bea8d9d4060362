/* redis_conn: THE one way eventsd connects to Redis (counter sink, shared throttles,
 * eventsd-counts), so every user gets the same timeouts, AUTH, SELECT and error wording.
 *
 * Errors are one line, "redis HOST:PORT: reason", and never contain the password: hiredis
 * and Redis do not echo it, and redis_conn_open scrubs it anyway in case a server does.
 * After any I/O error or timeout a hiredis context is unusable (its c->err is set): callers
 * close it and open a new one (redis_conn_usable tells them).
 * Owns: nothing beyond the returned context, which the caller frees with redis_conn_close.
 */
#ifndef EVENTSD_REDIS_CONN_H
#define EVENTSD_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* Connects with timeout_ms for the connect and for every later command (read and write),
 * sends AUTH password when password is non-NULL and non-empty, SELECT db when db != 0.
 * Returns the context, or NULL with err filled. */
redisContext *redis_conn_open(const char *host, int port, const char *password, int db,
                              int timeout_ms, char *err, size_t errlen);

/* Frees the context and clears the caller's pointer; NULL is fine. */
void redis_conn_close(redisContext **c_p);

/* false once the context saw an I/O, EOF, protocol or timeout error. */
bool redis_conn_usable(const redisContext *c);

/* Checks the reply of a command described by what ("EXEC", "EVALSHA rotate"): returns 0 for
 * a reply that is not an error, -1 with "redis HOST:PORT: what: reason" in err for a NULL
 * reply (connection error: the context's message) or an error reply (the server's message).
 * Does not free the reply. */
int redis_conn_check(const redisContext *c, const redisReply *reply, const char *what,
                     char *err, size_t errlen);

/* Sends one command (argv form, binary safe), checks it as above. Returns the reply (the
 * caller frees it with freeReplyObject) or NULL with err filled. */
redisReply *redis_conn_command(redisContext *c, int argc, const char **argv,
                               const size_t *argvlen, const char *what, char *err,
                               size_t errlen);

#endif
