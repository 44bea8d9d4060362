#!/bin/bash
# A priority event is committed at once while a large batch is still filling.
. "$(dirname "$0")/../lib.sh"

N=1200
write_config "$T/eventsd.conf" "type = \"salt-ipc\"; path = \"$T/bus.ipc\";" 100000 3600000 \
    '{ tag = "^eventsd/urgent$"; workers = [ "events" ]; priority = true; },'
start_eventsd "$T/eventsd.conf"
start_pub bulk --bus salt-ipc --path "$T/bus.ipc" --jobs 100 --minions 10 --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "master accepted $N events" "$DEADLINE" stat_is accepted "$N"
wait_for "sqlite database created" "$DEADLINE" test -f "$T/salt.db"
[ "$(sql 'SELECT count(*) FROM salt_events')" = 0 ] || fail "events stored before the priority event"

start_pub urgent --bus salt-ipc --path "$T/bus.ipc" --custom eventsd/urgent --count 1 --first-n 100000 --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "priority event stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_events WHERE tag = 'eventsd/urgent'" 1
seen=$(now_ms)
stamp=$(sql "SELECT json_extract(data,'\$._stamp') FROM salt_events WHERE tag = 'eventsd/urgent'")
latency=$(( seen - $(date -u -d "${stamp}Z" +%s%3N) ))   # from the event's _stamp to seen in SQLite
carried=$(sql "SELECT count(*) FROM salt_events WHERE tag != 'eventsd/urgent'")
returns=$(sql "SELECT count(*) FROM salt_returns")
[ "$returns" = 0 ] || fail "the returns worker flushed ($returns rows) though it got no priority event"
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" "$DEADLINE" || fail "eventsd exit code $?"
check_exactly_once 0 $(( N - 1 ))
pass "priority event committed ${latency} ms after publishing (batch interval 1 h); it carried $carried pending events of its worker"
