#!/bin/bash
# with-servers.sh COMMAND...: starts PostgreSQL, MariaDB, Redis and carbon-cache on loopback in a
# private temp dir (test/servers.sh), exports their EVENTSD_PG_* / EVENTSD_MYSQL_* /
# EVENTSD_REDIS_* / EVENTSD_CARBON_* settings, runs COMMAND, and stops every server whatever
# COMMAND did. The exit code is COMMAND's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/eventsd-db.XXXXXX)
stop_all() {
    "$here/servers.sh" stop pgsql "$dir" >/dev/null 2>&1 || true
    "$here/servers.sh" stop mysql "$dir" >/dev/null 2>&1 || true
    "$here/servers.sh" stop redis "$dir" >/dev/null 2>&1 || true
    "$here/servers.sh" stop carbon "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop_all EXIT
# Through a variable: `eval "$(cmd)"` would ignore a failed start and run COMMAND without it.
for kind in pgsql mysql redis carbon; do
    exports=$("$here/servers.sh" start "$kind" "$dir")
    eval "$exports"
done
export EVENTSD_DB_DIR=$dir
set +e
"$@"
rc=$?
set -e
exit "$rc"
