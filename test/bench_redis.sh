#!/bin/bash
# bench_redis.sh BUILD: Event Count Logger counters, events/s from eventsd-pub through eventsd
# into Redis (the redis sink: counts held in the worker, one MULTI/EXEC per sync), against
# baselines measured in the same run on the same Redis:
#   - redis-benchmark INCRBY, pipelined 1000 deep: the most Redis takes; divided by the
#     number of intervals, it is the event rate of ECL without local counters (one INCRBY per
#     event and interval) at best;
#   - the same INCRBY one command per round trip (-P 1): ECL's default, unpipelined.
# Also the Redis commands eventsd sent per event (INFO commandstats), the master's CPU per
# event, and the sink's rate without the master (the unit-test driver counting in-process).
# Redis: EVENTSD_REDIS_HOST/PORT when set (test/with-servers.sh), else a private server.
# Figures only; no pass/fail thresholds.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_REDIS_EVENTS:-1000000}     # job returns per eventsd run
MINIONS=100                         # so 100 distinct counter ids ({data.id})
INTERVALS='"5s", "5m", "1h"'        # ECL's example
N_INTERVALS=3
W=$(mktemp -d /tmp/eventsd-bench-redis.XXXXXX)
daemon=""; private=""
cleanup() {
    [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
    [ -n "$private" ] && test/servers.sh stop redis "$W/servers" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
if [ -z "${EVENTSD_REDIS_PORT:-}" ]; then
    eval "$(test/servers.sh start redis "$W/servers")"
    private=1
fi
RHOST=${EVENTSD_REDIS_HOST:-127.0.0.1}; RPORT=$EVENTSD_REDIS_PORT
rcli() { redis-cli -h "$RHOST" -p "$RPORT" "$@"; }
ms() { date +%s%3N; }
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# CPU ticks of the master and its worker processes (read before they exit)
tree_ticks() {
    local t; t=$(cpu_ticks "$1")
    for c in $(pgrep -P "$1"); do t=$(( t + $(cpu_ticks "$c" 2>/dev/null || echo 0) )); done
    echo "$t"
}

# calls of one command so far (INFO commandstats), 0 when never called
calls() { rcli INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" | grep . || echo 0; }

# redis-benchmark requests/s for INCRBY with pipeline depth $1
incrby_rate() {
    redis-benchmark -h "$RHOST" -p "$RPORT" -n "$2" -P "$1" -c 1 -q \
        INCRBY "bench_redis:$$:key" 1 | tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1
}

# the sum of GROUP:1h:cur:<id> (plus last, when the 1h interval rotated during the run)
counted() {
    local g=$1 ts0=$2 keys=() lkeys=()
    for i in $(seq 0 $(( MINIONS - 1 ))); do
        keys+=("$g:1h:cur:minion-$(printf %04d "$i")")
        lkeys+=("$g:1h:last:minion-$(printf %04d "$i")")
    done
    local sum; sum=$(rcli MGET "${keys[@]}" | awk '{ s += $1 } END { print s + 0 }')
    if [ "$(rcli GET "$g:1h:cur:@ts")" != "$ts0" ]; then
        sum=$(( sum + $(rcli MGET "${lkeys[@]}" | awk '{ s += $1 } END { print s + 0 }') ))
    fi
    echo "$sum"
}

run_eventsd() {   # run_eventsd PROCESSES -> "elapsed_ms cpu_ms incrby_per_event_x1000 execs"
    local procs=$1 dir=$W/run-$1 g="bench$$_$1"
    local jobs=$(( N / MINIONS ))
    mkdir -p "$dir"
    cat > "$dir/eventsd.conf" <<CONF
master_id = "bench";
runtime_dir = "$dir/run";
spool = { dir = "$dir/spool"; };
bus = { type = "salt-ipc"; path = "$dir/bus.ipc"; };
stats = { interval = 1; };
workers = ( { name = "counts"; sink = "redis"; host = "$RHOST"; port = $RPORT; group = "$g";
              intervals = [ $INTERVALS ]; counter = "{data.id}"; processes = $procs;
              sync_interval_ms = 1000; sync_limit = 10000;
              batch = { size = 1000; interval_ms = 100; }; } );
rules = ( { tag = "^salt/job/[0-9]+/ret/"; workers = [ "counts" ]; } );
CONF
    local ts0; ts0=$(rcli GET "$g:1h:cur:@ts")
    local incr0 exec0; incr0=$(calls incrby); exec0=$(calls exec)
    "$BUILD/eventsd" -c "$dir/eventsd.conf" 2>"$dir/eventsd.log" &
    daemon=$!
    local t0; t0=$(ms)
    "$BUILD/eventsd-pub" --bus salt-ipc --path "$dir/bus.ipc" --jobs $jobs --minions $MINIONS \
        --wait-clients 1 >/dev/null 2>&1
    local end=$(( $(date +%s) + 300 ))
    until [ "$(counted "$g" "$ts0")" = "$N" ]; do
        if ! kill -0 "$daemon" 2>/dev/null || [ "$(date +%s)" -ge "$end" ]; then
            echo "bench_redis: never counted $N events; eventsd log tail:" >&2
            tail -n 20 "$dir/eventsd.log" >&2
            exit 1
        fi
        sleep 0.02
    done
    local elapsed=$(( $(ms) - t0 ))
    local cpu=$(( $(tree_ticks "$daemon") * 1000 / ticks ))
    kill -TERM "$daemon"; wait "$daemon"; daemon=""
    local incr=$(( $(calls incrby) - incr0 )) execs=$(( $(calls exec) - exec0 ))
    echo "$elapsed $cpu $(( incr * 1000 / N )) $execs"
}

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n * 1000 / (ms > 0 ? ms : 1) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "bench_redis: $N job returns, $MINIONS counter ids, intervals [$INTERVALS], Redis $RHOST:$RPORT ($(redis-server --version | awk '{ print $3 }'))"
piped=$(incrby_rate 1000 2000000)
single=$(incrby_rate 1 100000)
ecl_piped=$(awk -v r="$piped" -v k=$N_INTERVALS 'BEGIN { printf "%.0f", r / k }')
ecl_single=$(awk -v r="$single" -v k=$N_INTERVALS 'BEGIN { printf "%.0f", r / k }')
rcli DEL "bench_redis:$$:key" >/dev/null

printf '%-58s %12s %8s\n' "" "events/s" "ratio"
printf '%-58s %12s %8s\n' "baseline: INCRBY pipelined x1000, per event ($N_INTERVALS intervals)" "$ecl_piped" "1.00"
printf '%-58s %12s %8s\n' "baseline: INCRBY one per round trip, per event (ECL default)" "$ecl_single" "$(ratio "$ecl_single" "$ecl_piped")"
for procs in 1 2; do
    read -r elapsed cpu incr_x1000 execs < <(run_eventsd "$procs")
    r=$(rate "$N" "$elapsed")
    printf '%-58s %12s %8s\n' "eventsd-pub -> eventsd -> redis sink, $procs process(es)" "$r" "$(ratio "$r" "$ecl_piped")"
    printf '  %s\n' "elapsed ${elapsed} ms; CPU of master and workers $(awk -v c="$cpu" -v n="$N" 'BEGIN { printf "%.2f", c * 1000 / n }') us/event; Redis INCRBY per event $(awk -v x="$incr_x1000" 'BEGIN { printf "%.4f", x / 1000 }'), EXEC $execs"
done
