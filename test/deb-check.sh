#!/usr/bin/env bash
# deb-check: builds the Debian package from a clean copy of the source tree, lints it, installs
# it, runs the installed daemon as the `eventsd` user against an eventsd-pub bus, and checks
# that an upgrade keeps operator edits, that remove keeps config and data and that purge removes
# them and the system user. Run as root on Debian 12 (`make deb-check`, part of `make check`).
# systemd need not be running: the unit is checked with `systemd-analyze verify` and the daemon
# is started the way its ExecStart would be (as User=eventsd, with no new privileges).
#
# Environment:
#   DEB_CHECK_SOURCE=worktree (default)  build from the files git tracks or would track
#                                        (`git ls-files --cached --others --exclude-standard`):
#                                        uncommitted edits count, ignored build dirs do not
#   DEB_CHECK_SOURCE=head                build from the committed tree only (`git archive HEAD`)
#   DEB_CHECK_FORCE=1                    purge an eventsd package/data already on the machine
#                                        first (refused otherwise: it may be someone's real one)
#   DEADLINE=SECONDS                     longest wait for any one condition (default 240)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=deb-check
SRC_MODE=${DEB_CHECK_SOURCE:-worktree}
DEADLINE=${DEADLINE:-240}
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8

PASSED=0
STARTED_PIDS=""
INSTALLED_BY_US=0
RUN_DIR=""
TEST_DB=""
T=$(mktemp -d /tmp/eventsd-deb.XXXXXX)
# The eventsd user must reach the test config and the bus socket below $T; apt's _apt user
# reads the .deb from it.
chmod 0755 "$T"

pass() { echo "ok   [$NAME]: $*"; PASSED=$((PASSED + 1)); }
note() { echo "     [$NAME] $*"; }
fail() { echo "FAIL [$NAME]: $*" >&2; exit 1; }

pkg_state() { dpkg-query -W -f='${db:Status-Status}' eventsd 2>/dev/null || true; }

cleanup() {
    rc=$?
    set +e
    # The daemon's workers too (they would exit on their own once the master is gone, but
    # userdel in the purge below refuses a user that still runs processes).
    kids=""
    for p in $STARTED_PIDS; do kids="$kids $(ps -o pid= --ppid "$p" 2>/dev/null)"; done
    for p in $STARTED_PIDS $kids; do kill -9 "$p" 2>/dev/null; done
    for p in $STARTED_PIDS; do wait "$p" 2>/dev/null; done
    for p in $kids; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    if [ "$rc" != 0 ]; then
        echo "---- $NAME failed after $PASSED passed checks; logs from $T:"
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $f (last 60 lines)"
            tail -n 60 "$f"
        done
    fi
    [ -n "$TEST_DB" ] && rm -f "$TEST_DB" "$TEST_DB"-wal "$TEST_DB"-shm "$TEST_DB"-journal \
        "${TEST_DB%.db}.dead.jsonl" "${TEST_DB%.db}".triggers.db*
    [ -n "$RUN_DIR" ] && rm -rf "$RUN_DIR"
    if [ "$INSTALLED_BY_US" = 1 ] && [ -n "$(pkg_state)" ] && [ "$(pkg_state)" != not-installed ]; then
        echo "     [$NAME] cleanup: purging the eventsd package this run installed"
        apt-get purge -y -q eventsd </dev/null >"$T/cleanup-purge.log" 2>&1 \
            || dpkg --purge --force-all eventsd >>"$T/cleanup-purge.log" 2>&1 \
            || { echo "     [$NAME] cleanup: purge failed:"; cat "$T/cleanup-purge.log"; }
    fi
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for "what" SECONDS command...: polls until the command succeeds.
wait_for() {
    local what=$1 secs=$2 end
    shift 2
    end=$(( $(date +%s) + secs ))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.2
    done
}

# wait_pid PID SECONDS: waits for a child to exit and returns its exit code.
wait_pid() {
    local pid=$1 secs=$2 end state code
    end=$(( $(date +%s) + secs ))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$(date +%s)" -lt "$end" ] || fail "process $pid still running after ${secs}s"
        state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
        case "$state" in Z*) break ;; esac
        sleep 0.2
    done
    set +e
    wait "$pid"
    code=$?
    set -e
    return "$code"
}

[ "$(id -u)" = 0 ] || fail "must run as root (installs and removes the package)"

# ---- 1. packaging tools -----------------------------------------------------------------------
"$ROOT/test/install-deps.sh"
"$ROOT/test/install-deps.sh" debhelper dpkg-dev fakeroot lintian txt2man adduser git systemd \
    util-linux sqlite3 binutils </dev/null
pass "packaging tools present (debhelper dpkg-dev fakeroot lintian txt2man adduser)"

# An eventsd already on this machine may be an operator's: never touch it without being told.
state=$(pkg_state)
if [ -n "$state" ] && [ "$state" != not-installed ] || [ -e /var/lib/eventsd ] || [ -e /etc/eventsd ]; then
    if [ "${DEB_CHECK_FORCE:-0}" = 1 ]; then
        note "DEB_CHECK_FORCE=1: purging the eventsd already here (state '${state:-none}')"
        apt-get purge -y -q eventsd </dev/null >/dev/null 2>&1 || true
        rm -rf /var/lib/eventsd /etc/eventsd
    else
        fail "eventsd is already on this machine (package state '${state:-none}', /var/lib/eventsd or /etc/eventsd present); purge it, or rerun with DEB_CHECK_FORCE=1"
    fi
fi

# ---- 2. build from a clean copy of the tree ---------------------------------------------------
SRC_PARENT="$T/src"
mkdir -p "$SRC_PARENT/tree"
case "$SRC_MODE" in
    head)
        git -C "$ROOT" archive --format=tar HEAD | tar -x -C "$SRC_PARENT/tree" ;;
    worktree)
        # Tracked files that still exist plus untracked ones that are not ignored.
        (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
            | tar --null -T - -cf -) | tar -x -C "$SRC_PARENT/tree" ;;
    *) fail "DEB_CHECK_SOURCE must be worktree or head, not '$SRC_MODE'" ;;
esac
if [ ! -f "$SRC_PARENT/tree/debian/control" ] || [ ! -f "$SRC_PARENT/tree/debian/changelog" ]; then
    fail "no debian/control or debian/changelog in the $SRC_MODE tree (is debian/ committed? DEB_CHECK_SOURCE=worktree builds uncommitted files too)"
fi
VERSION=$(dpkg-parsechangelog -l "$SRC_PARENT/tree/debian/changelog" -S Version)
UPSTREAM=${VERSION%-*}
ARCH=$(dpkg --print-architecture)
SRC="$SRC_PARENT/eventsd-$UPSTREAM"
mv "$SRC_PARENT/tree" "$SRC"
for d in build build-asan build-clang demo; do
    [ ! -e "$SRC/$d" ] || fail "the $SRC_MODE copy contains $d/: build output leaks into the source"
done
note "building eventsd $VERSION ($ARCH) from the $SRC_MODE tree in $SRC"
start=$(date +%s)
if ! (cd "$SRC" && dpkg-buildpackage -b -us -uc) >"$T/build.log" 2>&1 </dev/null; then
    tail -n 80 "$T/build.log" >&2
    rm -f "$T/build.log"
    fail "dpkg-buildpackage -b -us -uc failed (last lines above)"
fi
DEB="$SRC_PARENT/eventsd_${VERSION}_${ARCH}.deb"
DBG="$SRC_PARENT/eventsd-dbgsym_${VERSION}_${ARCH}.deb"
[ -f "$DEB" ] || fail "dpkg-buildpackage made no $(basename "$DEB"): $(ls "$SRC_PARENT")"
[ -f "$DBG" ] || fail "dpkg-buildpackage made no $(basename "$DBG"): $(ls "$SRC_PARENT")"
pass "dpkg-buildpackage -b -us -uc built $(basename "$DEB") and $(basename "$DBG") in $(( $(date +%s) - start ))s"
# The debug symbols really are split out: the dbgsym holds .debug files, the binaries none.
dpkg-deb -c "$DBG" >"$T/dbgsym.list"
grep -q '/usr/lib/debug/.build-id/.*\.debug$' "$T/dbgsym.list" \
    || fail "$(basename "$DBG") holds no /usr/lib/debug/.build-id/*.debug file"
for b in usr/sbin/eventsd usr/bin/eventsd-pub usr/bin/eventsd-counts; do
    dpkg-deb --fsys-tarfile "$DEB" | tar -xO "./$b" >"$T/bin.tmp"
    if readelf -S "$T/bin.tmp" | grep -q '\.debug_info'; then fail "/$b in the .deb is not stripped"; fi
done
rm -f "$T/bin.tmp"
pass "debug symbols are in the -dbgsym package, the binaries are stripped"

# ---- 3. lintian --------------------------------------------------------------------------------
set +e
# lintian advises against running as root: run it as nobody when that can read the .debs.
LINTIAN=(lintian)
if getent passwd nobody >/dev/null && setpriv --reuid=nobody --regid=nogroup --clear-groups test -r "$DEB"; then
    LINTIAN=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/nonexistent lintian)
fi
"${LINTIAN[@]}" --display-info --fail-on error "$DEB" "$DBG" >"$T/lintian.out" 2>&1 </dev/null
lrc=$?
set -e
sed 's/^/     [lintian] /' "$T/lintian.out"
if grep -q '^E: ' "$T/lintian.out"; then
    fail "lintian reports errors (E: lines above)"
fi
[ "$lrc" = 0 ] || fail "lintian exited $lrc with no E: line (crashed?)"
nw=$(grep -c '^W: ' "$T/lintian.out" || true)
ni=$(grep -c '^I: ' "$T/lintian.out" || true)
pass "lintian: no errors ($nw warnings, $ni info tags printed above)"

# ---- 4. install --------------------------------------------------------------------------------
# What apt would add must come from the package's Depends (and their dependencies), nothing
# else: recommends are left out so the package is shown to work with its Depends alone.
DEPENDS=$(dpkg-deb -f "$DEB" Depends Pre-Depends | sed 's/^[A-Za-z-]*: //')
note "Depends: $DEPENDS"
dep_names=$(printf '%s\n' "$DEPENDS" | tr ',|' '\n' | sed 's/(.*)//; s/:any//; s/ //g' | sed '/^$/d' | sort -u)
# shellcheck disable=SC2086
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
            --no-replaces --no-enhances $dep_names 2>/dev/null | grep -v '^ ' | tr -d '<>' \
            | sed 's/:.*//' | sort -u)
apt-get install -s -y --no-install-recommends "$DEB" </dev/null >"$T/apt-sim.log" 2>&1 \
    || { cat "$T/apt-sim.log"; fail "apt-get install -s $(basename "$DEB") fails"; }
new_pkgs=$(sed -n 's/^Inst \([^ ]*\).*/\1/p' "$T/apt-sim.log" | sed 's/:.*//' | grep -vx eventsd || true)
for p in $new_pkgs; do
    printf '%s\n' "$closure" | grep -qx "$p" \
        || fail "installing the .deb would also install $p, which no Depends asks for"
done
INSTALLED_BY_US=1
apt-get install -y -q --no-install-recommends "$DEB" </dev/null >"$T/apt-install.log" 2>&1 \
    || { cat "$T/apt-install.log"; fail "apt-get install ./$(basename "$DEB") failed"; }
[ "$(pkg_state)" = installed ] || fail "eventsd is '$(pkg_state)' after apt-get install, not installed"
pass "apt-get install ./$(basename "$DEB") pulls only Depends (${new_pkgs:-nothing new}: $(echo "$new_pkgs" | wc -w) packages)"

# Every shared library the binaries link is provided by a package named in Depends.
for b in /usr/sbin/eventsd /usr/bin/eventsd-pub /usr/bin/eventsd-counts; do
    for lib in $(readelf -d "$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        path=$(ldd "$b" | awk -v n="$lib" '$1 == n { print $3 }')
        { [ -n "$path" ] && [ -e "$path" ]; } || fail "$b: $lib not found by the loader"
        real=$(readlink -f "$path")
        owner=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null \
                || dpkg -S "$path" 2>/dev/null || true)
        owner=${owner%%:*}
        [ -n "$owner" ] || fail "$b: no package owns $lib ($real)"
        printf '%s\n' "$dep_names" | grep -qx "$owner" \
            || fail "$b needs $lib from $owner, which is not in Depends ($DEPENDS)"
    done
done
pass "every shared library eventsd, eventsd-pub and eventsd-counts link comes from a package in Depends"

[ -x /usr/sbin/eventsd ] || fail "/usr/sbin/eventsd missing or not executable"
[ -x /usr/bin/eventsd-pub ] || fail "/usr/bin/eventsd-pub missing or not executable"
[ -x /usr/bin/eventsd-counts ] || fail "/usr/bin/eventsd-counts missing or not executable"
pass "binaries installed: /usr/sbin/eventsd /usr/bin/eventsd-pub /usr/bin/eventsd-counts"

conffiles=$(dpkg-query --control-show eventsd conffiles 2>/dev/null \
            || cat /var/lib/dpkg/info/eventsd.conffiles 2>/dev/null || true)
printf '%s\n' "$conffiles" | awk '{print $1}' | grep -qx /etc/eventsd/eventsd.conf \
    || fail "/etc/eventsd/eventsd.conf is not a conffile (conffiles: ${conffiles//$'\n'/ })"
[ -f /etc/eventsd/eventsd.conf ] || fail "/etc/eventsd/eventsd.conf missing"
perm=$(stat -c '%U:%G %a' /etc/eventsd/eventsd.conf)
[ "$perm" = "root:eventsd 640" ] || fail "/etc/eventsd/eventsd.conf is $perm, want root:eventsd 640"
grep -q '^sql_dir = "/usr/share/eventsd/sql";' /etc/eventsd/eventsd.conf \
    || fail "/etc/eventsd/eventsd.conf: sql_dir does not point at /usr/share/eventsd/sql"
pass "/etc/eventsd/eventsd.conf is a conffile, root:eventsd 0640, sql_dir=/usr/share/eventsd/sql"

for s in schema jids salt_events salt_returns; do
    [ -s "/usr/share/eventsd/sql/sqlite/$s.sql" ] || fail "/usr/share/eventsd/sql/sqlite/$s.sql missing"
done
pass "SQL schema and templates in /usr/share/eventsd/sql/sqlite: $(cd /usr/share/eventsd/sql/sqlite && echo *.sql)"

for m in man8/eventsd.8 man5/eventsd.conf.5 man1/eventsd-pub.1 man1/eventsd-counts.1; do
    f=/usr/share/man/$m.gz
    [ -f "$f" ] || f=/usr/share/man/$m
    if [ ! -f "$f" ]; then
        grep -rqs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/ \
            && note "dpkg is told to drop /usr/share/man (path-exclude in /etc/dpkg/dpkg.cfg.d)"
        fail "man page /usr/share/man/$m(.gz) not installed"
    fi
    # awk reads to the end: grep -q would quit early, and pipefail would see zcat's SIGPIPE
    zcat -f "$f" | awk '/^\.TH/ { found = 1 } END { exit !found }' || fail "$f is not a man page (no .TH)"
done
pass "man pages installed: eventsd(8) eventsd.conf(5) eventsd-pub(1) eventsd-counts(1)"

pw=$(getent passwd eventsd) || fail "no user eventsd after install"
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
[ "$uid" -lt 1000 ] || fail "user eventsd has uid $uid, not a system uid"
[ "$(getent group "$gid" | cut -d: -f1)" = eventsd ] || fail "user eventsd's primary group is not eventsd"
[ "$home" = /var/lib/eventsd ] || fail "user eventsd's home is $home, want /var/lib/eventsd"
case "$shell" in */nologin|/bin/false) ;; *) fail "user eventsd has login shell $shell" ;; esac
pass "system user eventsd (uid $uid, group eventsd, home $home, shell $shell)"

perm=$(stat -c '%U:%G %a' /var/lib/eventsd)
[ "$perm" = "eventsd:eventsd 750" ] || fail "/var/lib/eventsd is $perm, want eventsd:eventsd 750"
pass "/var/lib/eventsd is eventsd:eventsd 0750"

out=$(/usr/sbin/eventsd --version) || fail "eventsd --version exited non-zero"
[ "$out" = "eventsd $UPSTREAM" ] || fail "eventsd --version says '$out', want 'eventsd $UPSTREAM'"
out=$(/usr/bin/eventsd-pub --version) || fail "eventsd-pub --version exited non-zero"
[ "$out" = "eventsd-pub $UPSTREAM" ] || fail "eventsd-pub --version says '$out', want 'eventsd-pub $UPSTREAM'"
/usr/sbin/eventsd --help >"$T/help.out" 2>&1 || fail "eventsd --help exited non-zero"
grep -q -- '--check-config' "$T/help.out" || fail "eventsd --help does not list --check-config"
/usr/bin/eventsd-pub --help >"$T/help.out" 2>&1 || fail "eventsd-pub --help exited non-zero"
pass "eventsd --version/--help and eventsd-pub --version/--help work (version $UPSTREAM)"

UNIT=""
for u in /lib/systemd/system/eventsd.service /usr/lib/systemd/system/eventsd.service; do
    [ -f "$u" ] && { UNIT=$u; break; }
done
[ -n "$UNIT" ] || fail "no eventsd.service installed under /lib/systemd/system"
# The unit's comments send the operator to the README for socket permissions.
if grep -q '/usr/share/doc/eventsd/README.md' "$UNIT" && [ ! -f /usr/share/doc/eventsd/README.md ] \
        && [ ! -f /usr/share/doc/eventsd/README.md.gz ]; then
    fail "$UNIT refers to /usr/share/doc/eventsd/README.md, which the package does not ship"
fi
# dh_installsystemd's postinst enables the unit (deb-systemd-helper works without systemd).
WANTS=/etc/systemd/system/multi-user.target.wants/eventsd.service
[ -L "$WANTS" ] || fail "postinst did not enable eventsd.service ($WANTS missing)"
pass "unit $UNIT installed and enabled ($WANTS); the README it refers to is shipped"

# systemd-analyze verify loads the unit offline (no running systemd needed) and also runs
# `man` for its Documentation= pages. Lines about other units are not ours: when verify fails,
# only lines naming eventsd.service or the binaries it runs count.
set +e
SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=yes "$UNIT" >"$T/verify.out" 2>&1 </dev/null
vrc=$?
set -e
sed 's/^/     [systemd-analyze] /' "$T/verify.out"
ours=$(grep -E 'eventsd|man:|Documentation' "$T/verify.out" || true)
if [ "$vrc" != 0 ] || [ -n "$ours" ]; then
    [ -z "$ours" ] || fail "systemd-analyze verify $UNIT complains about the unit (lines above)"
    note "systemd-analyze verify exited $vrc, but none of its messages concerns eventsd.service"
fi
pass "systemd-analyze verify $UNIT: no complaint about the unit (Documentation= man pages found)"

# ---- 5. the installed config checks -------------------------------------------------------------
AS_EVENTSD=(setpriv --reuid=eventsd --regid=eventsd --init-groups --no-new-privs --reset-env --)
/usr/sbin/eventsd --check-config /etc/eventsd/eventsd.conf >"$T/check-config.log" 2>&1 \
    || { cat "$T/check-config.log"; fail "eventsd --check-config /etc/eventsd/eventsd.conf (as root) exited non-zero"; }
# ExecStartPre runs it as User=eventsd.
"${AS_EVENTSD[@]}" /usr/sbin/eventsd --check-config /etc/eventsd/eventsd.conf >"$T/check-config.log" 2>&1 \
    || { cat "$T/check-config.log"; fail "eventsd --check-config /etc/eventsd/eventsd.conf (as eventsd) exited non-zero"; }
pass "eventsd --check-config /etc/eventsd/eventsd.conf exits 0 (as root and as eventsd)"

# ---- 6. run the installed daemon as eventsd against eventsd-pub --------------------------------
# The unit's ExecStart runs `/usr/sbin/eventsd -c CONF` as User=eventsd with NoNewPrivileges: we
# use setpriv, which execs the program directly. (runuser would stay in between as the parent,
# and on SIGTERM it kills its child with SIGKILL after 2 s, which would cut a drain short.)
JOBS=20
MINIONS=10
EXPECT=$(( JOBS * (MINIONS + 2) ))   # per job: the bare-jid event, salt/job/<jid>/new, returns
TAG=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
TEST_DB="/var/lib/eventsd/test-$TAG.db"
DEAD="/var/lib/eventsd/test-$TAG.dead.jsonl"
RUN_DIR=$(mktemp -d /run/eventsd-test-XXXXXX)
chown eventsd:eventsd "$RUN_DIR"
chmod 0700 "$RUN_DIR"
install -d -o eventsd -g eventsd -m 0700 "$T/bus"
install -d -o root -g eventsd -m 0750 "$T/conf"
BUS="$T/bus/master_event_pub.ipc"
CONF="$T/conf/eventsd.conf"
sed -e "s|^runtime_dir = .*|runtime_dir = \"$RUN_DIR\";|" \
    -e "s|^\( *\)path = \"/var/run/salt/master/master_event_pub.ipc\";|\1path = \"$BUS\";|" \
    -e "s|^\( *\)endpoint = \"ipc:///var/run/salt/master/master_event_pub.ipc\";|\1endpoint = \"ipc://$BUS\";|" \
    -e "s|\"/var/lib/eventsd/salt.db\"|\"$TEST_DB\"|" \
    -e "s|\"/var/lib/eventsd/triggers.db\"|\"${TEST_DB%.db}.triggers.db\"|" \
    -e "s|\"/var/lib/eventsd/returns.dead.jsonl\"|\"$DEAD\"|" \
    -e "s|^\( *\)interval = 60;|\1interval = 1;|" \
    /etc/eventsd/eventsd.conf >"$CONF"
chown root:eventsd "$CONF"
chmod 0640 "$CONF"
if grep -nE '/var/run/salt|/var/lib/eventsd/(salt|triggers)\.db|"/run/eventsd"|returns\.dead\.jsonl"' "$CONF" \
        | grep -v '^[0-9]*: *#'; then
    fail "could not point the test copy of the config at the test bus/database (lines above)"
fi
"${AS_EVENTSD[@]}" /usr/sbin/eventsd --check-config "$CONF" >"$T/check-config.log" 2>&1 \
    || { cat "$T/check-config.log"; fail "eventsd --check-config on the test config exited non-zero"; }

"${AS_EVENTSD[@]}" /usr/bin/eventsd-pub --bus salt-ipc --path "$BUS" --jobs "$JOBS" \
    --minions "$MINIONS" --wait-clients 1 --wait-timeout "$DEADLINE" \
    >"$T/pub.out" 2>"$T/pub.log" </dev/null &
PUB_PID=$!
STARTED_PIDS="$STARTED_PIDS $PUB_PID"
wait_for "eventsd-pub's socket $BUS" "$DEADLINE" test -S "$BUS"

"${AS_EVENTSD[@]}" /usr/sbin/eventsd -c "$CONF" --pidfile "$RUN_DIR/eventsd.pid" \
    >"$T/eventsd.log" 2>&1 </dev/null &
EVENTSD_PID=$!
STARTED_PIDS="$STARTED_PIDS $EVENTSD_PID"

set +e
wait_pid "$PUB_PID" "$DEADLINE"
prc=$?
set -e
[ "$prc" = 0 ] || fail "eventsd-pub exited $prc"
grep -q "sent=$EXPECT " "$T/pub.out" || fail "eventsd-pub did not send $EXPECT events: $(cat "$T/pub.out")"

# Queries run as eventsd too: a root sqlite3 could leave a root-owned -wal/-shm behind.
q() { "${AS_EVENTSD[@]}" sqlite3 -batch -noheader "$TEST_DB" "$1"; }
count_is() { [ "$(q "$1" 2>/dev/null)" = "$2" ]; }
# The shipped job tracker also emits eventsd/job/<jid>/complete per job, which "^" stores too.
wait_for "$EXPECT rows in salt_events" "$DEADLINE" count_is \
    "SELECT count(*) FROM salt_events WHERE tag NOT LIKE 'eventsd/%'" "$EXPECT"
wait_for "$JOBS complete jobs in salt_jobs" "$DEADLINE" count_is \
    "SELECT count(*) FROM salt_jobs WHERE status = 'complete' AND returned = $MINIONS" "$JOBS"
kill -0 "$EVENTSD_PID" 2>/dev/null || fail "eventsd exited before SIGTERM"
for p in $EVENTSD_PID $(ps -o pid= --ppid "$EVENTSD_PID"); do
    u=$(ps -o user= -p "$p" | tr -d ' ')
    [ -z "$u" ] || [ "$u" = eventsd ] || fail "eventsd process $p runs as $u, not eventsd"
done
[ "$(cat "$RUN_DIR/eventsd.pid" 2>/dev/null)" = "$EVENTSD_PID" ] \
    || fail "pid file $RUN_DIR/eventsd.pid does not hold $EVENTSD_PID"
pass "installed eventsd (as user eventsd, master and workers) stored $EXPECT events from eventsd-pub in $TEST_DB, and tracked its $JOBS jobs to complete"

kill -TERM "$EVENTSD_PID"
set +e
wait_pid "$EVENTSD_PID" "$DEADLINE"
erc=$?
set -e
STARTED_PIDS=""
[ "$erc" = 0 ] || fail "eventsd exited $erc after SIGTERM, want 0"
got=$(q "SELECT (SELECT count(*) FROM salt_events WHERE tag NOT LIKE 'eventsd/%') || '|' ||
              (SELECT count(DISTINCT json_extract(data,'\$.eventsd_n')) FROM salt_events) || '|' ||
              (SELECT count(*) FROM salt_returns) || '|' || (SELECT count(*) FROM jids)")
[ "$got" = "$EXPECT|$EXPECT|$(( JOBS * MINIONS ))|$JOBS" ] \
    || fail "after stop: salt_events|distinct eventsd_n|salt_returns|jids = $got, want $EXPECT|$EXPECT|$(( JOBS * MINIONS ))|$JOBS"
if grep -q 'level=error' "$T/eventsd.log"; then
    grep 'level=error' "$T/eventsd.log" | head -n 5 >&2
    fail "eventsd logged errors"
fi
pass "SIGTERM: eventsd exited 0; salt_events=$EXPECT (each eventsd_n once), salt_returns=$(( JOBS * MINIONS )), jids=$JOBS"

# ---- 7. reinstall keeps operator edits ------------------------------------------------------------
MARK="# deb-check operator edit $TAG"
echo "$MARK" >>/etc/eventsd/eventsd.conf
apt-get install --reinstall -y -q --no-install-recommends "$DEB" </dev/null >"$T/apt-reinstall.log" 2>&1 \
    || { cat "$T/apt-reinstall.log"; fail "apt-get install --reinstall failed"; }
[ "$(pkg_state)" = installed ] || fail "eventsd is '$(pkg_state)' after reinstall"
grep -qxF "$MARK" /etc/eventsd/eventsd.conf || fail "reinstall lost the edit to /etc/eventsd/eventsd.conf"
[ ! -e /etc/eventsd/eventsd.conf.dpkg-new ] || fail "reinstall left /etc/eventsd/eventsd.conf.dpkg-new"
perm=$(stat -c '%U:%G %a' /etc/eventsd/eventsd.conf)
[ "$perm" = "root:eventsd 640" ] || fail "after reinstall /etc/eventsd/eventsd.conf is $perm"
[ -f "$TEST_DB" ] || fail "reinstall removed $TEST_DB"
pass "apt-get install --reinstall keeps the operator's edit to eventsd.conf (root:eventsd 0640) and the data"

# ---- 8. remove, then purge ---------------------------------------------------------------------------
apt-get remove -y -q eventsd </dev/null >"$T/apt-remove.log" 2>&1 \
    || { cat "$T/apt-remove.log"; fail "apt-get remove eventsd failed"; }
[ "$(pkg_state)" = config-files ] || fail "eventsd is '$(pkg_state)' after remove, want config-files"
for f in /usr/sbin/eventsd /usr/bin/eventsd-pub "$UNIT" /usr/share/eventsd/sql/sqlite/schema.sql; do
    [ ! -e "$f" ] || fail "$f still there after apt-get remove"
done
grep -qxF "$MARK" /etc/eventsd/eventsd.conf 2>/dev/null \
    || fail "apt-get remove removed or changed /etc/eventsd/eventsd.conf"
{ [ -d /var/lib/eventsd ] && [ -f "$TEST_DB" ]; } || fail "apt-get remove removed /var/lib/eventsd or its data"
getent passwd eventsd >/dev/null || fail "apt-get remove removed the user eventsd"
pass "apt-get remove: binaries, unit and share files gone; eventsd.conf (with the edit), /var/lib/eventsd data and user kept"

apt-get purge -y -q eventsd </dev/null >"$T/apt-purge.log" 2>&1 \
    || { cat "$T/apt-purge.log"; fail "apt-get purge eventsd failed"; }
state=$(pkg_state)
[ -z "$state" ] || [ "$state" = not-installed ] || fail "eventsd is '$state' after purge"
INSTALLED_BY_US=0
TEST_DB=""
[ ! -e /etc/eventsd ] || fail "/etc/eventsd still there after purge: $(find /etc/eventsd | tr '\n' ' ')"
[ ! -e /var/lib/eventsd ] || fail "/var/lib/eventsd still there after purge"
! getent passwd eventsd >/dev/null || fail "user eventsd still there after purge"
! getent group eventsd >/dev/null || fail "group eventsd still there after purge"
if [ -e "$WANTS" ] || [ -L "$WANTS" ]; then fail "$WANTS still there after purge"; fi
pass "apt-get purge: /etc/eventsd, /var/lib/eventsd, user and group eventsd, unit enablement gone"

echo "$NAME: $PASSED passed, 0 failed"
