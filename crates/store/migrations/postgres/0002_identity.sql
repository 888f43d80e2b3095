-- Identity: sessions with rotating refresh tokens, API tokens, security
-- events, login throttling and the JWT signing key.

ALTER TABLE users ADD COLUMN password_changed_at timestamptz;

CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    user_id        uuid NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    ip             text,
    user_agent     text
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id),
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    name         text NOT NULL,
    token_start  text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    scopes       text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE security_events (
    id         uuid PRIMARY KEY,
    tenant_id  uuid REFERENCES tenants (id),
    user_id    uuid REFERENCES users (id),
    kind       text NOT NULL,
    ip         text,
    detail     jsonb,
    created_at timestamptz NOT NULL
);
CREATE INDEX security_events_tenant_time ON security_events (tenant_id, created_at);

CREATE TABLE login_throttle (
    key             text PRIMARY KEY,
    failures        integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_until    timestamptz
);

CREATE TABLE signing_keys (
    name       text PRIMARY KEY,
    secret     bytea NOT NULL,
    created_at timestamptz NOT NULL
);
