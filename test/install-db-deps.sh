#!/bin/sh
# Installs the Debian packages the PostgreSQL/MariaDB/Redis/carbon sink tests need (servers, clients, client
# libraries) when they are missing. Run as root on Debian 12.
exec "$(dirname "$0")/install-deps.sh" postgresql-15 postgresql-client-15 libpq-dev \
    mariadb-server mariadb-client default-libmysqlclient-dev procps util-linux \
    redis-server redis-tools graphite-carbon python3-whisper
