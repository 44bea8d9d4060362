#!/bin/bash
# MariaDB: see db_delivery.sh.
. "$(dirname "$0")/../lib.sh"
KIND=mysql
. "$(dirname "$0")/db_delivery.sh"
