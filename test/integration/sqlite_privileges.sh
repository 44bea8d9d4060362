#!/bin/bash
# user = "nobody": started as root, the master connects to the bus, hands the runtime and spool
# directories to nobody and drops root before the workers fork. Every process then runs as
# nobody, the directories are 0700 and the worker sockets 0600, and events are still stored.
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" = 0 ] || { pass "skipped: needs root to drop privileges"; exit 0; }
id nobody >/dev/null 2>&1 || fail "no user 'nobody' on this machine"
JOBS=10; MINIONS=10
N=$(( JOBS * (MINIONS + 2) ))
chmod 0755 "$T"
chown nobody "$T"   # the sqlite database and its journal are created by the workers
write_config "$T/eventsd.conf" "type = \"salt-ipc\"; path = \"$T/bus.ipc\";"
# A first run as root leaves a root-owned spool behind: the next run hands it over.
start_eventsd "$T/eventsd.conf"
wait_for "first run (as root) started" "$DEADLINE" log_has 'msg="eventsd started"'
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" "$DEADLINE" || fail "first run exited with $?"
[ "$(stat -c %U "$T/spool/cursors")" = root ] || fail "the first run should leave root-owned spool files"
rm -f "$T"/salt.db*   # the first run's workers created it as root; the spool is the point here
sed -i '1i user = "nobody";' "$T/eventsd.conf"
"$EVENTSD" --check-config "$T/eventsd.conf" >/dev/null || fail "check-config rejects user = nobody"
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --wait-clients 1 --keep-open
start_eventsd "$T/eventsd.conf"
# sqlite3 would create the file as root: let the workers create it first
wait_for "database created by the workers" "$DEADLINE" test -s "$T/salt.db"
wait_for "$N events stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_events" "$N"
check_exactly_once 0 $(( N - 1 ))
log_has 'msg="dropped privileges" user=nobody' || fail "no 'dropped privileges' log line"

nobody_uid=$(id -u nobody)
for pid in $EVENTSD_PID $(pgrep -P "$EVENTSD_PID"); do
    uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
    [ "$uids" = "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" ] \
        || fail "process $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline")) has uids $uids"
done
workers=$(pgrep -c -P "$EVENTSD_PID")
[ "$workers" -ge 4 ] || fail "expected 4 worker processes, found $workers"
for d in "$T/run" "$T/spool" "$T/spool/quarantine"; do
    [ "$(stat -c '%a %U' "$d")" = "700 nobody" ] || fail "$d is $(stat -c '%a %U' "$d")"
done
for s in "$T"/run/*.sock; do
    [ "$(stat -c '%a %U' "$s")" = "600 nobody" ] || fail "$s is $(stat -c '%a %U' "$s")"
done
for f in "$T"/spool/*.seg "$T/spool/cursors" "$T/spool/lock"; do
    [ "$(stat -c '%a %U' "$f")" = "600 nobody" ] || fail "$f is $(stat -c '%a %U' "$f")"
done
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" "$DEADLINE" || fail "eventsd exited with $?"
pass "$N events stored by $workers workers running as nobody; runtime and spool dirs 0700, sockets and segments 0600"
