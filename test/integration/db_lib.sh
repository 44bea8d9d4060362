# Shared by the pgsql_* and mysql_* integration tests (sourced after lib.sh): a config with the
# three returner workers on one database server, and queries against that server. The servers
# come from test/with-servers.sh (EVENTSD_PG_*, EVENTSD_MYSQL_*, EVENTSD_DB_DIR).

# db_conn KIND: the worker settings that reach the test server of KIND (pgsql|mysql).
db_conn() {
    if [ "$1" = pgsql ]; then
        echo "conninfo = \"$EVENTSD_PG_CONNINFO\";"
    else
        echo "host = \"$EVENTSD_MYSQL_HOST\"; port = $EVENTSD_MYSQL_PORT; user = \"$EVENTSD_MYSQL_USER\";" \
             "password = \"$EVENTSD_MYSQL_PASSWORD\"; database = \"$EVENTSD_MYSQL_DATABASE\";"
    fi
}

# db_config FILE KIND(pgsql|mysql) [BATCH_SIZE] [BATCH_MS]
db_config() {
    file=$1; kind=$2; size=${3:-200}; ms=${4:-200}
    conn=$(db_conn "$kind")
    cat > "$file" <<CONF
runtime_dir = "$T/run";
spool = { dir = "$T/spool"; };
sql_dir = "$ROOT/sql";
bus = { type = "salt-ipc"; path = "$T/bus.ipc"; reconnect_min_ms = 50; reconnect_max_ms = 500; };
stats = { interval = 1; };
workers = (
  { name = "returns"; sink = "$kind"; $conn template = "$kind/salt_returns.sql"; processes = 2;
    dead_letter = "$T/dead.jsonl"; batch = { size = $size; interval_ms = $ms; }; },
  { name = "jobs"; sink = "$kind"; $conn template = "$kind/jids.sql";
    dead_letter = "$T/dead.jsonl"; batch = { size = $size; interval_ms = $ms; }; },
  { name = "events"; sink = "$kind"; $conn template = "$kind/salt_events.sql";
    dead_letter = "$T/dead.jsonl"; batch = { size = $size; interval_ms = $ms; }; }
);
rules = (
  { tag = "^salt/job/[0-9]+/ret/"; workers = [ "returns" ]; },
  { tag = "^salt/job/[0-9]+/new\$"; workers = [ "jobs" ]; },
  { tag = ".*"; workers = [ "events" ]; }
);
CONF
}

# dbq KIND SQL: one query, tab-separated rows, no headers.
dbq() {
    if [ "$1" = pgsql ]; then
        PGOPTIONS=--client-min-messages=warning psql "$EVENTSD_PG_CONNINFO" -qAtX -F '|' -c "$2"
    else
        mariadb -h "$EVENTSD_MYSQL_HOST" -P "$EVENTSD_MYSQL_PORT" -u "$EVENTSD_MYSQL_USER" \
            -p"$EVENTSD_MYSQL_PASSWORD" "$EVENTSD_MYSQL_DATABASE" -N -B -e "$2" | tr '\t' '|'
    fi
}

db_count_is() { [ "$(dbq "$1" "SELECT count(*) FROM $2" 2>/dev/null)" = "$3" ]; }

db_reset() {   # a fresh start for each test: the sinks create the tables again
    dbq "$1" "DROP TABLE IF EXISTS salt_events, salt_returns, jids" >/dev/null
}

# Every eventsd_n in FIRST..LAST stored exactly once in salt_events.
db_check_exactly_once() {
    kind=$1; first=$2; last=$3
    n=$(( last - first + 1 ))
    if [ "$kind" = pgsql ]; then
        v="(data->>'eventsd_n')::bigint"
    else
        v="CAST(JSON_VALUE(data, '\$.eventsd_n') AS SIGNED)"
    fi
    got=$(dbq "$kind" "SELECT count(*), count(DISTINCT $v), min($v), max($v) FROM salt_events
                       WHERE $v BETWEEN $first AND $last")
    [ "$got" = "$n|$n|$first|$last" ] || fail "expected $n events numbered $first..$last exactly once, got count|distinct|min|max = $got"
}
