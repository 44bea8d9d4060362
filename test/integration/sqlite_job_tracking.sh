#!/bin/bash
# SQLite: see db_job_tracking.sh.
. "$(dirname "$0")/../lib.sh"
KIND=sqlite
. "$(dirname "$0")/db_job_tracking.sh"
