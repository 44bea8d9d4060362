# Job tracking end to end (issue 7), sourced by sqlite_/pgsql_/mysql_job_tracking.sh with KIND
# set: eventsd-pub publishes Salt jobs of various shapes, the shipped job trigger
# (all_expected, expire first + N s) writes salt_jobs and salt_job_missing into the KIND
# database through its pipelines and emits eventsd/job/<jid>/complete|timeout, which a rule
# stores in a SQLite salt_events. Every scenario checks the rows exactly:
#  1. every minion answers -> complete, nothing missing;
#  2. returns before the new event, a duplicate return, a late return (before the timeout), a
#     minion that never answers and one Salt lists as missing -> timeout with exactly those two
#     missing, the late one counted, the duplicate counted once;
#  3. a return after the timeout -> the job row stays as the timeout wrote it;
#  4. the master killed (kill -9) mid-job and started again -> the jobs still complete exactly
#     (replayed events are idempotent in the streams).
# Also: --explain shows the trigger and stream key an event would join.
. "$(dirname "$0")/db_lib.sh"

if [ "$KIND" = sqlite ]; then
    HANDLER_DB="sink = \"sqlite\"; database = \"$T/salt.db\";"
    jobq() { sql "$1"; }
else
    HANDLER_DB="sink = \"$KIND\"; $(db_conn "$KIND")"
    jobq() { dbq "$KIND" "$1"; }
fi
events_sql() { sqlite3 -batch -noheader "$T/events.db" "$@"; }

# job_config FILE EXPIRE_S: the trigger worker and an events worker for the emitted events.
job_config() {
    cat > "$1" <<CONF
master_id = "it_master";
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$T/bus.ipc"; reconnect_min_ms = 50; reconnect_max_ms = 200; };
stats = { interval = 1; };
workers = (
  { name = "jobs"; sink = "trigger"; state = "$T/triggers.db"; triggers = [ "salt_jobs" ];
    batch = { size = 100; interval_ms = 50; }; },
  { name = "events"; sink = "sqlite"; database = "$T/events.db"; template = "sqlite/salt_events.sql";
    batch = { size = 100; interval_ms = 50; }; }
);
rules = (
  { tag = "^salt/job/[0-9]+/(new|ret/)"; workers = "jobs"; },
  { tag = "^eventsd/job/"; workers = "events"; }
);
triggers = (
  { name = "salt_jobs";
    match = ( { tag = "^salt/job/[0-9]+/new\$"; }, { tag = "^salt/job/[0-9]+/ret/"; } );
    distinguished_by = [ "data.jid" ];
    all_expected = true;
    expire = "first + ${2}s";
    fire_pipeline = "job_complete";
    expire_pipeline = "job_timeout"; }
);
pipelines = (
  { name = "job_complete"; handlers = (
      { type = "sql"; $HANDLER_DB template = "$KIND/salt_jobs.sql";
        missing_template = "$KIND/salt_job_missing.sql"; },
      { type = "emit"; tag = "eventsd/job/{data.jid}/complete"; } ); },
  { name = "job_timeout"; handlers = (
      { type = "sql"; $HANDLER_DB template = "$KIND/salt_jobs.sql";
        missing_template = "$KIND/salt_job_missing.sql"; },
      { type = "emit"; tag = "eventsd/job/{data.jid}/timeout"; },
      { type = "log"; } ); }
);
CONF
    "$EVENTSD" --check-config "$1" >/dev/null || { "$EVENTSD" --check-config "$1"; fail "config refused"; }
}

fresh() {
    rm -rf "$T/salt.db"* "$T/events.db"* "$T/triggers.db"* "$T/spool" "$T/run" "$T/eventsd.log"
    [ "$KIND" = sqlite ] || dbq "$KIND" "DROP TABLE IF EXISTS salt_jobs, salt_job_missing" >/dev/null
}
jobs_are() {   # WANT: "status|expected|returned|succeeded|failed|missing|count" rows, sorted
    got=$(jobq "SELECT status, expected, returned, succeeded, failed, missing, count(*)
               FROM salt_jobs GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3" 2>/dev/null | tr '\n' ' ')
    [ "$got" = "$1" ]
}
missing_are() {   # WANT: "minion|count" rows
    got=$(jobq "SELECT minion, count(*) FROM salt_job_missing GROUP BY 1 ORDER BY 1" 2>/dev/null | tr '\n' ' ')
    [ "$got" = "$1" ]
}
emitted_are() {   # KIND N: N eventsd/job/<jid>/KIND events stored
    [ "$(events_sql "SELECT count(*) FROM salt_events WHERE tag LIKE 'eventsd/job/%/$1'" 2>/dev/null)" = "$2" ]
}
run_scenario() {   # NAME EXPIRE_S PUB_ARGS...
    name=$1; expire=$2; shift 2
    fresh
    job_config "$T/eventsd.conf" "$expire"
    start_pub "$name" --bus salt-ipc --path "$T/bus.ipc" --wait-clients 1 "$@"
    pub=$PUB_PID
    start_eventsd "$T/eventsd.conf"
}
stop_eventsd() {
    kill -TERM "$EVENTSD_PID"
    wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
}

# --explain names the trigger and the stream key an event would join
job_config "$T/eventsd.conf" 30
out=$("$EVENTSD" -c "$T/eventsd.conf" --explain salt/job/20261129000000000001/ret/m1 \
      --data '{"jid": "20261129000000000001", "id": "m1", "fun": "test.ping"}') || fail "explain: exit $?"
echo "$out" | grep -q "trigger 'salt_jobs': joins stream '20261129000000000001'; return of minion 'm1'" \
    || fail "explain does not show the trigger and its key: $out"
pass "--explain: the event joins trigger salt_jobs under its jid"

# 1. every minion answers
run_scenario complete 30 --jobs 4 --minions 5
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "4 complete jobs" "$DEADLINE" jobs_are "complete|5|5|5|0|0|4 "
wait_for "4 complete events" "$DEADLINE" emitted_are complete 4
missing_are "" || fail "missing rows for complete jobs: $got"
stop_eventsd
pass "every minion answered: 4 jobs complete, 5/5 returned, nothing missing, 4 complete events"

# 2. returns first, a duplicate, a late one (within the timeout), a silent one, one Salt-missing
run_scenario shapes 4 --jobs 3 --minions 6 --returns-first 1 --duplicates 1 --late 1 \
    --late-ms 1000 --silent 1 --salt-missing 1 --success-ratio 1
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "3 timed-out jobs" "$DEADLINE" jobs_are "timeout|7|5|5|0|2|3 "
missing_are "absent-0000|3 minion-0005|3 " || fail "missing rows: $got"
wait_for "3 timeout events" "$DEADLINE" emitted_are timeout 3
stop_eventsd
pass "returns before new, a duplicate, a late answer, a silent and a Salt-missing minion: timeout, 5 of 7 targeted returned, missing exactly minion-0005 and absent-0000"

# 3. a return after the timeout does not change the job row
run_scenario after_timeout 2 --jobs 2 --minions 3 --late 1 --late-ms 5000
wait_for "2 timed-out jobs" "$DEADLINE" jobs_are "timeout|3|2|2|0|1|2 "
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
# each late return opens a stream of its own (its job's stream is finished), which times out
# with expected 0: its pipeline runs (a timeout event is emitted) but must not touch the row
wait_for "the late returns' own streams timed out" "$DEADLINE" emitted_are timeout 4
stop_eventsd
jobs_are "timeout|3|2|2|0|1|2 " || fail "a late return changed the job rows: $got"
missing_are "minion-0002|2 " || fail "missing rows after late returns: $got"
pass "returns after the timeout leave the rows as the timeout wrote them (2 jobs, minion-0002 missing)"

# 4. restart mid-job: the master is killed (kill -9) after the new events and the early
# returns, and started again before the late returns come
run_scenario restart 60 --jobs 3 --minions 4 --late 2 --late-ms 6000
wait_for "new events and early returns routed" "$DEADLINE" stat_at_least accepted $(( 3 * 3 ))
kill -9 "$EVENTSD_PID"; wait_pid "$EVENTSD_PID" 60 || true
connected_twice() { [ "$(grep -c 'msg="bus connected"' "$T/eventsd.log")" -ge 2 ]; }
start_eventsd "$T/eventsd.conf"
wait_for "reconnected" "$DEADLINE" connected_twice
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "3 jobs complete after the restart" "$DEADLINE" jobs_are "complete|4|4|4|0|0|3 "
stop_eventsd
pass "eventsd restarted mid-job: 3 jobs complete with 4/4 returned"
