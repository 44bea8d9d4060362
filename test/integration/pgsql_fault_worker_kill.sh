#!/bin/bash
# PostgreSQL, kill -9 of worker processes over and over (20+ kills, some of them every worker at
# once) at random moments during a steady load of 30,000 events: the master restarts them with
# backoff and re-delivers what they had not acknowledged; every number is stored exactly once.
. "$(dirname "$0")/../lib.sh"
KIND=pgsql
. "$(dirname "$0")/db_fault_lib.sh"
need_servers

JOBS=600; MINIONS=48
N=$(( JOBS * (MINIONS + 2) ))
MIN_KILLS=20
db_reset "$KIND"
fault_config "$T/eventsd.conf" "$KIND" 300 200 2
start_eventsd "$T/eventsd.conf"
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --rate 2500 \
    --wait-clients 1
pub=$PUB_PID
wait_for "the first events stored" "$DEADLINE" stat_at_least events.written 1

kills=0; rounds=0
kill_end=$(( $(date +%s) + FAULT_DEADLINE ))
# Kill while the publisher runs; if the backoff kept the workers down too often for MIN_KILLS,
# go on while the master still has events pending (that is still load for the workers).
while alive "$pub" || { [ "$kills" -lt "$MIN_KILLS" ] && ! stats_settled; }; do
    [ "$(date +%s)" -lt "$kill_end" ] || fail "kill loop still running after ${FAULT_DEADLINE}s ($kills kills)"
    rounds=$(( rounds + 1 ))
    workers=$(pgrep -P "$EVENTSD_PID" || true)
    if [ -n "$workers" ]; then
        # Every seventh round takes every worker at once, otherwise one at random.
        [ $(( rounds % 7 )) = 0 ] || workers=$(echo "$workers" | shuf -n 1)
        for victim in $workers; do
            # A zombie (killed last round, not reaped yet) is listed too: killing it again
            # would count a kill that restarts nothing.
            case "$(ps -o stat= -p "$victim" 2>/dev/null)" in Z*|"") continue ;; esac
            kill -9 "$victim" 2>/dev/null && kills=$(( kills + 1 ))
        done
    fi
    sleep 0.$(( RANDOM % 4 + 2 ))   # pacing between kills (0.2 .. 0.5 s), not a synchronisation
done
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
[ "$kills" -ge "$MIN_KILLS" ] || fail "only $kills kills happened during the run (want >= $MIN_KILLS)"

fault_wait_settled "$KIND" "$N"
stop_eventsd
restarts=$(grep -c 'worker died, restarting' "$T/eventsd.log" || true)
requeued=$(grep 're-queued unacknowledged' "$T/eventsd.log" | sed -n 's/.*events=\([0-9]*\).*/\1/p' |
           awk '{ s += $1 } END { print s + 0 }')
note "$kills kills in $rounds rounds, $restarts restarts logged, $requeued events re-delivered"
fault_single_figures "$KIND" "$(pub_sent pub)"
[ "$(pub_sent pub)" = "$N" ] || fail "eventsd-pub sent $(pub_sent pub) events, not $N"
fault_other_tables "$KIND" "$JOBS" "$MINIONS"
[ "$restarts" -ge "$kills" ] || fail "$kills kills but only $restarts restarts logged"
pass "$N events stored exactly once in $KIND across $kills worker kills"
