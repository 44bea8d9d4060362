-- eventsd: SQLite schema for Salt events, with the tables and columns of Salt's own mysql
-- returner (salt/returners/mysql.py) so that queries written for it work here too.
--
-- Every statement is idempotent (IF NOT EXISTS): the sqlite sink runs this file on every
-- worker start when it sits beside the template (see sql/README.md).
--
-- Idempotent replay: eventsd delivers at least once, so each table has a UNIQUE key that a
-- re-delivered event hits, and the templates say ON CONFLICT DO NOTHING.

-- One row per job: the load of its salt/job/<jid>/new event.
CREATE TABLE IF NOT EXISTS jids (
    jid   TEXT NOT NULL UNIQUE,
    load  TEXT NOT NULL                      -- JSON text
);

-- One row per minion return (salt/job/<jid>/ret/<minion>).
CREATE TABLE IF NOT EXISTS salt_returns (
    fun        TEXT NOT NULL,
    jid        TEXT NOT NULL,
    "return"   TEXT NOT NULL,                -- JSON text of data.return
    id         TEXT NOT NULL,                -- the minion id
    success    TEXT NOT NULL,                -- '1' / '0', as MySQLdb stored Python's bool
    full_ret   TEXT NOT NULL,                -- JSON text of the whole event data
    alter_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (jid, id)                         -- a minion returns once per job: replay key
);
CREATE INDEX IF NOT EXISTS salt_returns_id  ON salt_returns (id);
CREATE INDEX IF NOT EXISTS salt_returns_jid ON salt_returns (jid);
CREATE INDEX IF NOT EXISTS salt_returns_fun ON salt_returns (fun);

-- Every event, as Salt's event_return stores it, plus eventsd's replay key.
CREATE TABLE IF NOT EXISTS salt_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tag        TEXT NOT NULL,
    data       TEXT NOT NULL,                -- JSON text of the event data
    alter_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    master_id  TEXT NOT NULL,
    event_hash TEXT NOT NULL UNIQUE          -- SHA-1 of tag and payload bytes: replay key
);
CREATE INDEX IF NOT EXISTS salt_events_tag ON salt_events (tag);

-- Example of a user table: selected fields of salt/auth events (salt_auth.sql here, see
-- sql/README.md). Not one of Salt's returner tables.
CREATE TABLE IF NOT EXISTS salt_auth (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    minion_id  TEXT NOT NULL,                -- data.id
    act        TEXT,                         -- accept, pend, reject, denied, full; NULL when absent
    result     INTEGER NOT NULL,             -- data.result: 1 / 0
    stamp      TEXT NOT NULL,                -- data._stamp, naive UTC ISO-8601 text
    event_hash TEXT NOT NULL UNIQUE,         -- replay key
    alter_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS salt_auth_minion_id ON salt_auth (minion_id);

-- Job tracking (issue 7): one row per Salt job once it completed (every targeted minion
-- returned) or timed out, written by the job pipelines (salt_jobs.sql), and one row per minion
-- that never answered (salt_job_missing.sql). status: complete | timeout | evicted.
CREATE TABLE IF NOT EXISTS salt_jobs (
    jid         TEXT NOT NULL PRIMARY KEY,
    fun         TEXT,
    target      TEXT,
    user        TEXT,
    expected    INTEGER NOT NULL,
    returned    INTEGER NOT NULL,
    succeeded   INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    missing     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    first_stamp TEXT,
    last_stamp  TEXT,
    duration    REAL,
    master_id   TEXT NOT NULL,
    updated     TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS salt_job_missing (
    jid       TEXT NOT NULL,
    minion    TEXT NOT NULL,
    master_id TEXT NOT NULL,
    PRIMARY KEY (jid, minion)
);
