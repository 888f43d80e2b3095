-- A customer an order created under the address of an existing customer,
-- without the marketing site saying that customer signed in: kept apart
-- (no credit, no saved card, no portal) until the address is verified.
ALTER TABLE customers ADD COLUMN pending_for_customer_id uuid REFERENCES customers (id);
-- One verified customer per address; pending ones beside it.
DROP INDEX customers_tenant_email;
CREATE UNIQUE INDEX customers_tenant_email ON customers (tenant_id, lower(email))
    WHERE pending_for_customer_id IS NULL;
