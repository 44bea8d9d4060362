# Helpers for the integration tests (sourced by test/integration/*.sh).
# Every test gets a private temp dir, waits for conditions with generous deadlines (never a
# fixed sleep as a substitute for a condition), and kills every process it started on exit,
# failed or not. On failure the daemon's log is printed.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
EVENTSD="$ROOT/$BUILD/eventsd"
PUB="$ROOT/$BUILD/eventsd-pub"
FIXTURES=${FIXTURES:-$(cd "$ROOT/../shared/fixtures/salt" 2>/dev/null && pwd || echo /nonexistent)}
T=$(mktemp -d /tmp/eventsd-it.XXXXXX)
STARTED_PIDS=""
TEST_NAME=$(basename "$0" .sh)
DEADLINE=${DEADLINE:-120}

# Running the programs under a tool (test/valgrind.sh does): EVENTSD_WRAPPER and PUB_WRAPPER,
# when set, are command prefixes put in front of every eventsd and eventsd-pub a test runs. They
# go through a small exec script in $T/bin, so "$EVENTSD" --check-config is wrapped as well and
# EVENTSD_PID is still the daemon's pid (its forked workers stay its children). The prefix is
# expanded by that script's shell: $EVENTSD_TEST_DIR (this test's temp dir, exported) and, in
# valgrind's --log-file, %q{EVENTSD_TEST_DIR} both work. Valgrind logs must be written as
# $T/valgrind.<anything>.log: on exit, one with errors or definite/indirect leaks fails the
# test and is printed, and all are copied to EVENTSD_TOOL_LOGS (a directory) when that is set.
# Every deadline of wait_for and wait_pid is multiplied by TIME_SCALE (1, or 5 with a wrapper).
EVENTSD_WRAPPER=${EVENTSD_WRAPPER:-}
PUB_WRAPPER=${PUB_WRAPPER:-}
if [ -n "$EVENTSD_WRAPPER$PUB_WRAPPER" ]; then
    TIME_SCALE=${TIME_SCALE:-5}
else
    TIME_SCALE=${TIME_SCALE:-1}
fi
export EVENTSD_TEST_DIR=$T

# wrap NAME PROGRAM PREFIX: prints the path of an exec script running PREFIX PROGRAM "$@".
wrap() {
    mkdir -p "$T/bin"
    printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$3" "$2" > "$T/bin/$1"
    chmod +x "$T/bin/$1"
    echo "$T/bin/$1"
}
[ -z "$EVENTSD_WRAPPER" ] || EVENTSD=$(wrap eventsd "$EVENTSD" "$EVENTSD_WRAPPER")
[ -z "$PUB_WRAPPER" ] || PUB=$(wrap eventsd-pub "$PUB" "$PUB_WRAPPER")

. "$ROOT/test/valgrind_log.sh"   # valgrind_failed LOG

# Sanitizer builds (make asan-integration) write their reports into $T instead of the daemon's
# stderr, where a worker's report would only show as a restart: any such report fails the test.
export ASAN_OPTIONS="log_path=$T/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$T/ubsan:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# check_tool_logs: 1 when a valgrind log in $T failed or a sanitizer reported anything (each
# such log is printed in full).
check_tool_logs() {
    bad=0
    for f in "$T"/asan.* "$T"/ubsan.*; do
        [ -f "$f" ] || continue
        echo "---- $TEST_NAME: sanitizer report: $f" >&2
        cat "$f" >&2
        bad=1
    done
    for f in "$T"/valgrind.*.log; do
        [ -f "$f" ] || continue
        [ -z "${EVENTSD_TOOL_LOGS:-}" ] ||
            cp "$f" "$EVENTSD_TOOL_LOGS/$TEST_NAME.$(basename "$f")" 2>/dev/null || true
        if valgrind_failed "$f"; then
            echo "---- $TEST_NAME: valgrind found errors or leaks: $f" >&2
            cat "$f" >&2
            bad=1
        fi
    done
    return "$bad"
}

cleanup() {
    rc=$?
    for p in $STARTED_PIDS; do
        kill -9 "$p" 2>/dev/null || true
    done
    for p in $STARTED_PIDS; do
        wait "$p" 2>/dev/null || true
    done
    if ! check_tool_logs; then
        echo "FAIL [$TEST_NAME]: valgrind or a sanitizer reported errors or leaks (above)" >&2
        [ "$rc" != 0 ] || rc=1
    fi
    if [ "$rc" != 0 ]; then
        echo "---- $TEST_NAME failed; logs from $T:"
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            case "$f" in "$T"/valgrind.*) continue ;; esac   # the failed ones are printed above
            echo "---- $f (last 60 lines)"
            tail -n 60 "$f"
        done
    fi
    [ -n "${KEEP_TEST_DIR:-}" ] && [ "$rc" != 0 ] && echo "---- kept $T" || rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL [$TEST_NAME]: $*" >&2; exit 1; }
pass() { echo "ok   [$TEST_NAME]: $*"; }
note() { echo "     [$TEST_NAME] $*"; }

# wait_for "what" SECONDS command...: polls until the command succeeds.
wait_for() {
    what=$1; secs=$(( $2 * TIME_SCALE )); shift 2
    end=$(( $(date +%s) + secs ))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.1
    done
}

now_ms() { date +%s%3N; }

# A TCP port nobody listens on now.
free_port() {
    while :; do
        p=$(( 20000 + RANDOM % 40000 ))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# write_config FILE BUS_BLOCK [BATCH_SIZE] [BATCH_MS] [EXTRA_RULES] [RETURNS_PROCESSES]
write_config() {
    file=$1; bus=$2; size=${3:-200}; ms=${4:-200}; extra_rules=${5:-}; procs=${6:-2}
    cat > "$file" <<CONF
master_id = "it_master";
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
sql_dir = "$ROOT/sql";
log_level = "info";
bus = { $bus reconnect_min_ms = 50; reconnect_max_ms = 500; };
stats = { interval = 1; };
shutdown = { timeout_ms = 60000; };
workers = (
  { name = "returns"; sink = "sqlite"; database = "$T/salt.db"; processes = $procs;
    template = "sqlite/salt_returns.sql"; batch = { size = $size; interval_ms = $ms; }; },
  { name = "jobs"; sink = "sqlite"; database = "$T/salt.db";
    template = "sqlite/jids.sql"; batch = { size = $size; interval_ms = $ms; }; },
  { name = "events"; sink = "sqlite"; database = "$T/salt.db";
    template = "sqlite/salt_events.sql"; batch = { size = $size; interval_ms = $ms; }; }
);
rules = (
  $extra_rules
  { tag = "^salt/job/[0-9]+/ret/"; workers = [ "returns" ]; },
  { tag = "^salt/job/[0-9]+/new\$"; workers = [ "jobs" ]; },
  { tag = ".*"; workers = [ "events" ]; }
);
CONF
}

# start_eventsd CONFIG: starts the daemon in the background; EVENTSD_PID is its pid.
start_eventsd() {
    "$EVENTSD" -c "$1" >>"$T/eventsd.log" 2>&1 &
    EVENTSD_PID=$!
    STARTED_PIDS="$STARTED_PIDS $EVENTSD_PID"
}

# start_pub NAME ARGS...: eventsd-pub in the background; PUB_PID; output in $T/NAME.out.
start_pub() {
    name=$1; shift
    "$PUB" "$@" >"$T/$name.out" 2>>"$T/pub.log" &
    PUB_PID=$!
    STARTED_PIDS="$STARTED_PIDS $PUB_PID"
}

# wait_pid PID SECONDS: waits for a child to exit and returns its exit code.
wait_pid() {
    pid=$1; secs=$(( $2 * TIME_SCALE ))
    end=$(( $(date +%s) + secs ))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$end" ]; then
            fail "process $pid still running after ${secs}s"
        fi
        # A zombie counts as gone: kill -0 succeeds on it until it is reaped.
        state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
        case "$state" in Z*) break ;; esac
        sleep 0.1
    done
    set +e
    wait "$pid"
    code=$?
    set -e
    return "$code"
}

sql() { sqlite3 -batch -noheader "$T/salt.db" "$@"; }

count_is() { [ "$(sql "$1" 2>/dev/null)" = "$2" ]; }

# The value of KEY in the daemon's newest stats line.
stat_value() {
    grep 'msg=stats' "$T/eventsd.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

stat_is() { [ "$(stat_value "$1")" = "$2" ]; }
stat_at_least() { v=$(stat_value "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ]; }

log_has() { grep -q -- "$1" "$T/eventsd.log"; }

# Every eventsd_n from FIRST to LAST stored exactly once in salt_events.
check_exactly_once() {
    first=$1; last=$2
    n=$(( last - first + 1 ))
    got=$(sql "SELECT count(*), count(DISTINCT json_extract(data,'\$.eventsd_n')),
                      min(json_extract(data,'\$.eventsd_n')), max(json_extract(data,'\$.eventsd_n'))
               FROM salt_events WHERE json_extract(data,'\$.eventsd_n') BETWEEN $first AND $last")
    [ "$got" = "$n|$n|$first|$last" ] || fail "expected $n events numbered $first..$last exactly once, got count|distinct|min|max = $got"
}
