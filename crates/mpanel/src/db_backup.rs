//! `mpanel backup` and `mpanel restore`: a consistent copy of mPanel's own
//! database while it serves, and its restore into an empty database.
//!
//! SQLite is copied with `VACUUM INTO` (a point in time while writers go
//! on) into a plain SQLite file; PostgreSQL with `pg_dump --format=custom`.
//! The file says what it is by its first bytes (`SQLite format 3\0` or
//! `PGDMP`), so no side file is needed. Either is written under a hidden
//! temporary name in the target folder and renamed into place once
//! complete: a file named `--to` is always a whole backup.
//!
//! A restore refuses a database that holds tables (unless `--force`) and
//! a backup whose schema is newer than this binary knows; an older one is
//! fine (migrations run at the next start).

use std::fs::Permissions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use mpanel_store::{Engine, PoolSettings, Store, latest_schema_version};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::{Config, redact_url};
use crate::pg_tools::{self, PgTarget};

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
const PGDUMP_MAGIC: &[u8] = b"PGDMP";

/// What a backup file holds, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    PgDump,
}

impl Kind {
    fn engine(self) -> Engine {
        match self {
            Self::Sqlite => Engine::Sqlite,
            Self::PgDump => Engine::Postgres,
        }
    }

    /// The file extension scheduled backups get.
    pub fn extension(engine: Engine) -> &'static str {
        match engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "pgdump",
        }
    }
}

/// What `mpanel backup` prints.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub engine: String,
    pub schema_version: i64,
    pub duration_ms: u128,
}

/// What `mpanel restore` prints.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub from: PathBuf,
    pub database: String,
    pub engine: String,
    pub schema_version: i64,
    /// Whether a database holding tables was replaced (`--force`).
    pub replaced: bool,
    pub duration_ms: u128,
}

pub async fn backup_cmd(config: Config, to: PathBuf) -> anyhow::Result<()> {
    let report = backup(config.database_url.expose_secret(), &to).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn restore_cmd(config: Config, from: PathBuf, force: bool) -> anyhow::Result<()> {
    let report = restore(config.database_url.expose_secret(), &from, force).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Backs the database at `url` up into `to`, which must not exist.
pub async fn backup(url: &str, to: &Path) -> anyhow::Result<BackupReport> {
    let started = Instant::now();
    let engine = Engine::from_url(url)?;
    if to.exists() {
        bail!(
            "{} already exists: a backup never overwrites a file; name a new one",
            to.display()
        );
    }
    let partial = partial_name(to, "partial")?;
    // It holds password hashes and sealed secrets: made the owner's only
    // before a byte is written (VACUUM INTO accepts an empty file, pg_dump
    // truncates it and keeps its mode).
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let done = match engine {
        Engine::Sqlite => sqlite_backup(url, &partial).await,
        Engine::Postgres => pg_backup(url, &partial).await,
    };
    let schema_version = match done {
        Ok(v) => v,
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    // Kept 0600 whatever the engine's tool did.
    if let Err(err) = std::fs::set_permissions(&partial, Permissions::from_mode(0o600)) {
        let _ = std::fs::remove_file(&partial);
        return Err(err).with_context(|| format!("cannot chmod 600 {}", partial.display()));
    }
    publish(&partial, to)?;
    Ok(BackupReport {
        path: to.to_path_buf(),
        bytes: std::fs::metadata(to)?.len(),
        engine: engine.as_str().to_owned(),
        schema_version,
        duration_ms: started.elapsed().as_millis(),
    })
}

async fn sqlite_backup(url: &str, partial: &Path) -> anyhow::Result<i64> {
    let source = sqlite_file(url)?;
    if !source.is_file() {
        bail!(
            "the database {} does not exist: nothing to back up",
            source.display()
        );
    }
    let store = connect(url, 1).await?;
    let copied = store.sqlite_copy_into(partial).await;
    store.close().await;
    copied.context("cannot copy the database (VACUUM INTO)")?;
    // VACUUM INTO does not sync what it wrote.
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", partial.display()))?;
    sqlite_version_of(partial).await
}

async fn pg_backup(url: &str, partial: &Path) -> anyhow::Result<i64> {
    let target = PgTarget::parse(url)?;
    let (t, p) = (target, partial.to_path_buf());
    tokio::task::spawn_blocking(move || pg_tools::dump(&t, &p)).await??;
    dump_version(partial)
}

/// Restores `from` into the database at `url`.
pub async fn restore(url: &str, from: &Path, force: bool) -> anyhow::Result<RestoreReport> {
    let started = Instant::now();
    let engine = Engine::from_url(url)?;
    let kind = kind_of(from)?;
    if kind.engine() != engine {
        bail!(
            "{} is a {} backup but the database_url is {} ({}): restore a backup into a \
             database of its own engine",
            from.display(),
            kind.engine(),
            engine,
            redact_url(url)
        );
    }
    let (schema_version, replaced) = match kind {
        Kind::Sqlite => sqlite_restore(url, from, force).await?,
        Kind::PgDump => pg_restore(url, from, force).await?,
    };
    Ok(RestoreReport {
        from: from.to_path_buf(),
        database: redact_url(url),
        engine: engine.as_str().to_owned(),
        schema_version,
        replaced,
        duration_ms: started.elapsed().as_millis(),
    })
}

/// Copies the backup beside the target, checks the copy (sound, a schema
/// this binary knows), then renames it into place.
async fn sqlite_restore(url: &str, from: &Path, force: bool) -> anyhow::Result<(i64, bool)> {
    let target = sqlite_file(url)?;
    let replaced = target.exists() && !sqlite_is_empty(url, &target).await?;
    if replaced && !force {
        bail!(refused(&redact_url(url)));
    }
    if let Some(folder) = target.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let partial = partial_name(&target, "restoring")?;
    let checked = async {
        std::fs::copy(from, &partial)
            .with_context(|| format!("cannot copy {} to {}", from.display(), partial.display()))?;
        let version = sqlite_version_of(&partial).await?;
        check_version(version)?;
        anyhow::Ok(version)
    }
    .await;
    let version = match checked {
        Ok(v) => v,
        Err(err) => {
            remove_sqlite_files(&partial);
            return Err(err);
        }
    };
    // The old file's WAL and shared memory would be read as the new one's.
    remove_sqlite_files(&target);
    publish(&partial, &target)?;
    Ok((version, replaced))
}

async fn pg_restore(url: &str, from: &Path, force: bool) -> anyhow::Result<(i64, bool)> {
    let version = dump_version(from)?;
    check_version(version)?;
    let store = connect(url, 1).await?;
    let tables = store.table_count().await;
    let current = store.schema_version().await.ok().flatten();
    store.close().await;
    let replaced = tables.context("cannot look into the target database")? > 0;
    if replaced && !force {
        bail!(refused(&redact_url(url)));
    }
    // pg_restore --clean drops only what the dump holds: tables of a newer
    // schema would stay beside an older dump's and break the next start.
    if replaced && current.unwrap_or(0) > version {
        bail!(
            "the database {} is at schema version {}, newer than the backup's {version}: \
             restore into an empty database instead",
            redact_url(url),
            current.unwrap_or(0)
        );
    }
    let target = PgTarget::parse(url)?;
    let file = from.to_path_buf();
    tokio::task::spawn_blocking(move || pg_tools::restore(&target, &file, replaced)).await??;
    Ok((version, replaced))
}

fn refused(database: &str) -> String {
    format!(
        "the database {database} is not empty: a restore goes into an empty database \
         (a new SQLite file, or a PostgreSQL database with no tables in the schema public); \
         pass --force to replace what it holds with the backup"
    )
}

/// A backup newer than this binary cannot be served by it.
fn check_version(version: i64) -> anyhow::Result<()> {
    let known = latest_schema_version();
    if version > known {
        bail!(
            "the backup's schema version is {version}, newer than this mPanel knows ({known}): \
             restore it with the mPanel release that made it, or a newer one"
        );
    }
    Ok(())
}

/// The schema version a SQLite backup file records.
async fn sqlite_version_of(file: &Path) -> anyhow::Result<i64> {
    let url = format!("sqlite://{}", file.display());
    let store = connect(&url, 1).await?;
    let checked = async {
        if let Some(problem) = store.sqlite_quick_check().await? {
            bail!("{} is damaged: {problem}", file.display());
        }
        anyhow::Ok(store.schema_version().await?)
    }
    .await;
    store.close().await;
    checked?.with_context(|| format!("{} is not an mPanel database", file.display()))
}

/// The schema version a PostgreSQL dump records.
fn dump_version(file: &Path) -> anyhow::Result<i64> {
    pg_tools::dump_versions(file)?
        .into_iter()
        .max()
        .with_context(|| format!("{} is not a dump of an mPanel database", file.display()))
}

async fn sqlite_is_empty(url: &str, file: &Path) -> anyhow::Result<bool> {
    if std::fs::metadata(file)?.len() == 0 {
        return Ok(true);
    }
    let store = connect(url, 1).await?;
    let tables = store.table_count().await;
    store.close().await;
    Ok(tables.context("cannot look into the target database")? == 0)
}

/// What a backup file is, from its first bytes.
pub fn kind_of(file: &Path) -> anyhow::Result<Kind> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut f =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let n = f.read(&mut head)?;
    let head = &head[..n];
    if head.starts_with(SQLITE_MAGIC) {
        Ok(Kind::Sqlite)
    } else if head.starts_with(PGDUMP_MAGIC) {
        Ok(Kind::PgDump)
    } else {
        bail!(
            "{} is not an mPanel backup (neither a SQLite database nor a pg_dump custom-format file)",
            file.display()
        )
    }
}

/// The file a `sqlite:` URL names.
pub fn sqlite_file(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not a sqlite: URL")?;
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        bail!("an in-memory SQLite database cannot be backed up or restored");
    }
    Ok(PathBuf::from(path))
}

async fn connect(url: &str, connections: u32) -> anyhow::Result<Store> {
    let settings = PoolSettings {
        max_connections: connections,
        ..PoolSettings::default()
    };
    Store::connect(url, &settings)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(url)))
}

/// `.NAME.WHAT-PID` beside `path`: hidden, and never taken for a backup.
fn partial_name(path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} does not name a file", path.display()))?;
    Ok(path.with_file_name(format!(".{name}.{what}-{}", std::process::id())))
}

/// Renames the finished `partial` to `path` and syncs the folder, so the
/// name survives a crash.
fn publish(partial: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::rename(partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    let folder = match path.parent() {
        Some(f) if !f.as_os_str().is_empty() => f,
        _ => Path::new("."),
    };
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn remove_sqlite_files(file: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_names_its_file() {
        assert_eq!(
            sqlite_file("sqlite://./data/mpanel.db").unwrap(),
            PathBuf::from("./data/mpanel.db")
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/m.db?mode=rwc").unwrap(),
            PathBuf::from("/var/lib/m.db")
        );
        assert!(sqlite_file("sqlite::memory:").is_err());
    }

    #[test]
    fn the_file_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (s, p, x) = (
            dir.path().join("s"),
            dir.path().join("p"),
            dir.path().join("x"),
        );
        std::fs::write(&s, b"SQLite format 3\0rest").unwrap();
        std::fs::write(&p, b"PGDMP\x01\x0e").unwrap();
        std::fs::write(&x, b"hello").unwrap();
        assert_eq!(kind_of(&s).unwrap(), Kind::Sqlite);
        assert_eq!(kind_of(&p).unwrap(), Kind::PgDump);
        assert!(kind_of(&x).is_err());
    }
}
