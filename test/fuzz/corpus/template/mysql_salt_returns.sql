-- A minion's job return (route salt/job/<jid>/ret/<minion> here) into Salt's mysql-returner
-- table. Values as salt/returners/mysql.py writes them: return and full_ret as JSON text,
-- success as MySQLdb stored Python's bool ('1' / '0'; False when absent).
-- ON DUPLICATE KEY UPDATE with a no-op assignment makes a re-delivered return do nothing
-- (UNIQUE (jid, id)) while a missing jid, id, fun or return, or a too-long value, still fails
-- and is dead-lettered. Do not use INSERT IGNORE: it also turns NOT NULL violations and
-- too-long values into warnings and stores a mangled row (or none) without telling anyone.
INSERT INTO salt_returns (`fun`, `jid`, `return`, `id`, `success`, `full_ret`)
VALUES (:data.fun, :data.jid, :data.return|json, :data.id,
        :data.success|int|default('0'), :data|json)
ON DUPLICATE KEY UPDATE `jid` = `jid`;
