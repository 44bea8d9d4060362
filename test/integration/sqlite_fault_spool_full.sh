#!/bin/bash
# SQLite, the spool's DISK fills up: spool.dir is a 4 MiB tmpfs (max_bytes far above it, so the
# limit is ENOSPC) while the sink is stopped; with when_full = "block" nothing accepted is lost
# and the daemon resumes when the sink is back. See fault_spool_full in db_fault_lib.sh.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_fault_lib.sh"
fault_spool_full disk
