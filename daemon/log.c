#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char        log_ident[64] = "eventsd";
static log_level_t log_threshold = LOG_LVL_INFO;

static const char *level_names[] = { "debug", "info", "warning", "error" };

void log_set_ident(const char *ident)
{
    snprintf(log_ident, sizeof log_ident, "%s", ident);
}

void log_set_level(log_level_t level)
{
    log_threshold = level;
}

int log_level_parse(const char *name, log_level_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (log_level_t) i;
            return 0;
        }
    return -1;
}

int64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_vmsg(log_level_t level, const char *suffix, const char *fmt, va_list ap)
{
    if (level < log_threshold)
        return;
    char stamp[32], line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(line, sizeof line, "%s.%03ldZ level=%s proc=%s[%d] ", stamp,
                     ts.tv_nsec / 1000000, level_names[level], log_ident, (int) getpid());
    if (n < 0 || (size_t) n >= sizeof line)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t) n, fmt, ap);
    size_t len = (m < 0) ? (size_t) n : strnlen(line, sizeof line - 1);
    if (suffix && len + strlen(suffix) + 1 < sizeof line) {
        memcpy(line + len, suffix, strlen(suffix) + 1);
        len += strlen(suffix);
    }
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line so that lines of concurrent processes never interleave. */
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void) ignored;
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, NULL, fmt, ap);
    va_end(ap);
}

/* Logs a complaint's line with the count of repeats it swallowed, and resets that count. */
static void log_counted(log_complaint_t *c, log_level_t level, const char *fmt, va_list ap)
{
    char suffix[48] = "";
    if (c->suppressed)
        snprintf(suffix, sizeof suffix, " suppressed=%llu", (unsigned long long) c->suppressed);
    log_vmsg(level, suffix, fmt, ap);
    c->suppressed = 0;
}

void log_complain(log_complaint_t *c, log_level_t level, const char *fmt, ...)
{
    int64_t now = clock_ms();
    int interval = c->interval_ms > 0 ? c->interval_ms : 10000;
    if (c->active && now - c->last_ms < interval) {
        c->suppressed++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    log_counted(c, level, fmt, ap);
    va_end(ap);
    c->active = true;
    c->last_ms = now;
}

void log_recovered(log_complaint_t *c, const char *fmt, ...)
{
    if (!c->active)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_counted(c, LOG_LVL_INFO, fmt, ap);
    va_end(ap);
    c->active = false;
}
