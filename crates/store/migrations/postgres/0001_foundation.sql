-- Foundation: tenants, their users, and the audit log.
-- IDs are UUIDv7; timestamps are timestamptz in UTC.

CREATE TABLE tenants (
    id               uuid PRIMARY KEY,
    slug             text NOT NULL UNIQUE,
    name             text NOT NULL,
    timezone         text NOT NULL,
    default_currency text NOT NULL CHECK (length(default_currency) = 3),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    email         text NOT NULL,
    display_name  text NOT NULL DEFAULT '',
    password_hash text,
    role          text NOT NULL,
    status        text NOT NULL DEFAULT 'ACTIVE',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));

CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants (id),
    actor_type  text NOT NULL,
    actor_id    uuid,
    actor_label text NOT NULL,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   text,
    before      jsonb,
    after       jsonb,
    request_id  text,
    created_at  timestamptz NOT NULL
);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, created_at);
