/* log: key=value log lines on stderr with a level, and the "complain" rate limit so that a
 * condition that repeats (a dead database, a flood of malformed frames) logs once, then at
 * most once per interval with the number suppressed, and once on recovery.
 * Line format: "<ISO8601 UTC> level=<lvl> proc=<ident>[<pid>] <message>".
 */
#ifndef EVENTSD_LOG_H
#define EVENTSD_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR } log_level_t;

void log_set_ident(const char *ident);            /* "master", "worker:db/0", ... */
void log_set_level(log_level_t level);
int  log_level_parse(const char *name, log_level_t *out);   /* 0 ok, -1 unknown */

__attribute__((format(printf, 2, 3)))
void log_msg(log_level_t level, const char *fmt, ...);

#define log_debug(...)   log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_error(...)   log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* One per repeating condition. Zero-initialise; interval_ms 0 means 10000. */
typedef struct {
    int      interval_ms;
    int64_t  last_ms;
    uint64_t suppressed;
    bool     active;
} log_complaint_t;

/* Logs when the condition is new or the interval has passed (adding suppressed=N). */
__attribute__((format(printf, 3, 4)))
void log_complain(log_complaint_t *c, log_level_t level, const char *fmt, ...);
/* Logs once when a complaint that was active ends. */
__attribute__((format(printf, 2, 3)))
void log_recovered(log_complaint_t *c, const char *fmt, ...);

int64_t clock_ms(void);   /* CLOCK_MONOTONIC in milliseconds */
int64_t wall_ms(void);    /* CLOCK_REALTIME in milliseconds since the epoch (times that persist
                             or align to the calendar: intervals, stream expiry) */

#endif
