-- The catalog: a tenant's products and their price rules.

CREATE TABLE products (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    slug          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    category      TEXT NOT NULL,
    billing_model TEXT NOT NULL,
    status        TEXT NOT NULL,
    visibility    TEXT NOT NULL,
    base_currency TEXT NOT NULL,
    template      jsonb NOT NULL,
    usage         jsonb,
    archived_at   timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX products_tenant_slug ON products (tenant_id, slug);

-- A rule applies to its period and currency, optionally narrowed to one
-- tenant (scope_tenant) or region; '' means "any", so the unique index
-- allows one rule per combination on both engines.
CREATE TABLE product_prices (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    product_id      uuid NOT NULL REFERENCES products (id),
    period          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor >= 0),
    setup_fee_minor bigint NOT NULL DEFAULT 0 CHECK (setup_fee_minor >= 0),
    scope_tenant    TEXT NOT NULL DEFAULT '',
    region          TEXT NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX product_prices_rule
    ON product_prices (product_id, period, currency, scope_tenant, region);
