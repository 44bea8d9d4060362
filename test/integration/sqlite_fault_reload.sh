#!/bin/bash
# SQLite, SIGHUP over and over during a steady load of 20,000 events: an unchanged config keeps
# every process; a changed batch size or process count replaces the worker (the old processes
# drain, the new ones start at once), also twice in quick succession; a rule-only change
# replaces nobody (and an event two rules send to one worker is delivered once); a broken config
# is refused; then a good one again. Every number is stored exactly once.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_fault_lib.sh"
KIND=sqlite

JOBS=400; MINIONS=48
N=$(( JOBS * (MINIONS + 2) ))
conf=$T/eventsd.conf
# config [VAR=VALUE...]: rewrites the config atomically (a reload never reads half a file).
config() {
    ( for kv in "$@"; do export "${kv?}"; done
      fault_config "$conf.new" "$KIND" 200 200 "${EPROCS:-1}" )
    mv "$conf.new" "$conf"
}
log_count() { grep -c -- "$1" "$T/eventsd.log" || true; }
log_count_at_least() { [ "$(log_count "$1")" -ge "$2" ]; }
RELOADS='msg="config reloaded"\|msg="reload failed'
# hup WHAT: SIGHUP, then waits until the master logged that it reloaded (or refused).
hup() {
    local want=$(( $(log_count "$RELOADS") + 1 ))
    kill -HUP "$EVENTSD_PID"
    wait_for "reload ($1) logged" 60 log_count_at_least "$RELOADS" "$want"
}
# step K: waits until K/8 of the events were accepted (the reloads are spread over the load).
step() { wait_for "$1/8 of the events accepted" "$DEADLINE" stat_at_least accepted $(( N * $1 / 8 )); }
retired() { log_count "msg=\"retired worker drained and stopped\" worker=$1\$"; }
started_since() { tail -n +$(( $1 + 1 )) "$T/eventsd.log" | grep -c 'msg="worker started"' || true; }

config
start_eventsd "$conf"
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --rate 2500 \
    --wait-clients 1
pub=$PUB_PID

step 1   # the same config again: nothing is replaced
pids=$(pgrep -P "$EVENTSD_PID" | sort)
mark=$(wc -l < "$T/eventsd.log")
config
hup "unchanged"
[ "$(started_since "$mark")" = 0 ] || fail "an unchanged reload started workers"
[ "$(pgrep -P "$EVENTSD_PID" | sort)" = "$pids" ] || fail "an unchanged reload replaced processes"

step 2   # events: batch 200 -> 500
config EVENTS_BATCH=500
hup "events batch size"
wait_for "the old events worker retired" "$DEADLINE" eval '[ "$(retired events)" -ge 1 ]'

step 3   # returns: 2 -> 3 processes, events: 1 -> 2 processes
config EVENTS_BATCH=500 RETURNS_PROCESSES=3 EPROCS=2
hup "process counts"
wait_for "the old returns worker retired" "$DEADLINE" eval '[ "$(retired returns)" -ge 1 ]'

step 4   # two reloads back to back (the signals may merge into one reload)
config EVENTS_BATCH=100 RETURNS_PROCESSES=3 EPROCS=2
kill -HUP "$EVENTSD_PID"
config EVENTS_BATCH=700 RETURNS_PROCESSES=3 EPROCS=2
hup "events batch size twice"

step 5   # a rule-only change replaces nobody; returns now reach "events" through two rules
wait_for "the retired events workers gone" "$DEADLINE" eval '[ "$(retired events)" -ge 3 ]'
mark=$(wc -l < "$T/eventsd.log")
config EVENTS_BATCH=700 RETURNS_PROCESSES=3 EPROCS=2 \
    EXTRA_RULES='{ tag = "^salt/job/[0-9]+/ret/"; workers = [ "events" ]; },'
hup "rules only"
[ "$(started_since "$mark")" = 0 ] || fail "a rule-only reload started workers"

step 6   # a broken config is refused, the running one kept
echo 'workers = ( { name = "x"; sink = "nope"; } ); bogus_key = 1;' > "$conf"
hup "broken"
log_has 'msg="reload failed, keeping the running config"' || fail "the broken config was not refused"

step 7   # a good config again, events: batch 300, 1 process
config EVENTS_BATCH=300
hup "events back to one process"

wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
fault_wait_settled "$KIND" "$N"
stop_eventsd
fault_single_figures "$KIND" "$(pub_sent pub)"
[ "$(pub_sent pub)" = "$N" ] || fail "eventsd-pub sent $(pub_sent pub) events, not $N"
fault_other_tables "$KIND" "$JOBS" "$MINIONS"
reloads=$(log_count 'msg="config reloaded"')
[ "$reloads" -ge 6 ] || fail "only $reloads reloads logged (want >= 6)"
[ "$(retired events)" -ge 4 ] || fail "events retired $(retired events) times (want >= 4)"
[ "$(retired returns)" -ge 2 ] || fail "returns retired $(retired returns) times (want >= 2)"
pass "$N events stored exactly once across $reloads reloads (events worker replaced $(retired events) times, returns $(retired returns) times) and a refused one"
