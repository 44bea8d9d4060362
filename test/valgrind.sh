#!/bin/bash
# test/valgrind.sh [BUILD_DIR]: every unit test and a representative set of integration tests
# under valgrind memcheck. Fails on any memory error and on any "definitely" or "indirectly
# lost" block; "still reachable" is not an error. Third-party one-time allocations are
# suppressed by test/valgrind.supp (each entry says why); nothing of eventsd's is.
#
# 1. Unit tests: every test/test_*.c binary in BUILD_DIR/test. Criterion 2.4 has no --no-fork
#    (removed in 2.4): its runner re-executes the binary for each test (BoxFort), so valgrind
#    runs with --trace-children=yes and each test gets a log of its own; the runner's own log is
#    checked too. Criterion notices valgrind and warns that --jobs was given: harmless, the
#    reports stay per test. CRITERION_NO_EARLY_EXIT is not needed: a test process ends through
#    exit(), so valgrind's leak check runs in every one of them. Shell commands the tests run
#    (system(): /bin/sh, rm, psql ...) are not traced. Two binaries run at a time, the slowest
#    first (UNIT_PARALLEL, default 2).
# 2. Integration: the tests in VALGRIND_TESTS (default below; "all" = every one) run with
#    eventsd (master and its forked workers: fork children are traced without
#    --trace-children) and eventsd-pub under valgrind, through test/lib.sh's EVENTSD_WRAPPER and
#    PUB_WRAPPER; TIME_SCALE=5 stretches every deadline of the tests. A test fails when a log of
#    its processes has errors. The default set covers every bus type (salt-ipc, salt-tcp, zmq
#    2014/2015, auto), hostile frames and reconnects, SIGHUP reloads (workers replaced and
#    retired), the SIGTERM drain, priority events, dead letters on all three databases, spool
#    recovery after a kill -9 of the master (torn tail truncated, backlog replayed), the drop to
#    user "nobody", the real Salt captures into PostgreSQL and MariaDB, and both database
#    servers restarted under load. Left out for time (VALGRIND_TESTS=all runs every test): the
#    *_auth_template tests and sqlite_fixtures (paths the fixtures and sqlite_delivery cover),
#    pgsql_secrets, and the *_fault_* and worker-kill tests (long, sleep-paced; a kill -9'd
#    process leaves no leak report).
#
# Needs the PostgreSQL and MariaDB test servers: run under test/with-servers.sh (`make
# valgrind` does); started here when EVENTSD_DB_DIR is unset. Logs go to VALGRIND_LOGS (kept),
# or to a temp dir removed after a clean run and kept after a failed one; failed logs are
# printed. VALGRIND_UNIT=no skips the unit tests, VALGRIND_SUPP replaces the suppressions.
# Time on 2 cores: about 5 minutes (unit tests about 3, integration about 2).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ -z "${EVENTSD_DB_DIR:-}" ]; then
    exec test/with-servers.sh "$ROOT/test/valgrind.sh" "$BUILD"
fi
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }

DEFAULT_TESTS="sqlite_delivery sqlite_malformed sqlite_reload sqlite_drain sqlite_priority
sqlite_dead_letter sqlite_spool_recovery sqlite_privileges pgsql_dead_letter mysql_dead_letter
pgsql_fixtures mysql_fixtures pgsql_delivery mysql_delivery sqlite_throttle_stats
graphite_carbon redis_counters"
VALGRIND_TESTS=${VALGRIND_TESTS:-$DEFAULT_TESTS}
UNIT_PARALLEL=${UNIT_PARALLEL:-2}
VALGRIND_UNIT=${VALGRIND_UNIT:-yes}
SUPP=${VALGRIND_SUPP:-$ROOT/test/valgrind.supp}
LOGS=${VALGRIND_LOGS:-}
keep_logs=yes
[ -n "$LOGS" ] || { LOGS=$(mktemp -d /tmp/eventsd-valgrind.XXXXXX); keep_logs=no; }
mkdir -p "$LOGS/unit" "$LOGS/integration"
VG="valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
    --error-exitcode=99 --suppressions=$SUPP --num-callers=40"
VG=$(echo $VG)   # one line: it is written into the tests' wrapper scripts
start_all=$(date +%s)
failed=""

. "$ROOT/test/valgrind_log.sh"   # valgrind_failed LOG

# ---- 1. unit tests
unit_start=$(date +%s)
# The binaries with the most test processes first (parameterized tests count once in --list,
# so the order is given here), so that the longest one does not start last.
SLOW_FIRST="test_template test_sink_sqlite test_salt_frame test_sink_pgsql test_payload"
bins=""
for src in $(for n in $SLOW_FIRST; do echo "test/$n.c"; done) test/test_*.c; do
    [ -f "$src" ] || continue
    b="$BUILD/test/$(basename "$src" .c)"
    case " $bins " in *" $b "*) continue ;; esac
    [ -x "$b" ] || { echo "valgrind.sh: $b is not built (make \$(TESTS))" >&2; failed="$failed $b"; continue; }
    bins="$bins $b"
done

run_unit() {
    name=$(basename "$1")
    s=$(date +%s)
    $VG --trace-children=yes --trace-children-skip='/bin/*,/usr/bin/*,/sbin/*,/usr/sbin/*,/usr/lib/postgresql/*' \
        --log-file="$LOGS/unit/$name.%p.log" "$1" --jobs 2 --timeout 600 >"$LOGS/unit/$name.out" 2>&1
    rc=$?
    echo "$rc" >"$LOGS/unit/$name.rc"
    echo "unit $name: exit $rc ($(( $(date +%s) - s ))s) $(grep -a 'Synthesis' "$LOGS/unit/$name.out" | tail -n 1 | sed 's/.*Synthesis: //')"
}
[ "$VALGRIND_UNIT" = yes ] || bins=""
running=0
for b in $bins; do
    if [ "$running" -ge "$UNIT_PARALLEL" ]; then
        wait -n
        running=$(( running - 1 ))
    fi
    run_unit "$b" &
    running=$(( running + 1 ))
done
wait
for b in $bins; do
    name=$(basename "$b")
    [ "$(cat "$LOGS/unit/$name.rc" 2>/dev/null)" = 0 ] || { failed="$failed unit:$name"; tail -n 40 "$LOGS/unit/$name.out"; }
done
unit_secs=$(( $(date +%s) - unit_start ))

# ---- 2. integration tests
it_start=$(date +%s)
[ "$VALGRIND_TESTS" != none ] || VALGRIND_TESTS=""
[ "$VALGRIND_TESTS" != all ] || VALGRIND_TESTS=$(ls test/integration/*_*.sh | grep -v '/db_' | xargs -n 1 basename | sed 's/\.sh$//')
export BUILD TIME_SCALE=${TIME_SCALE:-5} EVENTSD_TOOL_LOGS="$LOGS/integration"
export EVENTSD_WRAPPER="$VG --log-file=%q{EVENTSD_TEST_DIR}/valgrind.%p.log"
export PUB_WRAPPER="$VG --log-file=%q{EVENTSD_TEST_DIR}/valgrind.pub.%p.log"
for t in $VALGRIND_TESTS; do
    s=$(date +%s)
    if bash "test/integration/$t.sh" >"$LOGS/integration/$t.out" 2>&1; then
        echo "integration $t: PASS ($(( $(date +%s) - s ))s)"
    else
        echo "integration $t: FAIL ($(( $(date +%s) - s ))s)"
        tail -n 80 "$LOGS/integration/$t.out"
        failed="$failed integration:$t"
    fi
done
it_secs=$(( $(date +%s) - it_start ))

# ---- summary over every log
n_logs=0; n_noreport=0; bad_logs=""
for f in "$LOGS"/unit/*.log "$LOGS"/integration/*.log; do
    [ -f "$f" ] || continue
    n_logs=$(( n_logs + 1 ))
    grep -q 'ERROR SUMMARY:' "$f" || n_noreport=$(( n_noreport + 1 ))
    if valgrind_failed "$f"; then
        bad_logs="$bad_logs $f"
    fi
done
for f in $bad_logs; do
    echo "---- valgrind errors in $f"
    cat "$f"
done
[ -z "$bad_logs" ] || failed="$failed logs:$(echo $bad_logs | wc -w)"
echo "valgrind: $n_logs processes checked ($n_noreport without a leak report: killed, or forked" \
     "to exec an untraced program such as system()'s /bin/sh)," \
     "unit ${unit_secs}s, integration ${it_secs}s, total $(( $(date +%s) - start_all ))s"
[ -z "$failed" ] && [ "$keep_logs" = no ] || echo "valgrind: logs in $LOGS"
if [ -n "$failed" ]; then
    echo "valgrind: FAILED:$failed"
    exit 1
fi
echo "valgrind: no memory errors, no definite or indirect leaks"
[ "$keep_logs" = yes ] || rm -rf "$LOGS"
