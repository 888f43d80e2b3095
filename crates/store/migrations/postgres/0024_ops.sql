-- The operations overview: what it reads, indexed so it answers quickly
-- with many jobs, invoices and events.

-- The tenant a job works for (its payload's `tenant_id`, copied at
-- enqueue), so a tenant's admin sees their share of the queues.
ALTER TABLE jobs ADD COLUMN tenant_id uuid;
UPDATE jobs SET tenant_id = (payload->>'tenant_id')::uuid
    WHERE payload->>'tenant_id' ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
-- Provisioning jobs queued before their payload carried the tenant: from
-- their order's steps.
UPDATE jobs SET tenant_id = (SELECT s.tenant_id FROM order_steps s WHERE s.job_id = jobs.id LIMIT 1)
    WHERE tenant_id IS NULL AND kind = 'provision.subscription';
-- The queues' counts per kind and state (covering: the table is not read).
CREATE INDEX jobs_overview ON jobs (state, kind, run_at, tenant_id);
-- Jobs that ended (done or out of attempts), by when: provisioning
-- outcomes and completions of the last minutes.
CREATE INDEX jobs_ended ON jobs (state, finished_at) WHERE state IN ('completed', 'dead');
-- From a provisioning job to its order.
CREATE INDEX order_steps_job ON order_steps (job_id);
-- Failed logins and the latest events across the platform.
CREATE INDEX security_events_time ON security_events (created_at);
-- Open invoices by due date (overdue ones).
CREATE INDEX invoices_open ON invoices (due_at) WHERE status IN ('ISSUED', 'PARTIALLY_PAID', 'OVERDUE');
CREATE INDEX payments_time ON payments (created_at);
CREATE INDEX subscriptions_tenant_status ON subscriptions (tenant_id, status);
-- A week of backup runs by kind and outcome (covering).
CREATE INDEX backup_jobs_overview ON backup_jobs (started_at, operation, kind, status, tenant_id, finished_at);
