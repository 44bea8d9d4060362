-- eventsd: MySQL / MariaDB schema for Salt events: the tables and columns of Salt's own mysql
-- returner (salt/returners/mysql.py), so dashboards and queries written for it keep working,
-- plus the UNIQUE keys that make a re-delivered event a no-op.
--
-- Every statement is idempotent (IF NOT EXISTS): the mysql sink runs this file on every
-- worker start when it sits beside the template (see sql/README.md), as one multi-statement
-- query that the server splits.
--
-- utf8mb4 (not Salt's utf8 = utf8mb3): minion output can hold 4-byte UTF-8 (emoji).
-- With utf8mb4 a varchar(255) key is 1020 bytes; UNIQUE (jid, id) is 2040, within InnoDB's
-- 3072-byte limit for the DYNAMIC row format (the default since MySQL 5.7 / MariaDB 10.2).

-- One row per job: the load of its salt/job/<jid>/new event.
CREATE TABLE IF NOT EXISTS `jids` (
    `jid`  varchar(255) NOT NULL,
    `load` mediumtext   NOT NULL,              -- JSON text
    UNIQUE KEY `jid` (`jid`)                   -- replay key
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per minion return (salt/job/<jid>/ret/<minion>).
CREATE TABLE IF NOT EXISTS `salt_returns` (
    `fun`        varchar(50)  NOT NULL,
    `jid`        varchar(255) NOT NULL,
    `return`     mediumtext   NOT NULL,        -- JSON text of data.return
    `id`         varchar(255) NOT NULL,        -- the minion id
    `success`    varchar(10)  NOT NULL,        -- '1' / '0', as MySQLdb stored Python's bool
    `full_ret`   mediumtext   NOT NULL,        -- JSON text of the whole event data
    `alter_time` timestamp    DEFAULT CURRENT_TIMESTAMP,
    KEY `id` (`id`),
    KEY `jid` (`jid`),
    KEY `fun` (`fun`),
    UNIQUE KEY `jid_id` (`jid`, `id`)          -- a minion returns once per job: replay key
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Every event, as Salt's event_return stores it, plus eventsd's replay key.
CREATE TABLE IF NOT EXISTS `salt_events` (
    `id`         bigint       NOT NULL AUTO_INCREMENT,
    `tag`        varchar(255) NOT NULL,
    `data`       mediumtext   NOT NULL,        -- JSON text of the event data
    `alter_time` timestamp    DEFAULT CURRENT_TIMESTAMP,
    `master_id`  varchar(255) NOT NULL,
    `event_hash` char(40) CHARACTER SET ascii NOT NULL, -- SHA-1 of tag and payload: replay key
    PRIMARY KEY (`id`),
    KEY `tag` (`tag`),
    UNIQUE KEY `event_hash` (`event_hash`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Example of a user table: selected fields of salt/auth events (salt_auth.sql here, see
-- sql/README.md). Not one of Salt's returner tables.
CREATE TABLE IF NOT EXISTS `salt_auth` (
    `id`         bigint       NOT NULL AUTO_INCREMENT,
    `minion_id`  varchar(255) NOT NULL,        -- data.id
    `act`        varchar(16)  NULL,            -- accept, pend, reject, denied, full; NULL when absent
    `result`     tinyint(1)   NOT NULL,        -- data.result: 1 / 0
    `stamp`      datetime(6)  NOT NULL,        -- data._stamp: naive UTC with microseconds
    `event_hash` char(40) CHARACTER SET ascii NOT NULL, -- replay key
    `alter_time` timestamp    DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (`id`),
    KEY `minion_id` (`minion_id`),
    UNIQUE KEY `event_hash` (`event_hash`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Job tracking (issue 7): one row per Salt job once it completed (every targeted minion
-- returned) or timed out, written by the job pipelines (salt_jobs.sql), and one row per minion
-- that never answered (salt_job_missing.sql). status: complete | timeout | evicted.
CREATE TABLE IF NOT EXISTS `salt_jobs` (
  `jid` varchar(255) NOT NULL,
  `fun` varchar(255),
  `target` text,
  `user` varchar(255),
  `expected` int NOT NULL,
  `returned` int NOT NULL,
  `succeeded` int NOT NULL,
  `failed` int NOT NULL,
  `missing` int NOT NULL,
  `status` varchar(16) NOT NULL,
  `first_stamp` varchar(64),
  `last_stamp` varchar(64),
  `duration` double,
  `master_id` varchar(255) NOT NULL,
  `updated` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`jid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS `salt_job_missing` (
  `jid` varchar(255) NOT NULL,
  `minion` varchar(255) NOT NULL,
  `master_id` varchar(255) NOT NULL,
  PRIMARY KEY (`jid`, `minion`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
