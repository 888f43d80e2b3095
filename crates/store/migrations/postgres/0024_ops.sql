-- The operations overview: what it reads, indexed so it answers quickly
-- with many jobs, invoices and events.

-- The tenant a job works for (its payload's `tenant_id`, copied at
-- enqueue), so a tenant's admin sees their share of the queues.
ALTER TABLE jobs ADD COLUMN tenant_id uuid;
UPDATE jobs SET tenant_id = (payload->>'tenant_id')::uuid
    WHERE payload->>'tenant_id' ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
CREATE INDEX jobs_tenant ON jobs (tenant_id, state) WHERE tenant_id IS NOT NULL;
-- Jobs that ended (done or out of attempts), by when: provisioning
-- outcomes and completions of the last minutes.
CREATE INDEX jobs_ended ON jobs (finished_at) WHERE state IN ('completed', 'dead');
-- From a provisioning job to its order.
CREATE INDEX order_steps_job ON order_steps (job_id);
-- Failed logins and the latest events across the platform.
CREATE INDEX security_events_time ON security_events (created_at);
-- Open invoices by due date (overdue ones).
CREATE INDEX invoices_open ON invoices (due_at) WHERE status IN ('ISSUED', 'PARTIALLY_PAID', 'OVERDUE');
CREATE INDEX payments_time ON payments (created_at);
CREATE INDEX subscriptions_tenant_status ON subscriptions (tenant_id, status);
