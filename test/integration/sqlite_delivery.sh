#!/bin/bash
# eventsd-pub -> eventsd -> SQLite on every bus type: every published event is stored exactly
# once, returns land in salt_returns, new jobs in jids.
. "$(dirname "$0")/../lib.sh"

JOBS=20; MINIONS=10
PER_RUN=$(( JOBS * (MINIONS + 2) ))
first=0
run_bus() {
    label=$1; eventsd_bus=$2; shift 2
    rm -f "$T/salt.db"* "$T/eventsd.log"
    write_config "$T/eventsd.conf" "$eventsd_bus"
    start_pub "$label" "$@" --jobs $JOBS --minions $MINIONS --first-n $first --wait-clients 1
    pub=$PUB_PID
    start_eventsd "$T/eventsd.conf"
    wait_pid "$pub" "$DEADLINE" || fail "$label: eventsd-pub exited with $?"
    last=$(( first + PER_RUN - 1 ))
    wait_for "$label: $PER_RUN events stored" "$DEADLINE" \
        count_is "SELECT count(*) FROM salt_events" "$PER_RUN"
    check_exactly_once "$first" "$last"
    wait_for "$label: returns" "$DEADLINE" count_is "SELECT count(*) FROM salt_returns" $(( JOBS * MINIONS ))
    wait_for "$label: jids" "$DEADLINE" count_is "SELECT count(*) FROM jids" "$JOBS"
    kill -TERM "$EVENTSD_PID"
    wait_pid "$EVENTSD_PID" 60 || fail "$label: eventsd exit code $?"
    pass "$label: $PER_RUN events stored exactly once ($(grep -o 'rate=[0-9.]*' "$T/$label.out" | head -1))"
    first=$(( last + 1 ))
}

sock="$T/bus.ipc"
run_bus salt-ipc "type = \"salt-ipc\"; path = \"$sock\";" --bus salt-ipc --path "$sock"
port=$(free_port)
run_bus salt-tcp "type = \"salt-tcp\"; host = \"127.0.0.1\"; port = $port;" --bus salt-tcp --port "$port"
run_bus zmq-2015 "type = \"zmq\"; endpoint = \"ipc://$T/zmq.ipc\";" --bus zmq --endpoint "ipc://$T/zmq.ipc" --zmq-style 2015
run_bus zmq-2014 "type = \"zmq\"; endpoint = \"ipc://$T/zmq14.ipc\";" --bus zmq --endpoint "ipc://$T/zmq14.ipc" --zmq-style 2014
run_bus auto-stream "type = \"auto\"; path = \"$T/auto.ipc\";" --bus salt-ipc --path "$T/auto.ipc"
run_bus auto-zmq "type = \"auto\"; path = \"$T/autozmq.ipc\";" --bus zmq --endpoint "ipc://$T/autozmq.ipc"
