-- A domain is pending or active once on the whole platform, not once per
-- tenant: zones and sites are global on the shared nodes, so two tenants'
-- orders for one name would fight over it. (Nested names are refused by
-- the order check and again by the provisioning job.)
DROP INDEX domains_live;
CREATE UNIQUE INDEX domains_live ON domains (name) WHERE status IN ('PENDING', 'ACTIVE');
