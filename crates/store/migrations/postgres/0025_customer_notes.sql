-- Notes staff keep on a customer ("called about the renewal"), newest
-- first on the customer's page; the author is kept as they were then.
CREATE TABLE customer_notes (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    customer_id  uuid NOT NULL REFERENCES customers (id),
    author_id    uuid,
    author_label text NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX customer_notes_by_customer ON customer_notes (tenant_id, customer_id, id);

-- The console's zone list pages a tenant's zones newest first.
CREATE INDEX dns_zones_tenant_id ON dns_zones (tenant_id, id);
