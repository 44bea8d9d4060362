#!/bin/bash
# SIGTERM drains: with a batch that would not flush for an hour, every accepted event is
# committed before the master exits 0.
. "$(dirname "$0")/../lib.sh"

JOBS=100; MINIONS=28
N=$(( JOBS * (MINIONS + 2) ))
write_config "$T/eventsd.conf" "type = \"salt-ipc\"; path = \"$T/bus.ipc\";" 100000 3600000
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --wait-clients 1
pub=$PUB_PID
start_eventsd "$T/eventsd.conf"
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "master accepted $N events" "$DEADLINE" stat_is accepted "$N"
wait_for "sqlite database created" "$DEADLINE" test -f "$T/salt.db"
stored=$(sql "SELECT count(*) FROM salt_events")
[ "$stored" = 0 ] || fail "$stored events were stored before SIGTERM; the batch should still be filling"
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" "$DEADLINE" || fail "eventsd exited with $? after SIGTERM (want 0)"
check_exactly_once 0 $(( N - 1 ))
log_has "drained, every accepted event is committed" || fail "no drain log line"
! log_has "worker died" || fail "a worker stopping after STOP was counted as died: $(grep "worker died" "$T/eventsd.log" | head -1)"
[ -z "$(ls -A "$T/run" 2>/dev/null)" ] || fail "runtime dir not cleaned: $(ls "$T/run")"
pass "SIGTERM committed all $N pending events and exited 0"
