-- The security center: second factors, sign-in challenges, policies.

-- A session opened under an "MFA required" policy by a user without a
-- second factor may only enrol one.
ALTER TABLE sessions ADD COLUMN restricted boolean NOT NULL DEFAULT false;

CREATE TABLE mfa_totp (
    user_id      uuid PRIMARY KEY REFERENCES users (id),
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    secret       TEXT NOT NULL,
    confirmed_at timestamptz,
    -- The last time step accepted: any code at or before it is a replay.
    last_step    bigint,
    created_at   timestamptz NOT NULL
);

CREATE TABLE mfa_recovery_codes (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    code_hash  bytea NOT NULL UNIQUE,
    used_at    timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX mfa_recovery_codes_user ON mfa_recovery_codes (user_id);

CREATE TABLE webauthn_credentials (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    passkey      jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- Short-lived, single-use server-side state: an MFA login in progress, a
-- WebAuthn registration or authentication ceremony.
CREATE TABLE auth_challenges (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    kind       TEXT NOT NULL,
    token_hash bytea UNIQUE,
    state      jsonb,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE TABLE security_policies (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id),
    policy     jsonb NOT NULL,
    updated_at timestamptz NOT NULL
);
