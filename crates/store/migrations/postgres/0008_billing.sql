-- Billing: each tenant's billing settings, invoices and their lines (frozen
-- once issued: triggers refuse changes, not only the handlers), payments,
-- credit notes, the customers' credit balances and their ledger, and the
-- Stripe payment intents and webhook events seen.

CREATE TABLE billing_settings (
    tenant_id             uuid PRIMARY KEY REFERENCES tenants (id),
    settings              jsonb NOT NULL,
    stripe_secret_key     TEXT,
    stripe_webhook_secret TEXT,
    updated_at            timestamptz NOT NULL
);

CREATE TABLE invoices (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    customer_id       uuid NOT NULL REFERENCES customers (id),
    order_id          uuid REFERENCES orders (id),
    status            TEXT NOT NULL,
    number            TEXT,
    currency          TEXT NOT NULL,
    tax_mode          TEXT NOT NULL,
    subtotal_minor    bigint NOT NULL,
    tax_minor         bigint NOT NULL,
    total_minor       bigint NOT NULL,
    paid_minor        bigint NOT NULL DEFAULT 0,
    credited_minor    bigint NOT NULL DEFAULT 0,
    refunded_minor    bigint NOT NULL DEFAULT 0,
    customer_snapshot jsonb,
    seller_snapshot   jsonb,
    notes             jsonb NOT NULL,
    disputed          boolean NOT NULL DEFAULT false,
    issued_at         timestamptz,
    due_at            timestamptz,
    paid_at           timestamptz,
    voided_at         timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    -- What is owed never goes below zero and nothing is credited twice.
    CHECK (credited_minor <= total_minor),
    CHECK (paid_minor - refunded_minor <= total_minor - credited_minor),
    CHECK (number IS NULL OR status <> 'DRAFT')
);
CREATE UNIQUE INDEX invoices_number ON invoices (tenant_id, number) WHERE number IS NOT NULL;
CREATE INDEX invoices_tenant ON invoices (tenant_id, id);
CREATE INDEX invoices_customer ON invoices (customer_id, id);
CREATE INDEX invoices_order ON invoices (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE invoice_lines (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    invoice_id      uuid NOT NULL REFERENCES invoices (id),
    position        INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    source          TEXT NOT NULL,
    description     TEXT NOT NULL,
    quantity        TEXT NOT NULL,
    unit_price      TEXT NOT NULL,
    amount_minor    bigint NOT NULL,
    tax_rate        TEXT NOT NULL,
    net_minor       bigint NOT NULL,
    tax_minor       bigint NOT NULL,
    subscription_id uuid,
    UNIQUE (invoice_id, position)
);

-- An issued invoice's frozen fields never change, and it is never deleted.
CREATE FUNCTION invoices_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'DRAFT' THEN
            RAISE EXCEPTION 'invoice % is issued and cannot be deleted', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'DRAFT' AND (
        NEW.id IS DISTINCT FROM OLD.id
        OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.customer_id IS DISTINCT FROM OLD.customer_id
        OR NEW.order_id IS DISTINCT FROM OLD.order_id
        OR NEW.number IS DISTINCT FROM OLD.number
        OR NEW.currency IS DISTINCT FROM OLD.currency
        OR NEW.tax_mode IS DISTINCT FROM OLD.tax_mode
        OR NEW.subtotal_minor IS DISTINCT FROM OLD.subtotal_minor
        OR NEW.tax_minor IS DISTINCT FROM OLD.tax_minor
        OR NEW.total_minor IS DISTINCT FROM OLD.total_minor
        OR NEW.customer_snapshot IS DISTINCT FROM OLD.customer_snapshot
        OR NEW.seller_snapshot IS DISTINCT FROM OLD.seller_snapshot
        OR NEW.notes IS DISTINCT FROM OLD.notes
        OR NEW.issued_at IS DISTINCT FROM OLD.issued_at
        OR NEW.due_at IS DISTINCT FROM OLD.due_at
        OR NEW.status = 'DRAFT'
    ) THEN
        RAISE EXCEPTION 'invoice % is issued: its lines, amounts, currency and snapshots are frozen', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoices_frozen BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_frozen();

CREATE FUNCTION invoice_lines_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM invoices
               WHERE id IN (OLD.invoice_id, NEW.invoice_id) AND status <> 'DRAFT') THEN
        RAISE EXCEPTION 'the lines of an issued invoice are frozen'
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoice_lines_frozen BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_lines_frozen();

CREATE TABLE payments (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    invoice_id     uuid NOT NULL REFERENCES invoices (id),
    customer_id    uuid NOT NULL REFERENCES customers (id),
    provider       TEXT NOT NULL,
    reference      TEXT,
    currency       TEXT NOT NULL,
    -- What arrived; `applied_minor` of it paid the invoice, the rest went
    -- to the customer's credit.
    amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
    applied_minor  bigint NOT NULL CHECK (applied_minor >= 0 AND applied_minor <= amount_minor),
    refunded_minor bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= applied_minor),
    status         TEXT NOT NULL,
    failure        TEXT,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id);
-- A provider's payment is recorded once (a replayed webhook or a second
-- staff entry of the same bank reference changes nothing).
CREATE UNIQUE INDEX payments_reference ON payments (tenant_id, provider, reference)
    WHERE reference IS NOT NULL AND status <> 'FAILED';

CREATE TABLE credit_notes (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    invoice_id  uuid NOT NULL REFERENCES invoices (id),
    customer_id uuid NOT NULL REFERENCES customers (id),
    number      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    disposition TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payment_id  uuid REFERENCES payments (id),
    -- A refund seen at the provider (Stripe) is recorded once.
    external_ref TEXT,
    created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX credit_notes_number ON credit_notes (tenant_id, number);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);
CREATE UNIQUE INDEX credit_notes_external ON credit_notes (tenant_id, external_ref)
    WHERE external_ref IS NOT NULL;

CREATE TABLE customer_credit (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    customer_id   uuid NOT NULL REFERENCES customers (id),
    currency      TEXT NOT NULL,
    balance_minor bigint NOT NULL CHECK (balance_minor >= 0),
    PRIMARY KEY (customer_id, currency)
);

CREATE TABLE credit_ledger (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    customer_id    uuid NOT NULL REFERENCES customers (id),
    currency       TEXT NOT NULL,
    delta_minor    bigint NOT NULL,
    reason         TEXT NOT NULL,
    invoice_id     uuid REFERENCES invoices (id),
    payment_id     uuid REFERENCES payments (id),
    credit_note_id uuid REFERENCES credit_notes (id),
    created_at     timestamptz NOT NULL
);
CREATE INDEX credit_ledger_customer ON credit_ledger (customer_id, id);

CREATE TABLE stripe_payment_intents (
    id           TEXT NOT NULL,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    invoice_id   uuid NOT NULL REFERENCES invoices (id),
    attempt      INTEGER NOT NULL,
    amount_minor bigint NOT NULL,
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (invoice_id, attempt)
);

-- Every Stripe event is handled once: a replay finds its id here.
CREATE TABLE stripe_events (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    event_id    TEXT NOT NULL,
    type        TEXT NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
