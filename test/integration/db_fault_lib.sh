# Shared by the *_fault_*.sh integration tests (sourced after lib.sh): a config for any sink
# (sqlite, pgsql, mysql), queries on the stored numbers (eventsd_n), the figures line every
# fault test prints, and a cleanup that also reaps the workers of a master killed with -9,
# restarts a database server a test stopped and unmounts what a test mounted, even on failure.
#
#   figures: published=N accepted=N stored=N lost=N duplicated=N
#
# published: events eventsd-pub sent (its summary line); accepted: the master's newest stats
# line (summed over the runs when a test restarts the daemon); stored: rows in salt_events;
# lost: accepted numbers missing from salt_events; duplicated: rows beyond one per number.
. "$(dirname "$0")/db_lib.sh"

# ---------------------------------------------------------------------------------- cleanup

# The deadline of the loops here that are not wait_for (lib.sh may scale its deadlines by
# TIME_SCALE when the programs run under a slow tool).
FAULT_DEADLINE=$(( DEADLINE * ${TIME_SCALE:-1} ))

FAULT_ORPHANS=""    # pids that are not our children (workers of a master killed with -9)
FAULT_AT_EXIT=""    # shell commands run at exit, after every process is gone

fault_at_exit() {
    FAULT_AT_EXIT="$FAULT_AT_EXIT$1
"
}

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# descendants PID: every process below PID.
descendants() {
    local c
    for c in $(pgrep -P "$1" 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}

# wait_gone SECONDS PID...: polls until none of the pids is alive; 1 when some still is.
wait_gone() {
    local end=$(( $(date +%s) + $1 )) p
    shift
    for p in "$@"; do
        while alive "$p"; do
            [ "$(date +%s)" -lt "$end" ] || return 1
            sleep 0.1
        done
    done
}

fault_cleanup() {
    local rc=$? victims="" p cmd
    set +e
    for p in $STARTED_PIDS $FAULT_ORPHANS; do
        victims="$victims $p $(descendants "$p")"
    done
    for p in $victims; do kill -9 "$p" 2>/dev/null; done
    for p in $STARTED_PIDS; do wait "$p" 2>/dev/null; done
    wait_gone 30 $victims || echo "     [$TEST_NAME] cleanup: some process survived kill -9" >&2
    while IFS= read -r cmd; do
        [ -n "$cmd" ] && eval "$cmd"
    done <<EOF
$FAULT_AT_EXIT
EOF
    (exit "$rc")
    cleanup    # lib.sh: logs on failure, removes $T, exits with rc
}
trap fault_cleanup EXIT

# ----------------------------------------------------------------------------------- config

# fault_config FILE KIND(sqlite|pgsql|mysql) [BATCH_SIZE] [BATCH_MS] [EVENTS_PROCESSES] [SPOOL]
# The three returner workers (returns: 2 processes, jobs: 1, events: EVENTS_PROCESSES, default 1)
# on one database; SPOOL is the body of the spool group (default: dir = "$T/spool";).
# Variables for the reload test: RETURNS_PROCESSES (default 2), EVENTS_BATCH (the events
# worker's batch size, default BATCH_SIZE), EXTRA_RULES (rules put first).
fault_config() {
    local file=$1 kind=$2 size=${3:-200} ms=${4:-200} eprocs=${5:-1} conn
    local spool=${6:-"dir = \"$T/spool\";"}
    local rprocs=${RETURNS_PROCESSES:-2} esize=${EVENTS_BATCH:-${3:-200}} extra=${EXTRA_RULES:-}
    if [ "$kind" = sqlite ]; then
        conn="database = \"$T/salt.db\";"
    else
        conn=$(db_conn "$kind")
    fi
    cat > "$file" <<CONF
master_id = "it_master";
runtime_dir = "$T/run";
spool = { $spool };
sql_dir = "$ROOT/sql";
log_level = "info";
bus = { type = "salt-ipc"; path = "$T/bus.ipc"; reconnect_min_ms = 50; reconnect_max_ms = 500; };
stats = { interval = 1; };
shutdown = { timeout_ms = 60000; };
workers = (
  { name = "returns"; sink = "$kind"; $conn template = "$kind/salt_returns.sql"; processes = $rprocs;
    dead_letter = "$T/dead.jsonl"; batch = { size = $size; interval_ms = $ms; }; },
  { name = "jobs"; sink = "$kind"; $conn template = "$kind/jids.sql";
    dead_letter = "$T/dead.jsonl"; batch = { size = $size; interval_ms = $ms; }; },
  { name = "events"; sink = "$kind"; $conn template = "$kind/salt_events.sql"; processes = $eprocs;
    dead_letter = "$T/dead.jsonl"; batch = { size = $esize; interval_ms = $ms; }; }
);
rules = (
  $extra
  { tag = "^salt/job/[0-9]+/ret/"; workers = [ "returns" ]; },
  { tag = "^salt/job/[0-9]+/new\$"; workers = [ "jobs" ]; },
  { tag = ".*"; workers = [ "events" ]; }
);
CONF
}

# ---------------------------------------------------------------------------------- queries

# fault_q KIND SQL: one query on the test database of KIND, rows as a|b|c.
fault_q() {
    if [ "$1" = sqlite ]; then sql "$2"; else dbq "$1" "$2"; fi
}

fault_count_is() { [ "$(fault_q "$1" "SELECT count(*) FROM $2" 2>/dev/null)" = "$3" ]; }

# The SQL expression of a salt_events row's eventsd_n.
fault_n() {
    case "$1" in
        sqlite) echo "json_extract(data,'\$.eventsd_n')" ;;
        pgsql) echo "(data->>'eventsd_n')::bigint" ;;
        mysql) echo "CAST(JSON_VALUE(data, '\$.eventsd_n') AS SIGNED)" ;;
    esac
}

# fault_range KIND FIRST LAST: "rows|distinct numbers" stored in FIRST..LAST.
fault_range() {
    local v
    v=$(fault_n "$1")
    fault_q "$1" "SELECT count(*), count(DISTINCT $v) FROM salt_events WHERE $v BETWEEN $2 AND $3"
}

# ---------------------------------------------------------------------------- stats and logs

# The value of KEY in the newest stats line of LOG (default the daemon's log).
stat_in() {
    grep 'msg=stats' "${2:-$T/eventsd.log}" 2>/dev/null | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Events the publisher NAME sent (its summary line in $T/NAME.out).
pub_sent() {
    sed -n 's/^sent=\([0-9]*\) .*/\1/p' "$T/$1.out"
}

# stats_settled: the two newest stats lines show the same accepted count and the newest shows
# nothing pending or spooled for any worker and nothing held, so every accepted event was
# acknowledged.
stats_settled() {
    local lines a1 a2
    lines=$(grep 'msg=stats' "$T/eventsd.log" | tail -n 2)
    [ "$(printf '%s\n' "$lines" | wc -l)" = 2 ] || return 1
    a1=$(printf '%s\n' "$lines" | head -n 1 | tr ' ' '\n' | sed -n 's/^accepted=//p')
    a2=$(printf '%s\n' "$lines" | tail -n 1 | tr ' ' '\n' | sed -n 's/^accepted=//p')
    [ -n "$a2" ] && [ "$a1" = "$a2" ] || return 1
    ! printf '%s\n' "$lines" | tail -n 1 | tr ' ' '\n' | grep -E '\.(pending|spooled)=|^held=' |
        grep -qv '=0$'
}

# backlog WORKER: events accepted for WORKER and not acknowledged (pending in memory + spooled).
backlog() {
    echo $(( $(stat_in "$1.pending") + $(stat_in "$1.spooled" || true) + 0 ))
}

# fault_wait_settled KIND TOTAL: waits until salt_events holds TOTAL rows, or, when events are
# missing, until the daemon has nothing pending any more (the figures then say what is lost).
fault_wait_settled() {
    local end=$(( $(date +%s) + FAULT_DEADLINE ))
    while ! fault_count_is "$1" salt_events "$2"; do
        if stats_settled && ! fault_count_is "$1" salt_events "$2"; then
            note "daemon settled (nothing pending) with $(fault_q "$1" 'SELECT count(*) FROM salt_events') of $2 rows"
            return 0
        fi
        [ "$(date +%s)" -lt "$end" ] || { note "timed out after ${FAULT_DEADLINE}s waiting for $2 rows"; return 0; }
        sleep 0.2
    done
}

# stop_eventsd: SIGTERM, the daemon drains and must exit 0.
stop_eventsd() {
    kill -TERM "$EVENTSD_PID"
    wait_pid "$EVENTSD_PID" "$DEADLINE" || fail "eventsd exited with $? after SIGTERM (want 0)"
}

# ---------------------------------------------------------------------------------- figures

# fault_figures PUBLISHED ACCEPTED STORED LOST DUPLICATED [bounded]: prints the figures line and
# fails when an accepted event is missing, one is stored twice, or the counts disagree
# (published = accepted = stored; with "bounded": accepted <= stored <= published, for runs
# that lose bus events on purpose: Salt replays nothing to a daemon that is down).
fault_figures() {
    echo "figures: published=$1 accepted=$2 stored=$3 lost=$4 duplicated=$5"
    [ "$4" = 0 ] || fail "$4 accepted events are missing from the database"
    [ "$5" = 0 ] || fail "$5 rows are duplicates of stored events"
    if [ "${6:-}" = bounded ]; then
        [ "$2" -le "$3" ] && [ "$3" -le "$1" ] \
            || fail "counts disagree: want accepted ($2) <= stored ($3) <= published ($1)"
    else
        [ "$1" = "$2" ] && [ "$2" = "$3" ] \
            || fail "counts disagree: published ($1), accepted ($2) and stored ($3) should be equal"
    fi
}

# fault_single_figures KIND PUBLISHED [ACCEPTED]: one daemon run that read every event from
# eventsd_n 0 on: the accepted numbers are 0..ACCEPTED-1 (default: the newest stats line).
fault_single_figures() {
    local kind=$1 published=$2 accepted=${3:-$(stat_in accepted)} v all rows distinct in
    [ -n "$accepted" ] || fail "no stats line with accepted= in the daemon's log"
    v=$(fault_n "$kind")
    all=$(fault_q "$kind" "SELECT count(*), count(DISTINCT $v) FROM salt_events")
    rows=${all%|*}; distinct=${all#*|}
    in=$(fault_range "$kind" 0 $(( accepted - 1 )))
    fault_figures "$published" "$accepted" "$rows" $(( accepted - ${in#*|} )) $(( rows - distinct ))
}

# fault_other_tables KIND JOBS MINIONS: salt_returns and jids complete, without duplicates, and
# nothing dead-lettered.
fault_other_tables() {
    local kind=$1 jobs=$2 minions=$3
    wait_for "$(( jobs * minions )) returns stored" "$DEADLINE" \
        fault_count_is "$kind" salt_returns $(( jobs * minions ))
    wait_for "$jobs jobs stored" "$DEADLINE" fault_count_is "$kind" jids "$jobs"
    fault_count_is "$kind" "(SELECT jid, id FROM salt_returns GROUP BY jid, id HAVING count(*) > 1) d" 0 \
        || fail "duplicate returns"
    [ ! -s "$T/dead.jsonl" ] || fail "dead letters written: $(head -c 300 "$T/dead.jsonl")"
}

# log_since LINE PATTERN: the daemon's log has a line matching PATTERN (grep -E) after line LINE.
log_since() { tail -n +$(( $1 + 1 )) "$T/eventsd.log" | grep -Eq -- "$2"; }

# What a worker logs when its sink cannot write, and when it writes again (workers/worker.c).
FAULT_SINK_DOWN='msg="(sink write failed, batch kept for retry|cannot open sink, will retry)"'
FAULT_SINK_UP='msg="sink writes again"'

# ------------------------------------------------------------------------ database servers

# server_stop KIND / server_start KIND: stop and start the test server of KIND (test/servers.sh)
# on the port the daemon's config names; a server stopped by the test is started again at exit.
FAULT_SERVER_DOWN=""
server_stop() {
    [ -n "$FAULT_SERVER_DOWN" ] || fault_at_exit 'server_restore'
    FAULT_SERVER_DOWN=$1
    "$ROOT/test/servers.sh" stop "$1" "$EVENTSD_DB_DIR" >/dev/null
}

server_port() {
    if [ "$1" = pgsql ]; then echo "$EVENTSD_PG_PORT"; else echo "$EVENTSD_MYSQL_PORT"; fi
}

server_start() {
    local port_before
    port_before=$(server_port "$1")
    eval "$("$ROOT/test/servers.sh" start "$1" "$EVENTSD_DB_DIR")"
    FAULT_SERVER_DOWN=""
    [ "$(server_port "$1")" = "$port_before" ] \
        || fail "$1 came back on port $(server_port "$1"), not $port_before (taken meanwhile?)"
}

server_restore() {
    [ -n "$FAULT_SERVER_DOWN" ] || return 0
    echo "     [$TEST_NAME] cleanup: starting $FAULT_SERVER_DOWN again" >&2
    "$ROOT/test/servers.sh" start "$FAULT_SERVER_DOWN" "$EVENTSD_DB_DIR" >/dev/null || true
}

need_servers() {
    [ -n "${EVENTSD_DB_DIR:-}" ] || fail "run under test/with-servers.sh (no database servers)"
}

# ------------------------------------------------------------------------ server down test

# fault_server_down KIND: the body of pgsql_fault_server_down.sh and mysql_fault_server_down.sh.
# The database server is stopped for OUTAGE seconds in the middle of a steady load and started
# again: the daemon keeps reading the bus meanwhile, each worker process says once that its sink
# is unreachable (rate-limited, no flood) and once that it writes again, nothing is restarted,
# and every event is stored exactly once after the recovery.
fault_server_down() {
    local kind=$1 jobs=500 minions=48 n outage=${OUTAGE:-16} pub before t0 down_ms up_ms t1
    local accepted_down accepted_up written_down written_up pending_up procs p downs stop_mark
    need_servers
    n=$(( jobs * (minions + 2) ))
    db_reset "$kind"
    fault_config "$T/eventsd.conf" "$kind" 200 200 1
    start_eventsd "$T/eventsd.conf"
    start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $jobs --minions $minions \
        --return-size 300 --rate 1000 --wait-clients 1
    pub=$PUB_PID
    wait_for "2000 events stored" "$DEADLINE" stat_at_least events.written 2000
    before=$(wc -l < "$T/eventsd.log")
    t0=$(now_ms)
    server_stop "$kind"
    down_ms=$(now_ms)
    written_down=$(stat_in events.written); accepted_down=$(stat_in accepted)
    wait_for "a worker saying $kind is unreachable" 60 log_since "$before" "$FAULT_SINK_DOWN"
    while [ $(( $(now_ms) - down_ms )) -lt $(( outage * 1000 )) ]; do
        sleep 0.5    # the outage itself: pacing, not a synchronisation
    done
    accepted_up=$(stat_in accepted)
    written_up=$(stat_in events.written)
    pending_up=$(backlog events)
    t1=$(now_ms)
    server_start "$kind"
    up_ms=$(now_ms)
    note "$kind down for $(( up_ms - down_ms )) ms (stop took $(( down_ms - t0 )) ms, start $(( up_ms - t1 )) ms); meanwhile accepted $accepted_down -> $accepted_up, events.written $written_down -> $written_up, events backlog $pending_up"
    [ "$accepted_up" -gt "$accepted_down" ] || fail "the daemon accepted nothing while $kind was down"
    [ "$pending_up" -gt 0 ] || fail "nothing pending while $kind was down"
    wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
    fault_wait_settled "$kind" "$n"
    note "every event stored $(( $(now_ms) - up_ms )) ms after $kind came back"
    stop_mark=$(wc -l < "$T/eventsd.log")
    stop_eventsd
    fault_single_figures "$kind" "$(pub_sent pub)"
    [ "$(pub_sent pub)" = "$n" ] || fail "eventsd-pub sent $(pub_sent pub) events, not $n"
    fault_other_tables "$kind" "$jobs" "$minions"

    # The log from the outage to the SIGTERM: each worker process that lost its sink said so at
    # most twice (rate-limited) and said once that it writes again; nobody was restarted; no
    # flood of other lines.
    sed -n "$(( before + 1 )),${stop_mark}p" "$T/eventsd.log" | grep -v 'msg=stats' > "$T/outage.txt" || true
    procs=$(grep -E "$FAULT_SINK_DOWN" "$T/outage.txt" | sed -n 's/.* proc=\([^ ]*\) .*/\1/p' | sort -u)
    [ -n "$procs" ] || fail "no worker logged that $kind was unreachable"
    for p in $procs; do
        downs=$(grep -F " proc=$p " "$T/outage.txt" | grep -Ec "$FAULT_SINK_DOWN" || true)
        [ "$downs" -le 2 ] || fail "$p complained $downs times in a ${outage}s outage (not rate-limited)"
        grep -F " proc=$p " "$T/outage.txt" | grep -Eq "$FAULT_SINK_UP" \
            || fail "$p never logged that $kind is writable again"
    done
    ! grep -q 'worker died' "$T/outage.txt" || fail "a worker died during the outage: $(grep 'worker died' "$T/outage.txt" | head -n 1)"
    [ "$(wc -l < "$T/outage.txt")" -le 40 ] \
        || fail "$(wc -l < "$T/outage.txt") log lines (besides stats) from the outage to the SIGTERM: a flood"
    note "log: $(grep -Ec "$FAULT_SINK_DOWN" "$T/outage.txt") 'unreachable' and $(grep -Ec "$FAULT_SINK_UP" "$T/outage.txt") 'writes again' lines from $(echo $procs | wc -w) worker processes, $(wc -l < "$T/outage.txt") lines besides stats from the outage to the SIGTERM"
    pass "$n events stored exactly once in $kind across a $(( (up_ms - down_ms) / 1000 ))s server outage"
}

# ------------------------------------------------------------------------- spool full test

# fault_spool_full disk|max_bytes: the body of sqlite_fault_spool_full.sh (disk: spool.dir is a
# 4 MiB tmpfs and max_bytes far above it, so the disk fills up: ENOSPC) and
# sqlite_fault_spool_max_bytes.sh (max_bytes = 2 MiB on a roomy disk). The sink stops (another
# connection holds the SQLite write lock) so the accepted events pile up in the spool until it is
# full. With when_full = "block" the daemon says so (rate-limited), stops reading the bus (the
# publisher waits, nothing is dropped), and resumes once the lock goes and the committed segments
# are deleted. Every event is stored exactly once: published = accepted = stored.
fault_spool_full() {
    local mode=$1 kind=sqlite jobs=200 minions=48 n spool pub locked_ms mark full_ms unlocked_ms
    local accepted_full used_full fulls
    local full_re='msg="spool full \(when_full=block\)' room_re='msg="spool takes events again'
    n=$(( jobs * (minions + 2) ))
    mkdir -p "$T/spool"
    if [ "$mode" = disk ]; then
        [ "$(id -u)" = 0 ] || fail "needs root (mounts a tmpfs)"
        mount -t tmpfs -o size=4m,mode=0700 eventsd-spool "$T/spool" || fail "cannot mount a tmpfs on $T/spool"
        fault_at_exit "umount '$T/spool' 2>/dev/null || umount -l '$T/spool'"
        spool="max_bytes = 1073741824;"
    else
        spool="max_bytes = 2097152;"
    fi
    spool="dir = \"$T/spool\"; sync = \"interval\"; sync_ms = 10; segment_bytes = 262144;
             when_full = \"block\"; $spool"
    fault_config "$T/eventsd.conf" "$kind" 200 200 1 "$spool"
    start_eventsd "$T/eventsd.conf"
    start_pub pub --bus salt-ipc --path "$T/bus.ipc" --jobs $jobs --minions $minions \
        --return-size 1000 --rate 1500 --wait-clients 1
    pub=$PUB_PID
    wait_for "500 events stored" "$DEADLINE" stat_at_least events.written 500

    # Another connection takes the write lock and keeps it: every worker's BEGIN IMMEDIATE waits.
    mkfifo "$T/lock.fifo"
    sqlite3 "$T/salt.db" < "$T/lock.fifo" > "$T/lock.log" 2>&1 &
    STARTED_PIDS="$STARTED_PIDS $!"
    exec 7> "$T/lock.fifo"
    printf '.timeout 60000\nBEGIN EXCLUSIVE;\n' >&7
    wait_for "the database write lock taken" 60 sqlite_locked
    locked_ms=$(now_ms)
    mark=$(wc -l < "$T/eventsd.log")

    wait_for "the daemon saying the spool is full" "$DEADLINE" log_since "$mark" "$full_re"
    full_ms=$(now_ms)
    wait_for "the daemon not reading the bus (accepted steady)" "$DEADLINE" accepted_steady_since "$mark"
    accepted_full=$(stat_in accepted); used_full=$(du -sk "$T/spool" | cut -f1)
    [ "$(stat_in held)" -gt 0 ] || fail "spool full but no event held"
    alive "$pub" || fail "the publisher finished although the daemon stopped reading"
    sleep 2   # the spool stays full for a while (pacing)
    [ "$(stat_in accepted)" = "$accepted_full" ] || fail "accepted moved while the spool was full"
    note "spool full $(( full_ms - locked_ms )) ms after the lock: accepted=$accepted_full, spool ${used_full} KiB in $(stat_in spool_segments) segments, held=$(stat_in held)"

    # While full: one line (rate-limited: the master offers the held event again every 100 ms).
    fulls=$(tail -n +$(( mark + 1 )) "$T/eventsd.log" | grep -Ec -- "$full_re" || true)
    [ "$fulls" -le 2 ] || fail "the daemon said the spool was full $fulls times in $(( ($(now_ms) - full_ms) / 1000 + 1 ))s (not rate-limited)"
    printf 'ROLLBACK;\n' >&7
    exec 7>&-
    unlocked_ms=$(now_ms)
    wait_for "the daemon taking events again" 60 log_since "$mark" "$room_re"
    wait_for "accepted growing again" "$DEADLINE" stat_at_least accepted $(( accepted_full + 1 ))
    note "resumed $(( $(now_ms) - unlocked_ms )) ms after the lock went"
    wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
    fault_wait_settled "$kind" "$n"
    note "spool ${used_full} KiB when full, $(du -sk "$T/spool" | cut -f1) KiB when settled"
    stop_eventsd
    fault_single_figures "$kind" "$(pub_sent pub)"
    [ "$(pub_sent pub)" = "$n" ] || fail "eventsd-pub sent $(pub_sent pub) events, not $n"
    fault_other_tables "$kind" "$jobs" "$minions"
    tail -n +$(( mark + 1 )) "$T/eventsd.log" | grep -v 'msg=stats' > "$T/full.txt" || true
    # Catching up, the spool may fill and free several times: each time one line each way.
    fulls=$(grep -Ec -- "$full_re" "$T/full.txt" || true)
    [ "$(wc -l < "$T/full.txt")" -le 60 ] \
        || fail "$(wc -l < "$T/full.txt") log lines (besides stats) from the lock to the end: a flood"
    ! grep -Eq 'are lost|event lost' "$T/eventsd.log" \
        || fail "the daemon says it lost events: $(grep -E 'are lost|event lost' "$T/eventsd.log" | head -n 3)"
    pass "$n events stored exactly once through a full spool ($mode; blocked at $accepted_full accepted; $fulls 'spool full' lines in all)"
}

# sqlite_locked: another connection holds the write lock of $T/salt.db.
sqlite_locked() {
    ! sqlite3 "$T/salt.db" 'PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; ROLLBACK;' >/dev/null 2>&1
}

# accepted_steady_since LINE: two stats lines after line LINE of the log, with equal accepted.
accepted_steady_since() {
    local a
    a=$(tail -n +$(( $1 + 1 )) "$T/eventsd.log" | grep 'msg=stats' | tail -n 2 |
        sed -n 's/.* accepted=\([0-9]*\) .*/\1/p')
    [ "$(echo "$a" | wc -l)" = 2 ] && [ "$(echo "$a" | uniq | wc -l)" = 1 ]
}
