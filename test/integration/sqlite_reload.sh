#!/bin/bash
# SIGHUP during load: a changed worker is replaced (the old processes drain first), a broken
# config is refused and the running one kept; every event is stored exactly once.
. "$(dirname "$0")/../lib.sh"

JOBS=200; MINIONS=38
N=$(( JOBS * (MINIONS + 2) ))
bus="type = \"salt-ipc\"; path = \"$T/bus.ipc\";"
write_config "$T/eventsd.conf" "$bus" 300 200
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --rate 2000 --wait-clients 1
pub=$PUB_PID
start_eventsd "$T/eventsd.conf"
wait_for "a quarter of the events accepted" "$DEADLINE" stat_at_least accepted $(( N / 4 ))
write_config "$T/eventsd.conf" "$bus" 700 300 "" 3
kill -HUP "$EVENTSD_PID"
wait_for "reload logged" 30 log_has "config reloaded"
wait_for "half of the events accepted" "$DEADLINE" stat_at_least accepted $(( N / 2 ))
echo 'workers = ( { name = "x"; sink = "nope"; } ); bogus_key = 1;' > "$T/eventsd.conf"
kill -HUP "$EVENTSD_PID"
wait_for "refused reload logged" 30 log_has "reload failed, keeping the running config"
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "$N events stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_events" "$N"
check_exactly_once 0 $(( N - 1 ))
wait_for "$(( JOBS * MINIONS )) returns stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_returns" $(( JOBS * MINIONS ))
log_has "retired worker drained and stopped" || fail "old workers were not retired"
# The bus reconnects after the reloads (the publisher above has gone): the next one is stored.
start_pub again --bus salt-ipc --path "$T/bus.ipc" --jobs 5 --minions 4 --first-n 100000 --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub (again) exited with $?"
wait_for "30 more events stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_events" $(( N + 30 ))
check_exactly_once 100000 100029
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
pass "$N events stored exactly once across a worker-changing reload and a refused reload"
