#!/bin/sh
# install-deps.sh [PACKAGE...]: installs the Debian packages that are missing, and nothing when
# everything is present. Without arguments: what eventsd needs to build, test and run the demo.
# Run as root on Debian 12 (make demo / make check do).
set -eu
PKGS="make gcc clang pkg-config libzmq3-dev libczmq-dev libpcre2-dev libmsgpack-dev
libconfig-dev libsqlite3-dev libcriterion-dev libsystemd-dev libpq-dev
default-libmysqlclient-dev libisal-dev libhiredis-dev sqlite3 procps"
[ "$#" -gt 0 ] && PKGS="$*"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages and not root; run: apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
