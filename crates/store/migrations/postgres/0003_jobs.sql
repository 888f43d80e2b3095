-- The job queue, in the same database as the business data, so a job is
-- committed with the change that asked for it or not at all.

CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    queue        text NOT NULL,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    state        text NOT NULL,
    priority     integer NOT NULL,
    run_at       timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    unique_key   text,
    locked_by    text,
    locked_until timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz
);
-- Every job is written three times (insert, claim, finish) and later
-- deleted: vacuum the table early and without throttling, so dead rows do
-- not pile up in front of the claim query.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.02
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
    name       text NOT NULL,
    slot       text NOT NULL,
    job_id     uuid NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (name, slot)
);
