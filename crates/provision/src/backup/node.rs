//! One restic session on the node holding a target's data.

use std::time::Duration;

use mpanel_domain::backups::TargetKind;
use mpanel_services::backups::TenantRepository;
use mpanel_services::secret_box::SecretBox;
use mpanel_store::backups::{RunRecord, TargetRecord};
use mpanel_store::servers::ServerRecord;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::ssh::{self, Output, SshTarget, sh_quote};
use crate::web::account_user;
use crate::{DriverError, nodes};

/// The node script (see its header), sent inline to mail nodes.
const RESTIC_SCRIPT: &str = include_str!("../../../../scripts/node/mpanel-restic");

/// A backup or restore may take this long (a large site over a slow link).
const LONG: Duration = Duration::from_secs(2 * 3600);
const PRUNE: Duration = Duration::from_secs(30 * 60);

/// Exit codes of the node script.
const BAD_ARGS: i32 = 2;
const NOTHING: i32 = 3;
const LOCKED: i32 = 4;

/// What restic's backup summary says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub snapshot_id: String,
    pub bytes: i64,
    pub files: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(Summary),
    Failed(String),
    /// Another run holds the repository's lock: try again later.
    Locked(String),
}

/// A restore as the node is asked to do it.
pub struct NodeRun {
    snapshot: String,
    path: String,
    beside: bool,
}

impl NodeRun {
    pub fn restore(run: &RunRecord) -> Self {
        Self {
            snapshot: run.snapshot_id.clone().unwrap_or_default(),
            path: run.restore_path.clone().unwrap_or_default(),
            beside: run.restore_to.is_some(),
        }
    }
}

enum Place {
    /// The helper's command and the account's user.
    Web { helper: String, user: String },
    /// The mailbox's home, and the mail root (restores stage under it).
    Mail { home: String, root: String },
}

/// The node's SSH session, what to run there, and the repository's
/// access (the tenant's own login, never the backup server's) for its
/// stdin.
pub struct Access {
    ssh: SshTarget,
    place: Place,
    stdin: Vec<u8>,
    /// The tenant's login key this access uses, as stored (sealed).
    login_key: String,
    _keys: nodes::Ssh,
}

#[derive(Deserialize)]
struct RawSummary {
    snapshot_id: String,
    #[serde(default)]
    total_bytes_processed: i64,
    #[serde(default)]
    total_files_processed: i64,
}

#[derive(Deserialize)]
struct RawSnapshot {
    id: String,
}

impl Access {
    pub fn new(
        sb: &SecretBox,
        node: &ServerRecord,
        repo: &TenantRepository,
        t: &TargetRecord,
    ) -> Result<Self, DriverError> {
        let stdin = access_text(repo)?.into_bytes();
        let login_key = repo.login.sealed.clone();
        match t.kind {
            TargetKind::Site => {
                let (web, keys) = nodes::web(sb, node)?;
                Ok(Self {
                    ssh: web.ssh.clone(),
                    place: Place::Web {
                        helper: web.helper.clone(),
                        user: account_user(t.account_id),
                    },
                    stdin,
                    login_key,
                    _keys: keys,
                })
            }
            TargetKind::Mailbox => {
                let (mail, keys) = nodes::mail(sb, node)?;
                let (local, domain) = t.label.rsplit_once('@').ok_or_else(|| {
                    DriverError::Permanent(format!("{} is not an address", t.label))
                })?;
                let root = mail.root_dir.trim_end_matches('/').to_owned();
                let home = format!("{root}/{domain}/{local}");
                Ok(Self {
                    ssh: mail.ssh.clone(),
                    place: Place::Mail { home, root },
                    stdin,
                    login_key,
                    _keys: keys,
                })
            }
        }
    }

    /// The tenant's login key this access uses, as stored (sealed).
    pub fn login_key(&self) -> &str {
        &self.login_key
    }

    /// `command args…` of the node script: through the web helper (which
    /// adds the account's folder) or inline on a mail node.
    fn script(&self, web_args: &[&str], mail_args: &[&str]) -> String {
        let quoted = |args: &[&str]| {
            args.iter()
                .map(|a| sh_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match &self.place {
            Place::Web { helper, .. } => format!("{helper} {}\n", quoted(web_args)),
            Place::Mail { .. } => format!(
                "bash -c {} mpanel-restic {}\n",
                sh_quote(RESTIC_SCRIPT),
                quoted(mail_args)
            ),
        }
    }

    async fn run(&self, script: &str, limit: Duration) -> Result<Output, DriverError> {
        ssh::run_with_timeout(&self.ssh, script, Some(&self.stdin), limit).await
    }

    /// A backup dated `at`; `fresh`: the repository may be made (its
    /// first backup), else a missing repository is an error.
    pub async fn backup(&self, tag: &str, at: OffsetDateTime, fresh: bool) -> Outcome {
        let time = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        let fresh = if fresh { "new" } else { "existing" };
        let script = match &self.place {
            Place::Web { user, .. } => self.script(&["backup", user, tag, &time, fresh], &[]),
            Place::Mail { home, .. } => self.script(&[], &["backup", tag, &time, home, fresh]),
        };
        let out = match self.run(&script, LONG).await {
            Ok(out) => out,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        match out.status {
            0 => match parse_summary(&out.stdout) {
                Some(s) => Outcome::Done(s),
                None => {
                    Outcome::Failed(format!("restic reported no snapshot: {}", out.error_text()))
                }
            },
            LOCKED => Outcome::Locked(out.error_text()),
            _ => Outcome::Failed(out.error_text()),
        }
    }

    /// Forgets the tag's snapshots beyond the policy (and with `prune`
    /// removes their data); the (full) ids kept.
    pub async fn forget(
        &self,
        tag: &str,
        daily: u32,
        weekly: u32,
        prune: bool,
    ) -> Result<Vec<String>, DriverError> {
        let (d, w) = (daily.to_string(), weekly.to_string());
        let p = if prune { "prune" } else { "keep" };
        let script = self.script(
            &["restic-forget", tag, &d, &w, p],
            &["forget", tag, &d, &w, p],
        );
        let out = checked(self.run(&script, PRUNE).await?, "pruning backups")?;
        let json = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("SNAPSHOTS "))
            .ok_or_else(|| DriverError::Transient("restic listed no snapshots".into()))?;
        let kept: Vec<RawSnapshot> = serde_json::from_str(json)
            .map_err(|e| DriverError::Transient(format!("restic's snapshot list: {e}")))?;
        Ok(kept.into_iter().map(|s| s.id).collect())
    }

    /// Removes every snapshot of the tag (recorded or not).
    pub async fn forget_tag(&self, tag: &str) -> Result<(), DriverError> {
        let script = self.script(&["restic-forget-tag", tag], &["forget-tag", tag]);
        checked(self.run(&script, PRUNE).await?, "removing backups").map(drop)
    }

    /// Carries out a restore; where it went when beside.
    pub async fn restore(&self, r: &NodeRun) -> Result<Option<String>, DriverError> {
        let mode = if r.beside { "beside" } else { "inplace" };
        let script = match &self.place {
            Place::Web { user, .. } => {
                self.script(&["restore", user, &r.snapshot, &r.path, mode], &[])
            }
            Place::Mail { home, root } => mail_restore(root, home, r, mode),
        };
        let out = checked(self.run(&script, LONG).await?, "restoring")?;
        Ok(out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESTORED_TO "))
            .map(str::to_owned))
    }
}

/// A mailbox restore: restic into a staging folder under the mail root
/// (not /tmp), then in place (each message the maildir no longer has, by
/// its name before the flags; Dovecot's own index and UID files are left
/// alone) or beside, as the IMAP folder `Restored-<snapshot>` holding the
/// messages of the path's folder.
fn mail_restore(root: &str, home: &str, r: &NodeRun, mode: &str) -> String {
    format!(
        r#"set -eu
umask 077
S={script}
root={root}; home={home}; path={path}; snap={snap}; mode={mode}
staging=$(mktemp -d "$root/.mpanel-restore.XXXXXX")
trap 'rm -rf "$staging"' EXIT
bash -c "$S" mpanel-restic restore "$snap" "$home$path" "$staging"
src="$staging$home$path"
if [ "$mode" = inplace ]; then
    find "$src" -type d \( -name cur -o -name new \) | while IFS= read -r d; do
        rel=${{d#"$staging$home"}}
        folder=$(dirname "$home$rel")
        mkdir -p "$folder/cur" "$folder/new" "$folder/tmp"
        find "$d" -maxdepth 1 -type f | while IFS= read -r f; do
            b=$(basename "$f"); base=${{b%%:*}}; seen=""
            for x in "$folder/cur/$base"* "$folder/new/$base"*; do [ -e "$x" ] && seen=1; done
            [ -n "$seen" ] || cp -p "$f" "$home$rel/"
        done
    done
else
    dest="$home/Maildir/.Restored-$snap"
    mkdir -p "$dest/cur" "$dest/new" "$dest/tmp"
    for d in cur new; do
        if [ -d "$src/$d" ]; then
            find "$src/$d" -maxdepth 1 -type f -exec cp -p {{}} "$dest/$d/" \;
        fi
    done
    printf 'RESTORED_TO Restored-%s\n' "$snap"
fi
"#,
        script = sh_quote(RESTIC_SCRIPT),
        root = sh_quote(root),
        home = sh_quote(home),
        path = sh_quote(&r.path),
        snap = sh_quote(&r.snapshot),
        mode = sh_quote(mode),
    )
}

fn checked(out: Output, what: &str) -> Result<Output, DriverError> {
    match out.status {
        0 => Ok(out),
        BAD_ARGS | NOTHING => Err(DriverError::Permanent(format!(
            "{what}: {}",
            out.error_text()
        ))),
        LOCKED => Err(DriverError::Transient(format!(
            "{what}: the repository is locked by another run: {}",
            out.error_text()
        ))),
        _ => Err(DriverError::Permanent(format!(
            "{what}: {}",
            out.error_text()
        ))),
    }
}

fn parse_summary(stdout: &str) -> Option<Summary> {
    let json = stdout.lines().find_map(|l| l.strip_prefix("SUMMARY "))?;
    let raw: RawSummary = serde_json::from_str(json).ok()?;
    Some(Summary {
        snapshot_id: raw.snapshot_id,
        bytes: raw.total_bytes_processed,
        files: raw.total_files_processed,
    })
}

/// The stdin of the node script: repository, password, the tenant's
/// login on the backup server, the server's host key, the login's private
/// key.
fn access_text(r: &TenantRepository) -> Result<String, DriverError> {
    let backup = &r.server;
    let host_key = backup
        .settings
        .get("host_key")
        .and_then(|v| v.as_str())
        .map(|k| k.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .ok_or_else(|| {
            DriverError::Permanent(format!("backup server {} has no host_key", backup.name))
        })?;
    Ok(format!(
        "{}\n{}\n{} {} {}\n{host_key}\n{}",
        mpanel_services::backups::login::REPO_PATH,
        r.password,
        r.login.user,
        backup.address.trim_matches(['[', ']']),
        backup.port,
        r.login.private_key()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_gives_snapshot_size_and_files() {
        let out = "SUMMARY {\"message_type\":\"summary\",\"total_files_processed\":2,\"total_bytes_processed\":5,\"snapshot_id\":\"b242ce75\"}\n";
        assert_eq!(
            parse_summary(out),
            Some(Summary {
                snapshot_id: "b242ce75".into(),
                bytes: 5,
                files: 2
            })
        );
        assert_eq!(parse_summary("nothing"), None);
    }
}
