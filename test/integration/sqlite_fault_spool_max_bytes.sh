#!/bin/bash
# SQLite, the spool reaches spool.max_bytes (2 MiB) while the sink is stopped; with when_full =
# "block" nothing accepted is lost and the daemon resumes when the sink is back. See
# fault_spool_full in db_fault_lib.sh.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_fault_lib.sh"
fault_spool_full max_bytes
