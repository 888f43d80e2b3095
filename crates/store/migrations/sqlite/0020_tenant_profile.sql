-- A tenant's standing and the details its customers see: SUSPENDED stops
-- its sign-ins, public catalog and order webhook; support address and logo
-- appear in its messages (and the console).
ALTER TABLE tenants ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE';
ALTER TABLE tenants ADD COLUMN support_email TEXT;
ALTER TABLE tenants ADD COLUMN logo_url TEXT;
