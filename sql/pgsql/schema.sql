-- eventsd: PostgreSQL schema for Salt events, compatible with Salt's own pgjsonb returner
-- (salt/returners/pgjsonb.py): the same three tables and columns, jsonb for load, return,
-- full_ret and data, so that queries and dashboards written for it work here too.
--
-- Every statement is idempotent (IF NOT EXISTS): the pgsql sink runs this file, under an
-- advisory lock, each time a worker process connects, when it sits beside the template.
--
-- Idempotent replay: eventsd delivers at least once, so each table has a UNIQUE key that a
-- re-delivered event hits, and the templates say ON CONFLICT DO NOTHING.
--
-- NUL characters: jsonb cannot hold the JSON escape \u0000 (PostgreSQL rejects it with
-- SQLSTATE 22P05, "unsupported Unicode escape sequence"), and text columns cannot hold a NUL
-- byte at all. An event whose JSON contains \u0000 (e.g. a return "before\u0000after") is
-- therefore rejected by PostgreSQL as a data error: the sink reports SINK_REJECT_ROW and the
-- worker writes that event, whole and unaltered, to its dead_letter file, while the rest of
-- the batch is stored. Salt's pgjsonb returner fails on the same rows. We keep jsonb (not
-- json, which would accept \u0000) for compatibility with pgjsonb queries (->, @>, GIN
-- indexes), and we do not rewrite the payload (replacing \u0000 would silently alter data).
-- Users who must store such events in the table can change these columns to json, or
-- rewrite the text in their own template, e.g. replace(:data|json, '\u0000', '\ufffd')::jsonb
-- (beware: that also hits an escaped backslash followed by u0000).

-- One row per job: the load of its salt/job/<jid>/new event.
CREATE TABLE IF NOT EXISTS jids (
    jid   varchar(255) NOT NULL PRIMARY KEY,     -- replay key
    load  jsonb NOT NULL
);

-- One row per minion return (salt/job/<jid>/ret/<minion>).
CREATE TABLE IF NOT EXISTS salt_returns (
    fun        varchar(50) NOT NULL,
    jid        varchar(255) NOT NULL,
    return     jsonb NOT NULL,                   -- data.return
    id         varchar(255) NOT NULL,            -- the minion id
    success    varchar(10) NOT NULL,             -- '1' / '0', as the mysql returner stores it
    full_ret   jsonb NOT NULL,                   -- the whole event data
    alter_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (jid, id)                             -- a minion returns once per job: replay key
);
CREATE INDEX IF NOT EXISTS idx_salt_returns_id  ON salt_returns (id);
CREATE INDEX IF NOT EXISTS idx_salt_returns_jid ON salt_returns (jid);
CREATE INDEX IF NOT EXISTS idx_salt_returns_fun ON salt_returns (fun);

-- Every event, as Salt's event_return stores it, plus eventsd's replay key.
CREATE TABLE IF NOT EXISTS salt_events (
    id         bigserial PRIMARY KEY,
    tag        varchar(255) NOT NULL,
    data       jsonb NOT NULL,
    alter_time timestamptz NOT NULL DEFAULT now(),
    master_id  varchar(255) NOT NULL,
    event_hash char(40) NOT NULL UNIQUE          -- SHA-1 of tag and payload bytes: replay key
);
CREATE INDEX IF NOT EXISTS idx_salt_events_tag ON salt_events (tag);

-- Example of a user table: selected fields of salt/auth events (salt_auth.sql here, see
-- sql/README.md). Not one of Salt's returner tables.
CREATE TABLE IF NOT EXISTS salt_auth (
    id         bigserial PRIMARY KEY,
    minion_id  varchar(255) NOT NULL,            -- data.id
    act        varchar(16),                      -- accept, pend, reject, denied, full; NULL when absent
    result     boolean NOT NULL,                 -- data.result
    stamp      timestamp NOT NULL,               -- data._stamp: naive UTC, so no time zone
    event_hash char(40) NOT NULL UNIQUE,         -- replay key
    alter_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_salt_auth_minion_id ON salt_auth (minion_id);

-- Job tracking (issue 7): one row per Salt job once it completed (every targeted minion
-- returned) or timed out, written by the job pipelines (salt_jobs.sql), and one row per minion
-- that never answered (salt_job_missing.sql). status: complete | timeout | evicted.
CREATE TABLE IF NOT EXISTS salt_jobs (
    jid         varchar(255) NOT NULL PRIMARY KEY,
    fun         varchar(255),
    target      text,
    "user"      varchar(255),
    expected    integer NOT NULL,
    returned    integer NOT NULL,
    succeeded   integer NOT NULL,
    failed      integer NOT NULL,
    missing     integer NOT NULL,
    status      varchar(16) NOT NULL,
    first_stamp varchar(64),
    last_stamp  varchar(64),
    duration    double precision,
    master_id   varchar(255) NOT NULL,
    updated     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS salt_job_missing (
    jid       varchar(255) NOT NULL,
    minion    varchar(255) NOT NULL,
    master_id varchar(255) NOT NULL,
    PRIMARY KEY (jid, minion)
);
