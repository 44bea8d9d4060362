#!/bin/bash
# make bench: events/s from eventsd-pub to committed SQLite rows, reported as a ratio against a
# baseline measured in the same run on the same disk: the sqlite3 shell inserting the same
# number of equally sized rows into the same schema, 1000 rows per transaction (the ceiling of
# the sink). Also: the master's CPU per event, its peak RSS, and the priority-event latency.
# Figures only; no pass/fail thresholds (they belong to no test).
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_EVENTS:-100000}          # job returns per run
MINIONS=100
JOBS=$(( N / MINIONS ))
SIZE=${BENCH_RETURN_SIZE:-1000}    # bytes of return text: rows of about 1.2 KB like perf-notes.md
W=$(mktemp -d /tmp/eventsd-bench.XXXXXX)
daemon=""
trap '[ -n "$daemon" ] && kill -9 $daemon 2>/dev/null; rm -rf "$W"' EXIT
ticks=$(getconf CLK_TCK)

ms() { date +%s%3N; }
rows() { sqlite3 "$1" "SELECT count(*) FROM salt_returns" 2>/dev/null || echo 0; }
wait_rows() { until [ "$(rows "$1")" = "$2" ]; do sleep 0.05; done; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

baseline() {
    local db=$W/baseline.db
    sqlite3 "$db" < sql/sqlite/schema.sql
    sqlite3 "$db" "PRAGMA journal_mode=WAL;" >/dev/null
    local t0; t0=$(ms)
    for (( b = 0; b < N; b += 1000 )); do
        echo "BEGIN; INSERT INTO salt_returns (fun, jid, \"return\", id, success, full_ret)
              SELECT 'test.ping', printf('%020d', $b + value / $MINIONS), json_quote(printf('%.${SIZE}c', 'x')),
                     printf('minion-%04d', value % $MINIONS), '1', json_object('return', printf('%.$(( SIZE + 200 ))c', 'y'))
              FROM generate_series(0, 999); COMMIT;"
    done | sqlite3 "$db" >/dev/null
    echo $(( $(ms) - t0 ))
}

run_eventsd() {   # run_eventsd PROCESSES -> "elapsed_ms cpu_ms rss_kb"
    local procs=$1 dir=$W/run-$1
    mkdir -p "$dir"
    cat > "$dir/eventsd.conf" <<CONF
master_id = "bench";
runtime_dir = "$dir/run";
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$dir/bus.ipc"; };
stats = { interval = 1; };
workers = ( { name = "returns"; sink = "sqlite"; database = "$dir/salt.db"; processes = $procs;
              template = "sqlite/salt_returns.sql"; batch = { size = 1000; interval_ms = 200; }; } );
rules = ( { tag = "^salt/job/[0-9]+/ret/"; workers = [ "returns" ]; } );
CONF
    "$BUILD/eventsd" -c "$dir/eventsd.conf" 2>"$dir/eventsd.log" &
    daemon=$!
    local t0; t0=$(ms)
    "$BUILD/eventsd-pub" --bus salt-ipc --path "$dir/bus.ipc" --jobs $JOBS --minions $MINIONS \
        --return-size "$SIZE" --wait-clients 1 >/dev/null 2>&1
    wait_rows "$dir/salt.db" "$N"
    local elapsed=$(( $(ms) - t0 ))
    local cpu=$(( $(cpu_ticks $daemon) * 1000 / ticks ))
    local rss; rss=$(awk '/VmHWM/ { print $2 }' "/proc/$daemon/status")
    kill -TERM $daemon; wait $daemon; daemon=""
    echo "$elapsed $cpu $rss"
}

priority_latency() {
    local dir=$W/prio
    mkdir -p "$dir"
    cat > "$dir/eventsd.conf" <<CONF
runtime_dir = "$dir/run";
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$dir/bus.ipc"; };
workers = ( { name = "events"; sink = "sqlite"; database = "$dir/salt.db";
              template = "sqlite/salt_events.sql"; batch = { size = 100000; interval_ms = 3600000; }; } );
rules = ( { tag = "^bench/urgent$"; workers = [ "events" ]; priority = true; },
          { tag = ".*"; workers = [ "events" ]; } );
CONF
    "$BUILD/eventsd" -c "$dir/eventsd.conf" 2>"$dir/eventsd.log" &
    daemon=$!
    "$BUILD/eventsd-pub" --bus salt-ipc --path "$dir/bus.ipc" --jobs 50 --minions 100 --wait-clients 1 >/dev/null 2>&1
    "$BUILD/eventsd-pub" --bus salt-ipc --path "$dir/bus.ipc" --custom bench/urgent --count 1 --wait-clients 1 >/dev/null 2>&1
    until [ "$(sqlite3 "$dir/salt.db" "SELECT count(*) FROM salt_events WHERE tag='bench/urgent'" 2>/dev/null)" = 1 ]; do sleep 0.01; done
    local seen; seen=$(ms)
    local stamp; stamp=$(sqlite3 "$dir/salt.db" "SELECT json_extract(data,'\$._stamp') FROM salt_events WHERE tag='bench/urgent'")
    kill -TERM $daemon; wait $daemon; daemon=""
    echo $(( seen - $(date -u -d "${stamp}Z" +%s%3N) ))
}

echo "eventsd bench: $N job returns of ~$(( SIZE + 250 )) bytes into SQLite (WAL) on $(nproc) cores"
base_ms=$(baseline)
base_rate=$(( N * 1000 / base_ms ))
printf '%-52s %8s ms %8s rows/s  1.00x\n' "baseline: sqlite3 shell, same schema, 1000 rows/txn" "$base_ms" "$base_rate"
for procs in 1 2; do
    read -r elapsed cpu rss < <(run_eventsd $procs)
    rate=$(( N * 1000 / elapsed ))
    printf '%-52s %8s ms %8s rows/s  %s  (master CPU %s us/event, peak RSS %s MB)\n' \
        "eventsd-pub -> eventsd -> SQLite, $procs worker process(es)" "$elapsed" "$rate" \
        "$(awk -v a=$rate -v b=$base_rate 'BEGIN { printf "%.2fx", a / b }')" \
        "$(awk -v c=$cpu -v n=$((N + 2 * JOBS)) 'BEGIN { printf "%.1f", c * 1000 / n }')" $(( rss / 1024 ))
done
echo "priority event latency (publish -> committed, a 5000-event batch filling): $(priority_latency) ms"
