-- A hosting account's measured disk use (the recurring hosting.disk_usage
-- job): bytes and when; since when it is over its quota (NULL: under,
-- or never measured), which also says the tenant was told; and whether
-- the quota is what suspended it (only a measurement back under lifts
-- that, never a payment).
ALTER TABLE hosting_accounts ADD COLUMN disk_used_bytes bigint;
ALTER TABLE hosting_accounts ADD COLUMN disk_measured_at timestamptz;
ALTER TABLE hosting_accounts ADD COLUMN over_quota_since timestamptz;
ALTER TABLE hosting_accounts ADD COLUMN suspended_for_quota boolean NOT NULL DEFAULT false;
