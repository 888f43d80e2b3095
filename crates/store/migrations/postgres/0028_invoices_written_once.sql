-- The billing run writes a chunk's invoice lines before its invoices, which
-- it then inserts already issued and numbered (one write each, not a draft
-- and an update).
--
-- 1. The lines' foreign key to their invoice may be checked at commit by a
--    transaction that asks for it; every other one still checks it at once.
ALTER TABLE invoice_lines ALTER CONSTRAINT invoice_lines_invoice_id_fkey DEFERRABLE INITIALLY IMMEDIATE;

-- 2. Lines added to an issued invoice are refused once per statement, not
--    by a trigger call and a query per row. The query is planned each time
--    (EXECUTE), for the table as it then is: a plan cached while `invoices`
--    was empty (a new database, the first lines written before their
--    invoices) scanned a whole table, or a whole index, for every line once
--    it had grown.
CREATE FUNCTION invoice_lines_added_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    frozen boolean;
BEGIN
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM added a
             WHERE (SELECT i.status FROM invoices i WHERE i.id = a.invoice_id) <> ''DRAFT'')'
        INTO frozen;
    IF frozen THEN
        RAISE EXCEPTION 'the lines of an issued invoice are frozen'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER invoice_lines_frozen ON invoice_lines;
CREATE TRIGGER invoice_lines_frozen BEFORE UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_lines_frozen();
CREATE TRIGGER invoice_lines_added_frozen AFTER INSERT ON invoice_lines
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_lines_added_frozen();
