-- Billing: each tenant's billing settings, invoices and their lines (frozen
-- once issued: triggers refuse changes, not only the handlers), payments,
-- credit notes, the customers' credit balances and their ledger, and the
-- Stripe payment intents and webhook events seen.

CREATE TABLE billing_settings (
    tenant_id             BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id),
    settings              TEXT NOT NULL,
    stripe_secret_key     TEXT,
    stripe_webhook_secret TEXT,
    updated_at            TEXT NOT NULL
);

CREATE TABLE invoices (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id),
    customer_id       BLOB NOT NULL REFERENCES customers (id),
    order_id          BLOB REFERENCES orders (id),
    status            TEXT NOT NULL,
    number            TEXT,
    currency          TEXT NOT NULL,
    tax_mode          TEXT NOT NULL,
    subtotal_minor    INTEGER NOT NULL,
    tax_minor         INTEGER NOT NULL,
    total_minor       INTEGER NOT NULL,
    paid_minor        INTEGER NOT NULL DEFAULT 0,
    credited_minor    INTEGER NOT NULL DEFAULT 0,
    refunded_minor    INTEGER NOT NULL DEFAULT 0,
    customer_snapshot TEXT,
    seller_snapshot   TEXT,
    notes             TEXT NOT NULL,
    disputed          INTEGER NOT NULL DEFAULT 0,
    issued_at         TEXT,
    due_at            TEXT,
    paid_at           TEXT,
    voided_at         TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
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
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    invoice_id      BLOB NOT NULL REFERENCES invoices (id),
    position        INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    source          TEXT NOT NULL,
    description     TEXT NOT NULL,
    quantity        TEXT NOT NULL,
    unit_price      TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL,
    tax_rate        TEXT NOT NULL,
    net_minor       INTEGER NOT NULL,
    tax_minor       INTEGER NOT NULL,
    subscription_id BLOB,
    UNIQUE (invoice_id, position)
);

-- An issued invoice's frozen fields never change, and it is never deleted.
CREATE TRIGGER invoices_frozen BEFORE UPDATE ON invoices
WHEN OLD.status <> 'DRAFT' AND (
    NEW.id IS NOT OLD.id
    OR NEW.tenant_id IS NOT OLD.tenant_id
    OR NEW.created_at IS NOT OLD.created_at
    OR NEW.customer_id IS NOT OLD.customer_id
    OR NEW.order_id IS NOT OLD.order_id
    OR NEW.number IS NOT OLD.number
    OR NEW.currency IS NOT OLD.currency
    OR NEW.tax_mode IS NOT OLD.tax_mode
    OR NEW.subtotal_minor IS NOT OLD.subtotal_minor
    OR NEW.tax_minor IS NOT OLD.tax_minor
    OR NEW.total_minor IS NOT OLD.total_minor
    OR NEW.customer_snapshot IS NOT OLD.customer_snapshot
    OR NEW.seller_snapshot IS NOT OLD.seller_snapshot
    OR NEW.notes IS NOT OLD.notes
    OR NEW.issued_at IS NOT OLD.issued_at
    OR NEW.due_at IS NOT OLD.due_at
    OR NEW.status = 'DRAFT'
)
BEGIN
    SELECT RAISE(ABORT, 'invoice is issued: its lines, amounts, currency and snapshots are frozen');
END;

CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
WHEN OLD.status <> 'DRAFT'
BEGIN
    SELECT RAISE(ABORT, 'an issued invoice cannot be deleted');
END;

CREATE TRIGGER invoice_lines_frozen_insert BEFORE INSERT ON invoice_lines
WHEN (SELECT status FROM invoices WHERE id = NEW.invoice_id) <> 'DRAFT'
BEGIN
    SELECT RAISE(ABORT, 'the lines of an issued invoice are frozen');
END;

CREATE TRIGGER invoice_lines_frozen_update BEFORE UPDATE ON invoice_lines
WHEN (SELECT status FROM invoices WHERE id IN (OLD.invoice_id, NEW.invoice_id) AND status <> 'DRAFT') IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'the lines of an issued invoice are frozen');
END;

CREATE TRIGGER invoice_lines_frozen_delete BEFORE DELETE ON invoice_lines
WHEN (SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'DRAFT'
BEGIN
    SELECT RAISE(ABORT, 'the lines of an issued invoice are frozen');
END;

CREATE TABLE payments (
    id             BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    invoice_id     BLOB NOT NULL REFERENCES invoices (id),
    customer_id    BLOB NOT NULL REFERENCES customers (id),
    provider       TEXT NOT NULL,
    reference      TEXT,
    currency       TEXT NOT NULL,
    -- What arrived; `applied_minor` of it paid the invoice, the rest went
    -- to the customer's credit.
    amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
    applied_minor  INTEGER NOT NULL CHECK (applied_minor >= 0 AND applied_minor <= amount_minor),
    refunded_minor INTEGER NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= applied_minor),
    status         TEXT NOT NULL,
    failure        TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id);
-- A provider's payment is recorded once (a replayed webhook or a second
-- staff entry of the same bank reference changes nothing).
CREATE UNIQUE INDEX payments_reference ON payments (tenant_id, provider, reference)
    WHERE reference IS NOT NULL AND status <> 'FAILED';

CREATE TABLE credit_notes (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    invoice_id  BLOB NOT NULL REFERENCES invoices (id),
    customer_id BLOB NOT NULL REFERENCES customers (id),
    number      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    disposition TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payment_id  BLOB REFERENCES payments (id),
    -- A refund seen at the provider (Stripe) is recorded once.
    external_ref TEXT,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX credit_notes_number ON credit_notes (tenant_id, number);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);
CREATE UNIQUE INDEX credit_notes_external ON credit_notes (tenant_id, external_ref)
    WHERE external_ref IS NOT NULL;

CREATE TABLE customer_credit (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    customer_id   BLOB NOT NULL REFERENCES customers (id),
    currency      TEXT NOT NULL,
    balance_minor INTEGER NOT NULL CHECK (balance_minor >= 0),
    PRIMARY KEY (customer_id, currency)
);

CREATE TABLE credit_ledger (
    id             BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    customer_id    BLOB NOT NULL REFERENCES customers (id),
    currency       TEXT NOT NULL,
    delta_minor    INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    invoice_id     BLOB REFERENCES invoices (id),
    payment_id     BLOB REFERENCES payments (id),
    credit_note_id BLOB REFERENCES credit_notes (id),
    created_at     TEXT NOT NULL
);
CREATE INDEX credit_ledger_customer ON credit_ledger (customer_id, id);

CREATE TABLE stripe_payment_intents (
    id           TEXT NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    invoice_id   BLOB NOT NULL REFERENCES invoices (id),
    attempt      INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (invoice_id, attempt)
);

-- Every Stripe event is handled once: a replay finds its id here.
CREATE TABLE stripe_events (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    event_id    TEXT NOT NULL,
    type        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
