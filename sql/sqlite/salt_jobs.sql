-- A Salt job's outcome, from the job pipelines' summary (see salt_jobs in schema.sql): the
-- job_complete pipeline writes status 'complete', job_timeout 'timeout'. A pipeline retried
-- after a failure writes the same row again (upsert by jid). A stream that never saw the job's
-- salt/job/<jid>/new event (a return that came after the job's row was written, or eventsd
-- started mid-job) has expected = 0 and never overwrites a row that has an expected list.
-- target is the text of a glob ("web*") or the JSON of a list (["a", "b"]).
INSERT INTO salt_jobs (jid, fun, target, user, expected, returned, succeeded, failed, missing,
                       status, first_stamp, last_stamp, duration, master_id)
VALUES (:data.jid, :data.fun, :data.target, :data.user, :data.expected|int,
        :data.returned|int, :data.succeeded|int, :data.failed|int, :data.missing_count|int,
        CASE :data.reason WHEN 'fire' THEN 'complete' WHEN 'expire' THEN 'timeout'
                          ELSE :data.reason END,
        :data.first_stamp, :data.last_stamp, :data.duration|float, :master_id)
ON CONFLICT (jid) DO UPDATE SET
    fun = excluded.fun, target = excluded.target, user = excluded.user,
    expected = excluded.expected, returned = excluded.returned,
    succeeded = excluded.succeeded, failed = excluded.failed, missing = excluded.missing,
    status = excluded.status, first_stamp = excluded.first_stamp,
    last_stamp = excluded.last_stamp, duration = excluded.duration,
    master_id = excluded.master_id, updated = CURRENT_TIMESTAMP
WHERE excluded.expected > 0 OR salt_jobs.expected = 0;
