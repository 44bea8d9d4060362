/* Tests for daemon/privileges.c: resolving users and groups (names, numeric ids, the primary
 * group default, unknown names), and real privilege drops, each inside a forked child so that
 * the test process keeps its ids: the ids and supplementary groups afterwards, that root cannot
 * be regained, and the not-root paths. The drop and chown tests need root (cr_skip otherwise).
 * Users and groups the tests rely on (root, nobody, daemon) exist on every Debian system; ids
 * are looked up, not assumed. */
#include "privileges.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NO_USER  "eventsd_no_such_user"
#define NO_GROUP "eventsd_no_such_group"
#define FREE_UID "4242000"     /* an id with no passwd entry (checked) */
#define FREE_GID "4242001"     /* an id with no group entry (checked) */

static uid_t uid_of(const char *name)
{
    struct passwd *pw = getpwnam(name);
    cr_assert(pw != NULL, "test needs user '%s'", name);
    return pw->pw_uid;
}

static gid_t primary_gid_of(const char *name)
{
    struct passwd *pw = getpwnam(name);
    cr_assert(pw != NULL, "test needs user '%s'", name);
    return pw->pw_gid;
}

static gid_t gid_of(const char *name)
{
    struct group *gr = getgrnam(name);
    cr_assert(gr != NULL, "test needs group '%s'", name);
    return gr->gr_gid;
}

static const char *group_name_of(gid_t gid)
{
    struct group *gr = getgrgid(gid);
    return gr ? gr->gr_name : "";
}

static void check_free_ids(void)
{
    cr_assert(getpwnam(NO_USER) == NULL && getgrnam(NO_GROUP) == NULL);
    cr_assert(getpwuid((uid_t) atol(FREE_UID)) == NULL, "uid " FREE_UID " exists here");
    cr_assert(getgrgid((gid_t) atol(FREE_GID)) == NULL, "gid " FREE_GID " exists here");
}

/* ---- resolve ---- */

typedef struct {
    const char *user, *group;   /* the config values */
    bool        ok;
    bool        enabled;
    const char *want_user;      /* passwd name expected in out->user ("" = none); its uid is
                                   looked up, or want_uid is taken when it is "" */
    long        want_uid;
    const char *want_group;     /* group name expected ("" = none, use want_gid; NULL = the
                                   primary group of want_user) */
    long        want_gid;
    const char *err;            /* substring of the message when !ok */
} resolve_case_t;

static const resolve_case_t resolve_cases[] = {
    { NULL, NULL, true, false, "", 0, "", 0, NULL },
    { "root", NULL, true, true, "root", 0, NULL, 0, NULL },
    { "nobody", NULL, true, true, "nobody", 0, NULL, 0, NULL },
    { "nobody", "daemon", true, true, "nobody", 0, "daemon", 0, NULL },
    { "nobody", "0", true, true, "nobody", 0, "root", 0, NULL },
    { "0", NULL, true, true, "root", 0, NULL, 0, NULL },
    { "65534", "daemon", true, true, "nobody", 0, "daemon", 0, NULL },
    { FREE_UID, FREE_GID, true, true, "", 4242000, "", 4242001, NULL },
    { FREE_UID, "daemon", true, true, "", 4242000, "daemon", 0, NULL },
    { FREE_UID, NULL, false, false, "", 0, "", 0, "numeric uid without a passwd entry" },
    { NO_USER, NULL, false, false, "", 0, "", 0, "unknown user '" NO_USER "'" },
    { NO_USER, "daemon", false, false, "", 0, "", 0, "unknown user '" NO_USER "'" },
    { "nobody", NO_GROUP, false, false, "", 0, "", 0, "unknown group '" NO_GROUP "'" },
    { NULL, "daemon", false, false, "", 0, "", 0, "group 'daemon' needs a user" },
    { "", NULL, false, false, "", 0, "", 0, "empty user name" },
    { "nobody", "", false, false, "", 0, "", 0, "empty group name" },
    { "4294967295", NULL, false, false, "", 0, "", 0, "unknown user '4294967295'" },
    { "-1", NULL, false, false, "", 0, "", 0, "unknown user '-1'" },
    { "12x", NULL, false, false, "", 0, "", 0, "unknown user '12x'" },
    { "99999999999999999999999", NULL, false, false, "", 0, "", 0, "unknown user" },
};

Test(privileges, resolve_table)
{
    check_free_ids();
    for (size_t i = 0; i < sizeof resolve_cases / sizeof *resolve_cases; i++) {
        const resolve_case_t *c = &resolve_cases[i];
        char label[128];
        snprintf(label, sizeof label, "case %zu (user %s, group %s)", i,
                 c->user ? c->user : "NULL", c->group ? c->group : "NULL");
        privileges_t p;
        memset(&p, 0xA5, sizeof p);
        char err[512] = "stale";
        int rc = privileges_resolve(c->user, c->group, &p, err, sizeof err);
        if (!c->ok) {
            cr_expect_eq(rc, -1, "%s: expected an error", label);
            cr_expect(strstr(err, c->err) != NULL, "%s: message '%s' lacks '%s'", label, err,
                      c->err);
            continue;
        }
        cr_expect_eq(rc, 0, "%s: %s", label, err);
        cr_expect_str_eq(err, "", "%s", label);
        cr_expect_eq(p.enabled, c->enabled, "%s: enabled", label);
        if (!c->enabled)
            continue;
        uid_t want_uid = c->want_user[0] ? uid_of(c->want_user) : (uid_t) c->want_uid;
        gid_t want_gid = !c->want_group     ? primary_gid_of(c->want_user)
                         : c->want_group[0] ? gid_of(c->want_group) : (gid_t) c->want_gid;
        const char *want_group = c->want_group ? c->want_group : group_name_of(want_gid);
        cr_expect_eq(p.uid, want_uid, "%s: uid %lu", label, (unsigned long) p.uid);
        cr_expect_eq(p.gid, want_gid, "%s: gid %lu", label, (unsigned long) p.gid);
        cr_expect_str_eq(p.user, c->want_user, "%s: user name", label);
        cr_expect_str_eq(p.group, want_group, "%s: group name", label);
    }
}

Test(privileges, null_buffers_are_tolerated)
{
    privileges_t p;
    cr_expect_eq(privileges_resolve(NO_USER, NULL, &p, NULL, 0), -1);
    cr_expect_eq(privileges_resolve("root", NULL, NULL, NULL, 0), -1);
    cr_expect_eq(privileges_resolve("root", NULL, &p, NULL, 0), 0);
    cr_expect_eq(privileges_drop(NULL, NULL, 0), 0);
    cr_expect_eq(privileges_chown_dir("/nonexistent", NULL, NULL, 0), 0);
}

Test(privileges, disabled_does_nothing)
{
    privileges_t p;
    char err[256];
    cr_assert_eq(privileges_resolve(NULL, NULL, &p, err, sizeof err), 0);
    uid_t uid = getuid(), euid = geteuid();
    gid_t gid = getgid(), egid = getegid();
    cr_expect_eq(privileges_drop(&p, err, sizeof err), 0, "%s", err);
    cr_expect_eq(privileges_chown_dir("/nonexistent", &p, err, sizeof err), 0, "%s", err);
    cr_expect(getuid() == uid && geteuid() == euid && getgid() == gid && getegid() == egid);
}

/* ---- drop, in a child ---- */

/* The child reports the first failed check through a pipe; "" means all passed. */
static int report_fd = -1;

__attribute__((format(printf, 1, 2), noreturn))
static void child_fail(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int) sizeof buf - 1)
        n = (int) sizeof buf - 1;
    if (write(report_fd, buf, (size_t) n) < 0)
        _exit(3);
    _exit(1);
}

/* Runs body in a forked child and fails the test with the child's message, if any. */
static void in_child(void (*body)(const void *), const void *arg, const char *label)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork");
    if (pid == 0) {
        close(fds[0]);
        report_fd = fds[1];
        body(arg);
        _exit(0);
    }
    close(fds[1]);
    char msg[1024];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof msg - 1 &&
           ((n = read(fds[0], msg + used, sizeof msg - 1 - used)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            used += (size_t) n;
    msg[used] = '\0';
    close(fds[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child failed: %s (status %#x)",
              label, used ? msg : "no message", status);
}

static int cmp_gid(const void *a, const void *b)
{
    gid_t x = *(const gid_t *) a, y = *(const gid_t *) b;
    return x < y ? -1 : x > y;
}

/* Sorted, duplicates removed; returns the new count. */
static int normalise(gid_t *g, int n)
{
    qsort(g, (size_t) n, sizeof *g, cmp_gid);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || g[k - 1] != g[i])
            g[k++] = g[i];
    return k;
}

/* The supplementary groups after a drop: getgrouplist(user, gid) for a passwd user, {gid}
 * for a bare uid. */
static void check_groups(const privileges_t *p)
{
    gid_t want[1024], have[1024];
    int n_want = 1024;
    if (p->user[0]) {
        if (getgrouplist(p->user, p->gid, want, &n_want) < 0)
            child_fail("getgrouplist(%s) needs %d entries", p->user, n_want);
    } else {
        want[0] = p->gid;
        n_want = 1;
    }
    int n_have = getgroups(1024, have);
    if (n_have < 0)
        child_fail("getgroups: %s", strerror(errno));
    n_want = normalise(want, n_want);
    n_have = normalise(have, n_have);
    if (n_have != n_want || memcmp(have, want, (size_t) n_have * sizeof *have) != 0)
        child_fail("supplementary groups: have %d (first %lu), want %d (first %lu)", n_have,
                   n_have ? (unsigned long) have[0] : 0ul, n_want,
                   n_want ? (unsigned long) want[0] : 0ul);
    for (int i = 0; i < n_have; i++)
        if (have[i] == 0 && p->gid != 0)
            child_fail("gid 0 is still among the supplementary groups");
}

typedef struct {
    const char *user, *group;
} drop_case_t;

static void drop_body(const void *arg)
{
    const drop_case_t *c = arg;
    char err[512];
    privileges_t p;
    if (privileges_resolve(c->user, c->group, &p, err, sizeof err) != 0)
        child_fail("resolve: %s", err);
    if (privileges_drop(&p, err, sizeof err) != 0)
        child_fail("drop: %s", err);
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0)
        child_fail("getresuid: %s", strerror(errno));
    if (r != p.uid || e != p.uid || s != p.uid)
        child_fail("uids %lu/%lu/%lu, want %lu", (unsigned long) r, (unsigned long) e,
                   (unsigned long) s, (unsigned long) p.uid);
    if (getuid() != p.uid || getgid() != p.gid)
        child_fail("getuid %lu getgid %lu", (unsigned long) getuid(), (unsigned long) getgid());
    if (rg != p.gid || eg != p.gid || sg != p.gid)
        child_fail("gids %lu/%lu/%lu, want %lu", (unsigned long) rg, (unsigned long) eg,
                   (unsigned long) sg, (unsigned long) p.gid);
    check_groups(&p);
    errno = 0;
    if (setuid(0) == 0 || errno != EPERM)
        child_fail("setuid(0) after the drop: %s", errno ? strerror(errno) : "succeeded");
    if (seteuid(0) == 0)
        child_fail("seteuid(0) succeeded after the drop");
    if (p.gid != 0 && (setgid(0) == 0 || setegid(0) == 0))
        child_fail("setgid(0) succeeded after the drop");
    gid_t root_group = 0;
    if (setgroups(1, &root_group) == 0)
        child_fail("setgroups succeeded after the drop");
    /* Now not root: the same target again is "already that user". */
    if (privileges_drop(&p, err, sizeof err) != 0)
        child_fail("second drop to the same ids: %s", err);
}

static const drop_case_t drop_cases[] = {
    { "nobody", NULL },
    { "nobody", "daemon" },
    { "daemon", "nogroup" },
    { FREE_UID, FREE_GID },
    { "65534", "0" },         /* gid 0 kept on purpose: dropping the uid is still checked */
};

Test(privileges, drop_table_in_child)
{
    if (geteuid() != 0)
        cr_skip("needs root to drop privileges");
    check_free_ids();
    for (size_t i = 0; i < sizeof drop_cases / sizeof *drop_cases; i++) {
        char label[128];
        snprintf(label, sizeof label, "drop to %s:%s", drop_cases[i].user,
                 drop_cases[i].group ? drop_cases[i].group : "(primary)");
        in_child(drop_body, &drop_cases[i], label);
    }
}

/* After dropping to nobody, a drop to another user must fail, say why, and change nothing. */
static void not_root_body(const void *arg)
{
    (void) arg;
    char err[512];
    privileges_t nobody, daemon_, root;
    if (privileges_resolve("nobody", NULL, &nobody, err, sizeof err) != 0 ||
        privileges_resolve("daemon", NULL, &daemon_, err, sizeof err) != 0 ||
        privileges_resolve("root", NULL, &root, err, sizeof err) != 0)
        child_fail("resolve: %s", err);
    if (privileges_drop(&nobody, err, sizeof err) != 0)
        child_fail("drop: %s", err);
    const privileges_t *others[] = { &daemon_, &root };
    for (size_t i = 0; i < 2; i++) {
        err[0] = '\0';
        if (privileges_drop(others[i], err, sizeof err) != -1)
            child_fail("drop to %s as nobody succeeded", others[i]->user);
        if (!strstr(err, "not running as root") || !strstr(err, others[i]->user))
            child_fail("unclear message: %s", err);
        if (getuid() != nobody.uid || geteuid() != nobody.uid || getgid() != nobody.gid)
            child_fail("ids changed by a failed drop");
    }
    /* Same uid, other group: not "already that user" either. */
    privileges_t other_group = nobody;
    other_group.gid = daemon_.gid;
    if (privileges_drop(&other_group, err, sizeof err) != -1)
        child_fail("drop to nobody:daemon as nobody:%lu succeeded", (unsigned long) nobody.gid);
}

Test(privileges, drop_when_not_root)
{
    if (geteuid() != 0)
        cr_skip("needs root to become another user first");
    in_child(not_root_body, NULL, "not root");
}

/* Running as a plain user from the start (no fork needed when the tests are not root). */
Test(privileges, drop_to_self_when_not_root)
{
    if (geteuid() == 0)
        cr_skip("covered by drop_when_not_root when running as root");
    struct passwd *pw = getpwuid(getuid());
    cr_assert(pw != NULL);
    privileges_t p;
    char err[512];
    cr_assert_eq(privileges_resolve(pw->pw_name, NULL, &p, err, sizeof err), 0, "%s", err);
    p.gid = getgid();
    cr_expect_eq(privileges_drop(&p, err, sizeof err), 0, "%s", err);
}

/* ---- chown_dir ---- */

Test(privileges, chown_dir)
{
    if (geteuid() != 0)
        cr_skip("needs root to chown");
    char dir[] = "/tmp/eventsd-test-privileges-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char sub[PATH_MAX], link[PATH_MAX], file[PATH_MAX], missing[PATH_MAX], inner[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/spool", dir);
    snprintf(inner, sizeof inner, "%s/spool/segment", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    snprintf(file, sizeof file, "%s/file", dir);
    snprintf(missing, sizeof missing, "%s/missing", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    FILE *f = fopen(inner, "w");
    cr_assert(f != NULL);
    fclose(f);
    f = fopen(file, "w");
    cr_assert(f != NULL);
    fclose(f);
    cr_assert_eq(symlink(sub, link), 0);

    privileges_t p;
    char err[512];
    cr_assert_eq(privileges_resolve("nobody", "daemon", &p, err, sizeof err), 0, "%s", err);
    cr_expect_eq(privileges_chown_dir(sub, &p, err, sizeof err), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(sub, &st), 0);
    cr_expect(st.st_uid == p.uid && st.st_gid == p.gid, "owner %lu:%lu",
              (unsigned long) st.st_uid, (unsigned long) st.st_gid);
    cr_expect_eq(st.st_mode & 07777, 0700, "mode kept");
    cr_assert_eq(stat(inner, &st), 0);
    cr_expect(st.st_uid == 0 && st.st_gid == 0, "contents are not walked");
    cr_expect_eq(privileges_chown_dir(sub, &p, err, sizeof err), 0, "again: %s", err);

    typedef struct { const char *path, *err; } bad_t;
    const bad_t bad[] = {
        { link, "is a symbolic link" },
        { file, "cannot open directory" },
        { missing, "cannot open directory" },
        { "", "no path" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        cr_expect_eq(privileges_chown_dir(bad[i].path, &p, err, sizeof err), -1, "%s",
                     bad[i].path);
        cr_expect(strstr(err, bad[i].err) && strstr(err, bad[i].path), "%s: '%s'",
                  bad[i].path, err);
    }
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect_eq(st.st_uid, 0, "the symlink itself untouched");

    unlink(link);
    unlink(file);
    unlink(inner);
    rmdir(sub);
    rmdir(dir);
}
