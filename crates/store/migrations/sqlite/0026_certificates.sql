-- HTTPS for hosted sites. A tenant's ACME account at a directory is made
-- once; its key is sealed with the secrets key like other credentials.
CREATE TABLE acme_accounts (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    directory_url TEXT NOT NULL,
    account_url   TEXT NOT NULL,
    key_sealed    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, directory_url)
);

-- A tenant's choices: its own ACME directory (NULL: the platform's), the
-- contact the CA writes to, and HSTS (0: no header).
CREATE TABLE tls_settings (
    tenant_id          BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id),
    acme_directory_url TEXT,
    acme_contact_email TEXT,
    hsts_max_age_secs  INTEGER NOT NULL DEFAULT 0,
    updated_at         TEXT NOT NULL
);

-- The SslCertificate model: every certificate a site had. ACTIVE is the one
-- served (at most one per account); REPLACED by a renewal or an upload;
-- REVOKED at termination. An uploaded key is kept sealed only until it
-- is on the node.
CREATE TABLE ssl_certificates (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    hosting_account_id BLOB NOT NULL REFERENCES hosting_accounts (id),
    domain             TEXT NOT NULL,
    source             TEXT NOT NULL,
    status             TEXT NOT NULL,
    names              TEXT NOT NULL,
    serial             TEXT NOT NULL,
    issuer             TEXT NOT NULL,
    not_before         TEXT NOT NULL,
    not_after          TEXT NOT NULL,
    chain_pem          TEXT NOT NULL,
    key_sealed         TEXT,
    directory_url      TEXT,
    created_at         TEXT NOT NULL,
    ended_at           TEXT
);
CREATE INDEX ssl_certificates_account ON ssl_certificates (tenant_id, hosting_account_id, id);
CREATE UNIQUE INDEX ssl_certificates_active ON ssl_certificates (hosting_account_id) WHERE status = 'ACTIVE';
CREATE INDEX ssl_certificates_expiry ON ssl_certificates (not_after) WHERE status = 'ACTIVE';

-- Where a site's certificate issuance stands: why the last attempt failed
-- and when the next one is.
CREATE TABLE tls_issuance (
    hosting_account_id BLOB PRIMARY KEY NOT NULL REFERENCES hosting_accounts (id),
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    state              TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    next_attempt_at    TEXT,
    updated_at         TEXT NOT NULL
);
