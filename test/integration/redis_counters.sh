#!/bin/bash
# Event Count Logger counters end to end: two eventsd instances (own buses, spools and runtime
# dirs), each fed by its own eventsd-pub, count job events into the same Redis:
# - group <G>_funs counts data.fun (two worker processes per instance, intervals 2s and 7d,
#   one declared id never seen) and group <G>_total counts every event as "all" (declared
#   only); both instances count test.ping-style ids into the same keys;
# - the keys are ECL's (<group>:<interval>:cur:<id>, @ts) and hold the exact totals;
# - eventsd-counts prints them as ecl_reader does (sorted id:count, --current / --last /
#   --both, -i needed only with several intervals) and rotates a stale interval itself;
# - errors: unknown group or interval (exit 1), usage (2), Redis down (3).
. "$(dirname "$0")/../lib.sh"

COUNTS="$ROOT/$BUILD/eventsd-counts"
JOBS=30; MINIONS=8
PER_INSTANCE=$(( JOBS * (MINIONS + 1) ))   # salt/job/JID/new and one return per minion

if [ -z "${EVENTSD_REDIS_PORT:-}" ]; then   # run alone: a private server
    eval "$("$ROOT/test/servers.sh" start redis "$T/servers")"
    STARTED_PIDS="$STARTED_PIDS $(cat "$T/servers/redis/redis.pid")"   # cleanup kills it
fi
RHOST=${EVENTSD_REDIS_HOST:-127.0.0.1}; RPORT=$EVENTSD_REDIS_PORT
rcli() { redis-cli -h "$RHOST" -p "$RPORT" "$@"; }
G="it$$_$(date +%s)"

# write_instance NAME SOCKET: a config counting into the shared Redis.
write_instance() {
    mkdir -p "$T/$1"
    cat > "$T/$1/eventsd.conf" <<CONF
master_id = "it_$1";
runtime_dir = "$T/$1/run";
spool = { dir = "$T/$1/spool"; };
bus = { type = "salt-ipc"; path = "$2"; reconnect_min_ms = 50; reconnect_max_ms = 500; };
stats = { interval = 1; };
workers = (
  { name = "funs"; sink = "redis"; host = "$RHOST"; port = $RPORT; group = "${G}_funs";
    intervals = [ "2s", "7d" ]; counter = "{data.fun}"; events = [ "never.seen" ];
    processes = 2; sync_interval_ms = 200; sync_limit = 100;
    batch = { size = 50; interval_ms = 50; }; },
  { name = "total"; sink = "redis"; host = "$RHOST"; port = $RPORT; group = "${G}_total";
    intervals = [ "7d" ]; counter = "all"; events = [ "all" ]; auto_declare = false;
    sync_interval_ms = 200; }
);
rules = (
  { tag = "^salt/job/[0-9]+/(ret/|new\$)"; workers = [ "funs", "total" ]; }
);
CONF
    "$EVENTSD" --check-config "$T/$1/eventsd.conf" >/dev/null || fail "$1: config refused"
}

counts() { "$COUNTS" "$T/a/eventsd.conf" "$@"; }
# counts_are WANT ARGS...: eventsd-counts prints exactly WANT (lines joined by spaces).
counts_are() { want=$1; shift; [ "$(counts "$@" | tr '\n' ' ')" = "$want" ]; }

write_instance a "$T/a/bus.ipc"
write_instance b "$T/b/bus.ipc"
ts7_before=$(rcli GET "${G}_funs:7d:cur:@ts")

start_pub pub_a --bus salt-ipc --path "$T/a/bus.ipc" --jobs $JOBS --minions $MINIONS \
    --fun test.ping --wait-clients 1
pub_a=$PUB_PID
start_pub pub_b --bus salt-ipc --path "$T/b/bus.ipc" --jobs $JOBS --minions $MINIONS \
    --fun state.apply --first-n 100000 --wait-clients 1
pub_b=$PUB_PID
"$EVENTSD" -c "$T/a/eventsd.conf" >>"$T/eventsd_a.log" 2>&1 &
eventsd_a=$!; STARTED_PIDS="$STARTED_PIDS $eventsd_a"
"$EVENTSD" -c "$T/b/eventsd.conf" >>"$T/eventsd_b.log" 2>&1 &
eventsd_b=$!; STARTED_PIDS="$STARTED_PIDS $eventsd_b"
wait_pid "$pub_a" "$DEADLINE" || fail "eventsd-pub a exited with $?"
wait_pid "$pub_b" "$DEADLINE" || fail "eventsd-pub b exited with $?"

# A 7-day boundary (Thursday 00:00 UTC) during the run moves counts to last: add them then.
total_of() {   # GROUP ID: cur (+ last when 7d rotated during the test) from Redis itself
    v=$(rcli GET "$1:7d:cur:$2"); v=${v:-0}
    if [ "$(rcli GET "$1:7d:cur:@ts")" != "$ts7_before" ] && [ -n "$ts7_before" ]; then
        l=$(rcli GET "$1:7d:last:$2"); v=$(( v + ${l:-0} ))
    fi
    echo "$v"
}
total_is() { [ "$(total_of "$1" "$2")" = "$3" ]; }
wait_for "all counted in ${G}_total" "$DEADLINE" total_is "${G}_total" all $(( 2 * PER_INSTANCE ))
wait_for "test.ping counted" "$DEADLINE" total_is "${G}_funs" test.ping $PER_INSTANCE
wait_for "state.apply counted" "$DEADLINE" total_is "${G}_funs" state.apply $PER_INSTANCE
pass "two instances counted $(( 2 * PER_INSTANCE )) events into ECL keys exactly"

# Nothing more arrives, yet the workers rotate the 2s interval at its boundaries (so ecl_reader
# never shows a stale last): its @ts moves on to a boundary later than the last event's.
ts_idle=$(rcli GET "${G}_funs:2s:cur:@ts")
ts_moved() { t=$(rcli GET "${G}_funs:2s:cur:@ts"); [ -n "$t" ] && [ "$t" -ge $(( ${ts_idle:-0} + 4 )) ]; }
wait_for "idle rotation of the 2s interval" "$DEADLINE" ts_moved
pass "idle workers rotate the 2s interval: @ts $ts_idle -> $(rcli GET "${G}_funs:2s:cur:@ts")"

# The totals stay (no double count from later syncs or the shutdown).
kill -TERM "$eventsd_a" "$eventsd_b"
wait_pid "$eventsd_a" 60 || fail "eventsd a exit code $?"
wait_pid "$eventsd_b" 60 || fail "eventsd b exit code $?"
total_is "${G}_total" all $(( 2 * PER_INSTANCE )) || fail "total after shutdown: $(total_of "${G}_total" all)"
[ "$(rcli GET "${G}_funs:7d:cur:never.seen")" = 0 ] || fail "declared id never.seen is not 0"
ts=$(rcli GET "${G}_funs:2s:cur:@ts")
[ -n "$ts" ] && [ $(( ts % 2 )) = 0 ] || fail "2s @ts is not an epoch-aligned boundary: '$ts'"
pass "totals unchanged after SIGTERM; declared id at 0; @ts epoch-aligned"

if [ "$(rcli GET "${G}_funs:7d:cur:@ts")" = "$ts7_before" ] || [ -z "$ts7_before" ]; then
    want="never.seen:0 state.apply:$PER_INSTANCE test.ping:$PER_INSTANCE "
    wait_for "eventsd-counts --current" 10 counts_are "$want" -g "${G}_funs" -i 7d --current
    counts_are "all:$(( 2 * PER_INSTANCE )) " -g "${G}_total" --current ||
        fail "eventsd-counts -g ${G}_total --current: $(counts -g "${G}_total" --current)"
    out=$(counts -g "${G}_total" --both | tr '\n' ' ')
    case "$out" in "Last: all:"*" Current: all:$(( 2 * PER_INSTANCE )) ") ;;
        *) fail "--both prints: $out" ;; esac
    pass "eventsd-counts prints the exact totals like ecl_reader (--current, --both)"
else
    note "a 7-day boundary passed during the run: eventsd-counts totals not compared"
fi

# The 2 s interval: nobody syncs any more, so its boundaries pass unrotated; eventsd-counts
# rotates before reading, and two boundaries later last and cur are empty (0 for declared).
test_wait_until_ms() { while [ "$(now_ms)" -lt "$1" ]; do sleep 0.05; done; }
test_wait_until_ms $(( (ts + 4) * 1000 + 100 ))
counts_are "never.seen:0 " -g "${G}_funs" -i 2s --last || fail "--last after idle: $(counts -g "${G}_funs" -i 2s --last)"
now=$(date +%s)
[ "$(rcli GET "${G}_funs:2s:cur:@ts")" -ge $(( now - now % 2 - 2 )) ] || fail "the reader did not rotate"
counts_are "never.seen:0 " -g "${G}_funs" -i 2s --no-rotate --current || fail "--current: $(counts -g "${G}_funs" -i 2s --current)"
pass "eventsd-counts rotates an idle interval before reading (last is not stale)"

# Errors and exit codes.
expect_exit() {   # CODE PATTERN ARGS...
    code=$1; pattern=$2; shift 2
    set +e; out=$("$COUNTS" "$@" 2>&1); rc=$?; set -e
    [ "$rc" = "$code" ] || fail "eventsd-counts $*: exit $rc, want $code ($out)"
    echo "$out" | grep -q -- "$pattern" || fail "eventsd-counts $*: no '$pattern' in: $out"
}
expect_exit 1 "group 'nope' not found" "$T/a/eventsd.conf" -g nope
expect_exit 1 "several intervals" "$T/a/eventsd.conf" -g "${G}_funs"
expect_exit 1 "interval '9m' is not configured" "$T/a/eventsd.conf" -g "${G}_funs" -i 9m
expect_exit 2 "-g GROUP is required" "$T/a/eventsd.conf"
expect_exit 2 "exclude each other" "$T/a/eventsd.conf" -g x --last --current
expect_exit 0 "usage:" --help
expect_exit 1 "" "$T/nonexistent.conf" -g x
down=$(free_port)
sed "s/port = $RPORT;/port = $down;/" "$T/a/eventsd.conf" > "$T/down.conf"
expect_exit 3 "redis 127.0.0.1:$down: connect: Connection refused" "$T/down.conf" -g "${G}_total"
pass "exit codes: 1 unknown group/interval or bad config, 2 usage, 3 Redis down"
