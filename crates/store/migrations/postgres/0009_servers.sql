-- The platform's server inventory (not a tenant's): role, address,
-- credentials sealed with the configured secrets_key, capacity, status and
-- the last health check.

CREATE TABLE servers (
    id              uuid PRIMARY KEY,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    address         TEXT NOT NULL,
    port            INTEGER NOT NULL,
    -- `v1:` + base64(nonce ‖ AES-256-GCM ciphertext); never returned.
    credentials     TEXT NOT NULL,
    -- Role-specific settings that are not secret (paths, public address).
    settings        jsonb NOT NULL,
    capacity        bigint NOT NULL CHECK (capacity >= 0),
    status          TEXT NOT NULL,
    last_check_at   timestamptz,
    last_latency_ms bigint,
    last_error      TEXT,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX servers_name ON servers (lower(name));
CREATE INDEX servers_role ON servers (role, status);
