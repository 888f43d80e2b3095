-- Outbound webhooks: the URLs a tenant subscribed to events, and every
-- event sent to each of them with its attempts.

CREATE TABLE webhook_endpoints (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    url           TEXT NOT NULL,
    description   TEXT NOT NULL,
    -- A JSON array of event type names.
    event_types   TEXT NOT NULL,
    -- The signing secret (whsec_…), sealed with secrets_key; shown once.
    secret        TEXT NOT NULL,
    -- The one replaced by the last rotation, sealed too; deliveries are
    -- signed with both until previous_secret_until.
    previous_secret TEXT,
    previous_secret_until TEXT,
    status        TEXT NOT NULL,
    -- The first failure of the current run of failures (a day without
    -- attempts starts a new one); NULL while healthy.
    failing_since TEXT,
    last_failure_at TEXT,
    disabled_reason TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_deliveries (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    endpoint_id     BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    -- The exact body signed and sent.
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_attempt_at TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
