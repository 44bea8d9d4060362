#!/bin/bash
# fuzz.sh [-b BUILD] [-t SECONDS] [-j JOBS] [TARGET...]: runs the libFuzzer harnesses built by
# `make fuzz-build` (BUILD/fuzz_<target>) for SECONDS each, JOBS at a time (default: the number
# of CPUs, FUZZ_JOBS overrides), and prints one summary line per target:
#   fuzz: <target> seconds=<wall> execs=<n> exec/s=<n> corpus=<inputs> cov=<edges> crashes=<n>
# then the log and the input of every crash. Exits 1 when any harness crashed (a crash, leak,
# timeout, out-of-memory or failed invariant: libFuzzer exits non-zero and writes an artifact).
#
# Seeds: test/fuzz/corpus/<target>/ (read only). Work corpus: BUILD/corpus/<target>/ (kept
# between runs, so coverage accumulates). Artifacts: BUILD/artifacts/<target>/. Logs:
# BUILD/logs/<target>.log. Temporary files of a harness: BUILD/tmp/<target>/ (its TMPDIR).
# Dictionaries: test/fuzz/<target>.dict; extra libFuzzer flags: test/fuzz/<target>.options
# (one per line), when present.
set -u
cd "$(dirname "$0")/.."

build=build-fuzz seconds=60 jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
while getopts "b:t:j:" opt; do
    case $opt in
        b) build=$OPTARG ;;
        t) seconds=$OPTARG ;;
        j) jobs=$OPTARG ;;
        *) echo "usage: $0 [-b BUILD] [-t SECONDS] [-j JOBS] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in test/fuzz/fuzz_*.c; do
        t=${f#test/fuzz/fuzz_}
        targets+=("${t%.c}")
    done
fi
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

run_one() {
    local t=$1
    local bin=$build/fuzz_$t work=$build/corpus/$t art=$build/artifacts/$t/
    local log=$build/logs/$t.log tmp=$build/tmp/$t
    rm -rf "$tmp"
    mkdir -p "$work" "$art" "$tmp" "$build/logs" "test/fuzz/corpus/$t"
    : > "$build/logs/$t.stamp"
    local dict=() opts=()
    [ -f "test/fuzz/$t.dict" ] && dict=("-dict=test/fuzz/$t.dict")
    [ -f "test/fuzz/$t.options" ] && mapfile -t opts < <(grep -v -E '^[[:space:]]*(#|$)' "test/fuzz/$t.options")
    local start end rc
    start=$(date +%s.%N)
    # -timeout: one input running this long is a hang; stdin is /dev/null so that no input
    # (a config's @include "/dev/stdin") can wait for a terminal
    TMPDIR=$PWD/$tmp "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 \
        -rss_limit_mb=2048 -artifact_prefix="$art" "${dict[@]}" "${opts[@]}" "$work" \
        "test/fuzz/corpus/$t" \
        < /dev/null > "$log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    rm -rf "$tmp"
    echo "$rc $(echo "$end - $start" | bc)" > "$build/logs/$t.result"
}

for t in "${targets[@]}"; do
    if [ ! -x "$build/fuzz_$t" ]; then
        echo "fuzz: $build/fuzz_$t is missing (make fuzz-build)" >&2
        exit 2
    fi
done

echo "fuzz: ${#targets[@]} targets, ${seconds}s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait

failed=0
for t in "${targets[@]}"; do
    log=$build/logs/$t.log
    read -r rc wall < "$build/logs/$t.result"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    mapfile -t found < <(find "$build/artifacts/$t" -type f -newer "$build/logs/$t.stamp" \
                             \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
                                -o -name 'oom-*' \) | sort)
    crashes=${#found[@]}
    [ "$rc" != 0 ] && [ "$crashes" -eq 0 ] && crashes=1   # failed without an artifact
    printf 'fuzz: %-13s seconds=%.0f execs=%s exec/s=%s corpus=%s cov=%s crashes=%d\n' \
        "$t" "$wall" "${execs:-?}" "${rate:-?}" "${corpus:-?}" "${cov:-?}" "$crashes"
    if [ "$crashes" -gt 0 ]; then
        failed=$((failed + crashes))
        echo "---- $t: exit $rc; the end of $log:"
        grep -v -E '^(#[0-9]+|INFO:|MS:|[ 	]*$)' "$log" | tail -60
        for a in "${found[@]}"; do
            echo "---- $t: input $a (replay: $build/fuzz_$t $a)"
        done
        if [ ${#found[@]} -eq 0 ] && grep -q 'LeakSanitizer' "$log"; then
            echo "---- $t: leak found at exit; to name the input:" \
                 "$build/fuzz_$t -detect_leaks=1 -runs=1 $build/corpus/$t"
        fi
    fi
done
if [ "$failed" -gt 0 ]; then
    echo "fuzz: FAILED: $failed crash(es)"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
