-- Notes staff keep on a customer ("called about the renewal"), newest
-- first on the customer's page; the author is kept as they were then.
CREATE TABLE customer_notes (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    customer_id  BLOB NOT NULL REFERENCES customers (id),
    author_id    BLOB,
    author_label TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX customer_notes_by_customer ON customer_notes (tenant_id, customer_id, id);

-- The console's zone list pages a tenant's zones newest first.
CREATE INDEX dns_zones_tenant_id ON dns_zones (tenant_id, id);
