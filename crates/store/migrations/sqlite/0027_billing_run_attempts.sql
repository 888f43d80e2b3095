-- A tenant's scheduled run that failed gives its day back for the job's
-- retry, a bounded number of times a day.
ALTER TABLE billing_runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE billing_runs ADD COLUMN given_back BOOLEAN NOT NULL DEFAULT FALSE;
