# Body of pgsql_delivery.sh and mysql_delivery.sh (KIND is set by them): eventsd-pub ->
# eventsd -> a real database server, which is restarted in the middle of the run; every event
# is stored exactly once and nothing is dead-lettered.
. "$(dirname "$0")/db_lib.sh"
[ -n "${EVENTSD_DB_DIR:-}" ] || fail "run under test/with-servers.sh (no database servers)"
JOBS=150; MINIONS=38
N=$(( JOBS * (MINIONS + 2) ))
db_reset "$KIND"
db_config "$T/eventsd.conf" "$KIND"
start_eventsd "$T/eventsd.conf"
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --return-size 1000 \
    --rate 2000 --wait-clients 1
pub=$PUB_PID
wait_for "a third of the events stored" "$DEADLINE" stat_at_least events.written $(( N / 3 ))
t0=$(now_ms)
"$ROOT/test/servers.sh" restart "$KIND" "$EVENTSD_DB_DIR" >/dev/null
note "$KIND restarted in $(( $(now_ms) - t0 )) ms while eventsd was writing"
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "$N events stored" "$DEADLINE" db_count_is "$KIND" salt_events "$N"
wait_for "$(( JOBS * MINIONS )) returns stored" "$DEADLINE" db_count_is "$KIND" salt_returns $(( JOBS * MINIONS ))
wait_for "$JOBS jobs stored" "$DEADLINE" db_count_is "$KIND" jids "$JOBS"
db_check_exactly_once "$KIND" 0 $(( N - 1 ))
[ ! -s "$T/dead.jsonl" ] || fail "dead letters written: $(head -c 300 "$T/dead.jsonl")"
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
pass "$N events stored exactly once in $KIND across a server restart"
