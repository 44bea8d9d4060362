#!/bin/bash
# Passwords stay out of every output. A config whose pgsql conninfos (keyword and URI form) and
# mysql worker carry one distinctive secret as their password, with wrong credentials or
# databases for some workers so that connection errors get logged, runs at log_level debug
# while events flow, is reloaded (once broken, once valid), and is run through --check-config
# and a failed start, valid and broken in several ways. The secret must appear in none of the
# daemon's log and stderr, the --check-config output, or any file the daemon wrote.
# Also: a config holding passwords that others may read (0644, 0604) gets a warning at start
# and on every SIGHUP reload; at 0600 it does not.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_lib.sh"
[ -n "${EVENTSD_DB_DIR:-}" ] || fail "run under test/with-servers.sh (no database servers)"

SECRET="Sx9-evtsd-secret-$$-$RANDOM"    # [A-Za-z0-9-] only: valid in a URI as is
PG_HOST="host=127.0.0.1 port=$EVENTSD_PG_PORT"
JOBS=20; MINIONS=3
N=$(( JOBS * (MINIONS + 2) ))

PROBLEMS=0
problem() { PROBLEMS=$((PROBLEMS + 1)); echo "     [$TEST_NAME] PROBLEM: $*" >&2; }

# expect_soon WHAT SECONDS command...: wait_for, but a timeout is a problem, not the end.
expect_soon() {
    what=$1; secs=$2; shift 2
    end=$(( $(date +%s) + secs ))
    while ! "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$end" ]; then
            problem "timed out after ${secs}s waiting for: $what"
            return 0
        fi
        sleep 0.1
    done
}

# no_secret FILE WHAT: FILE must not contain the secret; offending lines are shown masked.
no_secret() {
    [ -f "$1" ] || return 0
    if grep -qF -- "$SECRET" "$1"; then
        problem "$2 shows the secret:"
        grep -nF -- "$SECRET" "$1" | sed "s/$SECRET/<SECRET>/g" | head -n 5 >&2
    fi
}

# write_secret_config FILE [EXTRA_KEYS_FOR_events]: the config under test.
#   events     pgsql, right database, secret as password (trust auth: accepted, unused)
#   bad_db     pgsql URI with user:secret, a database that does not exist
#   bad_role   pgsql keyword form, a role that does not exist, secret as password
#   bad_mysql  mysql, the secret as a wrong password: "Access denied"
write_secret_config() {
    cat > "$1" <<CONF
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
sql_dir = "$ROOT/sql";
log_level = "debug";
bus = { type = "salt-ipc"; path = "$T/bus.ipc"; reconnect_min_ms = 50; reconnect_max_ms = 500; };
stats = { interval = 1; };
shutdown = { timeout_ms = 3000; };
workers = (
  { name = "events"; sink = "pgsql"; conninfo = "$EVENTSD_PG_CONNINFO password=$SECRET";
    template = "pgsql/salt_events.sql"; dead_letter = "$T/dead.jsonl";
    batch = { size = 50; interval_ms = 100; }; ${2:-} },
  { name = "bad_db"; sink = "pgsql"; connect_timeout_ms = 2000;
    conninfo = "postgresql://eventsd:$SECRET@127.0.0.1:$EVENTSD_PG_PORT/eventsd_no_such_db?application_name=secrets_test";
    template = "pgsql/jids.sql"; dead_letter = "$T/dead.jsonl"; },
  { name = "bad_role"; sink = "pgsql"; connect_timeout_ms = 2000;
    conninfo = "$PG_HOST dbname=eventsd user=eventsd_no_such_role password='$SECRET'";
    template = "pgsql/jids.sql"; dead_letter = "$T/dead.jsonl"; },
  { name = "bad_mysql"; sink = "mysql"; host = "$EVENTSD_MYSQL_HOST"; port = $EVENTSD_MYSQL_PORT;
    user = "$EVENTSD_MYSQL_USER"; password = "$SECRET"; database = "$EVENTSD_MYSQL_DATABASE";
    connect_timeout_ms = 2000; template = "mysql/jids.sql"; dead_letter = "$T/dead.jsonl"; }
);
rules = (
  { tag = "^salt/job/[0-9]+/new\$"; workers = [ "bad_db", "bad_role", "bad_mysql" ]; },
  { tag = ".*"; workers = [ "events" ]; }
);
CONF
}

warnings() {   # number of "others may read the config" warnings logged so far
    grep 'level=warning' "$T/eventsd.log" | grep -F "$T/eventsd.conf" | grep -c 'by others' || true
}
warnings_are() { [ "$(warnings)" = "$1" ]; }
reloads_are() { [ "$(grep -c 'msg="config reloaded"' "$T/eventsd.log" || true)" = "$1" ]; }

# ---- --check-config: valid, then broken in the ways that print messages ----

write_secret_config "$T/eventsd.conf"
chmod 0644 "$T/eventsd.conf"
set +e
"$EVENTSD" --check-config "$T/eventsd.conf" >"$T/check-ok.out" 2>&1
rc=$?
set -e
[ "$rc" = 0 ] || fail "--check-config of the valid config exited $rc: $(sed "s/$SECRET/<SECRET>/g" "$T/check-ok.out")"
no_secret "$T/check-ok.out" "--check-config (valid config)"

run_broken() {   # NAME CONFIG: --check-config and a start on it; both must fail quietly
    name=$1; conf=$2; want=$3
    set +e
    "$EVENTSD" --check-config "$conf" >"$T/check-$name.out" 2>&1
    rc=$?
    "$EVENTSD" -c "$conf" >"$T/start-$name.out" 2>&1
    rc2=$?
    set -e
    [ "$rc" = 1 ] || problem "--check-config ($name) exited $rc, expected 1"
    [ "$rc2" != 0 ] || problem "a start on the broken config ($name) exited 0"
    grep -qF -- "$want" "$T/check-$name.out" ||
        problem "--check-config ($name) does not say '$want': $(sed "s/$SECRET/<SECRET>/g" "$T/check-$name.out" | head -c 400)"
    no_secret "$T/check-$name.out" "--check-config ($name)"
    no_secret "$T/start-$name.out" "a failed start ($name)"
}

# Config errors: keys that are unknown, foreign to the sink or of the wrong type, holding the secret.
write_secret_config "$T/broken1.conf" "bogus_key = \"$SECRET\"; password = \"$SECRET\"; port = \"$SECRET\";"
run_broken keys "$T/broken1.conf" "unknown key 'bogus_key'"
grep -qF "key 'password' in worker 'events' does not apply to sink 'pgsql'" "$T/check-keys.out" ||
    problem "--check-config (keys) misses the foreign 'password' key"

# Sink checks: conninfo strings libpq cannot parse, with the secret in them.
write_secret_config "$T/broken2.conf"
sed -i "s|conninfo = \"$EVENTSD_PG_CONNINFO password=$SECRET\";|conninfo = \"$PG_HOST password=$SECRET junk\";|" "$T/broken2.conf"
grep -qF "password=$SECRET junk" "$T/broken2.conf" || fail "test bug: broken2.conf not edited"
run_broken conninfo_junk "$T/broken2.conf" "not a valid libpq connection string"

write_secret_config "$T/broken3.conf"
sed -i "s|postgresql://eventsd:$SECRET@127.0.0.1:$EVENTSD_PG_PORT/|postgresql://eventsd:$SECRET@[::1/|" "$T/broken3.conf"
run_broken uri_bracket "$T/broken3.conf" "not a valid libpq connection string"

# A password in the URI query under a percent-encoded key (pass%77ord = password), whose value
# is not valid percent-encoding: libpq's parse error quotes the value.
write_secret_config "$T/broken4.conf"
sed -i "s|postgresql://eventsd:$SECRET@127.0.0.1:$EVENTSD_PG_PORT/eventsd_no_such_db?|postgresql://127.0.0.1:$EVENTSD_PG_PORT/eventsd_no_such_db?pass%77ord=$SECRET%zz\&|" "$T/broken4.conf"
grep -qF "pass%77ord=$SECRET%zz&" "$T/broken4.conf" || fail "test bug: broken4.conf not edited"
run_broken uri_percent "$T/broken4.conf" "not a valid libpq connection string"

# libconfig syntax errors around the secret.
write_secret_config "$T/broken5.conf"
printf 'extra = { password = "%s\n' "$SECRET" >>"$T/broken5.conf"
run_broken syntax_unterminated "$T/broken5.conf" "broken5.conf:"
write_secret_config "$T/broken6.conf"
printf 'password = %s;\n' "$SECRET" >>"$T/broken6.conf"
run_broken syntax_bare "$T/broken6.conf" "broken6.conf:"

# ---- the daemon: events flow, connection errors are logged, reloads ----

db_reset pgsql
write_secret_config "$T/eventsd.conf"
chmod 0644 "$T/eventsd.conf"
start_eventsd "$T/eventsd.conf"
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $JOBS --minions $MINIONS --rate 500 \
    --wait-clients 1
pub=$PUB_PID
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "$N events stored" "$DEADLINE" db_count_is pgsql salt_events "$N"
wait_for "bad_db's connection error logged" "$DEADLINE" log_has 'eventsd_no_such_db" does not exist'
wait_for "bad_role's connection error logged" "$DEADLINE" log_has 'eventsd_no_such_role" does not exist'
wait_for "bad_mysql's connection error logged" "$DEADLINE" log_has 'Access denied for user'

# Start: 0644 warns once.
expect_soon "a warning that others may read the config (mode 0644)" 10 warnings_are 1

# A refused reload (the errors go to the log), then valid ones at 0600 (no warning) and 0604.
write_secret_config "$T/eventsd.conf" "bogus_key = \"$SECRET\"; password = \"$SECRET\";"
kill -HUP "$EVENTSD_PID"
wait_for "refused reload logged" 30 log_has "reload failed, keeping the running config"
write_secret_config "$T/eventsd.conf"
chmod 0600 "$T/eventsd.conf"
before=$(warnings)
kill -HUP "$EVENTSD_PID"
wait_for "reload at 0600" 30 reloads_are 1
warnings_are "$before" || problem "a warning at mode 0600 (warnings: $before before, $(warnings) after)"
chmod 0604 "$T/eventsd.conf"
kill -HUP "$EVENTSD_PID"
wait_for "reload at 0604" 30 reloads_are 2
expect_soon "one more warning after the reload at mode 0604" 10 warnings_are $(( before + 1 ))
grep 'level=warning' "$T/eventsd.log" | grep -qF 'mode 0604' ||
    problem "the reload warning does not name mode 0604"

# A few more events to the bad workers after the reloads, then stop (they hold what they got:
# the drain times out after shutdown.timeout_ms and the exit code says so).
start_pub again --bus salt-ipc --path "$T/bus.ipc" --jobs 3 --minions 2 --first-n 100000 --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub (again) exited with $?"
wait_for "more events stored" "$DEADLINE" db_count_is pgsql salt_events $(( N + 12 ))
kill -TERM "$EVENTSD_PID"
rc=0
wait_pid "$EVENTSD_PID" 60 || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 1 ] || problem "eventsd exit code $rc"

# ---- a dbname that is itself a URI with the password: libpq does not expand a nested one, so
# the server's "database ... does not exist" quotes it whole. Refusing such a config is as good
# as keeping the secret out of the error; showing it is not. ----
cat > "$T/nested.conf" <<CONF
runtime_dir = "$T/run-nested";
spool = { dir = "$T/spool-nested"; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$T/nested-bus.ipc"; };
shutdown = { timeout_ms = 1000; };
workers = (
  { name = "nested"; sink = "pgsql"; connect_timeout_ms = 2000; template = "pgsql/jids.sql";
    conninfo = "$PG_HOST user=eventsd dbname='postgresql://eventsd:$SECRET@127.0.0.1:$EVENTSD_PG_PORT/eventsd'"; }
);
rules = ( { tag = ".*"; workers = [ "nested" ]; } );
CONF
set +e
"$EVENTSD" --check-config "$T/nested.conf" >"$T/check-nested.out" 2>&1
set -e
no_secret "$T/check-nested.out" "--check-config (dbname holding a URI)"
"$EVENTSD" -c "$T/nested.conf" >"$T/nested.log" 2>&1 &
nested_pid=$!
STARTED_PIDS="$STARTED_PIDS $nested_pid"
nested_done() { ! kill -0 "$nested_pid" 2>/dev/null || grep -q 'cannot open sink' "$T/nested.log"; }
wait_for "the nested-URI worker refused or failing" "$DEADLINE" nested_done
kill -TERM "$nested_pid" 2>/dev/null || true
wait_pid "$nested_pid" 60 || true
no_secret "$T/nested.log" "the daemon's log/stderr (dbname holding a URI)"

# ---- nothing shows the secret ----
no_secret "$T/eventsd.log" "the daemon's log/stderr"
no_secret "$T/pub.log" "eventsd-pub's stderr"
for f in $(find "$T" -type f ! -name '*.conf' ! -name '*.out' ! -name '*.log' ! -name 'salt.db*'); do
    no_secret "$f" "file $f written by the daemon"
done
[ "$PROBLEMS" = 0 ] || fail "$PROBLEMS problem(s), see above"
pass "the secret appears in no log, stderr or --check-config output; a world-readable config is warned about at start and reload"
