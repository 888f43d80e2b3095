-- The security center: second factors, sign-in challenges, policies.

-- A session opened under an "MFA required" policy by a user without a
-- second factor may only enrol one.
ALTER TABLE sessions ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;

CREATE TABLE mfa_totp (
    user_id      BLOB PRIMARY KEY NOT NULL REFERENCES users (id),
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    secret       TEXT NOT NULL,
    confirmed_at TEXT,
    -- The last time step accepted: any code at or before it is a replay.
    last_step    INTEGER,
    created_at   TEXT NOT NULL
);

CREATE TABLE mfa_recovery_codes (
    id         BLOB PRIMARY KEY NOT NULL,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    user_id    BLOB NOT NULL REFERENCES users (id),
    code_hash  BLOB NOT NULL UNIQUE,
    used_at    TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX mfa_recovery_codes_user ON mfa_recovery_codes (user_id);

CREATE TABLE webauthn_credentials (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    user_id      BLOB NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    passkey      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- Short-lived, single-use server-side state: an MFA login in progress, a
-- WebAuthn registration or authentication ceremony.
CREATE TABLE auth_challenges (
    id         BLOB PRIMARY KEY NOT NULL,
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    user_id    BLOB NOT NULL REFERENCES users (id),
    kind       TEXT NOT NULL,
    token_hash BLOB UNIQUE,
    state      TEXT,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

CREATE TABLE security_policies (
    tenant_id  BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id),
    policy     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
