-- A Salt job's outcome, from the job pipelines' summary (see salt_jobs in schema.sql): the
-- job_complete pipeline writes status 'complete', job_timeout 'timeout'. A pipeline retried
-- after a failure writes the same row again (upsert by jid). A stream that never saw the job's
-- salt/job/<jid>/new event has expected = 0 and never overwrites a row with an expected list
-- (each column keeps its value then; `expected` is assigned last, since MySQL evaluates the
-- assignments in order).
INSERT INTO `salt_jobs` (`jid`, `fun`, `target`, `user`, `expected`, `returned`, `succeeded`,
                         `failed`, `missing`, `status`, `first_stamp`, `last_stamp`, `duration`,
                         `master_id`)
VALUES (:data.jid, :data.fun, :data.target, :data.user, :data.expected|int,
        :data.returned|int, :data.succeeded|int, :data.failed|int, :data.missing_count|int,
        CASE :data.reason WHEN 'fire' THEN 'complete' WHEN 'expire' THEN 'timeout'
                          ELSE :data.reason END,
        :data.first_stamp, :data.last_stamp, :data.duration|float, :master_id)
ON DUPLICATE KEY UPDATE
    `fun` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `fun`, VALUES(`fun`)),
    `target` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `target`, VALUES(`target`)),
    `user` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `user`, VALUES(`user`)),
    `returned` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `returned`, VALUES(`returned`)),
    `succeeded` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `succeeded`, VALUES(`succeeded`)),
    `failed` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `failed`, VALUES(`failed`)),
    `missing` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `missing`, VALUES(`missing`)),
    `status` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `status`, VALUES(`status`)),
    `first_stamp` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `first_stamp`, VALUES(`first_stamp`)),
    `last_stamp` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `last_stamp`, VALUES(`last_stamp`)),
    `duration` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `duration`, VALUES(`duration`)),
    `master_id` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `master_id`, VALUES(`master_id`)),
    `expected` = IF(VALUES(`expected`) = 0 AND `expected` > 0, `expected`, VALUES(`expected`));
