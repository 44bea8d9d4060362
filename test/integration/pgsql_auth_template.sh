#!/bin/bash
# PostgreSQL: see db_auth_template.sh.
. "$(dirname "$0")/../lib.sh"
KIND=pgsql
. "$(dirname "$0")/db_auth_template.sh"
