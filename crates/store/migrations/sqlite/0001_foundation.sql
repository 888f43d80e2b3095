-- Foundation: tenants, their users, and the audit log.
-- IDs are UUIDv7 (16-byte blobs here, uuid in PostgreSQL); timestamps are UTC.

CREATE TABLE tenants (
    id               BLOB PRIMARY KEY NOT NULL,
    slug             TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    timezone         TEXT NOT NULL,
    default_currency TEXT NOT NULL CHECK (length(default_currency) = 3),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    email         TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'ACTIVE',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));

CREATE TABLE audit_log (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB REFERENCES tenants (id),
    actor_type  TEXT NOT NULL,
    actor_id    BLOB,
    actor_label TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT,
    before      TEXT,
    after       TEXT,
    request_id  TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, created_at);
