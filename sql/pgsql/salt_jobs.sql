-- A Salt job's outcome, from the job pipelines' summary (see salt_jobs in schema.sql): the
-- job_complete pipeline writes status 'complete', job_timeout 'timeout'. A pipeline retried
-- after a failure writes the same row again (upsert by jid). A stream that never saw the job's
-- salt/job/<jid>/new event has expected = 0 and never overwrites a row with an expected list.
INSERT INTO salt_jobs (jid, fun, target, "user", expected, returned, succeeded, failed, missing,
                       status, first_stamp, last_stamp, duration, master_id)
VALUES (:data.jid, :data.fun, :data.target, :data.user, :data.expected|int,
        :data.returned|int, :data.succeeded|int, :data.failed|int, :data.missing_count|int,
        CASE :data.reason::text WHEN 'fire' THEN 'complete' WHEN 'expire' THEN 'timeout'
                                ELSE :data.reason::text END,
        :data.first_stamp, :data.last_stamp, :data.duration|float, :master_id)
ON CONFLICT (jid) DO UPDATE SET
    fun = excluded.fun, target = excluded.target, "user" = excluded."user",
    expected = excluded.expected, returned = excluded.returned,
    succeeded = excluded.succeeded, failed = excluded.failed, missing = excluded.missing,
    status = excluded.status, first_stamp = excluded.first_stamp,
    last_stamp = excluded.last_stamp, duration = excluded.duration,
    master_id = excluded.master_id, updated = now()
WHERE excluded.expected > 0 OR salt_jobs.expected = 0;
