//! The scheduled platform backup (`backup_dir`, `backup_keep`): the daily
//! `platform.backup` job writes `mpanel-<UTC time>.<sqlite|pgdump>` into
//! `backup_dir` (as `mpanel backup` does) and deletes the oldest of those
//! beyond `backup_keep`. Other files in the folder are left alone.

use std::path::{Path, PathBuf};

use mpanel_store::Engine;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::db_backup::{self, BackupReport, Kind};

/// Where and how many (from the configuration).
#[derive(Debug, Clone)]
pub struct PlatformBackup {
    pub dir: PathBuf,
    pub keep: usize,
    /// The database to copy (a secret: it may hold a password).
    pub database_url: SecretString,
    pub engine: Engine,
}

const PREFIX: &str = "mpanel-";

/// `mpanel-20270131T021500Z.sqlite`.
pub fn file_name(at: OffsetDateTime, engine: Engine) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z.{}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        Kind::extension(engine)
    )
}

/// One scheduled backup at `now`, then the pruning; what was written and
/// the files deleted.
pub async fn run(
    settings: &PlatformBackup,
    now: OffsetDateTime,
) -> anyhow::Result<(BackupReport, Vec<PathBuf>)> {
    let to = settings.dir.join(file_name(now, settings.engine));
    let report = db_backup::backup(settings.database_url.expose_secret(), &to).await?;
    let pruned = prune(&settings.dir, settings.engine, settings.keep)?;
    Ok((report, pruned))
}

/// Deletes the oldest scheduled backups of `engine` in `dir` beyond
/// `keep`; their names sort by time.
pub fn prune(dir: &Path, engine: Engine, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let suffix = format!(".{}", Kind::extension(engine));
    let mut ours: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| is_scheduled_name(n, &suffix))
        })
        .map(|e| e.path())
        .collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for old in ours.into_iter().take(excess) {
        std::fs::remove_file(&old)?;
        deleted.push(old);
    }
    Ok(deleted)
}

/// `mpanel-YYYYMMDDTHHMMSSZ<suffix>` exactly.
fn is_scheduled_name(name: &str, suffix: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(suffix))
    else {
        return false;
    };
    let bytes = stamp.as_bytes();
    bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[9..15].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_utc_time_and_engine() {
        let at = time::macros::datetime!(2027-01-31 03:15:00 +01:00);
        assert_eq!(
            file_name(at, Engine::Sqlite),
            "mpanel-20270131T021500Z.sqlite"
        );
        assert_eq!(
            file_name(at, Engine::Postgres),
            "mpanel-20270131T021500Z.pgdump"
        );
    }

    #[test]
    fn pruning_keeps_the_newest_and_touches_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "mpanel-20270101T021500Z.sqlite",
            "mpanel-20270103T021500Z.sqlite",
            "mpanel-20270102T021500Z.sqlite",
            "mpanel-20270104T021500Z.sqlite",
            "mpanel-20261231T021500Z.pgdump",
            "mpanel-manual.sqlite",
            "notes.txt",
            ".mpanel-20270105T021500Z.sqlite.partial-1",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let deleted = prune(dir.path(), Engine::Sqlite, 2).unwrap();
        let deleted: Vec<_> = deleted
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            deleted,
            [
                "mpanel-20270101T021500Z.sqlite",
                "mpanel-20270102T021500Z.sqlite"
            ]
        );
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), names.len() - 2, "{left:?}");
    }
}
