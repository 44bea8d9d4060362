#!/bin/bash
# MariaDB: see db_job_tracking.sh.
. "$(dirname "$0")/../lib.sh"
KIND=mysql
. "$(dirname "$0")/db_job_tracking.sh"
