# Body of pgsql_auth_template.sh and mysql_auth_template.sh (KIND is set by them): the example
# user template sql/KIND/salt_auth.sql with rule ^salt/auth$, fed the real 3006 capture, stores
# exactly its salt/auth events field by field (act NULL where the event has none); a second
# replay of the same bytes adds nothing.
. "$(dirname "$0")/db_lib.sh"
[ -n "${EVENTSD_DB_DIR:-}" ] || fail "run under test/with-servers.sh (no database servers)"
[ -d "$FIXTURES" ] || fail "fixtures not found at $FIXTURES"
dbq "$KIND" "DROP TABLE IF EXISTS salt_auth" >/dev/null   # the sink creates it again

if [ "$KIND" = pgsql ]; then
    result="result::int"
    hex="event_hash ~ '^[0-9a-f]{40}\$'"
else
    result="result"
    hex="event_hash REGEXP BINARY '^[0-9a-f]{40}\$'"
fi
conn=$(db_conn "$KIND")
cat > "$T/eventsd.conf" <<CONF
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$T/bus.ipc"; reconnect_min_ms = 50; reconnect_max_ms = 500; };
stats = { interval = 1; };
workers = ( { name = "auth"; sink = "$KIND"; $conn template = "$KIND/salt_auth.sql";
              dead_letter = "$T/dead.jsonl"; batch = { size = 50; interval_ms = 100; }; } );
rules = ( { tag = "^salt/auth\$"; workers = [ "auth" ]; } );
CONF
"$EVENTSD" --check-config "$T/eventsd.conf" >"$T/check.log" 2>&1 || fail "--check-config: $(cat "$T/check.log")"

WANT='build-07|pend|1|2026-11-23 23:26:11.304551
build-07|accept|1|2026-11-23 23:26:11.306066
intruder.example.net|NULL|0|2026-11-23 23:26:11.307621'
n_auth=$(grep -c '^{"tag": "salt/auth"' "$FIXTURES/frames-3006.jsonl")
[ "$n_auth" = 3 ] || fail "the fixture has $n_auth salt/auth events, this test expects 3"

check_rows() {
    got=$(dbq "$KIND" "SELECT minion_id, coalesce(act, 'NULL'), $result, stamp FROM salt_auth ORDER BY id")
    [ "$got" = "$WANT" ] || fail "$1: salt_auth rows differ; want:
$WANT
got:
$got"
    got=$(dbq "$KIND" "SELECT count(*), count(DISTINCT event_hash),
                              sum(CASE WHEN $hex THEN 1 ELSE 0 END), sum(CASE WHEN act IS NULL THEN 1 ELSE 0 END),
                              sum(CASE WHEN alter_time IS NOT NULL THEN 1 ELSE 0 END) FROM salt_auth")
    [ "$got" = "3|3|3|1|3" ] || fail "$1: count|distinct hashes|hex hashes|NULL acts|alter_time = $got"
}

start_eventsd "$T/eventsd.conf"
for pass_no in 1 2; do
    start_pub "replay$pass_no" --bus salt-ipc --path "$T/bus.ipc" --replay "$FIXTURES/frames-3006.bin" --wait-clients 1
    wait_pid "$PUB_PID" "$DEADLINE" || fail "replay $pass_no: eventsd-pub exited with $?"
    wait_for "replay $pass_no: $(( 3 * pass_no )) auth events written" "$DEADLINE" stat_at_least auth.written $(( 3 * pass_no ))
    check_rows "replay $pass_no"
done
[ ! -s "$T/dead.jsonl" ] || fail "dead letters written: $(head -c 300 "$T/dead.jsonl")"
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
pass "3 salt/auth events of frames-3006 stored in $KIND field by field (act NULL when absent); a second replay added nothing"
