#!/bin/bash
# MySQL/MariaDB: see db_auth_template.sh.
. "$(dirname "$0")/../lib.sh"
KIND=mysql
. "$(dirname "$0")/db_auth_template.sh"
