/* spool: the master's on-disk journal of accepted events, and each worker's durable progress
 * through it. An event is "accepted" once spool_append returned SPOOL_OK.
 *
 * Layout of spool.dir:
 *   <first seq, 20 digits>.seg   segments: a 16-byte header ("EVSPOOL" 0, version) and records
 *   cursors                      per worker: every seq below its cursor was committed by its sink
 *   quarantine/                  corrupt sealed segments, moved aside at open
 *   lock                         flock: one eventsd per spool
 * A record is a 16-byte header (body length u32, CRC32C u32 of seq and body, seq u64; little
 * endian) and a msgpack body [tag, payload (bin), {worker name: priority}].
 *
 * Durability: records are written with write(2) as they are appended (so a killed master loses
 * nothing) and made durable against power loss by fdatasync per sync policy (group commit).
 * Segments are created and removed with an fsync of the directory.
 *
 * Consumers: one per worker name. A consumer reads records in order from its position; its
 * cursor (set by the dispatcher from acks, see spool_consumer_ack) is persisted every
 * CURSOR_PERIOD and at close. A sealed segment is deleted once every consumer's cursor has
 * passed it. A consumer created for a name with a persisted cursor starts there (replay after a
 * restart); a new name starts at the end.
 *
 * Owns: the segment files and descriptors, the consumers (spool_destroy frees them). Records
 * returned by spool_consumer_next point into the consumer's buffer, valid until its next call.
 */
#ifndef EVENTSD_SPOOL_H
#define EVENTSD_SPOOL_H

#include "config.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_RECORD_HEADER 16
#define SPOOL_SEGMENT_HEADER 16
#define SPOOL_MAX_BODY ((1u << 30) + (1u << 20))   /* bus.max_event_bytes max + targets */

typedef struct spool spool_t;
typedef struct spool_consumer spool_consumer_t;

typedef enum { SPOOL_OK = 0, SPOOL_FULL = 1, SPOOL_ERROR = -1 } spool_rc_t;

typedef struct {
    const char *name;
    bool        priority;
} spool_target_t;

typedef struct {
    uint64_t             seq;
    const char          *tag;
    size_t               tag_len;
    const uint8_t       *payload;
    size_t               payload_len;
    msgpack_object_map   targets;   /* worker name (str) -> priority (bool) */
} spool_record_t;

typedef struct {
    uint64_t appended, synced_batches, dropped_events, dropped_segments, full_events;
    uint64_t bytes, segments, quarantined, truncated_bytes, corrupt_skipped;
} spool_stats_t;

/* Opens (creating) cfg->dir and recovers it: every segment is checked record by record; a
 * torn or corrupt tail of the newest segment is truncated to its last good record, a corrupt
 * older segment is moved to quarantine/. Each thing done is reported through report (one
 * line, key=value, for the log) and never stops the open. NULL and err on I/O errors, a
 * spool locked by another process, or a newer format. */
typedef void (spool_report_fn)(void *arg, const char *line);
spool_t *spool_open(const spool_config_t *cfg, spool_report_fn *report, void *arg,
                    char *err, size_t errlen);
/* Creates dir and its missing parents (the spool itself 0700), for a caller that must create
 * it before it drops root. 0, or -1 with errno. */
int spool_make_dir(const char *dir);
/* Syncs, persists the cursors and closes. */
void spool_destroy(spool_t **self_p);

/* Takes the new settings that can change at run time (sync, sync_ms, max_bytes, when_full,
 * segment_bytes); the directory cannot change (returns -1 when it differs). */
int spool_reconfigure(spool_t *self, const spool_config_t *cfg);

/* Appends one event. SPOOL_FULL: max_bytes reached or the disk is full and the policy is
 * "block" (or nothing is left to drop): nothing was written, try again later. *seq_out gets
 * the record's sequence number. With "drop-oldest", the oldest segments are deleted first and
 * counted (stats, report). */
spool_rc_t spool_append(spool_t *self, const char *tag, size_t tag_len, const uint8_t *payload,
                        size_t payload_len, const spool_target_t *targets, int n_targets,
                        uint64_t *seq_out, char *err, size_t errlen);

/* Group commit and cursor persistence and deletion of passed segments. Call from the loop. */
void spool_tick(spool_t *self, int64_t now_ms);
/* Milliseconds until spool_tick has work, -1 when none. */
int spool_timeout_ms(const spool_t *self, int64_t now_ms);
/* Forces fdatasync of the open segment and a cursor write (shutdown, tests). */
int spool_flush(spool_t *self);

uint64_t spool_next_seq(const spool_t *self);
const spool_stats_t *spool_stats(const spool_t *self);

/* ---- consumers ---- */

/* The consumer for a worker name (created on first use). */
spool_consumer_t *spool_consumer(spool_t *self, const char *name);
/* Forgets the consumer (worker removed from the config) and its cursor. */
void spool_consumer_remove(spool_t *self, const char *name);

/* Next record at the consumer's position: 1 and *rec, 0 at the end, -1 on a read error (the
 * consumer skips what it cannot read: counted, reported). */
int spool_consumer_next(spool_consumer_t *c, spool_record_t *rec);
bool spool_consumer_at_end(const spool_consumer_t *c);
/* When the consumer is positioned exactly at the record just appended with seq, moves past it
 * without reading it (the caller took the event from memory) and returns true. */
bool spool_consumer_follow(spool_consumer_t *c, uint64_t seq);
/* Every seq below cursor is committed by this consumer's sink. Never moves backwards. */
void spool_consumer_ack(spool_consumer_t *c, uint64_t cursor);
uint64_t spool_consumer_next_seq(const spool_consumer_t *c);
uint64_t spool_consumer_cursor(const spool_consumer_t *c);
/* Events this consumer lost because drop-oldest deleted them before it read them. */
uint64_t spool_consumer_dropped(const spool_consumer_t *c);

/* Whether rec names worker (and with which priority). */
bool spool_record_targets(const spool_record_t *rec, const char *worker, bool *priority);

/* ---- for tests and tools ---- */

/* Checks one segment file: number of good records, last good seq and the byte offset where
 * good data ends; returns 0 when the whole file is good, 1 when it has a bad tail (err says
 * why), -1 when it cannot be read or its header is wrong. */
typedef struct {
    uint64_t records, first_seq, last_seq, good_bytes, file_bytes;
} spool_scan_t;
int spool_scan_file(const char *path, spool_scan_t *out, char *err, size_t errlen);

#endif
