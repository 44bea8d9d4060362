#!/bin/bash
# kill -9 of worker processes at random moments during a run: the master restarts them and
# re-delivers what they had not acknowledged; every event is stored exactly once.
. "$(dirname "$0")/../lib.sh"

JOBS=300; MINIONS=48
N=$(( JOBS * (MINIONS + 2) ))
write_config "$T/eventsd.conf" "type = \"salt-ipc\"; path = \"$T/bus.ipc\";" 500 300
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --rate 3000 --wait-clients 1
pub=$PUB_PID
start_eventsd "$T/eventsd.conf"

kills=0
while kill -0 "$pub" 2>/dev/null && [ "$(ps -o stat= -p "$pub")" != "Z" ]; do
    workers=$(pgrep -P "$EVENTSD_PID" || true)
    if [ -n "$workers" ]; then
        victim=$(echo "$workers" | shuf -n 1)
        kill -9 "$victim" 2>/dev/null && kills=$((kills + 1))
    fi
    sleep 0.$(( RANDOM % 5 + 3 ))   # random moments, not a wait for a condition
done
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
[ "$kills" -ge 5 ] || fail "only $kills kills happened during the run (want >= 5)"
wait_for "$N events stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_events" "$N"
check_exactly_once 0 $(( N - 1 ))
wait_for "$(( JOBS * MINIONS )) returns stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_returns" $(( JOBS * MINIONS ))
wait_for "$JOBS jobs stored" "$DEADLINE" count_is "SELECT count(*) FROM jids" $JOBS
count_is "SELECT count(*) FROM (SELECT jid, id FROM salt_returns GROUP BY jid, id HAVING count(*) > 1)" 0 \
    || fail "duplicate returns"
restarts=$(grep -c 'worker died, restarting' "$T/eventsd.log" || true)
requeued=$(grep 're-queued unacknowledged' "$T/eventsd.log" | sed -n 's/.*events=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
pass "$N events stored exactly once across $kills worker kills ($restarts restarts logged, re-delivered events: $requeued)"
