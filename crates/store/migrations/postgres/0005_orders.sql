-- Orders from the marketing site: webhook secrets, idempotency keys,
-- customers, orders and their items, subscriptions, domains, and the
-- provisioning jobs each order started.

CREATE TABLE webhook_secrets (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    secret     TEXT NOT NULL,
    created_at timestamptz NOT NULL,
    -- A rotated-out secret keeps working until then.
    expires_at timestamptz
);
CREATE INDEX webhook_secrets_tenant ON webhook_secrets (tenant_id);

-- The first response to a key, replayed for retries.
CREATE TABLE idempotency_keys (
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    key             TEXT NOT NULL,
    request_hash    bytea NOT NULL,
    state           TEXT NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE customers (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    email                TEXT NOT NULL,
    name                 TEXT NOT NULL,
    company              TEXT,
    country              TEXT NOT NULL,
    tax_id               TEXT,
    address              jsonb,
    credit_balance_minor bigint NOT NULL DEFAULT 0,
    portal_user_id       uuid REFERENCES users (id),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE UNIQUE INDEX customers_tenant_email ON customers (tenant_id, lower(email));

CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    status          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    total_minor     bigint NOT NULL,
    -- A payment pays one order: replaying a signed paid order under a new
    -- idempotency key cannot provision twice.
    payment_provider  TEXT,
    payment_reference TEXT,
    payment         jsonb,
    idempotency_key TEXT NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX orders_tenant ON orders (tenant_id, id);
CREATE INDEX orders_customer ON orders (customer_id, id);
CREATE UNIQUE INDEX orders_payment ON orders (tenant_id, payment_provider, payment_reference)
    WHERE payment_reference IS NOT NULL;

CREATE TABLE subscriptions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    customer_id  uuid NOT NULL REFERENCES customers (id),
    product_id   uuid NOT NULL REFERENCES products (id),
    period       TEXT NOT NULL,
    currency     TEXT NOT NULL,
    amount_minor bigint NOT NULL,
    status       TEXT NOT NULL,
    external_ref TEXT,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);
CREATE INDEX subscriptions_product ON subscriptions (product_id);

CREATE TABLE order_items (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    order_id        uuid NOT NULL REFERENCES orders (id),
    product_id      uuid NOT NULL REFERENCES products (id),
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    period          TEXT NOT NULL,
    domain          TEXT,
    options         jsonb,
    amount_minor    bigint NOT NULL,
    setup_fee_minor bigint NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX order_items_order ON order_items (order_id);

CREATE TABLE domains (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- A domain is live (pending or active) in a tenant once.
CREATE UNIQUE INDEX domains_live ON domains (tenant_id, name) WHERE status IN ('PENDING', 'ACTIVE');

CREATE TABLE order_steps (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    order_id      uuid NOT NULL REFERENCES orders (id),
    order_item_id uuid NOT NULL REFERENCES order_items (id),
    step          TEXT NOT NULL,
    job_id        uuid NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX order_steps_order ON order_steps (order_id);
