-- A minion's job return (route salt/job/<jid>/ret/<minion> here) into the table of Salt's
-- pgjsonb / mysql returners. return and full_ret are JSON text cast to jsonb; success as the
-- mysql returner stores Python's bool ('1' / '0'; '0' when absent).
-- ON CONFLICT DO NOTHING makes a re-delivered return a no-op (UNIQUE (jid, id)) while a
-- missing jid, id, fun or return still fails NOT NULL and is dead-lettered.
INSERT INTO salt_returns (fun, jid, return, id, success, full_ret)
VALUES (:data.fun, :data.jid, :data.return|json::jsonb, :data.id,
        :data.success|int|default('0'), :data|json::jsonb)
ON CONFLICT DO NOTHING;
