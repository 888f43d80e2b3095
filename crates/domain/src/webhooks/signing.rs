//! Signatures as the Standard Webhooks specification defines them: the
//! receiver gets `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//! keyed with the endpoint's secret, shown once as `whsec_<base64 key>`.
//! Any Standard Webhooks library verifies them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// An endpoint's signing key (24 to 64 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// A secret from random bytes the caller drew.
    pub fn from_key(key: [u8; 32]) -> Self {
        Self(key.to_vec())
    }

    /// `whsec_<base64>` as shown to the tenant (and stored sealed).
    pub fn parse(text: &str) -> Option<Self> {
        let key = STANDARD.decode(text.strip_prefix(SECRET_PREFIX)?).ok()?;
        (24..=64).contains(&key.len()).then_some(Self(key))
    }

    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` value for one message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        // A key of any length is accepted by HMAC: this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// The three headers of one delivery attempt.
    pub fn headers(&self, message_id: &str, timestamp: i64, body: &[u8]) -> SignatureHeaders {
        SignatureHeaders {
            id: message_id.to_owned(),
            timestamp: timestamp.to_string(),
            signature: self.sign(message_id, timestamp, body),
        }
    }
}

/// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_reference_libraries_test_vector() {
        // The vector the Standard Webhooks reference libraries test with.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_round_trips_and_short_keys_are_refused() {
        let secret = WebhookSecret::from_key([7; 32]);
        assert_eq!(WebhookSecret::parse(&secret.expose()), Some(secret));
        assert_eq!(WebhookSecret::parse("whsec_AAAA"), None);
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            None
        );
        assert_eq!(
            format!("{:?}", WebhookSecret::from_key([1; 32])),
            "WebhookSecret(…)"
        );
    }
}
