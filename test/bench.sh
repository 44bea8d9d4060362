#!/bin/bash
# make bench: events/s from eventsd-pub to committed SQLite rows, reported as a ratio against a
# baseline measured in the same run on the same disk: the sqlite3 shell inserting the same
# number of equally sized rows into the same schema, 1000 rows per transaction (the ceiling of
# the sink). Also: the master's CPU per event, its peak RSS, and the priority-event latency.
# PostgreSQL and MariaDB too (BENCH_DB=0 skips them): the same rows into the same salt_returns
# schema, with a baseline by the database's own client in the same run (psql: generate_series
# INSERT ... SELECT; mariadb: INSERT ... SELECT from the seq_0_to_999 sequence table; 1000 rows
# per transaction, ON CONFLICT / ON DUPLICATE KEY like the templates) against eventsd-pub ->
# eventsd -> that database with 1 and 2 worker processes. The servers come from
# test/with-servers.sh: without EVENTSD_PG_CONNINFO this script re-runs itself under it.
# Figures only; no pass/fail thresholds (they belong to no test).
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/test/integration/db_lib.sh"   # db_conn: the worker settings for the test servers
DB=${BENCH_DB:-1}
if [ "$DB" != 0 ] && [ -z "${EVENTSD_PG_CONNINFO:-}" ] && [ -z "${EVENTSD_BENCH_UNDER_SERVERS:-}" ]; then
    if [ "$(id -u)" = 0 ]; then
        test/install-db-deps.sh >&2
        export EVENTSD_BENCH_UNDER_SERVERS=1    # no second attempt if the servers give no conninfo
        exec test/with-servers.sh "$ROOT/test/bench.sh" "$BUILD"
    fi
    echo "bench: not root, so no PostgreSQL/MariaDB servers (test/with-servers.sh needs root); SQLite only" >&2
fi
[ -n "${EVENTSD_PG_CONNINFO:-}" ] && [ -n "${EVENTSD_MYSQL_PORT:-}" ] || DB=0
NDB=${BENCH_DB_EVENTS:-50000}      # job returns per PostgreSQL/MariaDB run
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
pgq() { PGOPTIONS=--client-min-messages=warning psql "$EVENTSD_PG_CONNINFO" -qAtX -v ON_ERROR_STOP=1 "$@"; }
myq() { MYSQL_PWD=$EVENTSD_MYSQL_PASSWORD mariadb --no-defaults -h "$EVENTSD_MYSQL_HOST" -P "$EVENTSD_MYSQL_PORT" \
            -u "$EVENTSD_MYSQL_USER" "$EVENTSD_MYSQL_DATABASE" -N -B "$@"; }
dbq() { if [ "$1" = pgsql ]; then pgq -c "$2"; else myq -e "$2"; fi; }
# db_fresh KIND: empty tables (the sinks create them again from schema.sql), and for PostgreSQL
# a checkpoint so that no run pays for the previous run's dirty pages.
db_fresh() {
    dbq "$1" "DROP TABLE IF EXISTS salt_events, salt_returns, jids" >/dev/null
    if [ "$1" = pgsql ]; then
        psql "host=127.0.0.1 port=$EVENTSD_PG_PORT dbname=eventsd user=postgres" -qAtX -c CHECKPOINT >/dev/null
    fi
}
# wait_db_rows KIND N PID: until KIND's salt_returns holds N rows; fails when PID dies or after 300 s.
wait_db_rows() {
    local end=$(( $(date +%s) + 300 ))
    until [ "$(dbq "$1" "SELECT count(*) FROM salt_returns" 2>/dev/null || echo 0)" = "$2" ]; do
        if ! kill -0 "$3" 2>/dev/null || [ "$(date +%s)" -ge "$end" ]; then
            echo "bench: $1 never reached $2 rows; eventsd log tail:" >&2
            tail -n 20 "$W/$1-run-"*/eventsd.log >&2 || true
            exit 1
        fi
        sleep 0.05
    done
}
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

run_eventsd() {   # run_eventsd PROCESSES [SYNC [EVENTS]] -> "elapsed_ms cpu_ms rss_kb"
    local procs=$1 sync=${2:-interval} n=${3:-$N} dir=$W/run-$1-${2:-interval}
    local jobs=$(( n / MINIONS ))
    mkdir -p "$dir"
    cat > "$dir/eventsd.conf" <<CONF
master_id = "bench";
runtime_dir = "$dir/run";
spool = { dir = "$dir/spool"; sync = "$sync"; };
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
    "$BUILD/eventsd-pub" --bus salt-ipc --path "$dir/bus.ipc" --jobs $jobs --minions $MINIONS \
        --return-size "$SIZE" --wait-clients 1 >/dev/null 2>&1
    wait_rows "$dir/salt.db" "$n"
    local elapsed=$(( $(ms) - t0 ))
    local cpu=$(( $(cpu_ticks $daemon) * 1000 / ticks ))
    local rss; rss=$(awk '/VmHWM/ { print $2 }' "/proc/$daemon/status")
    kill -TERM $daemon; wait $daemon; daemon=""
    echo "$elapsed $cpu $rss"
}

db_baseline() {   # db_baseline KIND -> elapsed ms for NDB rows, 1000 per transaction
    local kind=$1 b t0
    db_fresh "$kind"
    if [ "$kind" = pgsql ]; then pgq -f sql/pgsql/schema.sql >/dev/null; else myq < sql/mysql/schema.sql; fi
    t0=$(ms)
    if [ "$kind" = pgsql ]; then
        for (( b = 0; b < NDB; b += 1000 )); do
            echo "BEGIN; INSERT INTO salt_returns (fun, jid, return, id, success, full_ret)
                  SELECT 'test.ping', lpad(($b + g / $MINIONS)::text, 20, '0'), to_jsonb(repeat('x', $SIZE)),
                         'minion-' || lpad((g % $MINIONS)::text, 4, '0'), '1',
                         jsonb_build_object('return', repeat('y', $(( SIZE + 200 ))))
                  FROM generate_series(0, 999) g ON CONFLICT DO NOTHING; COMMIT;"
        done | pgq >/dev/null
    else
        for (( b = 0; b < NDB; b += 1000 )); do
            echo "BEGIN; INSERT INTO salt_returns (\`fun\`, \`jid\`, \`return\`, \`id\`, \`success\`, \`full_ret\`)
                  SELECT 'test.ping', LPAD($b + seq DIV $MINIONS, 20, '0'), JSON_QUOTE(REPEAT('x', $SIZE)),
                         CONCAT('minion-', LPAD(seq % $MINIONS, 4, '0')), '1',
                         JSON_OBJECT('return', REPEAT('y', $(( SIZE + 200 ))))
                  FROM seq_0_to_999 ON DUPLICATE KEY UPDATE \`jid\` = \`jid\`; COMMIT;"
        done | myq >/dev/null
    fi
    local elapsed=$(( $(ms) - t0 ))
    [ "$(dbq "$kind" "SELECT count(*) FROM salt_returns")" = "$NDB" ] || { echo "bench: $kind baseline stored the wrong row count" >&2; exit 1; }
    echo "$elapsed"
}

run_eventsd_db() {   # run_eventsd_db KIND PROCESSES -> "elapsed_ms cpu_ms rss_kb"
    local kind=$1 procs=$2 dir=$W/$1-run-$2 conn jobs=$(( NDB / MINIONS ))
    mkdir -p "$dir"
    conn=$(db_conn "$kind")
    cat > "$dir/eventsd.conf" <<CONF
master_id = "bench";
runtime_dir = "$dir/run";
spool = { dir = "$dir/spool"; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$dir/bus.ipc"; };
stats = { interval = 1; };
workers = ( { name = "returns"; sink = "$kind"; $conn processes = $procs;
              template = "$kind/salt_returns.sql"; batch = { size = 1000; interval_ms = 200; }; } );
rules = ( { tag = "^salt/job/[0-9]+/ret/"; workers = [ "returns" ]; } );
CONF
    db_fresh "$kind"
    "$BUILD/eventsd" -c "$dir/eventsd.conf" 2>"$dir/eventsd.log" &
    daemon=$!
    local t0; t0=$(ms)
    "$BUILD/eventsd-pub" --bus salt-ipc --path "$dir/bus.ipc" --jobs $jobs --minions $MINIONS \
        --return-size "$SIZE" --wait-clients 1 >/dev/null 2>&1
    wait_db_rows "$kind" "$NDB" "$daemon"
    local elapsed=$(( $(ms) - t0 ))
    local cpu=$(( $(cpu_ticks $daemon) * 1000 / ticks ))
    local rss; rss=$(awk '/VmHWM/ { print $2 }' "/proc/$daemon/status")
    kill -TERM $daemon; wait $daemon; daemon=""
    echo "$elapsed $cpu $rss"
}

# A worker whose database is down (nothing listens on its port) while BACKLOG events arrive:
# they wait in the spool, not in memory. -> "elapsed_ms rss_at_start_kb peak_rss_kb spool_bytes"
backlog_memory() {
    local dir=$W/backlog port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$dir"
    cat > "$dir/eventsd.conf" <<CONF
runtime_dir = "$dir/run";
spool = { dir = "$dir/spool"; max_bytes = 17179869184L; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$dir/bus.ipc"; };
stats = { interval = 1; };
shutdown = { timeout_ms = 0; };
workers = ( { name = "returns"; sink = "pgsql"; conninfo = "host=127.0.0.1 port=$port dbname=none";
              template = "pgsql/salt_returns.sql"; } );
rules = ( { tag = "^salt/job/[0-9]+/ret/"; workers = [ "returns" ]; } );
CONF
    "$BUILD/eventsd" -c "$dir/eventsd.conf" 2>"$dir/eventsd.log" &
    daemon=$!
    until grep -q 'msg="worker started"' "$dir/eventsd.log"; do sleep 0.05; done
    local rss0; rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$daemon/status")
    local t0; t0=$(ms)
    "$BUILD/eventsd-pub" --bus salt-ipc --path "$dir/bus.ipc" --jobs $(( BACKLOG / MINIONS )) \
        --minions $MINIONS --wait-clients 1 >/dev/null 2>&1
    local want=$BACKLOG   # the returns; the rule leaves the jobs' other events unmatched
    until grep 'msg=stats' "$dir/eventsd.log" | tail -1 | grep -q " accepted=$want "; do sleep 0.2; done
    local elapsed=$(( $(ms) - t0 ))
    local peak; peak=$(awk '/VmHWM/ { print $2 }' "/proc/$daemon/status")
    local bytes; bytes=$(du -sb "$dir/spool" | cut -f1)
    kill -TERM $daemon; wait $daemon || true; daemon=""
    echo "$elapsed $rss0 $peak $bytes"
}

priority_latency() {
    local dir=$W/prio
    mkdir -p "$dir"
    cat > "$dir/eventsd.conf" <<CONF
runtime_dir = "$dir/run";
spool = { dir = "$dir/spool"; };
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
echo "spool.sync trade-off (SQLite, 1 worker process; 'always' with $(( N / 5 )) events):"
for sync in none always; do
    n=$N; [ "$sync" = always ] && n=$(( N / 5 ))
    read -r elapsed cpu rss < <(run_eventsd 1 $sync $n)
    rate=$(( n * 1000 / elapsed ))
    printf '%-52s %8s ms %8s rows/s  %s\n' "  spool.sync = $sync" "$elapsed" "$rate" \
        "$(awk -v a=$rate -v b=$base_rate 'BEGIN { printf "%.2fx", a / b }')"
done
BACKLOG=${BENCH_BACKLOG:-2000000}
read -r elapsed rss0 peak bytes < <(backlog_memory)
printf 'sink down, %s events spooled in %s ms (%s events/s): master RSS %s MB at start, peak %s MB (%.2fx); spool %s MB\n' \
    "$BACKLOG" "$elapsed" $(( BACKLOG * 1000 / elapsed )) $(( rss0 / 1024 )) \
    $(( peak / 1024 )) "$(awk -v a=$peak -v b=$rss0 'BEGIN { print a / b }')" $(( bytes / 1048576 ))
if [ "$DB" != 0 ]; then
    for kind in pgsql mysql; do
        if [ "$kind" = pgsql ]; then
            name=PostgreSQL; client=psql; ver=$(pgq -c "SHOW server_version" | cut -d' ' -f1)
        else
            name=MariaDB; client=mariadb; ver=$(myq -e "SELECT VERSION()" | cut -d- -f1)
        fi
        echo "$name $ver (test/with-servers.sh, loopback TCP): $NDB job returns per run (BENCH_DB_EVENTS)"
        base_ms=$(db_baseline $kind)
        base_rate=$(( NDB * 1000 / base_ms ))
        printf '%-52s %8s ms %8s rows/s  1.00x\n' "baseline: $client, same schema, 1000 rows/txn" "$base_ms" "$base_rate"
        for procs in 1 2; do
            read -r elapsed cpu rss < <(run_eventsd_db $kind $procs)
            rate=$(( NDB * 1000 / elapsed ))
            printf '%-52s %8s ms %8s rows/s  %s  (master CPU %s us/event, peak RSS %s MB)\n' \
                "eventsd-pub -> eventsd -> $name, $procs worker process(es)" "$elapsed" "$rate" \
                "$(awk -v a=$rate -v b=$base_rate 'BEGIN { printf "%.2fx", a / b }')" \
                "$(awk -v c=$cpu -v n=$((NDB + 2 * NDB / MINIONS)) 'BEGIN { printf "%.1f", c * 1000 / n }')" $(( rss / 1024 ))
        done
    done
fi
echo "priority event latency (publish -> committed, a 5000-event batch filling): $(priority_latency) ms"
# The metrics side (issue 6): each script measures its own baseline in the same run.
"$ROOT/test/bench_redis.sh" "$BUILD" || echo "bench_redis.sh failed (exit $?)"
if [ -x "$ROOT/test/bench_graphite.sh" ]; then
    "$ROOT/test/bench_graphite.sh" "$BUILD" || echo "bench_graphite.sh failed (exit $?)"
fi
# Job tracking (issue 7): events/s with the salt_jobs trigger on, for jobs of 10,000 minions.
"$ROOT/test/bench_jobs.sh" "$BUILD" || echo "bench_jobs.sh failed (exit $?)"
