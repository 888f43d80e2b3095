-- The job queue, in the same database as the business data, so a job is
-- committed with the change that asked for it or not at all.

CREATE TABLE jobs (
    id           BLOB PRIMARY KEY NOT NULL,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    run_at       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    unique_key   TEXT,
    locked_by    TEXT,
    locked_until TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT
);
-- The claim query reads only this: jobs that may run.
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, id) WHERE state IN ('pending', 'failed');
-- Jobs whose worker stopped renewing its lease. (Nothing indexes locked_by:
-- completions find their jobs by primary key, whatever the statistics say.)
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'running');
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('completed', 'cancelled');
CREATE INDEX jobs_by_state ON jobs (state, id);

-- One row per recurring job and slot: enqueued once per slot, whichever
-- node gets there first.
CREATE TABLE schedule_slots (
    name       TEXT NOT NULL,
    slot       TEXT NOT NULL,
    job_id     BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, slot)
);
