/* notify: the daemon's side of systemd's Type=notify protocol (sd_notify from libsystemd).
 * READY=1 once the bus is connected and the workers are up, STATUS= with the current rates,
 * STOPPING=1 on shutdown, and WATCHDOG=1 at half the WatchdogSec interval when the unit sets
 * one. Every call is a no-op when eventsd does not run under systemd (NOTIFY_SOCKET unset).
 * Owns: the watchdog schedule.
 */
#ifndef EVENTSD_NOTIFY_H
#define EVENTSD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

void notify_init(void);                      /* reads WATCHDOG_USEC once */
void notify_ready(const char *status);
void notify_stopping(const char *status);
__attribute__((format(printf, 1, 2)))
void notify_status(const char *fmt, ...);
/* Pings the watchdog when due; returns ms until the next ping is due, or -1 (no watchdog). */
int notify_watchdog(int64_t now_ms);

#endif
