-- One row per minion that never answered a job (the job pipelines run it once per missing
-- minion, with data.minion). A retried pipeline inserts nothing new.
INSERT INTO salt_job_missing (jid, minion, master_id)
VALUES (:data.jid, :data.minion, :master_id)
ON CONFLICT DO NOTHING;
