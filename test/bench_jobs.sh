#!/bin/bash
# test/bench_jobs.sh [BUILD]: events/s with job tracking on, for jobs of 10,000 minions
# (issue 7), against a baseline measured in the same run: the same traffic (eventsd-pub ->
# eventsd, salt-ipc) into a file worker (JSON lines). The tracking run routes the new events
# and returns to a trigger worker running the shipped salt_jobs trigger, whose pipeline writes
# salt_jobs / salt_job_missing into SQLite; it is timed from the publisher's start until every
# job's salt_jobs row is written ("complete"). Also reported: the trigger worker's SQLite
# statements and changed rows per event (its closing log line), which stay constant per
# return whatever the job size.
# Figures only; no pass/fail thresholds.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${BENCH_JOB_JOBS:-10}
MINIONS=${BENCH_JOB_MINIONS:-10000}
EVENTS=$(( JOBS * (MINIONS + 2) ))
W=$(mktemp -d /tmp/eventsd-bench-jobs.XXXXXX)
daemon=""; pub=""
cleanup() {
    [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
    [ -n "$pub" ] && kill -9 "$pub" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
make -s BUILD="$BUILD" all >/dev/null
ms() { date +%s%3N; }

config() {   # DIR KIND(file|trigger)
    mkdir -p "$1"
    tracking=""
    if [ "$2" = file ]; then
        worker="{ name = \"sink\"; sink = \"file\"; path = \"$1/events.jsonl\"; batch = { size = 1000; interval_ms = 100; }; }"
    else
        tracking="triggers = ( { name = \"salt_jobs\";
    match = ( { tag = \"^salt/job/[0-9]+/new\$\"; }, { tag = \"^salt/job/[0-9]+/ret/\"; } );
    distinguished_by = [ \"data.jid\" ]; all_expected = true; expire = \"first + 1h\";
    fire_pipeline = \"done\"; } );
pipelines = ( { name = \"done\"; handlers = (
    { type = \"sql\"; sink = \"sqlite\"; database = \"$1/salt.db\"; template = \"sqlite/salt_jobs.sql\";
      missing_template = \"sqlite/salt_job_missing.sql\"; } ); } );"
        worker="{ name = \"sink\"; sink = \"trigger\"; state = \"$1/triggers.db\"; triggers = [ \"salt_jobs\" ];
                  batch = { size = 1000; interval_ms = 100; }; }"
    fi
    cat > "$1/eventsd.conf" <<CONF
runtime_dir = "$1/run";
spool = { dir = "$1/spool"; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$1/bus.ipc"; };
stats = { interval = 0; };
workers = ( $worker );
rules = ( { tag = "^salt/job/[0-9]+/(new|ret/)"; workers = "sink"; } );
$tracking
CONF
}

done_file() { [ "$({ wc -l < "$1/events.jsonl"; } 2>/dev/null || echo 0)" -ge $(( JOBS * (MINIONS + 1) )) ]; }
done_trigger() { [ "$(sqlite3 "$1/salt.db" "SELECT count(*) FROM salt_jobs WHERE status = 'complete'" 2>/dev/null || echo 0)" = "$JOBS" ]; }

run() {   # KIND: prints elapsed ms
    d=$W/$1
    config "$d" "$1"
    "$ROOT/$BUILD/eventsd-pub" --bus salt-ipc --path "$d/bus.ipc" --jobs "$JOBS" --minions "$MINIONS" \
        --wait-clients 1 >"$d/pub.out" 2>"$d/pub.err" &
    pub=$!
    start=$(ms)
    "$ROOT/$BUILD/eventsd" -c "$d/eventsd.conf" >"$d/eventsd.log" 2>&1 &
    daemon=$!
    deadline=$(( $(date +%s) + 600 ))
    until "done_$1" "$d"; do
        [ "$(date +%s)" -lt "$deadline" ] || { tail -5 "$d/eventsd.log" >&2; echo "bench_jobs: $1 run timed out" >&2; exit 1; }
        sleep 0.05
    done
    end=$(ms)
    wait "$pub" || true; pub=""
    kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
    echo $(( end - start ))
}

echo "job tracking: $JOBS jobs of $MINIONS minions ($EVENTS events: bare jid, new, returns), salt-ipc, 1 worker process"
base=$(run file)
track=$(run trigger)
printf '  %-58s %8s ms %8s events/s  1.00x\n' "baseline: file worker (JSON lines)" "$base" $(( EVENTS * 1000 / base ))
printf '  %-58s %8s ms %8s events/s  %s\n' "trigger worker, salt_jobs trigger, rows in SQLite" "$track" \
    $(( EVENTS * 1000 / track )) "$(awk -v a="$base" -v b="$track" 'BEGIN { printf "%.2fx", a / b }')"
line=$(grep 'trigger sink closed' "$W/trigger/eventsd.log" | tail -1 || true)
[ -n "$line" ] && echo "  trigger worker: $(echo "$line" | grep -o 'events=[0-9]*\|joined=[0-9]*\|fired=[0-9]*\|pipeline_runs=[0-9]*' | tr '\n' ' ')"
