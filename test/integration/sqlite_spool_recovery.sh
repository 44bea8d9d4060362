#!/bin/bash
# kill -9 of the master while nothing is committed yet (batches wait for an hour), a torn record
# appended to the spool as a crash in the middle of a write would leave, then a restart: the
# torn tail is truncated and reported, and every accepted event is replayed and stored once.
. "$(dirname "$0")/../lib.sh"

JOBS=40; MINIONS=20
N=$(( JOBS * (MINIONS + 2) ))
write_config "$T/eventsd.conf" "type = \"salt-ipc\"; path = \"$T/bus.ipc\";" 100000 3600000
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --wait-clients 1
pub=$PUB_PID
start_eventsd "$T/eventsd.conf"
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "master accepted $N events" "$DEADLINE" stat_is accepted "$N"
# The whole daemon crashes at once: workers frozen first so that none commits its batch on
# the SIGTERM that PDEATHSIG would send; everything accepted is then only in the spool.
workers=$(pgrep -P "$EVENTSD_PID" | tr '\n' ' ')
kill -STOP $workers
kill -9 "$EVENTSD_PID" $workers
wait_pid "$EVENTSD_PID" "$DEADLINE" || true
for w in $workers; do
    wait_for "worker $w gone" "$DEADLINE" sh -c "! kill -0 $w 2>/dev/null"
done
stored=$(sql "SELECT count(*) FROM salt_events" 2>/dev/null || echo 0)
[ "$stored" = 0 ] || fail "$stored events were committed before the crash; the test needs none"
seg=$(ls "$T"/spool/*.seg | sort | tail -1)
head -c 23 /dev/urandom >> "$seg"   # a torn record: a header and a few bytes of body
write_config "$T/eventsd.conf" "type = \"salt-ipc\"; path = \"$T/bus.ipc\";" 200 100
: > "$T/eventsd.log"
start_eventsd "$T/eventsd.conf"
wait_for "$N events stored after the restart" "$DEADLINE" count_is "SELECT count(*) FROM salt_events" "$N"
check_exactly_once 0 $(( N - 1 ))
wait_for "the torn tail reported" "$DEADLINE" log_has 'torn or corrupt tail, truncated'
wait_for "'spool recovered' logged" "$DEADLINE" log_has 'msg="spool recovered"'
wait_for "the restarted daemon running" "$DEADLINE" log_has 'msg="eventsd started"'
check_exactly_once 0 $(( N - 1 ))
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" "$DEADLINE" || fail "eventsd exited with $?"
pass "kill -9 with $N accepted and $stored committed, torn tail cut: all $N stored exactly once after the restart"
