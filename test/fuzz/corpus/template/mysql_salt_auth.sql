-- Example user template: selected fields of salt/auth events (route ^salt/auth$ here) into
-- the salt_auth table of schema.sql. See sql/README.md.
-- act is absent on some rejections: it is kept as NULL (a missing field binds SQL NULL), so
-- "no act" stays distinguishable from any real value. To store a word instead, write
-- :data.act|default('unknown'). result is bound as 1 / 0; :stamp (naive UTC ISO-8601 text)
-- goes into a datetime(6) column.
-- Every auth event differs (a pending minion repeats the same act on each retry, but its
-- _stamp changes), so the replay key is :event_hash. The no-op ON DUPLICATE KEY UPDATE makes
-- a re-delivered event do nothing while a row without id, result or _stamp, or a too-long
-- value, still fails and is dead-lettered (INSERT IGNORE would hide those errors).
INSERT INTO salt_auth (`minion_id`, `act`, `result`, `stamp`, `event_hash`)
VALUES (:data.id, :data.act, :data.result|int, :stamp, :event_hash)
ON DUPLICATE KEY UPDATE `event_hash` = `event_hash`;
