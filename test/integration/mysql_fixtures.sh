#!/bin/bash
# The real Salt captures replayed on their bus through eventsd into MySQL/MariaDB: every event is
# stored in salt_events, in order, with the tag of the fixture's .jsonl line and a data column
# (mediumtext: eventsd's JSON text) equal to the .jsonl's "data" text byte for byte. MySQL
# text holds the escape \u0000 as it is, so nothing is dead-lettered.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_lib.sh"
[ -n "${EVENTSD_DB_DIR:-}" ] || fail "run under test/with-servers.sh (no database servers)"
[ -d "$FIXTURES" ] || fail "fixtures not found at $FIXTURES"

# One column of a query, one row a line, raw (no escaping of backslashes), in utf8mb4.
my_raw() {
    mariadb -h "$EVENTSD_MYSQL_HOST" -P "$EVENTSD_MYSQL_PORT" -u "$EVENTSD_MYSQL_USER" \
        -p"$EVENTSD_MYSQL_PASSWORD" --default-character-set=utf8mb4 "$EVENTSD_MYSQL_DATABASE" \
        -N -B -r -e "$1"
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

replay() {
    name=$1; bus_block=$2; shift 2
    jsonl="$FIXTURES/$name.jsonl"
    n=$(wc -l < "$jsonl")
    rm -f "$T/dead.jsonl" "$T/eventsd.log"
    db_reset mysql
    db_config "$T/eventsd.conf" mysql
    sed -i "s|^bus = .*|bus = { $bus_block reconnect_min_ms = 50; reconnect_max_ms = 500; };|" "$T/eventsd.conf"
    start_pub "$name" "$@" --replay "$FIXTURES/$name.bin" --wait-clients 1
    pub=$PUB_PID
    start_eventsd "$T/eventsd.conf"
    wait_pid "$pub" "$DEADLINE" || fail "$name: eventsd-pub exited with $?"
    wait_for "$name: $n events stored" "$DEADLINE" db_count_is mysql salt_events "$n"
    wait_for "$name: every event committed or rejected" 30 settled "$n"
    for w in events returns jobs; do
        stat_is "$w.failed" 0 || fail "$name: $w.failed = $(stat_value "$w.failed")"
    done
    [ ! -s "$T/dead.jsonl" ] || fail "$name: dead letters written: $(head -c 600 "$T/dead.jsonl")"

    my_raw "SELECT tag FROM salt_events ORDER BY id" > "$T/tags.got"
    sed -E 's/^\{"tag": "([^"]*)".*/\1/' "$jsonl" > "$T/tags.want"
    cmp -s "$T/tags.want" "$T/tags.got" || { diff "$T/tags.want" "$T/tags.got" | head; fail "$name: tags differ"; }

    # JSON text holds no raw newline, so one row is one line. The lengths (in bytes, on the
    # server) guard against the client altering what it prints.
    my_raw "SELECT data FROM salt_events ORDER BY id" > "$T/data.got"
    sed -E 's/^\{"tag": "[^"]*", "data": (.*), "offset": [0-9]+, "length": [0-9]+\}$/\1/' "$jsonl" > "$T/data.want"
    [ "$(wc -l < "$T/data.want")" = "$n" ] || fail "$name: unexpected .jsonl line shape"
    cmp -s "$T/data.want" "$T/data.got" \
        || { diff "$T/data.want" "$T/data.got" | cut -c1-300 | head; fail "$name: data differs from the .jsonl"; }
    my_raw "SELECT length(data) FROM salt_events ORDER BY id" > "$T/len.got"
    while IFS= read -r l; do printf '%s' "$l" | wc -c; done < "$T/data.want" > "$T/len.want"
    cmp -s "$T/len.want" "$T/len.got" || { diff "$T/len.want" "$T/len.got" | head; fail "$name: data lengths differ"; }

    kill -TERM "$EVENTSD_PID"
    wait_pid "$EVENTSD_PID" 60 || fail "$name: eventsd exit code $?"
    pass "$name: $n events stored, tags and data equal to the .jsonl byte for byte, no dead letters"
}

replay frames-3006 "type = \"salt-ipc\"; path = \"$T/a.ipc\";" --bus salt-ipc --path "$T/a.ipc"
replay frames-zmq-2015 "type = \"zmq\"; endpoint = \"ipc://$T/c.ipc\";" --bus zmq --endpoint "ipc://$T/c.ipc"
