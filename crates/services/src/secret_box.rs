//! Secrets at rest (server credentials): sealed with AES-256-GCM under a
//! key from configuration (`secrets_key`), a fresh random nonce per value.
//! Stored as `v1:` + base64(nonce ‖ ciphertext ‖ tag); the database alone
//! reveals nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::ServiceError;

#[derive(Clone)]
pub struct SecretBox {
    key: std::sync::Arc<LessSafeKey>,
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
        Ok(Self {
            key: std::sync::Arc::new(LessSafeKey::new(key)),
        })
    }

    /// Seals `plaintext`; `context` (e.g. the server id) is authenticated
    /// too, so a sealed value cannot be moved to another row.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, ServiceError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ServiceError::Internal("no randomness for a nonce".into()))?;
        let mut data = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut data,
            )
            .map_err(|_| ServiceError::Internal("cannot seal a secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("v1:{}", STANDARD.encode(out)))
    }

    /// Opens what `seal` made with the same key and context.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let fail = || {
            ServiceError::Internal(
                "a stored secret cannot be opened with the configured secrets_key".into(),
            )
        };
        let raw = sealed
            .strip_prefix("v1:")
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
}
