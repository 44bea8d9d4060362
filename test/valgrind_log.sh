# Sourced by test/lib.sh and test/valgrind.sh: the one test of whether a valgrind log failed.

# valgrind_failed LOG: the log reports a memory error, a definite/indirect leak or a crash.
# (An error record always carries an "at 0x" stack line.)
valgrind_failed() {
    if grep -Eq 'Process terminating with default action of signal (4|6|7|8|11) ' "$1"; then
        return 0   # crashed: SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV
    fi
    if grep -q 'Process terminating with default action' "$1" || ! grep -q 'ERROR SUMMARY:' "$1"
    then
        # killed: by SIGKILL (no leak check at all), or by another signal (SIGTERM from
        # PDEATHSIG when a test kills the master), whose leak check runs at whatever
        # instruction the signal hit and reports as lost the blocks only that interrupted code
        # held (libpq between malloc and queueing). Only errors reported while it ran count.
        awk '/Process terminating with default action/ { exit }
             /^==[0-9]+==    at 0x/ { found = 1; exit }
             END { exit !found }' "$1"
    else
        grep -q 'ERROR SUMMARY: [1-9]' "$1"
    fi
}
