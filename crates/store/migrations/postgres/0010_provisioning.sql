-- What provisioning made: DNS zones, hosting accounts and mailboxes, each
-- on a server of the inventory and tied to the subscription that pays for
-- it; and the steps each subscription's provisioning finished (a retry
-- resumes after the last one; a permanent failure undoes them in reverse).

CREATE TABLE dns_zones (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    server_id       uuid NOT NULL REFERENCES servers (id),
    -- Canonical, with the trailing dot.
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- A zone is served once across the platform.
CREATE UNIQUE INDEX dns_zones_live ON dns_zones (name) WHERE status <> 'DELETED';
CREATE INDEX dns_zones_tenant ON dns_zones (tenant_id, customer_id);

CREATE TABLE hosting_accounts (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    server_id       uuid NOT NULL REFERENCES servers (id),
    domain          TEXT NOT NULL,
    status          TEXT NOT NULL,
    disk_quota_mb   bigint,
    php_version     TEXT,
    archive_path    TEXT,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX hosting_accounts_live ON hosting_accounts (domain) WHERE status <> 'TERMINATED';
CREATE INDEX hosting_accounts_tenant ON hosting_accounts (tenant_id, id);
CREATE INDEX hosting_accounts_server ON hosting_accounts (server_id) WHERE status <> 'TERMINATED';

CREATE TABLE mail_accounts (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    server_id       uuid NOT NULL REFERENCES servers (id),
    address         TEXT NOT NULL,
    status          TEXT NOT NULL,
    quota_mb        bigint,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX mail_accounts_live ON mail_accounts (address) WHERE status <> 'DELETED';
CREATE INDEX mail_accounts_tenant ON mail_accounts (tenant_id, id);
CREATE INDEX mail_accounts_server ON mail_accounts (server_id) WHERE status <> 'DELETED';

CREATE TABLE provisioning_steps (
    subscription_id uuid NOT NULL REFERENCES subscriptions (id),
    step            TEXT NOT NULL,
    -- DONE, or UNDONE once compensation removed what it made.
    state           TEXT NOT NULL,
    detail          jsonb,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, step)
);
