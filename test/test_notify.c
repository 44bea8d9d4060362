/* notify: the messages systemd receives, read from a real notify socket. */
#include "notify.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_notify_socket(char *path, size_t len)
{
    snprintf(path, len, "/tmp/eventsd-notify-%d.sock", (int) getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    return fd;
}

static void expect_message(int fd, const char *want)
{
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_expect_str_eq(buf, want);
}

Test(notify, ready_status_stopping_and_watchdog)
{
    char path[108];
    int fd = listen_notify_socket(path, sizeof path);
    char usec[32];
    snprintf(usec, sizeof usec, "%d", 4000000);   /* WatchdogSec=4 */
    setenv("WATCHDOG_USEC", usec, 1);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int) getpid());
    setenv("WATCHDOG_PID", pid, 1);
    notify_init();

    notify_ready("bus connected");
    expect_message(fd, "READY=1\nSTATUS=bus connected");
    notify_status("accepted=%d rate=%d/s", 10, 5);
    expect_message(fd, "STATUS=accepted=10 rate=5/s");
    cr_expect_eq(notify_watchdog(100000), 2000, "next ping after half of WatchdogSec");
    expect_message(fd, "WATCHDOG=1");
    cr_expect_eq(notify_watchdog(101000), 1000, "no ping before it is due");
    notify_stopping("draining");
    expect_message(fd, "STOPPING=1\nSTATUS=draining");
    close(fd);
    unlink(path);
}

Test(notify, silent_without_systemd)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    notify_init();
    notify_ready("x");   /* must not fail or block */
    cr_expect_eq(notify_watchdog(5), -1);
}
