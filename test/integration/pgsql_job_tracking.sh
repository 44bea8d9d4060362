#!/bin/bash
# PostgreSQL: see db_job_tracking.sh.
. "$(dirname "$0")/../lib.sh"
KIND=pgsql
. "$(dirname "$0")/db_job_tracking.sh"
