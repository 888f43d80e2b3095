//! Ed25519 SSH keys that mPanel makes itself, in OpenSSH's own formats:
//! the private key as `ssh-keygen` writes it (unencrypted
//! `openssh-key-v1`, PROTOCOL.key) and the public key as an
//! `authorized_keys` line.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::ServiceError;

const KEY_TYPE: &str = "ssh-ed25519";

/// An Ed25519 key pair.
pub struct SshKeyPair {
    seed: [u8; 32],
    public: [u8; 32],
}

impl SshKeyPair {
    /// A new key from 32 random bytes.
    pub fn generate() -> Result<Self, ServiceError> {
        Self::from_seed(crate::identity::secrets::random_bytes::<32>()?)
    }

    fn from_seed(seed: [u8; 32]) -> Result<Self, ServiceError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| ServiceError::internal_msg(format!("an Ed25519 key: {e}")))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(Self { seed, public })
    }

    /// The key of a seed kept as hex (64 digits).
    pub fn from_seed_hex(hex: &str) -> Result<Self, ServiceError> {
        let bad = || ServiceError::internal_msg("an Ed25519 seed is 64 hex digits");
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = hex
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)?;
        }
        Self::from_seed(seed)
    }

    /// The seed as hex: what is kept (sealed) to make the key again.
    pub fn seed_hex(&self) -> String {
        self.seed.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The `authorized_keys` line: `ssh-ed25519 BASE64 COMMENT`.
    pub fn public_line(&self, comment: &str) -> String {
        format!(
            "{KEY_TYPE} {} {comment}",
            STANDARD.encode(self.public_blob())
        )
    }

    /// The private key as `ssh-keygen -N ''` writes it.
    pub fn private_openssh(&self, comment: &str) -> String {
        let mut private = Vec::new();
        // A check number, twice (the same random-looking value: the key is
        // not encrypted, so it only has to match itself).
        let check = u32::from_be_bytes([self.seed[0], self.seed[1], self.seed[2], self.seed[3]]);
        private.extend_from_slice(&check.to_be_bytes());
        private.extend_from_slice(&check.to_be_bytes());
        put_string(&mut private, KEY_TYPE.as_bytes());
        put_string(&mut private, &self.public);
        let mut secret = Vec::with_capacity(64);
        secret.extend_from_slice(&self.seed);
        secret.extend_from_slice(&self.public);
        put_string(&mut private, &secret);
        put_string(&mut private, comment.as_bytes());
        let mut pad = 1u8;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }
        let mut blob = b"openssh-key-v1\0".to_vec();
        put_string(&mut blob, b"none");
        put_string(&mut blob, b"none");
        put_string(&mut blob, b"");
        blob.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut blob, &self.public_blob());
        put_string(&mut blob, &private);
        let text = STANDARD.encode(&blob);
        let mut out = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
        for chunk in text.as_bytes().chunks(70) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END OPENSSH PRIVATE KEY-----\n");
        out
    }

    fn public_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(51);
        put_string(&mut blob, KEY_TYPE.as_bytes());
        put_string(&mut blob, &self.public);
        blob
    }
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_as_itself_and_its_public_line_names_it() {
        let pair = SshKeyPair::generate().unwrap();
        let text = pair.private_openssh("mpanel-test");
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(text.lines().all(|l| l.len() <= 70));
        let again = SshKeyPair::from_seed_hex(&pair.seed_hex()).unwrap();
        assert_eq!(again.private_openssh("x"), pair.private_openssh("x"));
        assert!(SshKeyPair::from_seed_hex("00").is_err());
        assert!(SshKeyPair::from_seed_hex(&"zz".repeat(32)).is_err());
        let line = pair.public_line("mpanel-test");
        assert!(
            line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
            "{line}"
        );
        assert!(line.ends_with(" mpanel-test"));
    }

    /// OpenSSH itself reads the private key and derives the same public
    /// key (where `ssh-keygen` is installed, as it is wherever mPanel
    /// reaches nodes).
    #[test]
    fn ssh_keygen_derives_the_same_public_key() {
        if std::process::Command::new("ssh-keygen")
            .arg("-?")
            .output()
            .is_err()
        {
            return;
        }
        let pair = SshKeyPair::generate().unwrap();
        let dir = tempfile_dir();
        let path = dir.join("id");
        std::fs::write(&path, pair.private_openssh("c")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let out = std::process::Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let derived = String::from_utf8_lossy(&out.stdout);
        let ours = pair.public_line("c");
        assert_eq!(
            derived.split_whitespace().take(2).collect::<Vec<_>>(),
            ours.split_whitespace().take(2).collect::<Vec<_>>()
        );
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mpanel-ssh-key-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
