-- A job's load (route salt/job/<jid>/new here), as the pgjsonb returner's save_load stores it.
-- A re-delivered event hits the primary key (jid) and does nothing.
INSERT INTO jids (jid, load)
VALUES (:data.jid, :data|json::jsonb)
ON CONFLICT DO NOTHING;
