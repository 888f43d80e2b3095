-- Backups of customers' data with restic: one repository per tenant on a
-- BACKUP server (its password sealed like other secrets), one backup
-- target per hosting account or mailbox (its policy from the plan, its
-- last good backup), and a record of every backup and restore run.

CREATE TABLE backup_repositories (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    server_id   BLOB NOT NULL REFERENCES servers (id),
    -- The repository's folder on the backup server.
    path        TEXT NOT NULL,
    -- `v1:` + base64(nonce ‖ AES-256-GCM ciphertext); never returned.
    password    TEXT NOT NULL,
    initialized_at TEXT,
    -- The last `restic prune` (a repository is pruned once a day).
    pruned_at   TEXT,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX backup_repositories_tenant ON backup_repositories (tenant_id, server_id);

CREATE TABLE backup_targets (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    customer_id     BLOB NOT NULL REFERENCES customers (id),
    -- SITE (a hosting account's files) or MAILBOX.
    kind            TEXT NOT NULL,
    -- The hosting account or mailbox.
    account_id      BLOB NOT NULL,
    -- The domain or the address, for people.
    label           TEXT NOT NULL,
    -- The node the data lives on.
    node_id         BLOB NOT NULL REFERENCES servers (id),
    -- Policy: local time of day (HH:MM, the tenant's zone), snapshots kept.
    run_at          TEXT NOT NULL,
    keep_daily      INTEGER NOT NULL,
    keep_weekly     INTEGER NOT NULL,
    -- ACTIVE, RETAINED (account gone, last backup kept until
    -- retain_until), REMOVED.
    state           TEXT NOT NULL,
    retain_until    TEXT,
    next_run_at     TEXT NOT NULL,
    last_success_at TEXT,
    last_snapshot   TEXT,
    last_status     TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX backup_targets_account ON backup_targets (kind, account_id);
CREATE INDEX backup_targets_tenant ON backup_targets (tenant_id, id);
CREATE INDEX backup_targets_due ON backup_targets (state, next_run_at);

CREATE TABLE backup_jobs (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    target_id   BLOB NOT NULL REFERENCES backup_targets (id),
    -- SITE or MAILBOX (the target's), for figures by kind.
    kind        TEXT NOT NULL,
    -- BACKUP or RESTORE.
    operation   TEXT NOT NULL,
    -- SCHEDULED or MANUAL.
    trigger     TEXT NOT NULL,
    -- RUNNING, SUCCEEDED, FAILED.
    status      TEXT NOT NULL,
    snapshot_id TEXT,
    size_bytes  INTEGER,
    files       INTEGER,
    -- A restore: what (NULL: everything) and where (NULL: in place).
    restore_path TEXT,
    restore_to  TEXT,
    error       TEXT,
    -- When pruning removed the snapshot from the repository.
    snapshot_removed_at TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX backup_jobs_target ON backup_jobs (target_id, id);
CREATE INDEX backup_jobs_tenant_started ON backup_jobs (tenant_id, started_at);
CREATE INDEX backup_jobs_started ON backup_jobs (started_at);
