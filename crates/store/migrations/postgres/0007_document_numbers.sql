-- Gapless document numbers (INV-YYYY-NNNNNN, CN-YYYY-NNNNNN) per tenant,
-- kind and year. A number is taken in the transaction that issues the
-- document: if it rolls back, so does the number, and concurrent issuers of
-- one tenant and year queue on the row.

CREATE TABLE document_sequences (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    kind       TEXT NOT NULL,
    year       INTEGER NOT NULL,
    last_value bigint NOT NULL,
    PRIMARY KEY (tenant_id, kind, year)
);
