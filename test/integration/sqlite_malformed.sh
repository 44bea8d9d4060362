#!/bin/bash
# Hostile bus input between good frames: a body without "\n\n", a payload that is not a map,
# nesting deeper than bus.max_depth, a frame over bus.max_event_bytes. Each is counted and
# skipped; the reader goes on and stores every good event around them.
. "$(dirname "$0")/../lib.sh"
[ -d "$FIXTURES" ] || fail "fixtures not found at $FIXTURES"

frame_end() {   # byte offset where event number $1 (1-based line) of the capture ends
    sed -n "${1}p" "$FIXTURES/frames-3006.jsonl" | sed -E 's/.*"offset": ([0-9]+), "length": ([0-9]+)\}$/\1 \2/' |
        { read -r o l; echo $(( o + l )); }
}
head_bytes=$(frame_end 3)                 # events 1-3
tail_from=$head_bytes; tail_to=$(frame_end 10)   # events 4-10
stream="$T/hostile.bin"
head -c "$head_bytes" "$FIXTURES/frames-3006.bin" > "$stream"
# {"head": {}, "body": bin "no separator here"}
printf '\x82\xa4head\x80\xa4body\xc4\x11no separator here' >> "$stream"
# body "t\n\n" + msgpack array (not a map)
printf '\x82\xa4head\x80\xa4body\xc4\x05t\n\n\x91\x01' >> "$stream"
# body "deep\n\n" + {"a": [[[... 100 levels ...]]]}
{ printf '\x82\xa4head\x80\xa4body\xc4\x6edeep\n\n\x81\xa1a'; head -c 100 /dev/zero | tr '\0' '\221'; printf '\xc0'; } >> "$stream"
# a 3001-byte body: over the 2048-byte limit of this test's config
{ printf '\x82\xa4head\x80\xa4body\xc5\x0b\xb9big\n\n\x81\xa1a\xda\x0b\xae'; head -c 2990 /dev/zero | tr '\0' 'x'; } >> "$stream"
tail -c +$(( tail_from + 1 )) "$FIXTURES/frames-3006.bin" | head -c $(( tail_to - tail_from )) >> "$stream"

write_config "$T/eventsd.conf" "type = \"salt-ipc\"; path = \"$T/bus.ipc\"; max_event_bytes = 2048; max_depth = 32;"
start_pub pub --bus salt-ipc --path "$T/bus.ipc" --replay "$stream" --wait-clients 1
pub=$PUB_PID
start_eventsd "$T/eventsd.conf"
wait_pid "$pub" "$DEADLINE" || fail "eventsd-pub exited with $?"
wait_for "10 good events stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_events" 10
wait_for "3 malformed frames counted" 30 stat_is malformed 3
wait_for "1 oversize frame counted" 30 stat_is oversize 1
log_has "skipped a bad frame" || fail "no log line for the bad frames"
pass "3 malformed + 1 oversize frames counted and skipped; all 10 good events stored"

# Bytes that are not msgpack at all lose the frame boundary: eventsd drops the connection,
# reconnects, and stores what the next publisher sends.
head -c 4096 /dev/zero | tr '\000' '\301' > "$T/garbage.bin"   # 0xc1: never valid msgpack
start_pub garbage --bus salt-ipc --path "$T/bus.ipc" --replay "$T/garbage.bin" --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub (garbage) exited with $?"
wait_for "lost sync logged" 30 log_has "stream lost frame sync"
start_pub after --bus salt-ipc --path "$T/bus.ipc" --jobs 5 --minions 4 --first-n 1000 --wait-clients 1
wait_pid "$PUB_PID" "$DEADLINE" || fail "eventsd-pub (after) exited with $?"
wait_for "30 events after the garbage stored" "$DEADLINE" count_is "SELECT count(*) FROM salt_events" 40
check_exactly_once 1000 1029
kill -0 "$EVENTSD_PID" || fail "eventsd died"
kill -TERM "$EVENTSD_PID"
wait_pid "$EVENTSD_PID" 60 || fail "eventsd exit code $?"
pass "garbage stream: connection dropped and re-established, the next 30 events stored"
