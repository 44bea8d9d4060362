#!/bin/bash
# PostgreSQL, kill -9 of the MASTER during load, four times, then a clean run: each time the
# workers get SIGTERM from PDEATHSIG and must all be gone; the daemon is started again with the
# same config and replays from its on-disk spool what it had accepted and not committed. The
# publisher is faster than the sink, so the master holds a backlog when it is killed; in run 2
# the workers are stopped (SIGSTOP) first, so most of what it accepted is only in the spool.
#
# Each run r reads its own publisher (eventsd_n from r * 1,000,000): eventsd accepts a prefix of
# it in order, so every run's stored numbers must be one unbroken prefix, at least as long as the
# run's last stats line says it accepted (exactly as long for the runs killed while the publisher
# was paused). Events published while no daemon listens are gone (Salt replays nothing), hence
# figures "bounded": accepted <= stored <= published.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_fault_lib.sh"
need_servers
KIND=pgsql
KILLS=4
BASE=1000000
SPOOL="dir = \"$T/spool\"; sync = \"interval\"; sync_ms = 10; segment_bytes = 262144;
         max_bytes = 268435456; when_full = \"block\";"

db_reset "$KIND"
fault_config "$T/eventsd.conf" "$KIND" 500 1000 1 "$SPOOL"

# run R: starts publisher R (events numbered from R * BASE) and the daemon on it.
run() {
    local r=$1 jobs=$2 rate=$3
    start_pub "pub$r" --bus salt-ipc --path "$T/bus.ipc" --jobs "$jobs" --minions 48 \
        --first-n $(( r * BASE )) --rate "$rate" --wait-clients 1
    PUBPID=$PUB_PID
    start_eventsd "$T/eventsd.conf"
}

published=0; accepted=0
for r in $(seq 1 $KILLS); do
    run "$r" 100000 12000
    want=$(( 8000 + RANDOM % 8000 ))
    wait_for "run $r: $want events accepted" "$DEADLINE" stat_at_least accepted "$want"
    sleep 0.$(( RANDOM % 10 ))   # a random moment between two stats lines
    paused=""; stalled=""
    workers=$(pgrep -P "$EVENTSD_PID" | tr '\n' ' ')
    FAULT_ORPHANS="$FAULT_ORPHANS $workers"
    if [ "$r" = 2 ]; then
        # The workers stop (SIGSTOP): the backlog grows in the spool only.
        kill -STOP $workers
        stalled=" with its workers stopped"
        wait_for "run $r: a backlog of 10000 events" "$DEADLINE" eval '[ "$(backlog events)" -ge 10000 ]'
    fi
    if [ $(( r % 2 )) = 0 ]; then
        # Killed with the publisher paused, so the run's accepted count is exact.
        kill -STOP "$PUBPID"
        wait_for "run $r: accepted count steady" "$DEADLINE" accepted_steady_since "$(wc -l < "$T/eventsd.log")"
        paused=" (publisher paused)"
    fi
    acc=$(stat_in accepted); pending=$(backlog events)
    kill -9 "$EVENTSD_PID"
    wait_pid "$EVENTSD_PID" 30 2>/dev/null || true   # (no "Killed" message)
    [ -z "$stalled" ] || kill -CONT $workers   # now they see PDEATHSIG's SIGTERM
    wait_gone 30 $workers || fail "run $r: workers still running 30 s after the master was killed: $(
        for p in $workers; do alive "$p" && ps -o pid=,stat=,cmd= -p "$p"; done)"
    [ -z "$paused" ] || kill -CONT "$PUBPID"
    kill -TERM "$PUBPID"
    wait_pid "$PUBPID" 60 || fail "eventsd-pub $r exited with $?"
    mv "$T/eventsd.log" "$T/eventsd.run$r.log"
    note "run $r: master killed$stalled$paused at accepted=$acc, events backlog $pending; publisher sent $(pub_sent "pub$r")"
    eval "ACC_$r=$acc PAUSED_$r=${paused:+1}"
done

r=$(( KILLS + 1 ))
JOBS=100; MINIONS=48
run "$r" "$JOBS" 3000
wait_pid "$PUBPID" "$DEADLINE" || fail "eventsd-pub $r exited with $?"
wait_for "run $r: every event accepted" "$DEADLINE" stat_at_least accepted $(( JOBS * (MINIONS + 2) ))
v=$(fault_n "$KIND")
end=$(( $(date +%s) + FAULT_DEADLINE ))
# Settled: every event of the last run stored and nothing pending (the replays are done).
until fault_count_is "$KIND" "salt_events WHERE $v >= $(( r * BASE ))" $(( JOBS * (MINIONS + 2) )) && stats_settled; do
    [ "$(date +%s)" -lt "$end" ] || { note "timed out after ${FAULT_DEADLINE}s waiting for the last run to settle"; break; }
    sleep 0.2
done
stop_eventsd
mv "$T/eventsd.log" "$T/eventsd.run$r.log"
eval "ACC_$r=$(stat_in accepted "$T/eventsd.run$r.log") PAUSED_$r=1"

published=0; accepted=0; lost=0; dup=0; stored=0; problems=""
for r in $(seq 1 $(( KILLS + 1 ))); do
    eval "acc=\$ACC_$r exact=\$PAUSED_$r"
    sent=$(pub_sent "pub$r")
    first=$(( r * BASE ))
    got=$(fault_q "$KIND" "SELECT count(*), count(DISTINCT $v), coalesce(max($v), $(( first - 1 )))
                          FROM salt_events WHERE $v BETWEEN $first AND $(( first + BASE - 1 ))")
    rows=${got%%|*}; rest=${got#*|}; distinct=${rest%%|*}; max=${rest#*|}
    # Accepted for sure: the stats count, and everything below the highest stored number.
    known=$(( max - first + 1 > acc ? max - first + 1 : acc ))
    missing=$(( known - distinct ))
    note "run $r: published=$sent accepted=$acc stored=$rows (numbers $first..$max) lost=$missing duplicated=$(( rows - distinct ))"
    [ -z "$exact" ] || [ "$distinct" = "$acc" ] || problems="$problems run $r stored $distinct but accepted exactly $acc;"
    published=$(( published + sent )); accepted=$(( accepted + acc )); stored=$(( stored + rows ))
    lost=$(( lost + missing )); dup=$(( dup + rows - distinct ))
done
fault_figures "$published" "$accepted" "$stored" "$lost" "$dup" bounded
[ -z "$problems" ] || fail "$problems"
[ ! -s "$T/dead.jsonl" ] || fail "dead letters written: $(head -c 300 "$T/dead.jsonl")"
fault_count_is "$KIND" "(SELECT jid, id FROM salt_returns GROUP BY jid, id HAVING count(*) > 1) d" 0 \
    || fail "duplicate returns"
pass "every accepted event stored exactly once across $KILLS kill -9 of the master ($accepted accepted of $published published)"
