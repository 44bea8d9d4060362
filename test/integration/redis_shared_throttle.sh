#!/bin/bash
# Shared throttles end to end: two eventsd instances (own buses, spools and SQLite databases)
# see the same job returns (the same minion ids from two eventsd-pub), and a rule's
# de-duplicating throttle keyed by the minion id is shared through Redis (INCR with expiry in
# one Lua step): across both databases each minion's return is stored exactly once. Then
# Redis stops: the throttle counts locally, the failure is logged, and events keep flowing.
. "$(dirname "$0")/../lib.sh"

JOBS=10; MINIONS=6
if [ -z "${EVENTSD_REDIS_PORT:-}" ]; then   # run alone: a private server
    eval "$("$ROOT/test/servers.sh" start redis "$T/servers")"
    STARTED_PIDS="$STARTED_PIDS $(cat "$T/servers/redis/redis.pid")"
fi
RHOST=${EVENTSD_REDIS_HOST:-127.0.0.1}; RPORT=$EVENTSD_REDIS_PORT

# write_instance NAME TIMEFRAME: a config whose returns rule has a shared throttle.
write_instance() {
    mkdir -p "$T/$1"
    cat > "$T/$1/eventsd.conf" <<CONF
master_id = "it_$1";
runtime_dir = "$T/$1/run";
spool = { dir = "$T/$1/spool"; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$T/$1/bus.ipc"; reconnect_min_ms = 50; reconnect_max_ms = 500; };
stats = { interval = 1; };
redis = { host = "$RHOST"; port = $RPORT; timeout_ms = 500; };
workers = (
  { name = "returns"; sink = "sqlite"; database = "$T/$1/salt.db";
    template = "sqlite/salt_returns.sql"; batch = { size = 50; interval_ms = 100; }; }
);
rules = (
  { tag = "^salt/job/[0-9]+/ret/"; workers = "returns";
    throttle = { key = "$$-{data.id}"; timeframe = $2; shared = true; }; }
);
CONF
    "$EVENTSD" --check-config "$T/$1/eventsd.conf" >/dev/null || fail "$1: config refused"
}
rows() { sqlite3 -batch -noheader "$T/$1/salt.db" "SELECT count(*) FROM salt_returns" 2>/dev/null || echo 0; }
total_rows_are() { [ $(( $(rows a) + $(rows b) )) = "$1" ]; }
accepted_at_least() {   # NAME N: instance NAME's newest stats line says accepted >= N
    v=$(grep 'msg=stats' "$T/$1/eventsd.log" | tail -n 1 | tr ' ' '\n' | sed -n 's/^accepted=//p')
    [ -n "$v" ] && [ "$v" -ge "$2" ]
}

write_instance a 3600
write_instance b 3600
for i in a b; do
    "$EVENTSD" -c "$T/$i/eventsd.conf" >>"$T/$i/eventsd.log" 2>&1 &
    STARTED_PIDS="$STARTED_PIDS $!"; eval "pid_$i=$!"
done
start_pub pub_a --bus salt-ipc --path "$T/a/bus.ipc" --jobs $JOBS --minions $MINIONS --wait-clients 1
pub_a=$PUB_PID
start_pub pub_b --bus salt-ipc --path "$T/b/bus.ipc" --jobs $JOBS --minions $MINIONS \
    --first-n 100000 --wait-clients 1
pub_b=$PUB_PID
wait_pid "$pub_a" "$DEADLINE" || fail "eventsd-pub a exited with $?"
wait_pid "$pub_b" "$DEADLINE" || fail "eventsd-pub b exited with $?"
wait_for "each minion stored once across both instances" "$DEADLINE" total_rows_are $MINIONS
# Both masters have routed (or held back) every return: nothing more can arrive.
for i in a b; do
    wait_for "$i: stats after the publisher" "$DEADLINE" grep -q 'msg=stats' "$T/$i/eventsd.log"
done
for i in a b; do kill -TERM "$(eval echo \$pid_$i)"; wait_pid "$(eval echo \$pid_$i)" 60 || fail "$i exit $?"; done
total_rows_are $MINIONS || fail "after the drain: $(rows a) + $(rows b) rows, want $MINIONS"
distinct=$(sqlite3 -batch -noheader "$T/a/salt.db" "ATTACH '$T/b/salt.db' AS b;
    SELECT count(DISTINCT id) FROM (SELECT id FROM salt_returns UNION ALL SELECT id FROM b.salt_returns)")
[ "$distinct" = $MINIONS ] || fail "distinct minions stored: $distinct, want $MINIONS"
keys=$(redis-cli -h "$RHOST" -p "$RPORT" --scan --pattern "eventsd:throttle:*:$$-*" | wc -l)
[ "$keys" = $MINIONS ] || fail "throttle keys in Redis: $keys, want $MINIONS"
ttl=$(redis-cli -h "$RHOST" -p "$RPORT" --scan --pattern "eventsd:throttle:*:$$-*" | head -1 \
      | xargs redis-cli -h "$RHOST" -p "$RPORT" PTTL)
[ "$ttl" -gt 0 ] && [ "$ttl" -le 3600000 ] || fail "throttle key PTTL $ttl, want 1..3600000"
pass "shared throttle: $(( 2 * JOBS * MINIONS )) returns on two instances, $MINIONS stored ($(rows a) in a, $(rows b) in b), $keys keys with expiry"

# Redis unreachable (a closed port): counting falls back to the process, logged, never stuck.
dead=$(free_port)
sed -i "s/^redis = .*/redis = { host = \"127.0.0.1\"; port = $dead; timeout_ms = 200; };/" "$T/a/eventsd.conf"
sed -i "s/key = \"$$-/key = \"$$-down-/" "$T/a/eventsd.conf"
rm -f "$T/a/salt.db"*
"$EVENTSD" -c "$T/a/eventsd.conf" >>"$T/a/eventsd.log" 2>&1 &
pid_a=$!; STARTED_PIDS="$STARTED_PIDS $pid_a"
start_pub pub_c --bus salt-ipc --path "$T/a/bus.ipc" --jobs $JOBS --minions $MINIONS \
    --first-n 200000 --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub c exited with $?"
rows_a_are() { [ "$(rows a)" = "$1" ]; }
wait_for "local fallback stores each minion once" "$DEADLINE" rows_a_are $MINIONS
grep -q 'msg="shared throttle cannot use redis, counting in this process"' "$T/a/eventsd.log" \
    || fail "no log line about the unreachable Redis"
kill -TERM "$pid_a"; wait_pid "$pid_a" 60 || fail "a exit $?"
rows_a_are $MINIONS || fail "after the drain: $(rows a) rows, want $MINIONS"
pass "Redis unreachable: counted in the process ($(rows a) stored), failure logged"
