#!/bin/bash
# PostgreSQL: see db_delivery.sh.
. "$(dirname "$0")/../lib.sh"
KIND=pgsql
. "$(dirname "$0")/db_delivery.sh"
