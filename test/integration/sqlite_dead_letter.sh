#!/bin/bash
# Rows the database rejects go to the worker's dead-letter file with the database's message;
# the rest of their batch is committed and the worker keeps going.
. "$(dirname "$0")/../lib.sh"

mkdir -p "$T/sql/sqlite"
cat > "$T/sql/sqlite/schema.sql" <<'SQL'
CREATE TABLE IF NOT EXISTS numbers (n INTEGER NOT NULL UNIQUE CHECK (n % 7 != 3));
SQL
cat > "$T/sql/sqlite/numbers.sql" <<'SQL'
INSERT INTO numbers (n) VALUES (:data.data.n|int) ON CONFLICT DO NOTHING;
SQL
cat > "$T/eventsd.conf" <<CONF
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
sql_dir = "$T/sql";
bus = { type = "salt-ipc"; path = "$T/bus.ipc"; reconnect_min_ms = 50; };
stats = { interval = 1; };
workers = ( { name = "numbers"; sink = "sqlite"; database = "$T/salt.db"; template = "sqlite/numbers.sql";
              dead_letter = "$T/dead.jsonl"; batch = { size = 20; interval_ms = 100; }; } );
rules = ( { tag = "^app/number\$"; workers = [ "numbers" ]; } );
CONF
start_eventsd "$T/eventsd.conf"
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --custom app/number --count 50 --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "43 good rows stored" "$DEADLINE" count_is "SELECT count(*) FROM numbers" 43
wait_for "7 rejected rows counted" 30 stat_is numbers.failed 7
[ "$(wc -l < "$T/dead.jsonl")" = 7 ] || fail "dead-letter file has $(wc -l < "$T/dead.jsonl") lines, want 7"
grep -q '"error": "sqlite: row [0-9]* seq=[0-9]*: CHECK constraint failed' "$T/dead.jsonl" \
    || fail "dead letters lack the database's message: $(head -c 300 "$T/dead.jsonl")"
got=$(sed -n 's/.*"data": {"n": \([0-9]*\)}.*/\1/p' "$T/dead.jsonl" | sort -n | paste -sd, -)
[ "$got" = "3,10,17,24,31,38,45" ] || fail "dead-lettered numbers: $got"
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
pass "7 rejected rows dead-lettered with the database's message, 43 stored, worker kept going"
