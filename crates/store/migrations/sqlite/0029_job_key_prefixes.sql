-- Nothing to add on SQLite: its TEXT order is byte order, so
-- `jobs_unique_live` already keeps the keys under a prefix together (see
-- the PostgreSQL file of this version).
SELECT 1;
