/* trigger_store: the SQLite file that holds a trigger worker's streams (worker key `state`),
 * so they survive restarts. The engine decides; this module only keeps rows.
 *
 * Schema (created at open; PRAGMA user_version 1; WAL, synchronous=NORMAL, busy timeout):
 *   streams  one row per stream: trigger, key, state (0 open, 1 in progress: handed out,
 *            deferred or evicted), reason once in progress, first/last arrival (epoch ms),
 *            first/last _stamp, events, counts (per fire criterion, a blob of little-endian
 *            int64), held_since (when the fire criteria first held), retry_at, due_at (when
 *            the engine must look at it again; NULL = never by itself), the expected-list
 *            counters (listed, expected, settled, returned, returned_expected, succeeded,
 *            failed, duplicates) and the job fields (jid, fun, user, and target as msgpack).
 *            Ids are AUTOINCREMENT: never reused, so a late finish() or defer() for a
 *            stream already gone cannot touch another.
 *            Indexes: (trigger, key) unique among open streams (a finished or in-progress
 *            stream's key is free for a new one), due_at, first_ms of open streams (eviction
 *            order).
 *   members  (stream, minion) primary key, WITHOUT ROWID: MEMBER_* flags, the flags before
 *            the last change (prev, so one upsert says what it changed) and the duplicate
 *            count.
 * Every statement is prepared once at open. Values are always bound, never pasted.
 * Owns: the connection and its statements; trigger_stream_t owns its strings and counts.
 */
#ifndef EVENTSD_TRIGGER_STORE_H
#define EVENTSD_TRIGGER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRIGGER_NO_TIME INT64_MIN   /* an absent held_since / retry_at / due_at */

enum { STREAM_OPEN = 0, STREAM_IN_PROGRESS = 1 };

enum {
    MEMBER_EXPECTED  = 1,   /* in the expected list */
    MEMBER_RETURNED  = 2,
    MEMBER_SUCCEEDED = 4,   /* its first return succeeded ... */
    MEMBER_FAILED    = 8,   /* ... or failed (neither when it said nothing) */
    MEMBER_MISSING   = 16   /* listed in the expected event's data.missing */
};

typedef struct {
    int64_t  id;
    char    *trigger, *key;
    int      state, reason;
    int64_t  first_ms, last_ms;
    char    *first_stamp, *last_stamp;     /* NULL when no event had one */
    int64_t  events;
    int64_t *counts;                       /* n_counts entries (the trigger's fire criteria) */
    int      n_counts;
    int64_t  held_since, retry_at, due_at; /* TRIGGER_NO_TIME when absent */
    bool     listed;                       /* the expected list arrived */
    int64_t  expected, settled, returned, returned_expected, succeeded, failed, duplicates;
    char    *jid, *fun, *user;             /* NULL when unknown */
    unsigned char *target;                 /* data.tgt as msgpack bytes (a string or a list,
                                              as Salt sent it); NULL when unknown */
    size_t   target_len;
} trigger_stream_t;

typedef struct trigger_store trigger_store_t;

/* Frees the stream's strings and counts and zeroes it. */
void trigger_stream_clear(trigger_stream_t *s);
/* Replaces *dst by a NUL-terminated copy of s[0..n) (NULL s: NULL). 0 or -1. */
int trigger_stream_set(char **dst, const char *s, size_t n);
/* Replaces s->target by a copy of bytes[0..n) (NULL: none). 0 or -1. */
int trigger_stream_set_target(trigger_stream_t *s, const void *bytes, size_t n);

/* Errors: "sqlite: PATH: ...". */
trigger_store_t *trigger_store_open(const char *path, int busy_timeout_ms, char *err,
                                    size_t errlen);
void trigger_store_close(trigger_store_t **self_p);

int trigger_store_begin(trigger_store_t *self, char *err, size_t errlen);
int trigger_store_commit(trigger_store_t *self, char *err, size_t errlen);
/* Rolls back an open transaction, if any. */
void trigger_store_rollback(trigger_store_t *self);

/* The open stream of trigger/key into *out (counts sized n_counts): 1, 0 (none) or -1. */
int trigger_store_find(trigger_store_t *self, const char *trigger, const char *key,
                       int n_counts, trigger_stream_t *out, char *err, size_t errlen);
/* Stream id into *out (counts as stored): 1, 0 (none) or -1. */
int trigger_store_load(trigger_store_t *self, int64_t id, trigger_stream_t *out, char *err,
                       size_t errlen);
/* Inserts s as a new open stream and sets s->id. 0 or -1. */
int trigger_store_create(trigger_store_t *self, trigger_stream_t *s, char *err, size_t errlen);
/* Writes every field of s to its row. 0 or -1. */
int trigger_store_save(trigger_store_t *self, const trigger_stream_t *s, char *err,
                       size_t errlen);

/* Upserts a member: a new one gets `flags`; an existing one gains them, except that a return
 * (MEMBER_RETURNED in flags) of a member already returned changes nothing but its duplicate
 * count. *prev and *now: its flags before and after. 0 or -1. */
int trigger_store_member(trigger_store_t *self, int64_t stream, const char *minion, size_t len,
                         int flags, int *prev, int *now, char *err, size_t errlen);
/* Expected members that did not return (sorted), as a NULL-terminated array the caller frees
 * (each string and the array). 0 or -1. */
int trigger_store_missing(trigger_store_t *self, int64_t stream, char ***out, size_t *n,
                          char *err, size_t errlen);

/* Deletes an in-progress stream and its members: 1, 0 (no such stream in progress) or -1. */
int trigger_store_delete(trigger_store_t *self, int64_t id, char *err, size_t errlen);
/* An in-progress stream becomes due at retry_at: 1, 0 (no such stream in progress) or -1. */
int trigger_store_defer(trigger_store_t *self, int64_t id, int64_t retry_at, char *err,
                        size_t errlen);
/* The open stream that arrived first: 1 (*id), 0 (none) or -1. */
int trigger_store_oldest_open(trigger_store_t *self, int64_t *id, char *err, size_t errlen);
/* Marks an open stream in progress with `reason`, due at once. 0 or -1. */
int trigger_store_evict(trigger_store_t *self, int64_t id, int reason, char *err,
                        size_t errlen);
/* The earliest due_at: 1 (*due), 0 (nothing due ever) or -1. */
int trigger_store_next_due(trigger_store_t *self, int64_t *due, char *err, size_t errlen);
/* The stream with the earliest due_at <= now: 1 (*id), 0 or -1. */
int trigger_store_due(trigger_store_t *self, int64_t now_ms, int64_t *id, char *err,
                      size_t errlen);
/* due_at = NULL: a stream of a trigger this worker no longer runs waits until it does. */
int trigger_store_park(trigger_store_t *self, int64_t id, char *err, size_t errlen);

/* At open: the number of open streams (-1 on error). */
int64_t trigger_store_count_open(trigger_store_t *self, char *err, size_t errlen);
/* At open: streams left in progress by a previous process (handed out, never finished or
 * deferred) become due at once; every stream of `trigger` gets its due time from the
 * current settings (expire_from_first, expire_ms, delay_ms), so a reload that changes them
 * applies to existing streams. 0 or -1. */
int trigger_store_recover(trigger_store_t *self, char *err, size_t errlen);
int trigger_store_reschedule(trigger_store_t *self, const char *trigger, bool expire_from_first,
                             int64_t expire_ms, int64_t delay_ms, char *err, size_t errlen);

/* Statements executed and rows changed (sqlite3_total_changes64) since open. */
void trigger_store_counters(const trigger_store_t *self, uint64_t *statements,
                            uint64_t *changes);

#endif
