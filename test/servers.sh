#!/bin/bash
# Starts and stops private PostgreSQL, MariaDB, Redis and carbon-cache servers on loopback for the
# tests.
#
#   eval "$(test/servers.sh start pgsql DIR)"    # exports EVENTSD_PG_CONNINFO, EVENTSD_PG_PORT, EVENTSD_PG_DIR
#   eval "$(test/servers.sh start mysql DIR)"    # exports EVENTSD_MYSQL_{HOST,PORT,SOCKET,USER,PASSWORD,DATABASE,DIR}
#   eval "$(test/servers.sh start redis DIR)"    # exports EVENTSD_REDIS_{HOST,PORT,DIR}
#   eval "$(test/servers.sh start carbon DIR)"   # exports EVENTSD_CARBON_{HOST,PORT,DIR,WHISPER_DIR}
#   test/servers.sh restart KIND DIR             # stop, then start the same data on the same port(s); prints the exports
#   test/servers.sh stop KIND DIR                # graceful stop, waits until the server is gone
#
# Everything lives under DIR (created if missing): DIR/pgsql (owned by postgres: data/, the unix
# socket, server.log, port) and DIR/mysql (owned by mysql: data/, mysqld.sock, mysqld.pid,
# mysqld.log, tmp/, port, password), DIR/redis (redis.pid, redis.log, port; no persistence) and
# DIR/carbon (conf/carbon.conf and storage-schemas.conf, whisper/, carbon.pid, carbon.log, ports:
# the plaintext line port, also its UDP port, then pickle and cache-query).
# The data directory is initialised only the first time; later starts reuse it (and its recorded port when that port is free). Servers listen on 127.0.0.1 on a
# random free non-default port, re-picked if the bind loses a race. PostgreSQL runs as `postgres`
# (trust auth, role and database `eventsd`); MariaDB runs as `mysql` with real authentication
# (database `eventsd`, user `eventsd` with a random password kept in DIR/mysql/password).
# Readiness and shutdown are polled with a deadline (SERVERS_DEADLINE, default 60 s); shutdown
# falls back to SIGKILL after the deadline. On failure the server log tail goes to stderr and the
# exit status is non-zero. Only the exports are printed on stdout.
set -eu

DEADLINE=${SERVERS_DEADLINE:-60}
PGBIN=${PGBIN:-}
if [ -z "$PGBIN" ]; then
    PGBIN=/usr/lib/postgresql/15/bin
    if [ ! -x "$PGBIN/pg_ctl" ]; then       # another major version: take the newest installed
        for b in /usr/lib/postgresql/*/bin; do [ -x "$b/pg_ctl" ] && PGBIN=$b; done
    fi
fi
MYSQL_USER_PW_FILE=password
PORT_TRIES=8

# Keep the caller's libpq/mysql environment from steering our admin connections.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD PGSSLMODE \
      MYSQL_HOST MYSQL_TCP_PORT MYSQL_UNIX_PORT MYSQL_PWD 2>/dev/null || true

die() { echo "servers.sh: $*" >&2; exit 1; }
note() { echo "servers.sh: $*" >&2; }

usage() {
    echo "usage: $0 start|stop|restart pgsql|mysql|redis|carbon DIR" >&2
    exit 2
}

# Prints a value single-quoted for the shell.
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# log_tail FILE...: the end of each existing log, on stderr.
log_tail() {
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "---- $f (last 40 lines)" >&2
        tail -n 40 "$f" >&2
    done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_port() {
    while :; do
        p=$(( 20000 + RANDOM % 40000 ))
        port_free "$p" && { echo "$p"; return; }
    done
}

# alive PID: the process exists and is not a zombie.
alive() {
    [ -n "$1" ] && [ -r "/proc/$1/status" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# wait_gone PID SECS: polls until PID is gone; fails after SECS.
wait_gone() {
    end=$(( $(date +%s) + $2 ))
    while alive "$1"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# grant_traverse USER DIR: make sure USER can reach DIR (adds o+x, search only, where missing).
grant_traverse() {
    user=$1; d=$2
    runuser -u "$user" -- test -x "$d" 2>/dev/null && return 0
    while [ "$d" != / ] && [ -n "$d" ]; do
        if ! runuser -u "$user" -- test -x "$d" 2>/dev/null; then
            chmod o+x "$d"
        fi
        d=$(dirname "$d")
    done
    runuser -u "$user" -- test -x "$2" || die "$user cannot reach $2"
}

# ------------------------------------------------------------------------------- PostgreSQL

pg_setup_paths() {
    PGD="$DIR/pgsql"
    PGDATA_DIR="$PGD/data"
    PGLOG="$PGD/server.log"
    PGPORTFILE="$PGD/port"
}

pg_as() { (cd "$PGD" && runuser -u postgres -- "$@"); }

pg_pid() {
    if [ -r "$PGDATA_DIR/postmaster.pid" ]; then head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true; fi
}

pg_running() {
    [ -f "$PGDATA_DIR/PG_VERSION" ] || return 1
    pg_as "$PGBIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

pg_init() {
    mkdir -p "$PGD"
    chown postgres:postgres "$PGD"
    chmod 0700 "$PGD"
    grant_traverse postgres "$PGD"
    [ -f "$PGDATA_DIR/PG_VERSION" ] && return 0
    rm -rf "$PGDATA_DIR"
    if ! pg_as "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-locale \
            --no-sync >"$PGD/initdb.log" 2>&1; then
        log_tail "$PGD/initdb.log"
        die "initdb failed in $PGDATA_DIR"
    fi
    cat >>"$PGDATA_DIR/postgresql.conf" <<'CONF'

# test/servers.sh: private loopback test cluster (port and socket directory come from pg_ctl -o)
listen_addresses = '127.0.0.1'
shared_buffers = 32MB
max_connections = 100
fsync = on
dynamic_shared_memory_type = mmap	# segments under data/pg_dynshmem, not /dev/shm
synchronous_commit = on
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] '
CONF
}

pg_provision() {
    [ -f "$PGD/provisioned" ] && return 0
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres \
        >>"$PGD/provision.log" 2>&1 <<'SQL' || { log_tail "$PGD/provision.log" "$PGLOG"; die "could not create role/database eventsd"; }
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'eventsd') THEN CREATE ROLE eventsd LOGIN; END IF;
END$$;
SELECT 'CREATE DATABASE eventsd OWNER eventsd'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'eventsd') \gexec
SQL
    touch "$PGD/provisioned"
}

pg_stop() {
    pg_running || return 0
    pid=$(pg_pid)
    if ! pg_as "$PGBIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t "$DEADLINE" >>"$PGD/pg_ctl.log" 2>&1; then
        note "pgsql: graceful stop timed out after ${DEADLINE}s; killing $pid"
        if [ -n "$pid" ]; then
            pkill -9 -P "$pid" 2>/dev/null || true
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    if [ -n "$pid" ] && ! wait_gone "$pid" 10; then
        log_tail "$PGLOG"
        die "pgsql: postmaster $pid did not exit"
    fi
}

# pg_start FIXED_PORT(optional)
pg_start() {
    fixed=${1:-}
    pg_init
    pg_stop
    try=0
    while :; do
        try=$((try + 1))
        if [ -n "$fixed" ]; then
            port=$fixed
            port_free "$port" || die "pgsql: port $port is taken; cannot restart on the same port"
        elif [ -s "$PGPORTFILE" ] && port_free "$(cat "$PGPORTFILE")"; then
            port=$(cat "$PGPORTFILE")
        else
            port=$(random_port)
        fi
        echo "$port" >"$PGPORTFILE"
        : >>"$PGLOG"; chown postgres:postgres "$PGLOG"
        logstart=$(wc -l <"$PGLOG")
        if pg_as "$PGBIN/pg_ctl" start -D "$PGDATA_DIR" -l "$PGLOG" -w -t "$DEADLINE" \
                -o "-p $port -k '$PGD'" >"$PGD/pg_ctl.log" 2>&1; then
            break
        fi
        pg_running && pg_stop
        if [ -z "$fixed" ] && [ "$try" -lt "$PORT_TRIES" ] &&
           tail -n +"$((logstart + 1))" "$PGLOG" | grep -q 'Address already in use'; then
            note "pgsql: port $port taken, retrying"
            rm -f "$PGPORTFILE"
            continue
        fi
        log_tail "$PGD/pg_ctl.log" "$PGLOG"
        die "pgsql: server in $PGDATA_DIR did not start"
    done
    # pg_ctl -w saw the socket; make sure TCP answers too.
    end=$(( $(date +%s) + DEADLINE ))
    until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
        if [ "$(date +%s)" -ge "$end" ] || ! pg_running; then
            log_tail "$PGLOG"
            die "pgsql: not ready on 127.0.0.1:$port"
        fi
        sleep 0.1
    done
    pg_provision "$port"
    pg_exports "$port"
}

pg_exports() {
    echo "export EVENTSD_PG_CONNINFO=$(shq "host=127.0.0.1 port=$1 dbname=eventsd user=eventsd")"
    echo "export EVENTSD_PG_PORT=$1"
    echo "export EVENTSD_PG_DIR=$(shq "$PGD")"
}

# ---------------------------------------------------------------------------------- MariaDB

my_setup_paths() {
    MYD="$DIR/mysql"
    MYDATA="$MYD/data"
    MYSOCK="$MYD/mysqld.sock"
    MYPID="$MYD/mysqld.pid"
    MYLOG="$MYD/mysqld.log"
    MYOUT="$MYD/mysqld.out"
    MYTMP="$MYD/tmp"
    MYPORTFILE="$MYD/port"
}

my_pid() {
    pid=$(cat "$MYPID" 2>/dev/null || true)
    case "$pid" in ''|*[!0-9]*) return 0 ;; esac
    # Only a mariadbd/mysqld counts: a stale pid file may name some other process now.
    case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
        mariadbd|mysqld) alive "$pid" && echo "$pid" ;;
    esac
    return 0
}

my_init() {
    mkdir -p "$MYD" "$MYTMP"
    chown mysql:mysql "$MYD" "$MYTMP"
    chmod 0750 "$MYD"
    grant_traverse mysql "$MYD"
    if [ ! -s "$MYD/$MYSQL_USER_PW_FILE" ]; then
        (umask 077; od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$MYD/$MYSQL_USER_PW_FILE")
    fi
    [ -d "$MYDATA/mysql" ] && return 0
    rm -rf "$MYDATA"
    rm -f "$MYD/provisioned"
    if ! mariadb-install-db --no-defaults --basedir=/usr --datadir="$MYDATA" --user=mysql \
            --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve \
            --tmpdir="$MYTMP" >"$MYD/install-db.log" 2>&1; then
        log_tail "$MYD/install-db.log"
        rm -rf "$MYDATA"
        die "mariadb-install-db failed in $MYDATA"
    fi
}

my_stop() {
    pid=$(my_pid)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$DEADLINE"; then
        note "mysql: graceful stop timed out after ${DEADLINE}s; killing $pid"
        kill -9 "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || { log_tail "$MYLOG"; die "mysql: mariadbd $pid did not exit"; }
    fi
    rm -f "$MYPID"
}

my_provision() {
    [ -f "$MYD/provisioned" ] && return 0
    pw=$(cat "$MYD/$MYSQL_USER_PW_FILE")
    mariadb --no-defaults --protocol=socket --socket="$MYSOCK" -uroot >>"$MYD/provision.log" 2>&1 <<SQL \
        || { log_tail "$MYD/provision.log" "$MYLOG"; die "mysql: could not create user/database eventsd"; }
CREATE DATABASE IF NOT EXISTS eventsd CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'eventsd'@'127.0.0.1' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS 'eventsd'@'localhost' IDENTIFIED BY '$pw';
ALTER USER 'eventsd'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER 'eventsd'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON eventsd.* TO 'eventsd'@'127.0.0.1';
GRANT ALL PRIVILEGES ON eventsd.* TO 'eventsd'@'localhost';
FLUSH PRIVILEGES;
SQL
    touch "$MYD/provisioned"
}

my_start() {
    fixed=${1:-}
    my_init
    my_stop
    try=0
    while :; do
        try=$((try + 1))
        if [ -n "$fixed" ]; then
            port=$fixed
            port_free "$port" || die "mysql: port $port is taken; cannot restart on the same port"
        elif [ -s "$MYPORTFILE" ] && port_free "$(cat "$MYPORTFILE")"; then
            port=$(cat "$MYPORTFILE")
        else
            port=$(random_port)
        fi
        echo "$port" >"$MYPORTFILE"
        : >>"$MYLOG"; chown mysql:mysql "$MYLOG"
        logstart=$(wc -l <"$MYLOG")
        rm -f "$MYPID"
        mariadbd --no-defaults --basedir=/usr --datadir="$MYDATA" --user=mysql \
            --bind-address=127.0.0.1 --port="$port" --socket="$MYSOCK" --pid-file="$MYPID" \
            --log-error="$MYLOG" --tmpdir="$MYTMP" --skip-log-bin --skip-name-resolve \
            --innodb-buffer-pool-size=64M --max-connections=200 \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
            </dev/null >>"$MYOUT" 2>&1 &
        child=$!
        end=$(( $(date +%s) + DEADLINE ))
        ok=""
        while :; do
            # root over the socket (unix_socket auth): the eventsd user may not exist yet.
            if mariadb-admin --no-defaults --protocol=socket --socket="$MYSOCK" -uroot \
                    --connect-timeout=2 ping >/dev/null 2>&1; then
                ok=1; break
            fi
            alive "$child" || break
            [ "$(date +%s)" -lt "$end" ] || break
            sleep 0.1
        done
        [ -n "$ok" ] && break
        if alive "$child"; then
            kill -9 "$child" 2>/dev/null || true
            wait_gone "$child" 10 || true
        fi
        wait "$child" 2>/dev/null || true
        if [ -z "$fixed" ] && [ "$try" -lt "$PORT_TRIES" ] &&
           tail -n +"$((logstart + 1))" "$MYLOG" | grep -qE 'Address already in use|Bind on TCP/IP port'; then
            note "mysql: port $port taken, retrying"
            rm -f "$MYPORTFILE"
            continue
        fi
        log_tail "$MYOUT" "$MYLOG"
        die "mysql: mariadbd in $MYDATA did not become ready on 127.0.0.1:$port"
    done
    my_provision
    # The socket answered; check TCP with the real credentials too.
    if ! mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -ueventsd \
            --password="$(cat "$MYD/$MYSQL_USER_PW_FILE")" --connect-timeout=5 ping >"$MYD/tcp-ping.log" 2>&1; then
        log_tail "$MYD/tcp-ping.log" "$MYLOG"
        die "mysql: eventsd cannot connect over TCP to 127.0.0.1:$port"
    fi
    my_exports "$port"
}

my_exports() {
    echo "export EVENTSD_MYSQL_HOST=127.0.0.1"
    echo "export EVENTSD_MYSQL_PORT=$1"
    echo "export EVENTSD_MYSQL_SOCKET=$(shq "$MYSOCK")"
    echo "export EVENTSD_MYSQL_USER=eventsd"
    echo "export EVENTSD_MYSQL_PASSWORD=$(shq "$(cat "$MYD/$MYSQL_USER_PW_FILE")")"
    echo "export EVENTSD_MYSQL_DATABASE=eventsd"
    echo "export EVENTSD_MYSQL_DIR=$(shq "$MYD")"
}

# ------------------------------------------------------------------------------------ Redis

rd_setup_paths() {
    RDD="$DIR/redis"
    RDPID="$RDD/redis.pid"
    RDLOG="$RDD/redis.log"
    RDPORTFILE="$RDD/port"
}

rd_pid() {
    pid=$(cat "$RDPID" 2>/dev/null || true)
    case "$pid" in ''|*[!0-9]*) return 0 ;; esac
    # A stale pid file may name some other process by now.
    case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
        redis-server*) alive "$pid" && echo "$pid" ;;
    esac
    return 0
}

rd_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

rd_stop() {
    pid=$(rd_pid)
    [ -n "$pid" ] || return 0
    # SIGTERM: with --save '' redis exits at once without writing anything.
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$DEADLINE"; then
        note "redis: graceful stop timed out after ${DEADLINE}s; killing $pid"
        kill -9 "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || { log_tail "$RDLOG"; die "redis: redis-server $pid did not exit"; }
    fi
    rm -f "$RDPID"
}

# rd_start FIXED_PORT(optional)
rd_start() {
    fixed=${1:-}
    mkdir -p "$RDD"
    chmod 0700 "$RDD"
    rd_stop
    try=0
    while :; do
        try=$((try + 1))
        if [ -n "$fixed" ]; then
            port=$fixed
            port_free "$port" || die "redis: port $port is taken; cannot restart on the same port"
        elif [ -s "$RDPORTFILE" ] && port_free "$(cat "$RDPORTFILE")"; then
            port=$(cat "$RDPORTFILE")
        else
            port=$(random_port)
        fi
        echo "$port" >"$RDPORTFILE"
        : >>"$RDLOG"
        logstart=$(wc -l <"$RDLOG")
        rm -f "$RDPID"
        # No persistence (tests want a clean, fast server), loopback only. In the foreground as our
        # background child (like mariadbd): a failed bind then shows as a dead child at once.
        redis-server --bind 127.0.0.1 --port "$port" --dir "$RDD" --save '' --appendonly no \
            --daemonize no --pidfile "$RDPID" --logfile "$RDLOG" --protected-mode yes \
            </dev/null >>"$RDD/redis.out" 2>&1 &
        child=$!
        end=$(( $(date +%s) + DEADLINE ))
        ok=""
        while :; do
            if rd_ping "$port"; then ok=1; break; fi
            alive "$child" || break
            [ "$(date +%s)" -lt "$end" ] || break
            sleep 0.05
        done
        [ -n "$ok" ] && break
        if alive "$child"; then
            kill -9 "$child" 2>/dev/null || true
            wait_gone "$child" 10 || true
        fi
        wait "$child" 2>/dev/null || true
        if [ -z "$fixed" ] && [ "$try" -lt "$PORT_TRIES" ] &&
           tail -n +"$((logstart + 1))" "$RDLOG" | grep -q 'Address already in use'; then
            note "redis: port $port taken, retrying"
            rm -f "$RDPORTFILE"
            continue
        fi
        log_tail "$RDD/redis.out" "$RDLOG"
        die "redis: redis-server in $RDD did not become ready on 127.0.0.1:$port"
    done
    rd_exports "$port"
}

rd_exports() {
    echo "export EVENTSD_REDIS_HOST=127.0.0.1"
    echo "export EVENTSD_REDIS_PORT=$1"
    echo "export EVENTSD_REDIS_DIR=$(shq "$RDD")"
}

# ------------------------------------------------------------------------------- carbon-cache

cb_setup_paths() {
    CBD="$DIR/carbon"
    CBCONF="$CBD/conf"
    CBWSP="$CBD/whisper"
    CBPID="$CBD/carbon.pid"
    CBLOG="$CBD/carbon.log"
    CBPORTFILE="$CBD/ports"
}

cb_pid() {
    pid=$(cat "$CBPID" 2>/dev/null || true)
    case "$pid" in ''|*[!0-9]*) return 0 ;; esac
    case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
        carbon-cache) alive "$pid" && echo "$pid" ;;
    esac
    return 0
}

# cb_write_conf LINE PICKLE QUERY: carbon.conf and storage-schemas.conf in $CBCONF. Runs as the
# caller (no USER to drop to) and never throttles: tests create hundreds of metrics at once.
# UDP listens on the line port's number. Retentions: 1 s points for 2 h (tests read single
# points back), and a short one for the benchmark's many names (small files, fast creates).
cb_write_conf() {
    mkdir -p "$CBCONF" "$CBWSP" "$CBD/storage" "$CBD/log"
    cat >"$CBCONF/carbon.conf" <<CONF
# test/servers.sh: private loopback carbon-cache
[cache]
STORAGE_DIR = $CBD/storage/
LOCAL_DATA_DIR = $CBWSP/
WHITELISTS_DIR = $CBD/storage/lists/
CONF_DIR = $CBCONF/
LOG_DIR = $CBD/log/
PID_DIR = $CBD/
USER =
ENABLE_TAGS = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 1000000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $1
ENABLE_UDP_LISTENER = True
UDP_RECEIVER_INTERFACE = 127.0.0.1
UDP_RECEIVER_PORT = $1
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $2
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $3
USE_FLOW_CONTROL = True
LOG_UPDATES = False
LOG_CREATES = False
LOG_LISTENER_CONN_SUCCESS = False
CACHE_WRITE_STRATEGY = naive
WHISPER_AUTOFLUSH = False
WHISPER_FALLOCATE_CREATE = False
CONF
    cat >"$CBCONF/storage-schemas.conf" <<'CONF'
[bench]
pattern = ^bench\.
retentions = 1s:10m

[all]
pattern = .*
retentions = 1s:2h
CONF
}

cb_stop() {
    pid=$(cb_pid)
    [ -n "$pid" ] || return 0
    # SIGTERM. Carbon does not write out what its cache still holds (seen with Debian 12's
    # graphite-carbon): a test waits for its data in whisper before it stops or restarts carbon.
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$DEADLINE"; then
        note "carbon: graceful stop timed out after ${DEADLINE}s; killing $pid"
        kill -9 "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || { log_tail "$CBLOG"; die "carbon: carbon-cache $pid did not exit"; }
    fi
    rm -f "$CBPID"
}

# cb_start FIXED_PORTS(optional: "LINE PICKLE QUERY")
cb_start() {
    fixed=${1:-}
    mkdir -p "$CBD"
    chmod 0700 "$CBD"
    cb_stop
    try=0
    while :; do
        try=$((try + 1))
        if [ -n "$fixed" ]; then
            ports=$fixed
            for p in $ports; do
                port_free "$p" || die "carbon: port $p is taken; cannot restart on the same port"
            done
        elif [ -s "$CBPORTFILE" ] && cb_ports_free $(cat "$CBPORTFILE"); then
            ports=$(cat "$CBPORTFILE")
        else
            ports="$(random_port) $(random_port) $(random_port)"
        fi
        echo "$ports" >"$CBPORTFILE"
        # shellcheck disable=SC2086
        cb_write_conf $ports
        : >>"$CBLOG"
        logstart=$(wc -l <"$CBLOG")
        rm -f "$CBPID"
        # --nodaemon as our background child (like mariadbd): a failed start is a dead child.
        carbon-cache --config="$CBCONF/carbon.conf" --pidfile="$CBPID" --logdir="$CBD/log" \
            --nodaemon start </dev/null >>"$CBLOG" 2>&1 &
        child=$!
        line=${ports%% *}
        end=$(( $(date +%s) + DEADLINE ))
        ok=""
        while :; do
            if ! port_free "$line" && alive "$child"; then ok=1; break; fi
            alive "$child" || break
            [ "$(date +%s)" -lt "$end" ] || break
            sleep 0.05
        done
        if [ -n "$ok" ]; then
            echo "$child" >"$CBPID"   # the pid file twistd writes may lag the listener
            break
        fi
        if alive "$child"; then
            kill -9 "$child" 2>/dev/null || true
            wait_gone "$child" 10 || true
        fi
        wait "$child" 2>/dev/null || true
        if [ -z "$fixed" ] && [ "$try" -lt "$PORT_TRIES" ] &&
           tail -n +"$((logstart + 1))" "$CBLOG" | grep -qE 'Address already in use|CannotListenError'; then
            note "carbon: a port of $ports is taken, retrying"
            rm -f "$CBPORTFILE"
            continue
        fi
        log_tail "$CBLOG"
        die "carbon: carbon-cache in $CBD did not start listening on 127.0.0.1:$line"
    done
    cb_exports "$line"
}

cb_ports_free() {
    for p in "$@"; do port_free "$p" || return 1; done
}

cb_exports() {
    echo "export EVENTSD_CARBON_HOST=127.0.0.1"
    echo "export EVENTSD_CARBON_PORT=$1"
    echo "export EVENTSD_CARBON_DIR=$(shq "$CBD")"
    echo "export EVENTSD_CARBON_WHISPER_DIR=$(shq "$CBWSP")"
}

# ------------------------------------------------------------------------------------- main

[ $# -eq 3 ] || usage
action=$1; kind=$2
[ "$(id -u)" = 0 ] || die "must run as root (servers run as the postgres/mysql users)"
mkdir -p "$3"
DIR=$(cd "$3" && pwd -P)

case "$kind" in
    pgsql|pg|postgres|postgresql)
        [ -x "$PGBIN/pg_ctl" ] || die "PostgreSQL not installed ($PGBIN/pg_ctl); run test/install-db-deps.sh"
        id postgres >/dev/null 2>&1 || die "no postgres user"
        pg_setup_paths
        case "$action" in
            start) pg_start ;;
            stop) [ -d "$PGD" ] && pg_stop; true ;;
            restart)
                [ -s "$PGPORTFILE" ] || die "pgsql: nothing to restart in $PGD (no port recorded)"
                port=$(cat "$PGPORTFILE")
                pg_stop
                pg_start "$port" ;;
            *) usage ;;
        esac ;;
    mysql|mariadb)
        command -v mariadbd >/dev/null 2>&1 || die "MariaDB not installed; run test/install-db-deps.sh"
        id mysql >/dev/null 2>&1 || die "no mysql user"
        my_setup_paths
        case "$action" in
            start) my_start ;;
            stop) [ -d "$MYD" ] && my_stop; true ;;
            restart)
                [ -s "$MYPORTFILE" ] || die "mysql: nothing to restart in $MYD (no port recorded)"
                port=$(cat "$MYPORTFILE")
                my_stop
                my_start "$port" ;;
            *) usage ;;
        esac ;;
    redis)
        command -v redis-server >/dev/null 2>&1 || die "redis-server not installed; run test/install-db-deps.sh"
        rd_setup_paths
        case "$action" in
            start) rd_start ;;
            stop) [ -d "$RDD" ] && rd_stop; true ;;
            restart)
                [ -s "$RDPORTFILE" ] || die "redis: nothing to restart in $RDD (no port recorded)"
                port=$(cat "$RDPORTFILE")
                rd_stop
                rd_start "$port" ;;
            *) usage ;;
        esac ;;
    carbon)
        command -v carbon-cache >/dev/null 2>&1 || die "carbon-cache not installed (graphite-carbon); run test/install-db-deps.sh"
        cb_setup_paths
        case "$action" in
            start) cb_start ;;
            stop) [ -d "$CBD" ] && cb_stop; true ;;
            restart)
                [ -s "$CBPORTFILE" ] || die "carbon: nothing to restart in $CBD (no ports recorded)"
                ports=$(cat "$CBPORTFILE")
                cb_stop
                cb_start "$ports" ;;
            *) usage ;;
        esac ;;
    *) usage ;;
esac
