//! Each tenant's own SFTP login on its backup server. The server's helper
//! (`scripts/node/mpanel-backup-helper`, run over SSH by mPanel's own
//! login there) makes a chrooted user per repository whose key opens that
//! repository only; that key, not the server's, is what a node gets for a
//! run. So a node (or a node's root) sees keys to the repositories of the
//! tenants whose data it already holds, and to no other tenant's.

use mpanel_domain::BackupRepoId;
use mpanel_store::backups::{RepoLogin, RepoRecord};
use mpanel_store::secret_box::{SecretBox, kind};

use crate::ServiceError;
use crate::ssh_key::SshKeyPair;

/// The repository's path as its login sees it (the helper makes it in the
/// user's chroot).
pub const REPO_PATH: &str = "/repo";

/// A repository's login, opened for a run.
pub struct Login {
    pub user: String,
    /// Its key's comment: `mpanel-tenant-<tenant id>`, so an operator
    /// reading the server's keys knows whose login it is.
    pub comment: String,
    pub key: SshKeyPair,
    /// The key as stored (sealed): which key a run used.
    pub sealed: String,
    /// Whether the helper has made it on the server.
    pub ready: bool,
}

impl Login {
    /// The public key line the helper authorizes.
    pub fn public_line(&self) -> String {
        self.key.public_line(&self.comment)
    }

    /// The private key as a node's ssh reads it.
    pub fn private_key(&self) -> String {
        self.key.private_openssh(&self.comment)
    }
}

/// The login's user on the backup server: `mpb-` and the repository id's
/// last 24 hex digits (its random part; a user name has at most 32
/// characters). Two repositories of one server never share one: the
/// store's unique index refuses it.
pub fn user_name(repo: BackupRepoId) -> String {
    let hex = repo.as_uuid().simple().to_string();
    format!("mpb-{}", &hex[hex.len() - 24..])
}

/// A new login for the repository, its key sealed.
pub fn new_login(secrets: &SecretBox, repo: BackupRepoId) -> Result<RepoLogin, ServiceError> {
    let key = SshKeyPair::generate()?;
    let sealed = secrets
        .seal_str(&key.seed_hex(), kind::BACKUP_LOGIN, &repo.to_string())
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(RepoLogin {
        user: user_name(repo),
        key: sealed,
        ready_at: None,
    })
}

/// The repository's login, its key opened.
pub fn open(secrets: &SecretBox, repo: &RepoRecord) -> Result<Login, ServiceError> {
    let login = repo.login.as_ref().ok_or_else(|| {
        ServiceError::internal_msg(format!("backup repository {} has no login", repo.id))
    })?;
    let seed = secrets
        .open_str(&login.key, kind::BACKUP_LOGIN, &repo.id.to_string())
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(Login {
        user: login.user.clone(),
        comment: format!("mpanel-tenant-{}", repo.tenant_id),
        key: SshKeyPair::from_seed_hex(&seed)?,
        sealed: login.key.clone(),
        ready: login.ready_at.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_user_is_a_short_unix_name_of_the_repository() {
        let id = BackupRepoId::new();
        let name = user_name(id);
        assert_eq!(name.len(), 28);
        assert!(name.starts_with("mpb-"));
        assert!(
            name[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(user_name(BackupRepoId::new()), name);
    }
}
