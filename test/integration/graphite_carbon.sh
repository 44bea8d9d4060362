#!/bin/bash
# eventsd-pub -> eventsd -> graphite sink -> a real carbon-cache: the counts carbon stores per
# function and result, their rollups, an event count and the sum of every event's eventsd_n
# equal what was published, across a carbon restart between two publishers. flush_interval
# = 1, so the numbers are spread over many 1 s points; each metric's points are summed from
# whisper (whisper-fetch). Also: --check-config names a bad rollup's line, and a graphite
# worker with processes = 2 is refused.
# Needs carbon from test/servers.sh (with-servers.sh exports EVENTSD_CARBON_*); started here
# when missing.
. "$(dirname "$0")/../lib.sh"

if [ -z "${EVENTSD_CARBON_PORT:-}" ]; then
    eval "$("$ROOT/test/servers.sh" start carbon "$T/servers")"
    trap '"$ROOT/test/servers.sh" stop carbon "$T/servers" >/dev/null 2>&1 || true; cleanup' EXIT
fi
PRE="it$$_$(date +%s)"   # names no other run uses

# graphite_config FILE EXTRA_WORKER_KEYS ROLLUP_SOURCE
graphite_config() {
    cat >"$1" <<CONF
master_id = "it_master";
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
log_level = "info";
bus = { type = "salt-ipc"; path = "$T/bus.ipc"; reconnect_min_ms = 50; reconnect_max_ms = 200; };
stats = { interval = 1; };
shutdown = { timeout_ms = 60000; };
workers = (
  { name = "metrics"; sink = "graphite"; host = "127.0.0.1"; port = $EVENTSD_CARBON_PORT;
    prefix = "$PRE"; flush_interval = 1; batch = { size = 200; interval_ms = 100; }; $2
    metrics = (
      { name = "returns.{data.fun}.{data.success}"; },
      { name = "events"; },
      { name = "n"; value = "data.eventsd_n"; aggregate = "sum"; }
    );
    rollups = (
      { target = "$PRE.returns.all.<result>";
        source = "${3:-$PRE.returns.*.<result>}"; }
    ); }
);
rules = ( { tag = ".*"; workers = [ "metrics" ]; } );
CONF
}

# --check-config: a rollup target naming a capture its source lacks, at its file and line.
graphite_config "$T/bad.conf" "" "$PRE.returns.*.*"
if "$EVENTSD" --check-config "$T/bad.conf" >"$T/check.out" 2>&1; then
    fail "--check-config accepted a rollup target that uses an uncaptured <result>"
fi
line=$(grep -n 'target = "' "$T/bad.conf" | cut -d: -f1)
grep -qF "$T/bad.conf:$((line - 1)): " "$T/check.out" ||
grep -qF "$T/bad.conf:$line: " "$T/check.out" ||
    { cat "$T/check.out"; fail "--check-config did not name the file and the rollup's line ($line)"; }
grep -q "target uses '<result>', which the source does not capture" "$T/check.out" ||
    { cat "$T/check.out"; fail "--check-config did not name the rollup's line ($line)"; }
graphite_config "$T/procs.conf" "processes = 2;"
if "$EVENTSD" --check-config "$T/procs.conf" >"$T/procs.out" 2>&1; then
    fail "--check-config accepted a graphite worker with processes = 2"
fi
grep -q "processes = 1" "$T/procs.out" || { cat "$T/procs.out"; fail "no reason given"; }
graphite_config "$T/eventsd.conf" ""
"$EVENTSD" --check-config "$T/eventsd.conf" >"$T/check-ok.out" 2>&1 ||
    { cat "$T/check-ok.out"; fail "--check-config refused the good config"; }
pass "--check-config: bad rollup named at its line, processes = 2 refused, good config accepted"

# sum_of METRIC: the sum of every point whisper holds for METRIC (empty: no file yet).
sum_of() {
    f="$EVENTSD_CARBON_WHISPER_DIR/$(echo "$1" | tr . /).wsp"
    [ -f "$f" ] || return 0
    whisper-fetch --drop=nulls --from="$((START - 10))" --until="$(( $(date +%s) + 10 ))" "$f" |
        awk '{ s += $2 } END { printf "%.0f\n", s }'
}
sum_is() { [ "$(sum_of "$1")" = "$2" ]; }

START=$(date +%s)
start_eventsd "$T/eventsd.conf"
# Two publishers one after the other on the same socket (eventsd reconnects in between):
# 12 jobs x 5 minions of test.ping (80% succeed), 8 jobs x 5 of state.apply (50%), 40 events/s
# so that they spread over several 1 s slots.
n=0
publish() {   # NAME FUN JOBS RATIO SEED
    start_pub "$1" --bus salt-ipc --path "$T/bus.ipc" --fun "$2" --jobs "$3" --minions 5 \
        --success-ratio "$4" --seed "$5" --first-n "$n" --rate 40 --wait-clients 1 --wait-timeout 60
    wait_pid "$PUB_PID" "$DEADLINE" || fail "$1: eventsd-pub exited with $?"
    n=$(( n + $3 * 7 ))   # per job: the bare-jid event, salt/job/<jid>/new, 5 returns
}
publish ping test.ping 12 0.8 3
# Carbon restarts between the two: the worker's kept connection is dead, the next flush
# reconnects. Carbon drops what its cache still holds on SIGTERM, so first wait until whisper
# has the first publisher's events.
wait_for "the first publisher's events in whisper" "$DEADLINE" sum_is "$PRE.events" "$n"
"$ROOT/test/servers.sh" restart carbon "$(dirname "$EVENTSD_CARBON_DIR")" >/dev/null ||
    fail "carbon did not restart"
publish apply state.apply 8 0.5 4
total=$n; last=$(( n - 1 ))
nsum=$(( last * (last + 1) / 2 ))   # eventsd_n 0 .. last

wait_for "events counted in carbon ($total)" "$DEADLINE" sum_is "$PRE.events" "$total"
wait_for "sum of eventsd_n ($nsum)" "$DEADLINE" sum_is "$PRE.n" "$nsum"
for fun in test_ping state_apply; do
    jobs=12; [ "$fun" = state_apply ] && jobs=8
    want=$(( jobs * 5 ))
    ok=""
    end=$(( $(date +%s) + DEADLINE * TIME_SCALE ))
    while [ "$(date +%s)" -lt "$end" ]; do
        t=$(sum_of "$PRE.returns.$fun.True"); f=$(sum_of "$PRE.returns.$fun.False")
        [ $(( ${t:-0} + ${f:-0} )) = "$want" ] && { ok=1; break; }
        sleep 0.2
    done
    [ -n "$ok" ] || fail "$fun: True=${t:-none} + False=${f:-none} returns in carbon, want $want"
    note "$fun: $t succeeded, $f failed (of $want)"
done
allt=$(( $(sum_of "$PRE.returns.test_ping.True") + $(sum_of "$PRE.returns.state_apply.True") ))
allf=$(( $(sum_of "$PRE.returns.test_ping.False") + $(sum_of "$PRE.returns.state_apply.False") ))
wait_for "rollup all.True ($allt)" "$DEADLINE" sum_is "$PRE.returns.all.True" "$allt"
wait_for "rollup all.False ($allf)" "$DEADLINE" sum_is "$PRE.returns.all.False" "$allf"
grep -q 'msg="sink flush failed' "$T/eventsd.log" && note "a flush failed over the restart and was retried"
pass "$total events across a carbon restart: counts per function and result, rollups, event count and the sum of eventsd_n match in whisper"

kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
grep -q 'msg="graphite sink closed".*events=' "$T/eventsd.log" || fail "no totals logged at close"
grep 'msg="graphite sink closed"' "$T/eventsd.log" | head -1 | sed 's/^.*msg=/     /'
# Still the same after the drain (nothing sent twice into another slot, nothing lost).
sum_is "$PRE.events" "$total" || fail "events: $(sum_of "$PRE.events") after shutdown, want $total"
pass "SIGTERM drain: totals unchanged, sink totals logged"
