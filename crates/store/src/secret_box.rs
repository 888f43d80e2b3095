//! Secrets at rest: sealed with AES-256-GCM under a key from configuration
//! (`secrets_key`), a fresh random nonce per value. Stored as `v1:` +
//! base64(nonce ‖ ciphertext ‖ tag); the database alone reveals nothing.
//! Every value is bound to its row: the associated data names the kind of
//! secret and the row (see [`Binding`]), so a sealed value copied to another
//! row or column does not open.
//!
//! The box lives in the store crate so a [`crate::Store`] can carry it to
//! the services that seal and open (the store itself never opens anything).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The prefix of every sealed value.
pub const SEALED_PREFIX: &str = "v1:";

/// A value could not be sealed or opened. Says nothing about the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub String);

/// Whether a stored value is sealed (rather than clear text from before
/// sealing existed).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// The kinds of sealed values, and how their row is named in the binding.
pub mod kind {
    /// `billing_settings.stripe_secret_key`; row: the tenant id.
    pub const STRIPE_SECRET_KEY: &str = "stripe_secret_key";
    /// `billing_settings.stripe_webhook_secret`; row: the tenant id.
    pub const STRIPE_WEBHOOK_SECRET: &str = "stripe_webhook_secret";
    /// `webhook_secrets.secret`; row: `<tenant id>/<row id>`.
    pub const ORDER_WEBHOOK_SECRET: &str = "order_webhook_secret";
    /// `mfa_totp.secret`; row: `<tenant id>/<user id>`.
    pub const TOTP_SEED: &str = "totp_seed";
    /// `signing_keys.secret`; row: the key's name.
    pub const SIGNING_KEY: &str = "signing_key";
    /// `dkim_keys.private_key`; row: `<tenant id>/<key id>`.
    pub const DKIM_KEY: &str = "dkim_key";
    /// `email_outbox.link_sealed`; row: `<tenant id>/<message id>`.
    pub const EMAIL_LINK: &str = "email_link";
    /// `acme_accounts.key_sealed` (PKCS#8); row: `<tenant id>/<directory URL>`.
    pub const ACME_ACCOUNT_KEY: &str = "acme_account_key";
    /// `ssl_certificates.key_sealed` (PEM); row: `<tenant id>/<certificate id>`.
    pub const UPLOADED_TLS_KEY: &str = "uploaded_tls_key";
    /// `backup_repositories.password`; row: the repository id.
    pub const BACKUP_REPOSITORY: &str = "backup_repository";
    /// `backup_repositories.login_key` (the Ed25519 seed, hex); row: the
    /// repository id.
    pub const BACKUP_LOGIN: &str = "backup_login";
    /// Keyed hashes of recovery codes (a purpose for [`super::SecretBox::mac`]).
    pub const RECOVERY_CODE: &str = "recovery_code";

    /// The row part of a binding for a row owned by a tenant.
    pub fn tenant_row(tenant: uuid::Uuid, row: uuid::Uuid) -> String {
        format!("{tenant}/{row}")
    }
}

/// The associated data that binds a sealed value to its kind and row, e.g.
/// `binding("stripe_secret_key", &tenant_id.to_string())`.
pub fn binding(kind: &str, row: &str) -> Vec<u8> {
    format!("mpanel/{kind}/{row}").into_bytes()
}

#[derive(Clone)]
pub struct SecretBox {
    key: std::sync::Arc<LessSafeKey>,
    /// For keyed hashes ([`SecretBox::mac`]): derived from the key, never
    /// the key itself.
    mac_root: ring::hmac::Key,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    /// From the configured key: 32 bytes, base64-encoded.
    pub fn from_base64(key: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| "must be base64 (e.g. `openssl rand -base64 32`)".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!("must decode to 32 bytes, not {}", bytes.len()));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "unusable key".to_owned())?;
        let root = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes),
            b"mpanel keyed hashes v1",
        );
        Ok(Self {
            key: std::sync::Arc::new(LessSafeKey::new(key)),
            mac_root: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, root.as_ref()),
        })
    }

    /// A keyed hash (HMAC-SHA256) of `data` for `purpose`, under a key
    /// derived from `secrets_key`: without the key, a stolen database
    /// cannot test guesses against it.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        let sub = ring::hmac::sign(&self.mac_root, purpose.as_bytes());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, sub.as_ref());
        ring::hmac::sign(&key, data).as_ref().to_vec()
    }

    /// Seals a text value bound to `kind` and `row` (see [`binding`]).
    pub fn seal_str(&self, value: &str, kind: &str, row: &str) -> Result<String, SealError> {
        self.seal(value.as_bytes(), &binding(kind, row))
    }

    /// Opens what [`SecretBox::seal_str`] made for the same `kind` and `row`.
    pub fn open_str(&self, sealed: &str, kind: &str, row: &str) -> Result<String, SealError> {
        let raw = self.open(sealed, &binding(kind, row))?;
        String::from_utf8(raw).map_err(|_| SealError("a stored secret is not text".into()))
    }

    /// Seals `plaintext`; `context` (e.g. the server id) is authenticated
    /// too, so a sealed value cannot be moved to another row.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError("no randomness for a nonce".into()))?;
        let mut data = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut data,
            )
            .map_err(|_| SealError("cannot seal a secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(out)))
    }

    /// Opens what `seal` made with the same key and context.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let fail = || {
            SealError(
                "a stored secret cannot be opened with the configured secrets_key (or it was moved from another row)".into(),
            )
        };
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or_else(fail)?;
        if raw.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut data)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = STANDARD.encode([7u8; 32]);
        let sb = SecretBox::from_base64(&key).unwrap();
        let sealed = sb
            .seal(b"-----BEGIN OPENSSH PRIVATE KEY-----", b"server-1")
            .unwrap();
        assert!(!sealed.contains("OPENSSH"));
        assert_ne!(
            sealed,
            sb.seal(b"-----BEGIN OPENSSH PRIVATE KEY-----", b"server-1")
                .unwrap()
        );
        assert_eq!(
            sb.open(&sealed, b"server-1").unwrap(),
            b"-----BEGIN OPENSSH PRIVATE KEY-----"
        );
        assert!(sb.open(&sealed, b"server-2").is_err());
        let other = SecretBox::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open(&sealed, b"server-1").is_err());
        assert!(SecretBox::from_base64("short").is_err());
    }

    #[test]
    fn text_values_are_bound_to_kind_and_row() {
        let sb = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let sealed = sb
            .seal_str("whsec_abc", "stripe_webhook_secret", "t1")
            .unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("whsec_abc"));
        assert_eq!(
            sb.open_str(&sealed, "stripe_webhook_secret", "t1").unwrap(),
            "whsec_abc"
        );
        assert!(sb.open_str(&sealed, "stripe_webhook_secret", "t2").is_err());
        assert!(sb.open_str(&sealed, "stripe_secret_key", "t1").is_err());
    }

    #[test]
    fn keyed_hashes_depend_on_key_and_purpose() {
        let a = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let b = SecretBox::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert_eq!(a.mac("p", b"x"), a.mac("p", b"x"));
        assert_ne!(a.mac("p", b"x"), a.mac("q", b"x"));
        assert_ne!(a.mac("p", b"x"), b.mac("p", b"x"));
        assert_eq!(a.mac("p", b"x").len(), 32);
    }
}
