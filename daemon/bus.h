/* bus: the connection to the Salt master's event bus, read-only.
 *
 * Types: "salt-ipc" (unix stream socket, Salt 2016.3+), "salt-tcp" (same framing on TCP,
 * ipc_mode: tcp), "zmq" (ZeroMQ SUB, Salt <= 2015.8) and "auto" (connect to the unix path as a
 * plain stream; a ZeroMQ peer greets first with byte 0xFF, a Salt stream publisher never sends
 * before its first event, so the first byte tells which one it is).
 * Never writes to a Salt socket. Reconnects with exponential backoff and jitter
 * (bus.reconnect_min_ms .. reconnect_max_ms) on ENOENT, ECONNREFUSED, EOF and decode errors
 * that lose the frame boundary. Malformed and oversize frames are counted and logged with a
 * rate limit; the reader goes on with the next frame.
 * Owns: the socket (or czmq SUB socket), the stream decoder, the counters.
 */
#ifndef EVENTSD_BUS_H
#define EVENTSD_BUS_H

#include "config.h"
#include "salt_frame.h"
#include <stdint.h>
#include <zmq.h>

typedef struct bus bus_t;

typedef struct {
    uint64_t received;     /* events decoded */
    uint64_t malformed;    /* frames skipped as malformed */
    uint64_t oversize;     /* frames skipped as larger than bus.max_event_bytes */
    uint64_t connects;     /* successful connections */
    uint64_t bytes;        /* bytes read */
} bus_stats_t;

/* Called for each decoded event; it may take ownership of ev's members by zeroing them. */
typedef void (bus_event_fn)(salt_event_t *ev, void *arg);

bus_t *bus_new(const bus_config_t *cfg);
void bus_destroy(bus_t **self_p);

/* Connects when disconnected and the backoff has passed. Call once per loop iteration. */
void bus_tick(bus_t *self, int64_t now_ms);

/* The poll item for the bus, or 0 when there is nothing to poll (waiting to reconnect). */
int bus_pollitem(bus_t *self, zmq_pollitem_t *item);

/* Milliseconds until bus_tick has work to do, or -1. */
int bus_timeout_ms(const bus_t *self, int64_t now_ms);

/* Reads and decodes what is available, calling fn for at most max_events events.
 * Returns the number of events delivered. */
int bus_read(bus_t *self, bus_event_fn *fn, void *arg, int max_events);

/* Whether bytes already read still hold undelivered events (call bus_read without polling). */
bool bus_has_buffered(const bus_t *self);

bool bus_connected(const bus_t *self);

/* Whether cfg asks for a different bus than the one self reads (a reload then replaces it). */
bool bus_config_differs(const bus_t *self, const bus_config_t *cfg);
const bus_stats_t *bus_stats(const bus_t *self);

#endif
