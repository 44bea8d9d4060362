#!/bin/bash
# test/bench_graphite.sh [BUILD]: the graphite sink's figures, each against a baseline measured
# in the same run on the same carbon-cache (test/servers.sh; started here when
# EVENTSD_CARBON_PORT is unset):
#   1. metric lines/s into carbon: the sink's flush path (render + one persistent connection,
#      timed until carbon has read every line: it closes the half-closed connection only then)
#      against a plain Python socket writer sending the very same bytes the same way
#      (sendall, shutdown, wait for carbon's close). Carbon's line receiver is the ceiling of
#      both, so ~1.0x means the sink adds nothing to it. BENCH_ROUNDS rounds each, alternating,
#      the median reported.
#   2. the sink's own costs without carbon: rendering lines, and folding events (names from
#      templates, rollups, aggregation) through write_batch.
#   3. events/s eventsd-pub -> eventsd -> graphite worker -> carbon (counted back from whisper,
#      1 s flush interval) against the same traffic into a file worker (JSON lines) in the same
#      run, from the publisher's start until every event is counted. The graphite figure
#      includes, after the last event, up to one flush interval and carbon's write delay: the
#      "tail" column (time after eventsd-pub finished) shows how much.
# Figures only; no pass/fail thresholds.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$PWD
NAMES=${BENCH_NAMES:-1000}          # distinct metric names per flush
SLOTS=${BENCH_SLOTS:-300}           # intervals (1 s each) per flush: NAMES x SLOTS lines
ROUNDS=${BENCH_ROUNDS:-3}
EVENTS=${BENCH_GRAPHITE_EVENTS:-200000}  # job returns for the end-to-end runs
MINIONS=100
W=$(mktemp -d /tmp/eventsd-bench-graphite.XXXXXX)
daemon=""
own_carbon=""
cleanup() {
    [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
    [ -n "$own_carbon" ] && "$ROOT/test/servers.sh" stop carbon "$W/servers" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
if [ -z "${EVENTSD_CARBON_PORT:-}" ]; then
    eval "$("$ROOT/test/servers.sh" start carbon "$W/servers")"
    own_carbon=1
fi
make -s BUILD="$BUILD" all "$BUILD/test/test_graphite_bench" >/dev/null
DRIVER=$ROOT/$BUILD/test/test_graphite_bench
export EVENTSD_GRAPHITE_BENCH=1 BENCH_NAMES=$NAMES BENCH_SLOTS=$SLOTS BENCH_LINES_FILE=$W/lines

ms() { date +%s%3N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
# driver TEST KEY: runs one bench test of the driver and prints the value of KEY.
driver() {
    "$DRIVER" --filter "graphite_bench/$1" 2>"$W/driver.err" | tr ' ' '\n' | sed -n "s/^$2=//p" |
        grep . || { cat "$W/driver.err" >&2; echo "bench_graphite: driver $1 failed" >&2; exit 1; }
}

# The baseline writer: the same bytes, one connection, sendall, half-close, wait for EOF.
baseline() {
    python3 - "$EVENTSD_CARBON_PORT" "$W/lines" <<'PY'
import socket, sys, time
data = open(sys.argv[2], "rb").read()
t0 = time.monotonic()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(data)
s.shutdown(socket.SHUT_WR)
while s.recv(4096):
    pass
secs = time.monotonic() - t0
print("%.0f" % (data.count(b"\n") / secs))
PY
}

echo "graphite sink (carbon-cache $(dpkg-query -W -f '${Version}' graphite-carbon 2>/dev/null || echo '?') on 127.0.0.1:$EVENTSD_CARBON_PORT):"
driver flush flush_lines_per_s >/dev/null   # warm-up: carbon creates the whisper files once
sink=() base=()
for (( r = 0; r < ROUNDS; r++ )); do
    sink+=("$(driver flush flush_lines_per_s)")
    base+=("$(baseline)")
done
s=$(printf '%s\n' "${sink[@]}" | median); b=$(printf '%s\n' "${base[@]}" | median)
lines=$(( NAMES * SLOTS ))
printf '%-62s %10s lines/s  1.00x  (rounds: %s)\n' "  baseline: python socket writer, same $lines lines ($NAMES names x $SLOTS s)" \
    "$b" "${base[*]}"
printf '%-62s %10s lines/s  %s  (rounds: %s)\n' "  sink flush (render + send until carbon read all)" "$s" \
    "$(ratio "$s" "$b")" "${sink[*]}"
printf '%-62s %10s lines/s  %s\n' "  sink render alone (no socket)" "$(driver render render_lines_per_s)" \
    "$(ratio "$(driver render render_lines_per_s)" "$b")"
printf '%-62s %10s events/s\n' "  sink fold: write_batch, 3 metrics + 2 rollups, no send" \
    "$(BENCH_EVENTS=200000 driver fold fold_events_per_s)"

# ---- end to end: eventsd-pub -> eventsd -> graphite | file
# whisper_sum METRIC: the sum of its points (0 while the file does not exist).
whisper_sum() {
    local f="$EVENTSD_CARBON_WHISPER_DIR/$(echo "$1" | tr . /).wsp"
    [ -f "$f" ] || { echo 0; return; }
    whisper-fetch --drop=nulls --from=$(( $(date +%s) - 590 )) "$f" 2>/dev/null |
        awk '{ s += $2 } END { printf "%.0f\n", s }'
}
file_lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

# run_e2e KIND -> "elapsed_ms tail_ms": from the publisher's start until every return is
# counted, and the part of it after the publisher finished.
run_e2e() {
    local kind=$1 dir=$W/e2e-$1 jobs=$(( EVENTS / MINIONS )) prefix worker
    mkdir -p "$dir"
    prefix="bench.e2e$$_$(date +%s%N)"
    if [ "$kind" = graphite ]; then
        worker="{ name = \"m\"; sink = \"graphite\"; port = $EVENTSD_CARBON_PORT; prefix = \"$prefix\";
    flush_interval = 1; batch = { size = 1000; interval_ms = 100; };
    metrics = ( { name = \"events\"; }, { name = \"jobs.{data.fun}.{data.success}\"; },
                { name = \"minions.{data.id}.returns\"; } );
    rollups = ( { target = \"$prefix.jobs.all.<r>\"; source = \"$prefix.jobs.*.<r>\"; } ); }"
    else
        worker="{ name = \"m\"; sink = \"file\"; path = \"$dir/events.jsonl\";
    batch = { size = 1000; interval_ms = 100; }; }"
    fi
    cat >"$dir/eventsd.conf" <<CONF
master_id = "bench";
runtime_dir = "$dir/run";
spool = { dir = "$dir/spool"; };
bus = { type = "salt-ipc"; path = "$dir/bus.ipc"; };
workers = ( $worker );
rules = ( { tag = "^salt/job/[0-9]+/ret/"; workers = [ "m" ]; } );
CONF
    "$BUILD/eventsd" -c "$dir/eventsd.conf" 2>"$dir/eventsd.log" &
    daemon=$!
    local t0 end; t0=$(ms); end=$(( $(date +%s) + 600 ))
    "$BUILD/eventsd-pub" --bus salt-ipc --path "$dir/bus.ipc" --jobs "$jobs" --minions $MINIONS \
        --wait-clients 1 >/dev/null 2>&1
    local t1; t1=$(ms)
    while :; do
        if [ "$kind" = graphite ]; then n=$(whisper_sum "$prefix.events"); else n=$(file_lines "$dir/events.jsonl"); fi
        [ "$n" -ge "$EVENTS" ] && break
        if ! kill -0 "$daemon" 2>/dev/null || [ "$(date +%s)" -ge "$end" ]; then
            echo "bench_graphite: $kind never reached $EVENTS events ($n); log tail:" >&2
            tail -n 20 "$dir/eventsd.log" >&2
            exit 1
        fi
        sleep 0.05
    done
    local t2; t2=$(ms)
    kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
    echo "$(( t2 - t0 )) $(( t2 - t1 ))"
}

echo "end to end, $EVENTS job returns (eventsd-pub -> eventsd, 1 worker process):"
read -r fms ftail < <(run_e2e file)
read -r gms gtail < <(run_e2e graphite)
frate=$(( EVENTS * 1000 / fms )); grate=$(( EVENTS * 1000 / gms ))
printf '%-62s %10s events/s  1.00x  (%s ms, tail %s ms)\n' "  baseline: file worker (JSON lines, fdatasync per batch)" \
    "$frate" "$fms" "$ftail"
printf '%-62s %10s events/s  %s  (%s ms, tail %s ms; counted back from whisper)\n' \
    "  graphite worker -> carbon (3 metrics + 1 rollup, 1 s interval)" "$grate" \
    "$(ratio "$grate" "$frate")" "$gms" "$gtail"
