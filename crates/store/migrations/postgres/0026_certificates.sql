-- HTTPS for hosted sites. A tenant's ACME account at a directory is made
-- once; its key is sealed with the secrets key like other credentials.
CREATE TABLE acme_accounts (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    directory_url text NOT NULL,
    account_url   text NOT NULL,
    key_sealed    text NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, directory_url)
);

-- A tenant's choices: its own ACME directory (NULL: the platform's), the
-- contact the CA writes to, and HSTS (0: no header).
CREATE TABLE tls_settings (
    tenant_id          uuid PRIMARY KEY REFERENCES tenants (id),
    acme_directory_url text,
    acme_contact_email text,
    hsts_max_age_secs  bigint NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL
);

-- The SslCertificate model: every certificate a site had. ACTIVE is the one
-- served (at most one per account); REPLACED by a renewal or an upload;
-- REVOKED at termination. An uploaded key is kept sealed only until it
-- is on the node.
CREATE TABLE ssl_certificates (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    hosting_account_id uuid NOT NULL REFERENCES hosting_accounts (id),
    domain             text NOT NULL,
    source             text NOT NULL,
    status             text NOT NULL,
    names              text NOT NULL,
    serial             text NOT NULL,
    issuer             text NOT NULL,
    not_before         timestamptz NOT NULL,
    not_after          timestamptz NOT NULL,
    chain_pem          text NOT NULL,
    key_sealed         text,
    directory_url      text,
    created_at         timestamptz NOT NULL,
    ended_at           timestamptz
);
CREATE INDEX ssl_certificates_account ON ssl_certificates (tenant_id, hosting_account_id, id);
CREATE UNIQUE INDEX ssl_certificates_active ON ssl_certificates (hosting_account_id) WHERE status = 'ACTIVE';
CREATE INDEX ssl_certificates_expiry ON ssl_certificates (not_after) WHERE status = 'ACTIVE';

-- Where a site's certificate issuance stands: why the last attempt failed
-- and when the next one is.
CREATE TABLE tls_issuance (
    hosting_account_id uuid PRIMARY KEY REFERENCES hosting_accounts (id),
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    state              text NOT NULL,
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text,
    next_attempt_at    timestamptz,
    updated_at         timestamptz NOT NULL
);
