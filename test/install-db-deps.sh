#!/bin/sh
# Installs the Debian packages the PostgreSQL/MariaDB sinks need to build and test (servers,
# clients, client libraries); installs nothing when everything is present. Run as root on Debian 12.
set -eu
PKGS="postgresql-15 postgresql-client-15 libpq-dev mariadb-server mariadb-client
default-libmysqlclient-dev procps util-linux"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-db-deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "install-db-deps: missing packages and not root; run: apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Try with the current package lists first; refresh them only when that fails.
# shellcheck disable=SC2086
if ! apt-get install -y -q --no-install-recommends $missing; then
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi
