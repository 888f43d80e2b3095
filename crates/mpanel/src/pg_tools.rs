//! `pg_dump` and `pg_restore`, as `mpanel backup`/`restore` run them on
//! PostgreSQL: found on `PATH` or under `/usr/lib/postgresql/*/bin`, given
//! the connection as a URL without its password, and the password in the
//! child's environment (`PGPASSWORD`): the command line is visible to every
//! user in `ps`, a process's environment only to its owner and root.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Query parameters libpq understands, under sqlx's spelling where it has
/// its own; anything else in the URL is sqlx's (pool tuning) and dropped,
/// since libpq refuses unknown parameters.
const LIBPQ_PARAMS: &[(&str, &str)] = &[
    ("sslmode", "sslmode"),
    ("ssl-mode", "sslmode"),
    ("sslrootcert", "sslrootcert"),
    ("ssl-root-cert", "sslrootcert"),
    ("ssl-ca", "sslrootcert"),
    ("sslcert", "sslcert"),
    ("ssl-cert", "sslcert"),
    ("sslkey", "sslkey"),
    ("ssl-key", "sslkey"),
    ("host", "host"),
    ("hostaddr", "hostaddr"),
    ("port", "port"),
    ("dbname", "dbname"),
    ("user", "user"),
    ("application_name", "application_name"),
    ("options", "options"),
    ("connect_timeout", "connect_timeout"),
];

/// A PostgreSQL URL split for libpq: the URL without any password, and
/// the password.
pub struct PgTarget {
    pub url: String,
    pub password: Option<String>,
}

impl PgTarget {
    pub fn parse(database_url: &str) -> anyhow::Result<Self> {
        let mut url = url::Url::parse(database_url)
            .context("the database URL is not a valid postgres:// URL")?;
        let mut password = url.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        let _ = url.set_password(None);
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            if key == "password" {
                password = Some(value.into_owned());
            } else if let Some((_, libpq)) = LIBPQ_PARAMS.iter().find(|(k, _)| *k == key) {
                kept.push(((*libpq).to_owned(), value.into_owned()));
            }
        }
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
        Ok(Self {
            url: url.to_string(),
            password,
        })
    }

    /// `tool` connecting here: `--dbname=URL` and `PGPASSWORD`.
    fn command(&self, tool: &Path) -> Command {
        let mut cmd = Command::new(tool);
        cmd.arg(format!("--dbname={}", self.url));
        // Only this URL's password, never one the operator's environment
        // holds for another server.
        cmd.env_remove("PGPASSWORD");
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        cmd
    }
}

/// Where `name` (`pg_dump`, `pg_restore`) is: on `PATH`, else the newest
/// under `/usr/lib/postgresql/*/bin`.
pub fn find(name: &str) -> anyhow::Result<PathBuf> {
    find_in(
        name,
        std::env::var_os("PATH").as_deref(),
        Path::new("/usr/lib/postgresql"),
    )
}

fn find_in(name: &str, path: Option<&std::ffi::OsStr>, versions: &Path) -> anyhow::Result<PathBuf> {
    let on_path = path
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if let Some(found) = on_path {
        return Ok(found);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(versions)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let tool = entry.path().join("bin").join(name);
            tool.is_file().then_some((version, tool))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, tool)) => Ok(tool),
        None => bail!(
            "{name} was not found (neither on PATH nor in /usr/lib/postgresql/*/bin): a PostgreSQL \
             database is backed up and restored with PostgreSQL's own tools; install them \
             (Debian/Ubuntu: `apt-get install postgresql-client`, the same major version as the \
             server or newer)"
        ),
    }
}

/// `pg_dump --format=custom` of `target` into `file`.
pub fn dump(target: &PgTarget, file: &Path) -> anyhow::Result<()> {
    let tool = find("pg_dump")?;
    let mut cmd = target.command(&tool);
    cmd.arg("--format=custom")
        .arg(arg_with("--file=", file))
        .arg("--no-password");
    run(cmd, &tool)
}

/// `pg_restore` of `file` into `target`: without the dump's owners and
/// grants (the roles may not exist on this server; the tables belong to
/// the user restoring), stopping at the first error, in one transaction
/// (a failed restore leaves the database as it was); `clean` drops the
/// dump's objects first.
pub fn restore(target: &PgTarget, file: &Path, clean: bool) -> anyhow::Result<()> {
    let tool = find("pg_restore")?;
    let mut cmd = target.command(&tool);
    cmd.args([
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
    ]);
    if clean {
        cmd.args(["--clean", "--if-exists"]);
    }
    cmd.arg(file);
    run(cmd, &tool)
}

/// The migration versions a dump's `_sqlx_migrations` table records as
/// applied, read with `pg_restore --data-only` (no database needed).
pub fn dump_versions(file: &Path) -> anyhow::Result<Vec<i64>> {
    let tool = find("pg_restore")?;
    let out = Command::new(&tool)
        .args(["--data-only", "--table=_sqlx_migrations", "--file=-"])
        .arg(file)
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !out.status.success() {
        bail!(
            "{} cannot read {}: {}",
            tool.display(),
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_copy_versions(&String::from_utf8_lossy(&out.stdout))
}

/// The `version`s of the rows whose `success` is true, from the `COPY …
/// _sqlx_migrations (…) FROM stdin;` block of a plain-text dump.
fn parse_copy_versions(sql: &str) -> anyhow::Result<Vec<i64>> {
    let mut lines = sql.lines();
    let Some(header) = lines
        .by_ref()
        .find(|l| l.starts_with("COPY ") && l.contains("_sqlx_migrations ("))
    else {
        return Ok(Vec::new());
    };
    let columns: Vec<&str> = header
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(cols, _)| cols.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let at = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(version), success) = (at("version"), at("success")) else {
        bail!("the dump's _sqlx_migrations table has no version column");
    };
    let mut versions = Vec::new();
    for line in lines.take_while(|l| *l != "\\.") {
        let fields: Vec<&str> = line.split('\t').collect();
        if success.is_some_and(|i| fields.get(i) != Some(&"t")) {
            continue;
        }
        let v = fields
            .get(version)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("unreadable migration row in the dump: {line:?}"))?;
        versions.push(v);
    }
    Ok(versions)
}

fn arg_with(prefix: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(prefix);
    arg.push(path.as_os_str());
    arg
}

fn run(mut cmd: Command, tool: &Path) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            tool.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        let t = PgTarget::parse("postgres://mp:s%40cret@db:5432/mpanel?sslmode=require").unwrap();
        assert_eq!(t.url, "postgres://mp@db:5432/mpanel?sslmode=require");
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        let t = PgTarget::parse(
            "postgres://mp@db/mpanel?password=x&statement-cache-capacity=10&ssl-mode=disable",
        )
        .unwrap();
        assert_eq!(t.url, "postgres://mp@db/mpanel?sslmode=disable");
        assert_eq!(t.password.as_deref(), Some("x"));
        let t = PgTarget::parse("postgres://postgres@127.0.0.1:5/db").unwrap();
        assert_eq!(t.url, "postgres://postgres@127.0.0.1:5/db");
        assert_eq!(t.password, None);
    }

    #[test]
    fn the_newest_installed_tool_is_found_else_the_package_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_in("pg_dump", Some(dir.path().as_os_str()), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("pg_dump was not found"), "{err}");
        assert!(err.contains("apt-get install postgresql-client"), "{err}");
        for version in ["13", "15"] {
            let bin = dir.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("pg_dump"), b"").unwrap();
        }
        let found = find_in("pg_dump", None, dir.path()).unwrap();
        assert_eq!(found, dir.path().join("15/bin/pg_dump"));
    }

    #[test]
    fn applied_versions_come_from_the_copy_block() {
        let sql = "SET x = 1;\n\
            COPY public._sqlx_migrations (version, description, installed_on, success, checksum, execution_time) FROM stdin;\n\
            1\tfoundation\t2026-01-01\tt\t\\\\x01\t5\n\
            23\tbackups\t2026-01-01\tt\t\\\\x02\t5\n\
            24\tbroken\t2026-01-01\tf\t\\\\x03\t5\n\
            \\.\n\n-- done\n";
        assert_eq!(parse_copy_versions(sql).unwrap(), vec![1, 23]);
        assert!(parse_copy_versions("-- nothing").unwrap().is_empty());
    }
}
