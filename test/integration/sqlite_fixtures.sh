#!/bin/bash
# The real Salt captures replayed on their bus, stored in salt_events: every event's data
# column equals the JSON the fixture's .jsonl gives for it, byte for byte.
. "$(dirname "$0")/../lib.sh"
[ -d "$FIXTURES" ] || fail "fixtures not found at $FIXTURES"

expected_data() {   # the "data" value text of every .jsonl line (tags hold no quotes)
    sed -E 's/^\{"tag": "[^"]*", "data": (.*), "offset": [0-9]+, "length": [0-9]+\}$/\1/' "$1"
}

replay() {
    name=$1; bus_block=$2; shift 2
    rm -f "$T/salt.db"* "$T/eventsd.log"
    n=$(wc -l < "$FIXTURES/$name.jsonl")
    write_config "$T/eventsd.conf" "$bus_block"
    start_pub "$name" "$@" --replay "$FIXTURES/$name.bin" --wait-clients 1
    pub=$PUB_PID
    start_eventsd "$T/eventsd.conf"
    wait_pid "$pub" "$DEADLINE" || fail "$name: eventsd-pub exited with $?"
    wait_for "$name: $n events stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_events" "$n"
    sql "SELECT tag FROM salt_events ORDER BY id" > "$T/tags.got"
    sed -E 's/^\{"tag": "([^"]*)".*/\1/' "$FIXTURES/$name.jsonl" > "$T/tags.want"
    cmp -s "$T/tags.got" "$T/tags.want" || { diff "$T/tags.want" "$T/tags.got" | head; fail "$name: tags differ"; }
    sql "SELECT data FROM salt_events ORDER BY id" > "$T/data.got"
    expected_data "$FIXTURES/$name.jsonl" > "$T/data.want"
    cmp -s "$T/data.got" "$T/data.want" || { diff "$T/data.want" "$T/data.got" | cut -c1-300 | head; fail "$name: data differs from the .jsonl"; }
    kill -TERM "$EVENTSD_PID"
    wait_pid "$EVENTSD_PID" 60 || fail "$name: eventsd exit code $?"
    pass "$name: $n events stored, tags and data equal to the .jsonl"
}

replay frames-3006 "type = \"salt-ipc\"; path = \"$T/a.ipc\";" --bus salt-ipc --path "$T/a.ipc"
replay frames-3007 "type = \"auto\"; path = \"$T/b.ipc\";" --bus salt-ipc --path "$T/b.ipc"
replay frames-zmq-2015 "type = \"zmq\"; endpoint = \"ipc://$T/c.ipc\";" --bus zmq --endpoint "ipc://$T/c.ipc"
replay frames-zmq-2014 "type = \"zmq\"; endpoint = \"ipc://$T/d.ipc\";" --bus zmq --endpoint "ipc://$T/d.ipc"
