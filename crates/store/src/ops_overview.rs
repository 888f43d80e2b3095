//! What the operations overview reads: one query per figure group, over
//! the whole platform (`tenant` is `None`) or one tenant's share.
//!
//! Every query is bounded: grouped counts, a time window on an index, or
//! a `LIMIT`. Percentiles and rates are left to the caller (computed in
//! Rust from the bounded lists these return).

use mpanel_domain::{ServerId, TenantId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreResult};

/// A server of the inventory with its last health check.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub id: ServerId,
    pub name: String,
    pub role: String,
    pub status: String,
    pub last_check_at: Option<OffsetDateTime>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub health: Option<Value>,
}

/// One job kind's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    pub kind: String,
    /// Pending and due.
    pub waiting: i64,
    pub running: i64,
    /// Pending, due later.
    pub scheduled: i64,
    /// Failed, awaiting a retry.
    pub retrying: i64,
    pub dead: i64,
    /// The earliest `run_at` among waiting jobs.
    pub oldest_waiting_since: Option<OffsetDateTime>,
    pub completed_recently: i64,
}

/// One provisioning job of an order that had a job end in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisioningRow {
    pub tenant_id: TenantId,
    pub order_id: Uuid,
    pub ordered_at: OffsetDateTime,
    /// The job's state (`completed`, `dead`, `pending` …); `None` once
    /// the job was pruned.
    pub state: Option<String>,
    pub finished_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// Security figures of a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityCounts {
    pub failed_logins: i64,
    pub throttled_addresses: i64,
    pub policy_refusals: i64,
}

/// Users and how many of them have a second factor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaCounts {
    pub staff: i64,
    pub staff_with_mfa: i64,
    pub customers: i64,
    pub customers_with_mfa: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub tenant_id: Option<TenantId>,
    pub kind: String,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Count and sum per currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyRow {
    pub currency: String,
    pub count: i64,
    pub amount_minor: i64,
}

/// Backup runs of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupKindRow {
    pub kind: String,
    pub today_succeeded: i64,
    pub today_failed: i64,
    pub today_running: i64,
    pub week_succeeded: i64,
    pub week_failed: i64,
    pub last_success_at: Option<OffsetDateTime>,
}

/// An ACTIVE backup target whose last good backup is too old.
#[derive(Debug, Clone, PartialEq)]
pub struct OverdueTarget {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub kind: String,
    pub label: String,
    pub last_success_at: Option<OffsetDateTime>,
    /// `last_success_at`, or when the target was made.
    pub since: OffsetDateTime,
}

/// The oldest good backup of ACTIVE targets and how many are overdue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupAge {
    pub oldest: Option<OffsetDateTime>,
    pub overdue: i64,
}

/// The servers of a tenant's services (hosting accounts, mailboxes, zones,
/// pods, backups), as SQL over `$1`.
const TENANT_SERVERS: &str =
    "SELECT server_id FROM hosting_accounts WHERE tenant_id = $1 AND status <> 'TERMINATED'
     UNION SELECT server_id FROM mail_accounts WHERE tenant_id = $1 AND status <> 'DELETED'
     UNION SELECT server_id FROM dns_zones WHERE tenant_id = $1 AND status <> 'DELETED'
     UNION SELECT cluster_id FROM cloud_pods WHERE tenant_id = $1 AND cluster_id IS NOT NULL
     UNION SELECT node_id FROM backup_targets WHERE tenant_id = $1 AND state <> 'REMOVED'
     UNION SELECT server_id FROM backup_repositories WHERE tenant_id = $1";

pub(crate) fn tenant_uuid(tenant: Option<TenantId>) -> Option<Uuid> {
    tenant.map(|t| t.as_uuid())
}

impl Store {
    /// Every server (`tenant` `None`), or those hosting the tenant's
    /// services, by name.
    pub async fn ops_nodes(&self, tenant: Option<TenantId>) -> StoreResult<Vec<NodeRow>> {
        let sql = match tenant {
            None => {
                "SELECT id, name, role, status, last_check_at, last_latency_ms, last_error, health
                     FROM servers WHERE $1 IS NULL ORDER BY lower(name), id"
                    .to_owned()
            }
            Some(_) => format!(
                "SELECT id, name, role, status, last_check_at, last_latency_ms, last_error, health
                 FROM servers WHERE id IN ({TENANT_SERVERS}) ORDER BY lower(name), id"
            ),
        };
        let sql = sqlx::AssertSqlSafe(sql);
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant_uuid(tenant))
                .fetch_all(p)
                .await?
            {
                out.push(NodeRow {
                    id: ServerId::from_uuid(row.try_get("id")?),
                    name: row.try_get("name")?,
                    role: row.try_get("role")?,
                    status: row.try_get("status")?,
                    last_check_at: row.try_get("last_check_at")?,
                    last_latency_ms: row.try_get("last_latency_ms")?,
                    last_error: row.try_get("last_error")?,
                    health: row
                        .try_get::<Option<Json<Value>>, _>("health")?
                        .map(|h| h.0),
                });
            }
            out
        });
        Ok(rows)
    }

    /// Counts per job kind: live jobs, and those completed since
    /// `recent_since`. Two grouped reads of covering or partial indexes
    /// (`jobs_overview`, `jobs_ended`), merged here.
    pub async fn ops_queues(
        &self,
        tenant: Option<TenantId>,
        now: OffsetDateTime,
        recent_since: OffsetDateTime,
    ) -> StoreResult<Vec<QueueRow>> {
        let mut by_kind: std::collections::BTreeMap<String, QueueRow> = Default::default();
        let row_of = |kind: &str| QueueRow {
            kind: kind.to_owned(),
            waiting: 0,
            running: 0,
            scheduled: 0,
            retrying: 0,
            dead: 0,
            oldest_waiting_since: None,
            completed_recently: 0,
        };
        on_pool!(self.pool, |p| {
            for row in sqlx::query(
                "SELECT state, kind, COUNT(*) AS n,
                    SUM(CASE WHEN run_at <= $2 THEN 1 ELSE 0 END) AS due, MIN(run_at) AS oldest
                 FROM jobs
                 WHERE state IN ('pending', 'running', 'failed', 'dead') AND ($1 IS NULL OR tenant_id = $1)
                 GROUP BY state, kind",
            )
            .bind(tenant_uuid(tenant))
            .bind(now)
            .fetch_all(p)
            .await?
            {
                let state: String = row.try_get("state")?;
                let kind: String = row.try_get("kind")?;
                let n: i64 = row.try_get("n")?;
                let due: i64 = row.try_get("due")?;
                let q = by_kind.entry(kind.clone()).or_insert_with(|| row_of(&kind));
                match state.as_str() {
                    "pending" => {
                        q.waiting = due;
                        q.scheduled = n - due;
                        // The earliest pending job is a due one when any is.
                        if due > 0 {
                            q.oldest_waiting_since = row.try_get("oldest")?;
                        }
                    }
                    "running" => q.running = n,
                    "failed" => q.retrying = n,
                    _ => q.dead = n,
                }
            }
            for row in sqlx::query(
                "SELECT kind, COUNT(*) AS n FROM jobs
                 WHERE state IN ('completed', 'dead') AND finished_at >= $2 AND state = 'completed'
                   AND ($1 IS NULL OR tenant_id = $1)
                 GROUP BY kind",
            )
            .bind(tenant_uuid(tenant))
            .bind(recent_since)
            .fetch_all(p)
            .await?
            {
                let kind: String = row.try_get("kind")?;
                by_kind
                    .entry(kind.clone())
                    .or_insert_with(|| row_of(&kind))
                    .completed_recently = row.try_get("n")?;
            }
        });
        Ok(by_kind.into_values().collect())
    }

    /// Every provisioning job of the orders one of whose jobs ended
    /// (completed or dead) since `since`, at most `limit` rows, the newest
    /// orders first (ids are time-ordered): past the limit the oldest of
    /// the window are left out, never the latest failures.
    pub async fn ops_provisioning(
        &self,
        tenant: Option<TenantId>,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<ProvisioningRow>> {
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT s.tenant_id, s.order_id, o.created_at AS ordered_at, j.state, j.finished_at, j.last_error
                 FROM order_steps s
                 JOIN orders o ON o.id = s.order_id
                 LEFT JOIN jobs j ON j.id = s.job_id
                 WHERE s.order_id IN (
                     SELECT e.order_id FROM jobs ej JOIN order_steps e ON e.job_id = ej.id
                     WHERE ej.state IN ('completed', 'dead') AND ej.finished_at >= $2
                       AND ($1 IS NULL OR e.tenant_id = $1))
                 ORDER BY s.order_id DESC, s.id
                 LIMIT $3",
            )
            .bind(tenant_uuid(tenant))
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            {
                out.push(ProvisioningRow {
                    tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
                    order_id: row.try_get("order_id")?,
                    ordered_at: row.try_get("ordered_at")?,
                    state: row.try_get("state")?,
                    finished_at: row.try_get("finished_at")?,
                    last_error: row.try_get("last_error")?,
                });
            }
            out
        });
        Ok(rows)
    }

    /// Failed logins, throttled addresses and refusals by policy since
    /// `since`. `failed`, `throttled` and `refused` are event kinds.
    pub async fn ops_security_counts(
        &self,
        tenant: Option<TenantId>,
        since: OffsetDateTime,
        failed: &str,
        throttled: &[&str; 2],
        refused: &str,
    ) -> StoreResult<SecurityCounts> {
        let counts = on_pool!(self.pool, |p| {
            let row = sqlx::query(
                "SELECT
                    COALESCE(SUM(CASE WHEN kind = $3 THEN 1 ELSE 0 END), 0) AS failed,
                    COUNT(DISTINCT CASE WHEN kind IN ($4, $5) THEN ip END) AS throttled,
                    COALESCE(SUM(CASE WHEN kind = $6 THEN 1 ELSE 0 END), 0) AS refused
                 FROM security_events
                 WHERE created_at >= $2 AND ($1 IS NULL OR tenant_id = $1)
                   AND kind IN ($3, $4, $5, $6)",
            )
            .bind(tenant_uuid(tenant))
            .bind(since)
            .bind(failed)
            .bind(throttled[0])
            .bind(throttled[1])
            .bind(refused)
            .fetch_one(p)
            .await?;
            SecurityCounts {
                failed_logins: row.try_get("failed")?,
                throttled_addresses: row.try_get("throttled")?,
                policy_refusals: row.try_get("refused")?,
            }
        });
        Ok(counts)
    }

    /// Active users, staff and customers apart, and how many have a
    /// confirmed TOTP or a passkey.
    pub async fn ops_mfa_counts(&self, tenant: Option<TenantId>) -> StoreResult<MfaCounts> {
        let counts = on_pool!(self.pool, |p| {
            let mut counts = MfaCounts::default();
            for row in sqlx::query(
                "SELECT CASE WHEN u.role = 'CUSTOMER' THEN 1 ELSE 0 END AS customer,
                    COUNT(*) AS n,
                    SUM(CASE WHEN EXISTS (SELECT 1 FROM mfa_totp t
                                          WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL)
                              OR EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = u.id)
                        THEN 1 ELSE 0 END) AS with_mfa
                 FROM users u
                 WHERE u.status = 'ACTIVE' AND ($1 IS NULL OR u.tenant_id = $1)
                 GROUP BY CASE WHEN u.role = 'CUSTOMER' THEN 1 ELSE 0 END",
            )
            .bind(tenant_uuid(tenant))
            .fetch_all(p)
            .await?
            {
                let customer: i32 = row.try_get("customer")?;
                let n: i64 = row.try_get("n")?;
                let with: i64 = row.try_get("with_mfa")?;
                if customer == 1 {
                    counts.customers = n;
                    counts.customers_with_mfa = with;
                } else {
                    counts.staff = n;
                    counts.staff_with_mfa = with;
                }
            }
            counts
        });
        Ok(counts)
    }

    /// The latest security events, newest first.
    pub async fn ops_latest_events(
        &self,
        tenant: Option<TenantId>,
        limit: u32,
    ) -> StoreResult<Vec<EventRow>> {
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT tenant_id, kind, ip, created_at FROM security_events
                 WHERE ($1 IS NULL OR tenant_id = $1)
                 ORDER BY created_at DESC, id DESC LIMIT $2",
            )
            .bind(tenant_uuid(tenant))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            {
                let tenant: Option<Uuid> = row.try_get("tenant_id")?;
                out.push(EventRow {
                    tenant_id: tenant.map(TenantId::from_uuid),
                    kind: row.try_get("kind")?,
                    ip: row.try_get("ip")?,
                    created_at: row.try_get("created_at")?,
                });
            }
            out
        });
        Ok(rows)
    }

    /// Overdue invoices (open and past due) per currency, with what is
    /// still to pay.
    pub async fn ops_overdue_invoices(
        &self,
        tenant: Option<TenantId>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<MoneyRow>> {
        self.money_rows(
            "SELECT currency, COUNT(*) AS n,
                CAST(SUM(total_minor - credited_minor - paid_minor + refunded_minor) AS BIGINT) AS amount
             FROM invoices
             WHERE status IN ('ISSUED', 'PARTIALLY_PAID', 'OVERDUE')
               AND (status = 'OVERDUE' OR due_at < $2)
               AND ($1 IS NULL OR tenant_id = $1)
             GROUP BY currency ORDER BY currency",
            tenant,
            now,
        )
        .await
    }

    /// Money received since `since` per currency: payments not failed or
    /// pending, less what was refunded; credit applied to an invoice is not
    /// money received.
    pub async fn ops_payments(
        &self,
        tenant: Option<TenantId>,
        since: OffsetDateTime,
    ) -> StoreResult<Vec<MoneyRow>> {
        self.money_rows(
            "SELECT currency, COUNT(*) AS n,
                    CAST(SUM(amount_minor - refunded_minor) AS BIGINT) AS amount
             FROM payments
             WHERE created_at >= $2 AND status NOT IN ('FAILED', 'PENDING')
               AND provider <> 'CREDIT'
               AND ($1 IS NULL OR tenant_id = $1)
             GROUP BY currency ORDER BY currency",
            tenant,
            since,
        )
        .await
    }

    async fn money_rows(
        &self,
        sql: &'static str,
        tenant: Option<TenantId>,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<MoneyRow>> {
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant_uuid(tenant))
                .bind(at)
                .fetch_all(p)
                .await?
            {
                out.push(MoneyRow {
                    currency: row.try_get("currency")?,
                    count: row.try_get("n")?,
                    amount_minor: row.try_get("amount")?,
                });
            }
            out
        });
        Ok(rows)
    }

    /// Subscriptions per status.
    pub async fn ops_subscriptions(
        &self,
        tenant: Option<TenantId>,
    ) -> StoreResult<Vec<(String, i64)>> {
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT status, COUNT(*) AS n FROM subscriptions
                 WHERE ($1 IS NULL OR tenant_id = $1) GROUP BY status ORDER BY status",
            )
            .bind(tenant_uuid(tenant))
            .fetch_all(p)
            .await?
            {
                out.push((row.try_get("status")?, row.try_get("n")?));
            }
            out
        });
        Ok(rows)
    }

    /// Backups (not restores) per kind: today's (started since
    /// `day_start`) and the week's (since `week_start`) by outcome, and the
    /// last good one (of the week's runs, or a target's record).
    pub async fn ops_backup_kinds(
        &self,
        tenant: Option<TenantId>,
        day_start: OffsetDateTime,
        week_start: OffsetDateTime,
    ) -> StoreResult<Vec<BackupKindRow>> {
        let rows = on_pool!(self.pool, |p| {
            let mut out: Vec<BackupKindRow> = Vec::new();
            for row in sqlx::query(
                "SELECT kind,
                    SUM(CASE WHEN started_at >= $2 AND status = 'SUCCEEDED' THEN 1 ELSE 0 END) AS today_ok,
                    SUM(CASE WHEN started_at >= $2 AND status = 'FAILED' THEN 1 ELSE 0 END) AS today_failed,
                    SUM(CASE WHEN started_at >= $2 AND status = 'RUNNING' THEN 1 ELSE 0 END) AS today_running,
                    SUM(CASE WHEN status = 'SUCCEEDED' THEN 1 ELSE 0 END) AS week_ok,
                    SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS week_failed,
                    MAX(CASE WHEN status = 'SUCCEEDED' THEN finished_at END) AS last_ok
                 FROM backup_jobs
                 WHERE operation = 'BACKUP' AND started_at >= $3 AND ($1 IS NULL OR tenant_id = $1)
                 GROUP BY kind ORDER BY kind",
            )
            .bind(tenant_uuid(tenant))
            .bind(day_start)
            .bind(week_start)
            .fetch_all(p)
            .await?
            {
                out.push(BackupKindRow {
                    kind: row.try_get("kind")?,
                    today_succeeded: row.try_get("today_ok")?,
                    today_failed: row.try_get("today_failed")?,
                    today_running: row.try_get("today_running")?,
                    week_succeeded: row.try_get("week_ok")?,
                    week_failed: row.try_get("week_failed")?,
                    last_success_at: row.try_get("last_ok")?,
                });
            }
            // A kind whose last good backup is older than the week.
            for row in sqlx::query(
                "SELECT kind, MAX(last_success_at) AS last_ok FROM backup_targets
                 WHERE last_success_at IS NOT NULL AND ($1 IS NULL OR tenant_id = $1)
                 GROUP BY kind",
            )
            .bind(tenant_uuid(tenant))
            .fetch_all(p)
            .await?
            {
                let kind: String = row.try_get("kind")?;
                let last: Option<OffsetDateTime> = row.try_get("last_ok")?;
                match out.iter_mut().find(|k| k.kind == kind) {
                    Some(k) => k.last_success_at = k.last_success_at.max(last),
                    None => out.push(BackupKindRow {
                        kind,
                        last_success_at: last,
                        ..BackupKindRow::default()
                    }),
                }
            }
            out.sort_by(|a, b| a.kind.cmp(&b.kind));
            out
        });
        Ok(rows)
    }

    /// ACTIVE targets whose last good backup (or, never backed up, their
    /// creation) is before `cutoff`, oldest first, at most `limit`.
    pub async fn ops_overdue_backups(
        &self,
        tenant: Option<TenantId>,
        cutoff: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<OverdueTarget>> {
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, tenant_id, kind, label, last_success_at,
                    COALESCE(last_success_at, created_at) AS since
                 FROM backup_targets
                 WHERE state = 'ACTIVE' AND COALESCE(last_success_at, created_at) < $2
                   AND ($1 IS NULL OR tenant_id = $1)
                 ORDER BY COALESCE(last_success_at, created_at), id LIMIT $3",
            )
            .bind(tenant_uuid(tenant))
            .bind(cutoff)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            {
                out.push(OverdueTarget {
                    id: row.try_get("id")?,
                    tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
                    kind: row.try_get("kind")?,
                    label: row.try_get("label")?,
                    last_success_at: row.try_get("last_success_at")?,
                    since: row.try_get("since")?,
                });
            }
            out
        });
        Ok(rows)
    }

    /// The oldest last good backup among ACTIVE targets, and how many are
    /// older than `cutoff` (for `/metrics`).
    pub async fn ops_backup_age(
        &self,
        tenant: Option<TenantId>,
        cutoff: OffsetDateTime,
    ) -> StoreResult<BackupAge> {
        let age = on_pool!(self.pool, |p| {
            let row = sqlx::query(
                "SELECT MIN(COALESCE(last_success_at, created_at)) AS oldest,
                    COALESCE(SUM(CASE WHEN COALESCE(last_success_at, created_at) < $2 THEN 1 ELSE 0 END), 0) AS overdue
                 FROM backup_targets WHERE state = 'ACTIVE' AND ($1 IS NULL OR tenant_id = $1)",
            )
            .bind(tenant_uuid(tenant))
            .bind(cutoff)
            .fetch_one(p)
            .await?;
            BackupAge {
                oldest: row.try_get("oldest")?,
                overdue: row.try_get("overdue")?,
            }
        });
        Ok(age)
    }
}

/// TEST-ONLY seeding of the backup tables the overview reads. The backup
/// feature owns its own writes; these exist so the overview's tests can
/// hold known rows before that code lands. Never used in production.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod seed_for_tests {
    use mpanel_domain::{ServerId, TenantId};
    use time::OffsetDateTime;
    use uuid::Uuid;

    use crate::{Store, StoreResult};

    /// TEST-ONLY: a backup target (`kind` SITE or MAILBOX) of `customer`
    /// on `node`, in `state`, last backed up at `last_success_at`.
    #[allow(clippy::too_many_arguments)]
    pub async fn backup_target(
        store: &Store,
        tenant: TenantId,
        customer: Uuid,
        node: ServerId,
        kind: &str,
        label: &str,
        state: &str,
        last_success_at: Option<OffsetDateTime>,
        created_at: OffsetDateTime,
    ) -> StoreResult<Uuid> {
        let id = Uuid::now_v7();
        on_pool!(store.pool, |p| {
            sqlx::query(
                "INSERT INTO backup_targets (id, tenant_id, customer_id, kind, account_id, label, node_id,
                    run_at, keep_daily, keep_weekly, state, next_run_at, last_success_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, '02:00', 7, 4, $8, $9, $10, $9, $9)",
            )
            .bind(id)
            .bind(tenant.as_uuid())
            .bind(customer)
            .bind(kind)
            .bind(Uuid::now_v7())
            .bind(label)
            .bind(node.as_uuid())
            .bind(state)
            .bind(created_at)
            .bind(last_success_at)
            .execute(p)
            .await?;
        });
        Ok(id)
    }

    /// TEST-ONLY: a BACKUP run of `target` with `status` (SUCCEEDED,
    /// FAILED, RUNNING), started at `started_at`, finished a minute later
    /// unless RUNNING.
    pub async fn backup_job(
        store: &Store,
        tenant: TenantId,
        target: Uuid,
        kind: &str,
        status: &str,
        started_at: OffsetDateTime,
    ) -> StoreResult<()> {
        let finished = (status != "RUNNING").then(|| started_at + time::Duration::minutes(1));
        on_pool!(store.pool, |p| {
            sqlx::query(
                "INSERT INTO backup_jobs (id, tenant_id, target_id, kind, operation, trigger, status,
                    started_at, finished_at)
                 VALUES ($1, $2, $3, $4, 'BACKUP', 'SCHEDULED', $5, $6, $7)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.as_uuid())
            .bind(target)
            .bind(kind)
            .bind(status)
            .bind(started_at)
            .bind(finished)
            .execute(p)
            .await?;
        });
        Ok(())
    }
}
