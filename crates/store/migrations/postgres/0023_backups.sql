-- Backups of customers' data with restic: one repository per tenant on a
-- BACKUP server (its password sealed like other secrets), one backup
-- target per hosting account or mailbox (its policy from the plan, its
-- last good backup), and a record of every backup and restore run.

CREATE TABLE backup_repositories (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    server_id   uuid NOT NULL REFERENCES servers (id),
    -- The repository's folder on the backup server.
    path        TEXT NOT NULL,
    -- `v1:` + base64(nonce ‖ AES-256-GCM ciphertext); never returned.
    password    TEXT NOT NULL,
    initialized_at timestamptz,
    -- The last `restic prune` (a repository is pruned once a day).
    pruned_at   timestamptz,
    created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX backup_repositories_tenant ON backup_repositories (tenant_id, server_id);

CREATE TABLE backup_targets (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    -- SITE (a hosting account's files) or MAILBOX.
    kind            TEXT NOT NULL,
    -- The hosting account or mailbox.
    account_id      uuid NOT NULL,
    -- The domain or the address, for people.
    label           TEXT NOT NULL,
    -- The node the data lives on.
    node_id         uuid NOT NULL REFERENCES servers (id),
    -- Policy: local time of day (HH:MM, the tenant's zone), snapshots kept.
    run_at          TEXT NOT NULL,
    keep_daily      bigint NOT NULL,
    keep_weekly     bigint NOT NULL,
    -- ACTIVE, RETAINED (account gone, last backup kept until
    -- retain_until), REMOVED.
    state           TEXT NOT NULL,
    retain_until    timestamptz,
    next_run_at     timestamptz NOT NULL,
    last_success_at timestamptz,
    last_snapshot   TEXT,
    last_status     TEXT,
    last_error      TEXT,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX backup_targets_account ON backup_targets (kind, account_id);
CREATE INDEX backup_targets_tenant ON backup_targets (tenant_id, id);
CREATE INDEX backup_targets_due ON backup_targets (state, next_run_at);

CREATE TABLE backup_jobs (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    target_id   uuid NOT NULL REFERENCES backup_targets (id),
    -- SITE or MAILBOX (the target's), for figures by kind.
    kind        TEXT NOT NULL,
    -- BACKUP or RESTORE.
    operation   TEXT NOT NULL,
    -- SCHEDULED or MANUAL.
    trigger     TEXT NOT NULL,
    -- RUNNING, SUCCEEDED, FAILED.
    status      TEXT NOT NULL,
    snapshot_id TEXT,
    size_bytes  bigint,
    files       bigint,
    -- A restore: what (NULL: everything) and where (NULL: in place).
    restore_path TEXT,
    restore_to  TEXT,
    error       TEXT,
    -- When pruning removed the snapshot from the repository.
    snapshot_removed_at timestamptz,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX backup_jobs_target ON backup_jobs (target_id, id);
CREATE INDEX backup_jobs_tenant_started ON backup_jobs (tenant_id, started_at);
CREATE INDEX backup_jobs_started ON backup_jobs (started_at);
