-- Nothing to change on SQLite: the billing run writes its invoices as
-- drafts and then issues them there (see the PostgreSQL file of this
-- version for what changed on PostgreSQL).
SELECT 1;
