-- A domain is pending or active once on the whole platform, not once per
-- tenant: zones and sites are global on the shared nodes, so two tenants'
-- orders for one name would fight over it. (Nested names are refused by
-- the order check and again by the provisioning job.)
-- Where two tenants hold one live name already, the older keeps it.
UPDATE domains SET status = 'RELEASED'
 WHERE status IN ('PENDING', 'ACTIVE')
   AND EXISTS (SELECT 1 FROM domains older
                WHERE older.name = domains.name AND older.status IN ('PENDING', 'ACTIVE')
                  AND older.id < domains.id);
DROP INDEX domains_live;
CREATE UNIQUE INDEX domains_live ON domains (name) WHERE status IN ('PENDING', 'ACTIVE');
