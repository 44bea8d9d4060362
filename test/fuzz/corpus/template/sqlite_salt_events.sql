-- Any event, as the mysql returner's event_return stores it (tag, JSON data, master id), plus
-- event_hash: a re-delivered event hits UNIQUE (event_hash) and does nothing.
INSERT INTO salt_events (tag, data, master_id, event_hash)
VALUES (:tag, :data|json, :master_id, :event_hash)
ON CONFLICT DO NOTHING;
