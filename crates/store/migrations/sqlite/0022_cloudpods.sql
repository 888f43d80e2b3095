-- CloudPods: a customer's VM on a Proxmox VE cluster (a CLOUD server).
-- The VMID and the IPv4 address are allocated here, unique per cluster
-- (Proxmox's /cluster/nextid reserves nothing); a deleted or failed pod
-- gives both back by clearing them (NULLs never collide).
CREATE TABLE cloud_pods (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    customer_id     BLOB NOT NULL REFERENCES customers (id),
    subscription_id BLOB NOT NULL REFERENCES subscriptions (id),
    cluster_id      BLOB REFERENCES servers (id),
    node            TEXT,
    vmid            INTEGER,
    ipv4            TEXT,
    name            TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    os_image        TEXT,
    ssh_keys        TEXT NOT NULL DEFAULT '',
    notes           TEXT NOT NULL DEFAULT '',
    plan            TEXT NOT NULL,
    vcpus           INTEGER NOT NULL,
    memory_mb       INTEGER NOT NULL,
    disk_gb         INTEGER NOT NULL,
    status          TEXT NOT NULL,
    suspended_by    TEXT,
    last_task       TEXT,
    last_error      TEXT,
    -- The last usage sample (status/current): CPU, memory, network
    -- counters; the network counter seen and the transfer not yet
    -- recorded as usage (whole units only are recorded).
    usage           TEXT,
    usage_at        TEXT,
    net_seen_bytes  INTEGER NOT NULL DEFAULT 0,
    net_unbilled_bytes INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX cloud_pods_subscription ON cloud_pods (subscription_id);
CREATE UNIQUE INDEX cloud_pods_vmid ON cloud_pods (cluster_id, vmid);
CREATE UNIQUE INDEX cloud_pods_ipv4 ON cloud_pods (cluster_id, ipv4);
CREATE INDEX cloud_pods_tenant ON cloud_pods (tenant_id, id);
CREATE INDEX cloud_pods_customer ON cloud_pods (customer_id, id);

-- A pod's backups: vzdump archives on the cluster's backup storage.
CREATE TABLE cloud_pod_backups (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    pod_id      BLOB NOT NULL REFERENCES cloud_pods (id),
    -- MANUAL (asked for) or SCHEDULED (the pod's daily policy).
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    volid       TEXT,
    size_bytes  INTEGER,
    task        TEXT,
    error       TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX cloud_pod_backups_pod ON cloud_pod_backups (pod_id, id);

-- What the last health check of a server read beyond reachability: for
-- a Proxmox VE cluster, each node's status, CPU, memory and disk.
ALTER TABLE servers ADD COLUMN health TEXT;
