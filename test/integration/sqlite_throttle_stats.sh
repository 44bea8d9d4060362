#!/bin/bash
# Throttles, statistics, eventsd's own figures as events, and --explain, end to end on SQLite:
# - a de-duplicating throttle keyed by the minion id lets one return per minion through;
# - a min/max throttle on a custom tag lets exactly events 10..12 of 50 through;
# - statistics count data.fun and data.success of every return per 1 s interval and their
#   eventsd/stats/returns events, routed into salt_events, add up to what was published;
# - stats.event routes eventsd/stats/eventsd figures into salt_events;
# - stats.listen serves the same figures in Prometheus format;
# - --explain names the throttle, its key and the workers, and exits 3 for an unrouted tag.
. "$(dirname "$0")/../lib.sh"

JOBS=6; MINIONS=5
sock="$T/bus.ipc"
cat > "$T/eventsd.conf" <<CONF
master_id = "it_master";
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$sock"; reconnect_min_ms = 50; reconnect_max_ms = 500; };
stats = { interval = 1; event = true; listen = "127.0.0.1:0"; };
workers = (
  { name = "first"; sink = "sqlite"; database = "$T/salt.db";
    template = "sqlite/salt_returns.sql"; batch = { size = 50; interval_ms = 100; }; },
  { name = "events"; sink = "sqlite"; database = "$T/salt.db";
    template = "sqlite/salt_events.sql"; batch = { size = 200; interval_ms = 100; }; }
);
rules = (
  { tag = "^salt/job/[0-9]+/ret/"; workers = "first";
    throttle = { key = "{data.id}"; timeframe = 3600; }; },
  { tag = "^flood\$"; workers = "events";
    throttle = { key = "{tag}"; timeframe = 3600; min_count = 10; max_count = 12; }; },
  { tag = "^eventsd/stats/"; workers = "events"; }
);
statistics = (
  { name = "returns"; tag = "^salt/job/[0-9]+/ret/"; fields = [ "data.fun", "data.success" ];
    interval = 1; }
);
CONF
"$EVENTSD" --check-config "$T/eventsd.conf" >/dev/null || fail "config refused"

out=$("$EVENTSD" -c "$T/eventsd.conf" --explain salt/job/20261129000000000000/ret/m7 \
      --data '{"id": "m7", "fun": "test.ping", "success": true}') || fail "explain: exit $?"
echo "$out" | grep -q "throttle key 'm7' (this process): 0 in the current 3600 s window, allowed 1..1: the next event passes" \
    || fail "explain does not show the throttle: $out"
echo "$out" | grep -q "worker 'first' (sink sqlite)" || fail "explain does not show the worker: $out"
echo "$out" | grep -q "^    value [0-9]* :data.id = 'm7'\$" || fail "explain does not show the template's values: $out"
echo "$out" | grep -q "statistics 'returns' (tag '^salt/job/\[0-9\]+/ret/', if it matches): fields data.fun='test.ping' data.success='True'" \
    || fail "explain does not show the statistics: $out"
set +e
out=$("$EVENTSD" -c "$T/eventsd.conf" --explain no/such/tag)
rc=$?
set -e
[ "$rc" = 3 ] || fail "explain of an unrouted tag exited $rc, want 3"
echo "$out" | grep -q "not stored: no rule sends this event to a worker" || fail "$out"
pass "--explain shows throttle key, worker, template values and statistics; exit 3 when nothing stores it"

start_pub jobs --bus salt-ipc --path "$sock" --jobs $JOBS --minions $MINIONS \
    --success-ratio 0.5 --custom flood --count 50 --wait-clients 1
start_eventsd "$T/eventsd.conf"
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub exited with $?"

wait_for "one return per minion" "$DEADLINE" count_is "SELECT count(*) FROM salt_returns" $MINIONS
wait_for "flood events 10..12" "$DEADLINE" \
    count_is "SELECT count(*) FROM salt_events WHERE tag = 'flood'" 3
flood_first=$(( JOBS * (MINIONS + 2) ))   # eventsd-pub numbers the jobs' events first
got=$(sql "SELECT group_concat(n) FROM (SELECT json_extract(data, '\$.eventsd_n') AS n
           FROM salt_events WHERE tag = 'flood' ORDER BY n)")
want="$(( flood_first + 9 )),$(( flood_first + 10 )),$(( flood_first + 11 ))"
[ "$got" = "$want" ] || fail "flood events stored: $got, want the 10th to 12th: $want"
pass "throttles: $MINIONS of $(( JOBS * MINIONS )) returns (one per minion), flood events passed: 3 of 50"

stat_sum() {   # FIELD VALUE: the counts of eventsd/stats/returns events for it, summed
    sql "SELECT coalesce(sum(json_extract(data, '\$.count')), 0) FROM salt_events
         WHERE tag = 'eventsd/stats/returns' AND json_extract(data, '\$.field') = '$1'
           AND json_extract(data, '\$.value') = '$2'"
}
stat_sum_is() { [ "$(stat_sum "$1" "$2")" = "$3" ]; }
returns=$(( JOBS * MINIONS ))
wait_for "statistics of every return" "$DEADLINE" stat_sum_is '*' '*' "$returns"
stat_sum_is data.fun test.ping "$returns" || fail "data.fun=test.ping counted $(stat_sum data.fun test.ping), want $returns"
ok=$(stat_sum data.success True); bad=$(stat_sum data.success False)
[ $(( ok + bad )) = "$returns" ] && [ "$ok" -gt 0 ] && [ "$bad" -gt 0 ] \
    || fail "data.success counted True=$ok False=$bad, want both > 0 adding up to $returns"
pass "statistics: '*' and data.fun counted $returns returns, data.success True=$ok False=$bad"

figure() {   # NAME [SCOPE]: the newest value of an eventsd/stats/eventsd figure
    sql "SELECT json_extract(data, '\$.value') FROM salt_events WHERE tag = 'eventsd/stats/eventsd'
         AND json_extract(data, '\$.name') = '$1' AND json_extract(data, '\$.scope') = '${2:-master}'
         ORDER BY id DESC LIMIT 1"
}
figure_at_least() { v=$(figure "$1" "${3:-}"); [ -n "$v" ] && [ "$v" -ge "$2" ]; }
wait_for "figures as events" "$DEADLINE" figure_at_least written $MINIONS first
wait_for "throttle figures" "$DEADLINE" figure_at_least throttle_blocked $(( returns - MINIONS )) 1
pass "stats.event: written(first)=$(figure written first) received=$(figure received) throttle_blocked(rule 1)=$(figure throttle_blocked 1)"

# GET /metrics over bash's /dev/tcp (no HTTP client needed).
http_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    cat <&3
    exec 3<&-
}
port=$(sed -n 's/.*msg="serving Prometheus metrics".* port=\([0-9]*\).*/\1/p' "$T/eventsd.log" | head -1)
[ -n "$port" ] || fail "no 'serving Prometheus metrics' line in the log"
page=$(http_get "$port" /metrics)
echo "$page" | head -1 | grep -q "^HTTP/1.[01] 200" || fail "GET /metrics: $(echo "$page" | head -1)"
for want in 'eventsd_written_total{worker="first"} 5' "eventsd_received_total 92" \
            'eventsd_throttle_blocked_total{rule="1"} 25' 'eventsd_throttle_blocked_total{rule="2"} 47' \
            '# TYPE eventsd_pending gauge'; do
    echo "$page" | grep -qF "$want" || fail "/metrics lacks '$want': $page"
done
http_get "$port" /nope | head -1 | grep -q " 404" || fail "GET /nope is not a 404"
pass "Prometheus /metrics on port $port: written, received and throttle figures, 404 elsewhere"

kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
