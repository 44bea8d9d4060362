#!/bin/bash
# PostgreSQL stopped for ~16 s during a steady load, then started again: see fault_server_down
# in db_fault_lib.sh.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/db_fault_lib.sh"
fault_server_down pgsql
