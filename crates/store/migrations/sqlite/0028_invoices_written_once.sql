-- Nothing to change on SQLite: a transaction defers its foreign keys with
-- `PRAGMA defer_foreign_keys` (see the PostgreSQL file of this version).
SELECT 1;
