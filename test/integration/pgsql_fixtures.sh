#!/bin/bash
# The real Salt captures replayed on their bus through eventsd into PostgreSQL: every stored
# salt_events row, in order, has the tag of the fixture's .jsonl line and data equal (as jsonb)
# to its "data". An event whose JSON holds the escape \u0000 cannot be jsonb (SQLSTATE 22P05):
# exactly those events are dead-lettered, whole, with the database's message, and the rest of
# their batch is stored.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_lib.sh"
[ -n "${EVENTSD_DB_DIR:-}" ] || fail "run under test/with-servers.sh (no database servers)"
[ -d "$FIXTURES" ] || fail "fixtures not found at $FIXTURES"

pg_script() {   # psql reading a script on stdin; stops at the first error
    PGOPTIONS=--client-min-messages=warning psql "$EVENTSD_PG_CONNINFO" -qAtX -F '|' \
        -v ON_ERROR_STOP=1 -f -
}

# "tag<TAB>data text" of every .jsonl line (tags hold no quotes; JSON text holds no raw tab).
split_jsonl() {
    sed -E 's/^\{"tag": "([^"]*)", "data": (.*), "offset": [0-9]+, "length": [0-9]+\}$/\1\t\2/' "$1"
}

# Line numbers of the lines holding a real \u0000 escape: a backslash-u0000 preceded by an even
# number of backslashes (so "\\u0000", an escaped backslash followed by u0000 text, is not one).
nul_lines() { grep -nE '(^|[^\\])(\\\\)*\\u0000' "$1" | cut -d: -f1 || true; }

# The fields of the dead-letter lines of one worker: "tag<TAB>error<TAB>data text".
dead_of() {
    [ -f "$T/dead.jsonl" ] || return 0
    sed -nE 's/^\{"worker": "'"$1"'", "error": "(([^"\\]|\\.)*)", "tag": "([^"]*)", "event_hash": "[0-9a-f]{40}", "data": (.*)\}$/\3\t\1\t\4/p' \
        "$T/dead.jsonl"
}

# settled N: the newest stats line says N events were received and no worker has any pending:
# every event is committed or dead-lettered.
settled() {
    line=$(grep 'msg=stats' "$T/eventsd.log" | tail -n 1)
    case " $line " in *" received=$1 "*) ;; *) return 1 ;; esac
    for w in events returns jobs; do
        case " $line " in *" $w.pending=0 "*) ;; *) return 1 ;; esac
    done
}

dead_lines() { [ -f "$T/dead.jsonl" ] && wc -l < "$T/dead.jsonl" || echo 0; }
dead_lines_are() { [ "$(dead_lines)" = "$1" ]; }

# replay NAME NUL_EVENTS BUS_BLOCK PUB_ARGS...: NUL_EVENTS is how many events of the capture hold
# \u0000 (a guard that the detection below finds what the fixture is known to contain).
replay() {
    name=$1; want_nul=$2; bus_block=$3; shift 3
    jsonl="$FIXTURES/$name.jsonl"
    n=$(wc -l < "$jsonl")
    rm -f "$T/dead.jsonl" "$T/eventsd.log"
    split_jsonl "$jsonl" > "$T/want.all"
    [ "$(grep -c $'\t' "$T/want.all")" = "$n" ] || fail "$name: unexpected .jsonl line shape"
    nul_lines "$T/want.all" > "$T/nul.lines"
    k=$(wc -l < "$T/nul.lines")
    [ "$k" = "$want_nul" ] || fail "$name: $k events hold \\u0000, the fixture has $want_nul"
    : > "$T/want.dead"; : > "$T/want.stored"
    split_at=$(tr '\n' ' ' < "$T/nul.lines")
    awk -v bad="$split_at" 'BEGIN { split(bad, l, " "); for (i in l) b[l[i]] = 1 }
        { print > ((NR in b) ? dead : stored) }' dead="$T/want.dead" stored="$T/want.stored" "$T/want.all"
    m=$(( n - k ))
    # Workers that take each \u0000 event (the rules of db_config): events always, returns for a
    # job return, jobs for a job's load. Each of them must reject it: its row holds that JSON.
    k_ret=$(cut -f1 "$T/want.dead" | grep -cE '^salt/job/[0-9]+/ret/' || true)
    k_job=$(cut -f1 "$T/want.dead" | grep -cE '^salt/job/[0-9]+/new$' || true)

    db_reset pgsql
    db_config "$T/eventsd.conf" pgsql
    sed -i "s|^bus = .*|bus = { $bus_block reconnect_min_ms = 50; reconnect_max_ms = 500; };|" "$T/eventsd.conf"
    start_pub "$name" "$@" --replay "$FIXTURES/$name.bin" --wait-clients 1
    pub=$PUB_PID
    start_eventsd "$T/eventsd.conf"
    wait_pid "$pub" "$DEADLINE" || fail "$name: eventsd-pub exited with $?"
    wait_for "$name: $m events stored" "$DEADLINE" db_count_is pgsql salt_events "$m"
    wait_for "$name: $k rejected events counted" 30 stat_is events.failed "$k"
    wait_for "$name: $k_ret rejected returns counted" 30 stat_is returns.failed "$k_ret"
    wait_for "$name: $k_job rejected job loads counted" 30 stat_is jobs.failed "$k_job"
    wait_for "$name: every event committed or rejected" 30 settled "$n"
    wait_for "$name: $(( k + k_ret + k_job )) dead letters" 30 dead_lines_are $(( k + k_ret + k_job ))
    [ "$(dbq pgsql "SELECT count(*) FROM salt_events")" = "$m" ] || fail "$name: more than $m events stored"

    # Stored rows, in order, against the expected lines loaded into a temp table as jsonb.
    got=$(pg_script <<SQL
CREATE TEMP TABLE want (n serial, tag text, data jsonb);
\\copy want (tag, data) FROM '$T/want.stored' WITH (FORMAT csv, DELIMITER E'\\t', QUOTE E'\\x01')
CREATE TEMP TABLE got AS SELECT row_number() OVER (ORDER BY id) AS n, tag, data FROM salt_events;
SELECT (SELECT count(*) FROM want), (SELECT count(*) FROM got), count(*)
FROM want w FULL JOIN got g ON w.n = g.n
WHERE w.n IS NULL OR g.n IS NULL OR w.tag IS DISTINCT FROM g.tag OR w.data IS DISTINCT FROM g.data;
SELECT 'row ' || coalesce(w.n, g.n) || ': want ' || coalesce(w.tag, '-') || ' ' || left(coalesce(w.data::text, '-'), 150)
       || ' | got ' || coalesce(g.tag, '-') || ' ' || left(coalesce(g.data::text, '-'), 150)
FROM want w FULL JOIN got g ON w.n = g.n
WHERE w.n IS NULL OR g.n IS NULL OR w.tag IS DISTINCT FROM g.tag OR w.data IS DISTINCT FROM g.data
ORDER BY 1 LIMIT 3;
SQL
) || fail "$name: comparing with the .jsonl failed: $got"
    [ "$(printf '%s\n' "$got" | head -n 1)" = "$m|$m|0" ] \
        || fail "$name: stored events differ from the .jsonl (want|got|mismatched): $got"

    # The dead letters: exactly the \u0000 events, whole (data byte for byte as the .jsonl's),
    # each with PostgreSQL's 22P05 message, from every worker that took them.
    for w in events returns jobs; do
        case $w in
            events)  cp "$T/want.dead" "$T/want.dead.$w" ;;
            returns) grep -E '^salt/job/[0-9]+/ret/' "$T/want.dead" > "$T/want.dead.$w" || true ;;
            jobs)    grep -E '^salt/job/[0-9]+/new'$'\t' "$T/want.dead" > "$T/want.dead.$w" || true ;;
        esac
        dead_of "$w" > "$T/dead.$w"
        cut -f1,3 "$T/dead.$w" > "$T/got.dead.$w"
        cmp -s "$T/want.dead.$w" "$T/got.dead.$w" \
            || { diff "$T/want.dead.$w" "$T/got.dead.$w" | cut -c1-300 | head; fail "$name: $w's dead letters are not exactly the \\u0000 events"; }
        if [ -s "$T/dead.$w" ]; then
            bad=$(cut -f2 "$T/dead.$w" | grep -v '22P05: unsupported Unicode escape sequence' || true)
            [ -z "$bad" ] || fail "$name: $w dead letter without SQLSTATE 22P05: $bad"
        fi
    done
    [ "$(cat "$T"/dead.events "$T"/dead.returns "$T"/dead.jobs | wc -l)" = "$(dead_lines)" ] \
        || fail "$name: unexpected dead letters: $(head -c 600 "$T/dead.jsonl")"

    kill -TERM "$EVENTSD_PID"
    wait_pid "$EVENTSD_PID" 60 || fail "$name: eventsd exit code $?"
    pass "$name: $m events stored equal to the .jsonl, $k with \\u0000 dead-lettered (22P05) by events + $k_ret by returns"
}

replay frames-3006 1 "type = \"salt-ipc\"; path = \"$T/a.ipc\";" --bus salt-ipc --path "$T/a.ipc"
replay frames-zmq-2015 0 "type = \"zmq\"; endpoint = \"ipc://$T/c.ipc\";" --bus zmq --endpoint "ipc://$T/c.ipc"
