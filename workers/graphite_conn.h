/* graphite_conn: the one connection a graphite sink keeps to carbon's plaintext receiver.
 *
 * TCP: one persistent connection, opened on the first send (connect bounded by timeout_ms,
 * every address getaddrinfo gives tried in turn) and kept; a send error or a peer that has
 * closed closes it, and the next send reconnects (the caller's backoff paces that: there is
 * no retry loop in here). Before writing on a kept connection it checks for the peer's EOF
 * (carbon never talks back on this port, so anything readable is a close or an error): a
 * restarted carbon is seen before lines are written into a dead socket. Each write carries as
 * many lines as the kernel takes; a stalled carbon fails the send after timeout_ms.
 * Caveat of the protocol itself: carbon sends no acknowledgement, so lines written to a
 * connection that dies right after the write can still be lost.
 *
 * UDP: datagrams of whole lines, at most GRAPHITE_UDP_MAX bytes each (a line is never split).
 * UDP may lose or drop lines without anyone noticing; use it only where that is acceptable.
 * Owns: the socket.
 */
#ifndef EVENTSD_GRAPHITE_CONN_H
#define EVENTSD_GRAPHITE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRAPHITE_UDP_MAX 1400

typedef struct graphite_conn graphite_conn_t;

/* Copies host. No I/O yet. NULL when out of memory. */
graphite_conn_t *graphite_conn_new(const char *host, int port, bool udp, int timeout_ms);
void graphite_conn_destroy(graphite_conn_t **self_p);

/* Sends buf[0..len), whole '\n'-terminated lines, connecting first when needed.
 * 0, or -1 with a one-line reason in err (the connection is then closed). */
int graphite_conn_send(graphite_conn_t *self, const char *buf, size_t len, char *err,
                       size_t errlen);

/* Ends the connection gracefully: a TCP connection is half-closed and carbon's own close is
 * awaited (up to timeout_ms), which it sends only after it has read every line before it.
 * 0 (confirmed, or nothing to confirm: no connection, UDP), or -1 with the reason in err.
 * The connection is closed either way; a later send opens a new one. */
int graphite_conn_finish(graphite_conn_t *self, int timeout_ms, char *err, size_t errlen);

/* Connections opened so far (the first one included). */
uint64_t graphite_conn_connects(const graphite_conn_t *self);

#endif
