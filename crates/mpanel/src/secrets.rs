//! The key that seals secrets at rest (`secrets_key`).
//!
//! It is required. With PostgreSQL (production) it must be configured
//! (`MPANEL_SECRETS_KEY` or `secrets_key` in `mpanel.toml`): start-up fails
//! without it, since a key made on one node would not open what another node
//! sealed. With the embedded SQLite database and no key configured, one is
//! generated beside the database file (`secrets.key`, mode 0600: for the
//! first-run default, `./data/secrets.key`), logged with its path, and
//! reused on every later start.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mpanel_services::secret_box::SecretBox;
use mpanel_store::Engine;
use secrecy::ExposeSecret;

use crate::config::Config;

/// The file a generated key is kept in, beside the SQLite database.
pub const KEY_FILE: &str = "secrets.key";

const HOW: &str = "set MPANEL_SECRETS_KEY (or secrets_key in mpanel.toml) to 32 random bytes, \
     base64-encoded (e.g. `openssl rand -base64 32`), the same on every node";

/// The configured key, or (embedded SQLite only) the generated one.
pub fn resolve(config: &Config) -> anyhow::Result<SecretBox> {
    if let Some(sb) = &config.secrets_key {
        return Ok(sb.clone());
    }
    match config.engine {
        Engine::Postgres => anyhow::bail!(
            "secrets_key is required: it seals payment keys, webhook secrets, TOTP seeds, \
             signing keys and server credentials at rest; {HOW}"
        ),
        Engine::Sqlite => {
            let Some(folder) = sqlite_folder(config.database_url.expose_secret()) else {
                anyhow::bail!(
                    "secrets_key is required for an in-memory SQLite database (there is no \
                     data folder to keep a generated one in); {HOW}"
                );
            };
            load_or_generate(&folder.join(KEY_FILE))
        }
    }
}

/// The folder of a SQLite database file, or `None` for an in-memory one.
fn sqlite_folder(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return None;
    }
    let folder = Path::new(path).parent()?;
    Some(if folder.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        folder.to_path_buf()
    })
}

fn load_or_generate(path: &Path) -> anyhow::Result<SecretBox> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create the data folder {}", folder.display()))?;
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let encoded = STANDARD.encode(key);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(format!("{encoded}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write the secrets key {}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                "no secrets_key configured: generated one into {} (mode 0600); back it up with the \
                 database (without it, sealed secrets cannot be opened), or configure \
                 secrets_key instead",
                path.display()
            );
            SecretBox::from_base64(&encoded).map_err(|why| anyhow::anyhow!("secrets key: {why}"))
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(err) => Err(err)
            .with_context(|| format!("cannot create the secrets key file {}", path.display())),
    }
}

fn read(path: &Path) -> anyhow::Result<SecretBox> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the secrets key {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the secrets key file is readable by others; chmod 600 it");
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secrets key {}", path.display()))?;
    let sb = SecretBox::from_base64(&text)
        .map_err(|why| anyhow::anyhow!("invalid secrets_key (from {}): {why}", path.display()))?;
    tracing::info!(path = %path.display(), "secrets_key read from {}", path.display());
    Ok(sb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_lives_beside_a_sqlite_file() {
        assert_eq!(
            sqlite_folder("sqlite://./data/mpanel.db"),
            Some(PathBuf::from("./data"))
        );
        assert_eq!(
            sqlite_folder("sqlite:///var/lib/mpanel/m.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/mpanel"))
        );
        assert_eq!(sqlite_folder("sqlite:m.db"), Some(PathBuf::from(".")));
        assert_eq!(sqlite_folder("sqlite::memory:"), None);
        assert_eq!(sqlite_folder("sqlite://x.db?mode=memory"), None);
    }
}
