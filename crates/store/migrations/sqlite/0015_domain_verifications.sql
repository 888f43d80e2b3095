-- The proof that a customer controls an ordered domain: one per
-- subscription with a domain, made with the order (or, for an order placed
-- before this table, when its provisioning job first needs it). The token
-- is shown to the customer, who publishes it in a TXT record; it grants
-- nothing by itself, so it is stored in clear.
CREATE TABLE domain_verifications (
    subscription_id BLOB PRIMARY KEY NOT NULL REFERENCES subscriptions (id),
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    domain          TEXT NOT NULL,
    token           TEXT NOT NULL,
    -- PENDING, VERIFIED.
    status          TEXT NOT NULL,
    -- TXT or DELEGATION once verified.
    method          TEXT,
    -- What the last check saw, for the order view.
    last_result     TEXT,
    checked_at      TEXT,
    -- When a paid order's job first found no proof: the wait is counted
    -- from here, not from the order (which may be paid days later).
    waiting_since   TEXT,
    verified_at     TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX domain_verifications_tenant ON domain_verifications (tenant_id);
