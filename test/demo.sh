#!/bin/bash
# make demo: runs eventsd on etc/demo.conf (embedded SQLite under ./demo/) against the
# bundled event generator, waits until everything is stored, prints what was stored, stops.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$PWD
EVENTSD=$ROOT/$BUILD/eventsd
PUB=$ROOT/$BUILD/eventsd-pub
DEMO=$ROOT/demo
JOBS=${DEMO_JOBS:-100}
MINIONS=${DEMO_MINIONS:-30}
CAPTURE=$ROOT/../shared/fixtures/salt/frames-3006.bin
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

rm -rf "$DEMO"
mkdir -p "$DEMO"
echo "== eventsd --check-config etc/demo.conf"
"$EVENTSD" --check-config etc/demo.conf

wait_until() {   # wait_until SECONDS description command...
    local secs=$1 what=$2; shift 2
    local end=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$end" ]; then
            echo "demo: timed out waiting for $what; daemon log:" >&2
            tail -n 30 "$DEMO/eventsd.log" >&2
            exit 1
        fi
        sleep 0.2
    done
}
count() { sqlite3 "$DEMO/salt.db" "SELECT count(*) FROM $1" 2>/dev/null; }
count_is() { [ "$(count "$1")" = "$2" ]; }

echo "== starting eventsd (log: demo/eventsd.log)"
"$EVENTSD" -c etc/demo.conf 2>"$DEMO/eventsd.log" &
daemon=$!
pids="$daemon"

expected=0
if [ -f "$CAPTURE" ]; then
    echo "== replaying a real Salt 3006 capture (55 events: auth, keys, jobs, hostile strings)"
    "$PUB" --bus salt-ipc --path "$DEMO/master_event_pub.ipc" --replay "$CAPTURE" --wait-clients 1
    expected=55
    wait_until 60 "the capture to be stored" count_is salt_events $expected
fi
events=$(( JOBS * (MINIONS + 2) ))
echo "== publishing $JOBS jobs x $MINIONS minions ($events events) with eventsd-pub"
"$PUB" --bus salt-ipc --path "$DEMO/master_event_pub.ipc" --jobs "$JOBS" --minions "$MINIONS" \
    --return-size 300 --success-ratio 0.95 --wait-clients 1
expected=$(( expected + events ))
start=$(date +%s%3N)
wait_until 120 "$expected events to be stored" count_is salt_events $expected
echo "== all $expected events stored ($(( $(date +%s%3N) - start )) ms after the publisher finished)"

kill -TERM "$daemon"
wait "$daemon"
pids=""
echo "== eventsd stopped cleanly; its last statistics line:"
grep 'msg=stats' "$DEMO/eventsd.log" | tail -n 1
echo
echo "== rows per table in demo/salt.db"
sqlite3 -header -column "$DEMO/salt.db" "
  SELECT 'salt_events' AS tbl, count(*) AS rows FROM salt_events
  UNION ALL SELECT 'salt_returns', count(*) FROM salt_returns
  UNION ALL SELECT 'jids', count(*) FROM jids"
echo
echo "== returns per function and outcome"
sqlite3 -header -column "$DEMO/salt.db" \
  "SELECT fun, success, count(*) AS returns FROM salt_returns GROUP BY fun, success ORDER BY fun, success"
echo
echo "== a few stored returns"
sqlite3 -header -column "$DEMO/salt.db" \
  "SELECT jid, id, fun, success, substr(return, 1, 40) AS return FROM salt_returns ORDER BY rowid DESC LIMIT 5"
if [ -s "$DEMO/auth.jsonl" ]; then
    echo
    echo "== demo/auth.jsonl (file sink, priority rule): $(wc -l < "$DEMO/auth.jsonl") auth/key events, first one:"
    head -n 1 "$DEMO/auth.jsonl" | cut -c1-200
fi
