#!/bin/bash
# Runs every integration test in test/integration/ against the binaries in BUILD_DIR.
# Each test starts its own processes on private sockets and free ports and cleans up after
# itself; a failed test prints the logs of what it started.
set -u
BUILD=${1:-build}
export BUILD
cd "$(dirname "$0")/.."
failed=0
total=0
for t in test/integration/*_*.sh; do
    case "$t" in */db_*.sh) continue ;; esac   # sourced by other tests
    [ -n "${ONLY:-}" ] && [[ "$t" != *"$ONLY"* ]] && continue
    total=$((total + 1))
    start=$(date +%s)
    if bash "$t"; then
        echo "PASS $t ($(( $(date +%s) - start ))s)"
    else
        echo "FAIL $t ($(( $(date +%s) - start ))s)"
        failed=$((failed + 1))
    fi
done
echo "integration: $((total - failed))/$total passed"
[ "$failed" = 0 ]
