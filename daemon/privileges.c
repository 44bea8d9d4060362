/* privileges: resolve the configured user and group, hand directories to them, drop root
 * (see privileges.h). */
#include "privileges.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOOKUP_BUF_MIN 4096
#define LOOKUP_BUF_MAX (1u << 20)

/* ---- lookups ---- */

/* getpw*_r and getgr*_r report "no such entry" as 0 with a NULL result, or, depending on the
 * NSS module, as one of these (getpwnam_r(3)). */
static bool not_found(int rc)
{
    return rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM;
}

/* An all-digit id that fits and is not (id_t) -1, which the set*id calls read as "unchanged". */
static bool numeric_id(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s[0] || strspn(s, "0123456789") != strlen(s) || strlen(s) > 20)
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno != 0 || v >= max)
        return false;
    *out = v;
    return true;
}

typedef enum { LOOK_FOUND, LOOK_NONE, LOOK_ERROR } look_t;

typedef struct {
    uid_t uid;
    gid_t gid;
    char  name[PRIVILEGES_NAME_MAX];
} entry_t;

/* One passwd lookup, by name (name != NULL) or by uid. */
static look_t lookup_passwd(const char *name, uid_t uid, entry_t *e, int *err_out)
{
    size_t size = LOOKUP_BUF_MIN;
    for (;;) {
        char *buf = malloc(size);
        if (!buf) {
            *err_out = ENOMEM;
            return LOOK_ERROR;
        }
        struct passwd pw, *res = NULL;
        int rc = name ? getpwnam_r(name, &pw, buf, size, &res)
                      : getpwuid_r(uid, &pw, buf, size, &res);
        if (rc == ERANGE && size < LOOKUP_BUF_MAX) {
            free(buf);
            size *= 2;
            continue;
        }
        look_t out = LOOK_FOUND;
        if (res) {
            e->uid = pw.pw_uid;
            e->gid = pw.pw_gid;
            snprintf(e->name, sizeof e->name, "%s", pw.pw_name);
        } else if (not_found(rc)) {
            out = LOOK_NONE;
        } else {
            *err_out = rc;
            out = LOOK_ERROR;
        }
        free(buf);
        return out;
    }
}

/* One group lookup, by name (name != NULL) or by gid. */
static look_t lookup_group(const char *name, gid_t gid, entry_t *e, int *err_out)
{
    size_t size = LOOKUP_BUF_MIN;
    for (;;) {
        char *buf = malloc(size);
        if (!buf) {
            *err_out = ENOMEM;
            return LOOK_ERROR;
        }
        struct group gr, *res = NULL;
        int rc = name ? getgrnam_r(name, &gr, buf, size, &res)
                      : getgrgid_r(gid, &gr, buf, size, &res);
        if (rc == ERANGE && size < LOOKUP_BUF_MAX) {
            free(buf);
            size *= 2;
            continue;
        }
        look_t out = LOOK_FOUND;
        if (res) {
            e->gid = gr.gr_gid;
            snprintf(e->name, sizeof e->name, "%s", gr.gr_name);
        } else if (not_found(rc)) {
            out = LOOK_NONE;
        } else {
            *err_out = rc;
            out = LOOK_ERROR;
        }
        free(buf);
        return out;
    }
}

static int resolve_user(const char *user, privileges_t *out, bool *has_primary,
                        gid_t *primary, char *err, size_t errlen)
{
    entry_t e = { 0 };
    int code = 0;
    unsigned long long n;
    look_t r = lookup_passwd(user, 0, &e, &code);
    if (r == LOOK_NONE && numeric_id(user, (uid_t) -1, &n)) {
        out->uid = (uid_t) n;
        r = lookup_passwd(NULL, (uid_t) n, &e, &code);
        if (r == LOOK_NONE) {   /* a bare uid: fine, but its group must be given */
            *has_primary = false;
            return 0;
        }
    }
    if (r == LOOK_ERROR) {
        snprintf(err, errlen, "cannot look up user '%s': %s", user, strerror(code));
        return -1;
    }
    if (r == LOOK_NONE) {
        snprintf(err, errlen, "unknown user '%s' (no passwd entry, not a numeric uid)", user);
        return -1;
    }
    out->uid = e.uid;
    snprintf(out->user, sizeof out->user, "%s", e.name);
    *has_primary = true;
    *primary = e.gid;
    return 0;
}

static int resolve_group(const char *group, privileges_t *out, char *err, size_t errlen)
{
    entry_t e = { 0 };
    int code = 0;
    unsigned long long n;
    look_t r = lookup_group(group, 0, &e, &code);
    if (r == LOOK_NONE && numeric_id(group, (gid_t) -1, &n)) {
        out->gid = (gid_t) n;
        r = lookup_group(NULL, (gid_t) n, &e, &code);
        if (r == LOOK_NONE)
            return 0;   /* a bare gid */
    }
    if (r == LOOK_ERROR) {
        snprintf(err, errlen, "cannot look up group '%s': %s", group, strerror(code));
        return -1;
    }
    if (r == LOOK_NONE) {
        snprintf(err, errlen, "unknown group '%s' (no group entry, not a numeric gid)", group);
        return -1;
    }
    out->gid = e.gid;
    snprintf(out->group, sizeof out->group, "%s", e.name);
    return 0;
}

int privileges_resolve(const char *user, const char *group, privileges_t *out, char *err,
                       size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!out) {
        snprintf(err, errlen, "privileges_resolve: no output");
        return -1;
    }
    *out = (privileges_t){ .enabled = false };
    if (!user) {
        if (!group)
            return 0;
        snprintf(err, errlen, "group '%s' needs a user (privileges are dropped to both)", group);
        return -1;
    }
    if (!user[0] || (group && !group[0])) {
        snprintf(err, errlen, "empty %s name", user[0] ? "group" : "user");
        return -1;
    }
    bool has_primary = false;
    gid_t primary = 0;
    if (resolve_user(user, out, &has_primary, &primary, err, errlen) != 0)
        return -1;
    if (group) {
        if (resolve_group(group, out, err, errlen) != 0)
            return -1;
    } else if (has_primary) {
        entry_t e = { 0 };
        int code = 0;
        out->gid = primary;
        if (lookup_group(NULL, primary, &e, &code) == LOOK_FOUND)
            snprintf(out->group, sizeof out->group, "%s", e.name);
    } else {
        snprintf(err, errlen, "user '%s' is a numeric uid without a passwd entry, so it has no "
                 "primary group: set 'group' too", user);
        return -1;
    }
    out->enabled = true;
    return 0;
}

/* ---- drop ---- */

/* "user 'eventsd' (uid 105) and group 'eventsd' (gid 111)", names left out when unknown. */
static void describe(const privileges_t *p, char *buf, size_t len)
{
    snprintf(buf, len, "user %s%s%s(uid %lu) and group %s%s%s(gid %lu)",
             p->user[0] ? "'" : "", p->user, p->user[0] ? "' " : "", (unsigned long) p->uid,
             p->group[0] ? "'" : "", p->group, p->group[0] ? "' " : "", (unsigned long) p->gid);
}

static int fail_errno(char *err, size_t errlen, const char *what, const char *who)
{
    snprintf(err, errlen, "cannot switch to %s: %s failed: %s", who, what, strerror(errno));
    return -1;
}

int privileges_drop(const privileges_t *p, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!p || !p->enabled)
        return 0;
    char who[2 * PRIVILEGES_NAME_MAX + 96];
    describe(p, who, sizeof who);
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0)
        return fail_errno(err, errlen, "getresuid/getresgid", who);

    if (euid != 0) {
        if (ruid == p->uid && euid == p->uid && suid == p->uid && rgid == p->gid &&
            egid == p->gid && sgid == p->gid)
            return 0;   /* started as that user already */
        snprintf(err, errlen, "cannot switch to %s: not running as root (uid %lu/%lu/%lu, "
                 "gid %lu/%lu/%lu real/effective/saved); start eventsd as root or as that user",
                 who, (unsigned long) ruid, (unsigned long) euid, (unsigned long) suid,
                 (unsigned long) rgid, (unsigned long) egid, (unsigned long) sgid);
        return -1;
    }

    /* Groups first: once the uid is gone there is no right left to change them. */
    if (p->user[0]) {
        if (initgroups(p->user, p->gid) != 0)
            return fail_errno(err, errlen, "initgroups", who);
    } else if (setgroups(1, &p->gid) != 0) {
        return fail_errno(err, errlen, "setgroups", who);
    }
    if (setresgid(p->gid, p->gid, p->gid) != 0)
        return fail_errno(err, errlen, "setresgid", who);
    if (setresuid(p->uid, p->uid, p->uid) != 0)
        return fail_errno(err, errlen, "setresuid", who);

    if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0)
        return fail_errno(err, errlen, "getresuid/getresgid", who);
    if (ruid != p->uid || euid != p->uid || suid != p->uid || rgid != p->gid ||
        egid != p->gid || sgid != p->gid) {
        snprintf(err, errlen, "cannot switch to %s: ids after the switch are uid %lu/%lu/%lu "
                 "gid %lu/%lu/%lu", who, (unsigned long) ruid, (unsigned long) euid,
                 (unsigned long) suid, (unsigned long) rgid, (unsigned long) egid,
                 (unsigned long) sgid);
        return -1;
    }
    if (p->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(err, errlen, "switched to %s, but root can be regained (setuid(0) succeeded): "
                 "refusing to go on", who);
        return -1;
    }
    if (p->uid != 0 && p->gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
        snprintf(err, errlen, "switched to %s, but gid 0 can be regained (setgid(0) "
                 "succeeded): refusing to go on", who);
        return -1;
    }
    return 0;
}

/* ---- directories ---- */

int privileges_chown_dir(const char *path, const privileges_t *p, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!p || !p->enabled)
        return 0;
    if (!path || !path[0]) {
        snprintf(err, errlen, "cannot hand a directory over: no path");
        return -1;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        struct stat st;
        if ((e == ELOOP || e == ENOTDIR) && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            snprintf(err, errlen, "%s: is a symbolic link; refusing to chown it", path);
        else
            snprintf(err, errlen, "%s: cannot open directory: %s", path, strerror(e));
        return -1;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        rc = -1;
    } else if ((st.st_uid != p->uid || st.st_gid != p->gid) && fchown(fd, p->uid, p->gid) != 0) {
        char who[2 * PRIVILEGES_NAME_MAX + 96];
        describe(p, who, sizeof who);
        snprintf(err, errlen, "%s: cannot give it to %s: %s", path, who, strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc;
}

/* Files left by an earlier run as root (a spool's segments and cursors) must become the user's
 * too. Only regular files with a single link, directly in the directory, symlinks untouched:
 * a hard link the user planted to some other file has two links and is skipped. */
int privileges_chown_files(const char *path, const privileges_t *p, char *err, size_t errlen)
{
    if (!p || !p->enabled)
        return 0;
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open directory: %s", path, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            st.st_nlink != 1 || (st.st_uid == p->uid && st.st_gid == p->gid))
            continue;
        if (fchownat(dfd, e->d_name, p->uid, p->gid, AT_SYMLINK_NOFOLLOW) != 0) {
            snprintf(err, errlen, "%s/%s: cannot chown: %s", path, e->d_name, strerror(errno));
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}
