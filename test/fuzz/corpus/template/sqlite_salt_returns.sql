-- A minion's job return (route salt/job/<jid>/ret/<minion> here) into Salt's mysql-returner
-- table. Values as salt/returners/mysql.py writes them: return and full_ret as JSON text,
-- success as MySQLdb stored Python's bool ('1' / '0'; False when absent).
-- ON CONFLICT DO NOTHING makes a re-delivered return a no-op (UNIQUE (jid, id)) while a
-- missing jid, id, fun or return still fails NOT NULL and is dead-lettered: INSERT OR IGNORE
-- would drop such a row silently.
INSERT INTO salt_returns (fun, jid, "return", id, success, full_ret)
VALUES (:data.fun, :data.jid, :data.return|json, :data.id,
        :data.success|int|default('0'), :data|json)
ON CONFLICT DO NOTHING;
