-- Example user template: selected fields of salt/auth events (route ^salt/auth$ here) into
-- the salt_auth table of schema.sql. See sql/README.md.
-- act is absent on some rejections: it is kept as NULL (a missing field binds SQL NULL), so
-- "no act" stays distinguishable from any real value. To store a word instead, write
-- :data.act|default('unknown'). result is bound as '1' / '0', which PostgreSQL reads as a
-- boolean; :stamp (naive UTC ISO-8601 text) is read as a timestamp.
-- Every auth event differs (a pending minion repeats the same act on each retry, but its
-- _stamp changes), so the replay key is :event_hash, and ON CONFLICT DO NOTHING makes a
-- re-delivered event a no-op while a row without id, result or _stamp still fails NOT NULL
-- and is dead-lettered.
INSERT INTO salt_auth (minion_id, act, result, stamp, event_hash)
VALUES (:data.id, :data.act, :data.result|int, :stamp, :event_hash)
ON CONFLICT DO NOTHING;
