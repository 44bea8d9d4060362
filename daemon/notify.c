#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

static int64_t watchdog_interval_ms;   /* half of WatchdogSec; 0 = off */
static int64_t watchdog_next_ms;

void notify_init(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000)
        watchdog_interval_ms = (int64_t) (usec / 2000);
}

void notify_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_stopping(const char *status)
{
    sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

void notify_status(const char *fmt, ...)
{
    char status[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof status, fmt, ap);
    va_end(ap);
    sd_notifyf(0, "STATUS=%s", status);
}

int notify_watchdog(int64_t now_ms)
{
    if (watchdog_interval_ms == 0)
        return -1;
    if (now_ms >= watchdog_next_ms) {
        sd_notify(0, "WATCHDOG=1");
        watchdog_next_ms = now_ms + watchdog_interval_ms;
    }
    return (int) (watchdog_next_ms - now_ms);
}
