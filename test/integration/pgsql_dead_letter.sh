#!/bin/bash
# PostgreSQL: rows the database rejects (a CHECK constraint, a value too long for its column) go
# to the worker's dead-letter file with PostgreSQL's message; the rest of their batch is
# committed, the rejections are counted (<worker>.failed) and the worker keeps going.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_lib.sh"
[ -n "${EVENTSD_DB_DIR:-}" ] || fail "run under test/with-servers.sh (no database servers)"
COUNT=120   # n = 0..119: n % 7 = 3 breaks the CHECK, n >= 100 does not fit in varchar(2)

mkdir -p "$T/sql/pgsql"
cat > "$T/sql/pgsql/schema.sql" <<'SQL'
CREATE TABLE IF NOT EXISTS numbers (
    n     integer NOT NULL UNIQUE CONSTRAINT numbers_not_3_mod_7 CHECK (n % 7 <> 3),
    label varchar(2) NOT NULL
);
SQL
cat > "$T/sql/pgsql/numbers.sql" <<'SQL'
INSERT INTO numbers (n, label) VALUES (:data.data.n|int, :data.data.n) ON CONFLICT DO NOTHING;
SQL
cat > "$T/eventsd.conf" <<CONF
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
sql_dir = "$T/sql";
bus = { type = "salt-ipc"; path = "$T/bus.ipc"; reconnect_min_ms = 50; };
stats = { interval = 1; };
workers = ( { name = "numbers"; sink = "pgsql"; $(db_conn pgsql)
              template = "pgsql/numbers.sql"; dead_letter = "$T/dead.jsonl";
              batch = { size = 20; interval_ms = 100; }; } );
rules = ( { tag = "^app/number\$"; workers = [ "numbers" ]; } );
CONF

# What must happen to each n: stored, or rejected by the CHECK, or rejected as too long.
: > "$T/want.stored"; : > "$T/want.check"; : > "$T/want.long"
for ((i = 0; i < COUNT; i++)); do
    if [ $(( i % 7 )) = 3 ]; then echo "$i" >> "$T/want.check"
    elif [ "$i" -ge 100 ]; then echo "$i" >> "$T/want.long"
    else echo "$i" >> "$T/want.stored"; fi
done
stored=$(wc -l < "$T/want.stored")
rejected=$(( COUNT - stored ))

dbq pgsql "DROP TABLE IF EXISTS numbers" >/dev/null
start_eventsd "$T/eventsd.conf"
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --custom app/number --count "$COUNT" --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "$stored good rows stored" "$DEADLINE" db_count_is pgsql numbers "$stored"
wait_for "$rejected rejected rows counted" 30 stat_is numbers.failed "$rejected"
wait_for "nothing pending" 30 stat_is numbers.pending 0
stat_is numbers.written "$stored" || fail "numbers.written = $(stat_value numbers.written), want $stored"

dbq pgsql "SELECT n FROM numbers ORDER BY n" > "$T/got.stored"
cmp -s "$T/want.stored" "$T/got.stored" || { diff "$T/want.stored" "$T/got.stored" | head; fail "stored numbers differ"; }
[ "$(dbq pgsql "SELECT count(*) FROM numbers WHERE label <> n::text")" = 0 ] || fail "labels differ from n"

[ "$(wc -l < "$T/dead.jsonl")" = "$rejected" ] || fail "dead-letter file has $(wc -l < "$T/dead.jsonl") lines, want $rejected"
# "n<TAB>error" of each dead letter; every line names the worker and carries the event's data.
sed -nE 's/^\{"worker": "numbers", "error": "(([^"\\]|\\.)*)", "tag": "app\/number", "event_hash": "[0-9a-f]{40}", "data": \{.*"data": \{"n": ([0-9]+)\}.*\}$/\3\t\1/p' \
    "$T/dead.jsonl" | sort -n > "$T/dead.got"
[ "$(wc -l < "$T/dead.got")" = "$rejected" ] || fail "malformed dead letters: $(head -c 600 "$T/dead.jsonl")"
cut -f1 "$T/dead.got" > "$T/got.dead"
sort -n "$T/want.check" "$T/want.long" > "$T/want.dead"
cmp -s "$T/want.dead" "$T/got.dead" || { diff "$T/want.dead" "$T/got.dead" | head; fail "dead-lettered numbers differ"; }
check_msg='23514: new row for relation \"numbers\" violates check constraint \"numbers_not_3_mod_7\"'
long_msg='22001: value too long for type character varying(2)'
while IFS=$'\t' read -r n err; do
    if grep -qx "$n" "$T/want.long"; then want=$long_msg
    elif [ "$n" -lt 100 ]; then want=$check_msg
    else want=""; fi   # breaks both: either message
    case "$err" in
        *"$check_msg"* | *"$long_msg"*) ;;
        *) fail "dead letter for n=$n lacks PostgreSQL's message: $err" ;;
    esac
    [ -z "$want" ] || case "$err" in *"$want"*) ;; *) fail "n=$n: want '$want', got: $err" ;; esac
done < "$T/dead.got"

kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
dbq pgsql "DROP TABLE IF EXISTS numbers" >/dev/null
pass "$rejected rejected rows dead-lettered with PostgreSQL's message (CHECK 23514, too long 22001), $stored stored, counted in numbers.failed"
