-- Subscriptions as the billing engine runs them: the schedule (an anchor in
-- the tenant's time zone and the next period to invoice), trials, addons,
-- auto-renew and cancellation; the periods already invoiced (one row per
-- subscription and period, so a second run creates nothing); usage records
-- (a duplicate idempotency key is ignored); the dunning steps taken per
-- invoice (a re-run never repeats one); and each tenant's daily runs.

ALTER TABLE subscriptions ADD COLUMN anchor_at timestamptz;
ALTER TABLE subscriptions ADD COLUMN next_period integer NOT NULL DEFAULT 0;
-- The start of the next period to invoice; NULL when nothing more is billed.
ALTER TABLE subscriptions ADD COLUMN next_bill_at timestamptz;
ALTER TABLE subscriptions ADD COLUMN current_period_start timestamptz;
ALTER TABLE subscriptions ADD COLUMN current_period_end timestamptz;
ALTER TABLE subscriptions ADD COLUMN trial_end timestamptz;
ALTER TABLE subscriptions ADD COLUMN auto_renew boolean NOT NULL DEFAULT true;
ALTER TABLE subscriptions ADD COLUMN cancel_at_period_end boolean NOT NULL DEFAULT false;
ALTER TABLE subscriptions ADD COLUMN cancelled_at timestamptz;
ALTER TABLE subscriptions ADD COLUMN suspend_reason TEXT;
ALTER TABLE subscriptions ADD COLUMN addons jsonb NOT NULL DEFAULT '[]';
CREATE INDEX subscriptions_due ON subscriptions (tenant_id, next_bill_at, id) WHERE next_bill_at IS NOT NULL;
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);

CREATE TABLE subscription_periods (
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    period_index    integer NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    -- The invoice that charged it (no foreign key: the period is claimed
    -- before its invoice is written, in the same transaction); NULL when
    -- nothing was charged.
    invoice_id      uuid,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, period_index)
);

CREATE TABLE usage_records (
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    idempotency_key TEXT NOT NULL,
    tenant_id       uuid NOT NULL,
    metric          TEXT NOT NULL,
    quantity        bigint NOT NULL CHECK (quantity >= 0),
    occurred_at     timestamptz NOT NULL,
    -- The invoice it was charged on; NULL until then.
    invoice_id      uuid,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, idempotency_key)
);
CREATE INDEX usage_records_unbilled ON usage_records (subscription_id, occurred_at) WHERE invoice_id IS NULL;

CREATE TABLE dunning_events (
    invoice_id uuid NOT NULL REFERENCES invoices (id),
    step       TEXT NOT NULL,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    at         timestamptz NOT NULL,
    PRIMARY KEY (invoice_id, step)
);

CREATE INDEX invoices_open_due ON invoices (tenant_id, due_at)
    WHERE status IN ('ISSUED', 'PARTIALLY_PAID', 'OVERDUE');
CREATE INDEX invoice_lines_subscription ON invoice_lines (subscription_id) WHERE subscription_id IS NOT NULL;

-- A customer's saved Stripe card, charged off-session when an invoice is
-- issued (auto-pay).
ALTER TABLE customers ADD COLUMN stripe_customer_id TEXT;
ALTER TABLE customers ADD COLUMN stripe_payment_method_id TEXT;

-- The scheduled run of each tenant, once per local day.
CREATE TABLE billing_runs (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    run_date   TEXT NOT NULL,
    started_at timestamptz NOT NULL,
    summary    jsonb,
    PRIMARY KEY (tenant_id, run_date)
);
