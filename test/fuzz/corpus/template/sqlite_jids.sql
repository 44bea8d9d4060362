-- A job's load (route salt/job/<jid>/new here), as the mysql returner's save_load stores it.
-- A re-delivered event hits UNIQUE (jid) and does nothing.
INSERT INTO jids (jid, load)
VALUES (:data.jid, :data|json)
ON CONFLICT DO NOTHING;
