-- A hosting account's measured disk use (the recurring hosting.disk_usage
-- job): bytes and when; since when it is over its quota (NULL: under,
-- or never measured), which also says the tenant was told; and whether
-- the quota is what suspended it (only a measurement back under lifts
-- that, never a payment).
ALTER TABLE hosting_accounts ADD COLUMN disk_used_bytes INTEGER;
ALTER TABLE hosting_accounts ADD COLUMN disk_measured_at TEXT;
ALTER TABLE hosting_accounts ADD COLUMN over_quota_since TEXT;
ALTER TABLE hosting_accounts ADD COLUMN suspended_for_quota INTEGER NOT NULL DEFAULT 0;
