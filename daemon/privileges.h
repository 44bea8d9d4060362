/* privileges: dropping root to the configured `user` and `group` (eventsd_config_t.user and
 * .group) once the master holds what needs root (the bus connection, the runtime and spool
 * directories), before the workers are forked.
 *
 *   privileges_resolve   looks the names up (getpwnam_r / getgrnam_r; an all-digit value that
 *                        names no entry is taken as a numeric id) into a privileges_t, without
 *                        changing anything, so that a typo is reported before anything starts;
 *   privileges_chown_dir hands one directory created as root to that user and group;
 *   privileges_drop      supplementary groups, gid, uid, in that order (setresgid/setresuid:
 *                        real, effective and saved ids alike), then checks the result and that
 *                        root cannot be regained.
 *
 * Owns: nothing beyond the caller's privileges_t (plain values, no heap); no printing: every
 * function returns 0 or -1 and writes its message into the caller's buffer.
 */
#ifndef EVENTSD_PRIVILEGES_H
#define EVENTSD_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PRIVILEGES_NAME_MAX 256

typedef struct {
    bool  enabled;                    /* false when no user is configured: nothing to do */
    uid_t uid;
    gid_t gid;                        /* the configured group, else the user's primary group */
    char  user[PRIVILEGES_NAME_MAX];  /* passwd name of uid, "" when uid has no passwd entry;
                                         its supplementary groups come from initgroups(user) */
    char  group[PRIVILEGES_NAME_MAX]; /* group name of gid, "" when gid has no group entry */
} privileges_t;

/* Resolves user and group (either may be NULL; group without user is an error; group NULL
 * means the user's primary group). user NULL: out->enabled = false and 0. A name is looked up
 * first; an all-digit value that is no name is a numeric id, and a numeric uid without a
 * passwd entry needs an explicit group. 0, or -1 with a message naming the value in err. */
int privileges_resolve(const char *user, const char *group, privileges_t *out, char *err,
                       size_t errlen);

/* Switches the process to p. Not enabled: 0, nothing done. Running as root: initgroups (or,
 * without a passwd entry, the gid alone), setresgid, setresuid; then verifies the real,
 * effective and saved ids, and, when the target is not root, that setuid(0) and setgid(0) now
 * fail. Not root: 0 when the real and effective ids already are p's, else -1 and nothing is
 * changed. -1 with err on any failure: the caller must not go on running as root then. */
int privileges_drop(const privileges_t *p, char *err, size_t errlen);

/* Gives the directory at path (not a symlink: O_NOFOLLOW) to p's uid and gid. Only the
 * directory itself: its contents are not walked, since a hard link planted in a directory an
 * unprivileged user could write would otherwise hand that user any file. Not enabled: 0.
 * 0, or -1 with err naming the path. */
int privileges_chown_dir(const char *path, const privileges_t *p, char *err, size_t errlen);

/* Gives the regular files directly in path that have a single link (a spool's segments and
 * cursors left by a run as root) to p's uid and gid; symlinks, hard-linked files and
 * subdirectories are left alone. Not enabled: 0. 0, or -1 with err. */
int privileges_chown_files(const char *path, const privileges_t *p, char *err, size_t errlen);

#endif
