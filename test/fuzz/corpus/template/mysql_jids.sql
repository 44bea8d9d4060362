-- A job's load (route salt/job/<jid>/new here), as the mysql returner's save_load stores it.
-- A re-delivered event hits UNIQUE (jid) and does nothing (no-op update; not INSERT IGNORE,
-- which would also hide data errors).
INSERT INTO jids (`jid`, `load`)
VALUES (:data.jid, :data|json)
ON DUPLICATE KEY UPDATE `jid` = `jid`;
