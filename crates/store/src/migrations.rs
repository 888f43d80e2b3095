//! Schema migrations, one SQL file per engine and version, embedded in the
//! binary. Applied by `mpanel migrate` and at `serve` start; PostgreSQL
//! takes an advisory lock so nodes starting together apply each migration
//! once.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::connect::Pool;
use crate::{Engine, Store, StoreResult};

struct Embedded {
    version: i64,
    description: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// One embedded migration: its version, description and the file stem
/// (`0001_foundation`) found in both `migrations/sqlite` and
/// `migrations/postgres`.
macro_rules! migration {
    ($version:literal, $description:literal, $file:literal) => {
        Embedded {
            version: $version,
            description: $description,
            sqlite: include_str!(concat!("../migrations/sqlite/", $file, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $file, ".sql")),
        }
    };
}

/// Every migration, oldest first. A new migration adds one line here and
/// one file in each of `migrations/sqlite` and `migrations/postgres`.
const MIGRATIONS: &[Embedded] = &[
    migration!(1, "foundation", "0001_foundation"),
    migration!(2, "identity", "0002_identity"),
    migration!(3, "jobs", "0003_jobs"),
    migration!(4, "catalog", "0004_catalog"),
    migration!(5, "orders", "0005_orders"),
    migration!(6, "security", "0006_security"),
    migration!(7, "document_numbers", "0007_document_numbers"),
    migration!(8, "billing", "0008_billing"),
    migration!(9, "servers", "0009_servers"),
    migration!(10, "provisioning", "0010_provisioning"),
    migration!(11, "subscriptions", "0011_subscriptions"),
    migration!(12, "platform_names", "0012_platform_names"),
    migration!(14, "step_up", "0014_step_up"),
    migration!(15, "domain_verifications", "0015_domain_verifications"),
    migration!(16, "disk_usage", "0016_disk_usage"),
    migration!(17, "pending_customers", "0017_pending_customers"),
    migration!(18, "email", "0018_email"),
    migration!(19, "webhooks", "0019_webhooks"),
    migration!(20, "tenant_profile", "0020_tenant_profile"),
    migration!(21, "account_links", "0021_account_links"),
    migration!(22, "cloudpods", "0022_cloudpods"),
    migration!(23, "backups", "0023_backups"),
    migration!(24, "ops", "0024_ops"),
    migration!(25, "customer_notes", "0025_customer_notes"),
    migration!(26, "certificates", "0026_certificates"),
    migration!(27, "billing_run_attempts", "0027_billing_run_attempts"),
    migration!(28, "invoices_written_once", "0028_invoices_written_once"),
    migration!(29, "job_key_prefixes", "0029_job_key_prefixes"),
    migration!(30, "backup_logins", "0030_backup_logins"),
];

/// One migration, as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    pub version: i64,
    pub description: &'static str,
}

/// The migrations one [`Store::migrate`] call applied (empty: up to date).
pub type AppliedNow = Vec<MigrationInfo>;

/// How the database's schema compares with this binary's migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied successfully.
    pub applied: Vec<i64>,
    /// This binary's migrations not applied yet.
    pub pending: Vec<MigrationInfo>,
    /// Applied versions this binary does not know (a newer binary ran).
    pub unknown: Vec<i64>,
    /// Applied versions whose SQL differs from this binary's.
    pub modified: Vec<i64>,
    /// Versions whose application failed half-way.
    pub failed: Vec<i64>,
}

impl MigrationStatus {
    /// Every migration of this binary is applied, unchanged. Versions from a
    /// newer binary do not count against it: migrations are written to keep
    /// the previous release working during a rolling upgrade.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.modified.is_empty() && self.failed.is_empty()
    }
}

/// The newest schema version this binary knows.
pub fn latest_schema_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// This binary's migrations, oldest first.
pub fn known_migrations() -> Vec<MigrationInfo> {
    MIGRATIONS
        .iter()
        .map(|m| MigrationInfo {
            version: m.version,
            description: m.description,
        })
        .collect()
}

fn migrator(engine: Engine) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|m| {
                let sql = match engine {
                    Engine::Sqlite => m.sqlite,
                    Engine::Postgres => m.postgres,
                };
                Migration::new(
                    m.version,
                    m.description.into(),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    )
}

struct AppliedRow {
    version: i64,
    checksum: Vec<u8>,
    success: bool,
}

impl Store {
    /// Applies pending migrations and returns those it applied.
    pub async fn migrate(&self) -> StoreResult<AppliedNow> {
        let before: Vec<i64> = self
            .applied_rows()
            .await?
            .into_iter()
            .filter(|r| r.success)
            .map(|r| r.version)
            .collect();
        let migrator = migrator(self.engine());
        let mut tries = 0;
        loop {
            match on_pool!(self.writer, |p| migrator.run(p).await) {
                Ok(()) => break,
                // SQLite has no migration lock: a second process starting at
                // the same moment fails on what the first just created, and
                // finds it applied when it tries again.
                Err(err) if self.engine() == Engine::Sqlite && tries < 20 => {
                    tries += 1;
                    tracing::debug!(error = %err, "migration raced another process; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(25 * tries)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(known_migrations()
            .into_iter()
            .filter(|m| !before.contains(&m.version))
            .collect())
    }

    /// Compares the database with this binary's migrations; writes nothing.
    pub async fn migration_status(&self) -> StoreResult<MigrationStatus> {
        let rows = self.applied_rows().await?;
        let migrator = migrator(self.engine());
        let known: HashMap<i64, &Migration> = migrator.iter().map(|m| (m.version, m)).collect();
        let mut status = MigrationStatus::default();
        for row in &rows {
            match known.get(&row.version) {
                _ if !row.success => status.failed.push(row.version),
                None => status.unknown.push(row.version),
                Some(m) if *m.checksum != *row.checksum => status.modified.push(row.version),
                Some(_) => status.applied.push(row.version),
            }
        }
        status.pending = known_migrations()
            .into_iter()
            .filter(|m| !rows.iter().any(|r| r.version == m.version))
            .collect();
        Ok(status)
    }

    /// The schema version: the highest migration applied successfully
    /// (`None`: no migration ever ran, not an mPanel database).
    pub async fn schema_version(&self) -> StoreResult<Option<i64>> {
        Ok(self
            .applied_rows()
            .await?
            .iter()
            .filter(|r| r.success)
            .map(|r| r.version)
            .max())
    }

    async fn applied_rows(&self) -> StoreResult<Vec<AppliedRow>> {
        if !self.has_migrations_table().await? {
            return Ok(Vec::new());
        }
        let rows = on_pool!(self.pool, |p| {
            sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| {
                    Ok(AppliedRow {
                        version: r.try_get("version")?,
                        checksum: r.try_get("checksum")?,
                        success: r.try_get("success")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    async fn has_migrations_table(&self) -> StoreResult<bool> {
        let found = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_optional(p)
            .await?
            .is_some(),
            Pool::Postgres(p) => sqlx::query("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(p)
                .await?
                .try_get::<bool, _>(0)?,
        };
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every SQL file in the migration folders is registered, for both
    /// engines, and versions only grow.
    #[test]
    fn every_migration_file_is_registered_for_both_engines() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        for engine in ["sqlite", "postgres"] {
            let mut files: Vec<String> = std::fs::read_dir(format!("{dir}/{engine}"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            let expected: Vec<String> = MIGRATIONS
                .iter()
                .map(|m| format!("{:04}_{}.sql", m.version, m.description))
                .collect();
            assert_eq!(files, expected, "{engine} migrations");
        }
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }
}
