//! A tenant's own SFTP login made on its backup server, by the server's
//! helper (`scripts/node/mpanel-backup-helper login USER [OLD_PATH]`, the
//! public key on stdin) over mPanel's SSH login there; a repository made
//! before logins were per tenant is moved into the login's chroot.

use mpanel_services::backups::TenantRepository;
use mpanel_services::secret_box::SecretBox;
use mpanel_services::servers::BACKUP_HELPER_DEFAULT;

use crate::ssh::{self, sh_quote};
use crate::{DriverError, nodes};

/// How long the helper may take: it waits up to 2 minutes for another
/// run's turn, and may give a moved repository's files to the login.
const HELPER_LIMIT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Exit codes of the helper.
const BAD_ARGS: i32 = 2;
const NO_OLD_REPOSITORY: i32 = 5;
const LOCKED: i32 = 6;
const NOT_OURS: i32 = 7;

/// Makes (or confirms) the repository's login on its backup server.
pub async fn make(sb: &SecretBox, repo: &TenantRepository) -> Result<(), DriverError> {
    let server = &repo.server;
    let keys = nodes::ssh(sb, server)?;
    let helper = server
        .settings
        .get("helper")
        .and_then(|v| v.as_str())
        .unwrap_or(BACKUP_HELPER_DEFAULT);
    let mut script = format!("{helper} login {}", sh_quote(&repo.login.user));
    if let Some(old) = repo.legacy_path() {
        script.push(' ');
        script.push_str(&sh_quote(old));
    }
    script.push('\n');
    let stdin = format!("{}\n", repo.login.public_line());
    let out =
        ssh::run_with_timeout(&keys.target, &script, Some(stdin.as_bytes()), HELPER_LIMIT).await?;
    match out.status {
        0 => Ok(()),
        BAD_ARGS | NO_OLD_REPOSITORY | LOCKED | NOT_OURS => Err(DriverError::Permanent(format!(
            "making the tenant's login on backup server {}: {}",
            server.name,
            out.error_text()
        ))),
        _ => Err(DriverError::Transient(format!(
            "making the tenant's login on backup server {}: {}",
            server.name,
            out.error_text()
        ))),
    }
}
