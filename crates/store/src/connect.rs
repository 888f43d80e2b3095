//! Opening a store: which engine a URL names, and how each engine's pool is
//! set up (SQLite in WAL mode with foreign keys and a busy timeout).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::Notify;

use crate::{StoreError, StoreResult};

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine a database URL names, from its scheme.
    pub fn from_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::InvalidConfig(
                "the database URL must start with sqlite: or postgres://".into(),
            ))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pool sizing and patience.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// PostgreSQL: every connection is opened before `connect` returns
    /// (as many as the server grants) and none is ever closed for being
    /// idle or old. A connection opened during a burst costs the burst a
    /// new server process with cold caches: under 16 clients enqueueing at
    /// once, the first few hundred milliseconds' jobs were picked up in up
    /// to 85 ms instead of under 9 (docs/benchmarks.md, "Job queue"). One
    /// that breaks (a restart) is opened again when needed. SQLite ignores
    /// it: its connections are threads of this process.
    pub keep_open: bool,
    /// How long a caller waits for a free connection before the store
    /// reports the database unavailable.
    pub acquire_timeout: Duration,
    /// How long SQLite waits for the write lock before giving up.
    pub sqlite_busy_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            keep_open: false,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store: a pool on one engine. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Reads, and on PostgreSQL everything.
    pub(crate) pool: Pool,
    /// Where writes go: on SQLite a pool of one connection of its own, so
    /// writers queue in order for it (SQLite has one write lock per
    /// database) instead of sleeping in the busy handler's back-off, and
    /// never wait for a connection behind the reads; on PostgreSQL the
    /// same pool as `pool`.
    pub(crate) writer: Pool,
    /// Woken when a transaction that enqueued jobs commits in this process
    /// (and, on PostgreSQL, when another process's does).
    pub(crate) job_wakeup: Arc<Notify>,
    /// The box services seal and open secrets at rest with (`secrets_key`);
    /// the store only carries it.
    pub(crate) secrets: Option<crate::secret_box::SecretBox>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to the database a URL names. A SQLite file and its folder
    /// are created when missing.
    pub async fn connect(url: &str, settings: &PoolSettings) -> StoreResult<Self> {
        let (pool, writer) = match Engine::from_url(url)? {
            Engine::Sqlite => {
                // Parsed once: an in-memory URL gets a fresh name at each
                // parse, and both pools must open the same database.
                let options = sqlite_options(url, settings)?;
                let reads =
                    connect_sqlite(&options, settings, settings.max_connections, READ_CACHE_KIB)
                        .await?;
                let writes = connect_sqlite(&options, settings, 1, WRITE_CACHE_KIB).await?;
                (Pool::Sqlite(reads), Pool::Sqlite(writes))
            }
            Engine::Postgres => {
                let pool = connect_postgres(url, settings).await?;
                (Pool::Postgres(pool.clone()), Pool::Postgres(pool))
            }
        };
        Ok(Self {
            pool,
            writer,
            job_wakeup: Arc::new(Notify::new()),
            secrets: None,
        })
    }

    /// This store, carrying the box that seals secrets at rest.
    #[must_use]
    pub fn with_secrets(mut self, secrets: crate::secret_box::SecretBox) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// The box that seals secrets at rest, when one was given.
    pub fn secrets(&self) -> Option<&crate::secret_box::SecretBox> {
        self.secrets.as_ref()
    }

    pub fn engine(&self) -> Engine {
        match self.pool {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self.pool, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Closes every connection; later calls fail as unavailable.
    pub async fn close(&self) {
        on_pool!(self.pool, |p| p.close().await);
        on_pool!(self.writer, |p| p.close().await);
    }
}

/// SQLite's page cache of the write connection: bulk billing and usage
/// ingestion write far and wide in big indexes (the default is 2 MiB).
const WRITE_CACHE_KIB: u32 = 64 * 1024;
/// Of each read connection: reads find what they miss in the OS's cache;
/// ten connections at 64 MiB each kept serve growing for minutes.
const READ_CACHE_KIB: u32 = 8 * 1024;

fn sqlite_options(url: &str, settings: &PoolSettings) -> StoreResult<SqliteConnectOptions> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidConfig(e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(settings.sqlite_busy_timeout);
    let file = options.get_filename();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::InvalidConfig(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    Ok(options)
}

async fn connect_sqlite(
    options: &SqliteConnectOptions,
    settings: &PoolSettings,
    connections: u32,
    cache_kib: u32,
) -> StoreResult<SqlitePool> {
    let options = options
        .clone()
        .pragma("cache_size", format!("-{cache_kib}"));
    let pool = SqlitePoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(async move { alive_if_idle(conn, meta).await }))
        .after_release(|conn, _| Box::pin(async move { still_usable(conn).await }))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Whether a SQLite connection may go back to the pool. A COMMIT that fails
/// with SQLITE_FULL (the disk filled) is rolled back by SQLite itself; the
/// rollback sqlx then sends on drop fails ("no transaction is active") and
/// leaves its transaction depth at 1, so every later `BEGIN IMMEDIATE` on
/// that connection would fail ("attempted to call begin_with at non-zero
/// transaction depth") long after the disk has room again. Such a
/// connection is closed instead (closing ends any transaction still open).
async fn still_usable(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // A dropped transaction's rollback is queued on the connection: let it
    // run before looking again.
    conn.ping().await?;
    Ok(!conn.is_in_transaction())
}

async fn connect_postgres(url: &str, settings: &PoolSettings) -> StoreResult<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidConfig(e.to_string()))?
        .application_name("mpanel");
    let mut pool_options = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(async move { alive_if_idle(conn, meta).await }));
    if settings.keep_open {
        // Not sqlx's `min_connections`: its upkeep retries a refused
        // connection for up to 5 minutes holding a pool slot, so after an
        // outage the pool could stay short of slots, and closing it waited.
        pool_options = pool_options.idle_timeout(None).max_lifetime(None);
    }
    let pool = pool_options.connect_with(options).await?;
    if settings.keep_open {
        open_all(&pool, settings.max_connections).await;
    }
    Ok(pool)
}

/// Opens `count` connections at once and gives them back to the pool,
/// where they stay. Best effort: those that cannot be opened within the
/// acquire timeout (the server at its own `max_connections`, say, which
/// sqlx retries until then) are opened later, when needed.
async fn open_all(pool: &PgPool, count: u32) {
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..count {
        let pool = pool.clone();
        opening.spawn(async move { pool.acquire().await });
    }
    // Held until all are open, so that no acquire reuses another's.
    let mut opened = Vec::with_capacity(count as usize);
    let mut failed = 0;
    let mut first_error = None;
    while let Some(acquired) = opening.join_next().await {
        let acquired = acquired
            .map_err(|panicked| panicked.to_string())
            .and_then(|conn| conn.map_err(|err| err.to_string()));
        match acquired {
            Ok(conn) => opened.push(conn),
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        tracing::warn!(
            opened = opened.len(),
            failed,
            %error,
            "not every database connection could be opened at start; the rest open when needed"
        );
    }
}

/// How long a connection may sit in the pool before it is pinged on its
/// way out.
const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// How long that ping may take before the connection counts as dead and
/// a new one is opened instead. A connection a firewall or load balancer
/// dropped silently while it sat answers nothing: without this, the
/// request waited out the whole acquire timeout and got a 503.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a connection taken from the pool can be used: pinged only if
/// it sat idle for a while. sqlx's default pings on every acquire (and
/// again on every release), a round trip per statement for nothing under
/// load, where a connection is idle for microseconds; a connection the
/// database dropped while it sat (a restart) is still caught here, and
/// one that breaks in use is caught by the ping on release.
async fn alive_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for >= PING_IF_IDLE_FOR {
        // An error (not `false`): sqlx then drops the connection without
        // the goodbye a dead one would not answer either.
        tokio::time::timeout(PING_TIMEOUT, conn.ping())
            .await
            .map_err(|_| {
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the idle connection did not answer a ping",
                ))
            })??;
    }
    Ok(true)
}
