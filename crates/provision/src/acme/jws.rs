//! The ACME account key and the JSON Web Signatures made with it: an
//! ES256 (ECDSA P-256, SHA-256) key kept as PKCS#8 so the caller can seal
//! it in the database, its JWK and RFC 7638 thumbprint, and the flattened
//! JWS JSON every ACME POST carries (RFC 8555 §6.2, RFC 7515).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use super::AcmeError;

/// An ES256 account key (P-256). The caller stores [`AccountKey::pkcs8`]
/// (sealed) and rebuilds the key with [`AccountKey::from_pkcs8`].
pub struct AccountKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("thumbprint", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

/// Who signs a request: the key itself (`jwk`, only for newAccount) or
/// the account it belongs to (`kid`, the account URL).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signer<'a> {
    Jwk,
    Kid(&'a str),
}

impl AccountKey {
    /// A new random key.
    pub fn generate() -> Result<Self, AcmeError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| AcmeError::Failed("cannot generate an ACME account key".into()))?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// The key stored as PKCS#8 DER (as [`AccountKey::pkcs8`] gave it).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, AcmeError> {
        let rng = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng).map_err(|e| {
                AcmeError::Failed(format!(
                    "the stored ACME account key is not a P-256 key: {e}"
                ))
            })?;
        Ok(Self {
            pair,
            pkcs8: der.to_vec(),
            rng,
        })
    }

    /// The key as PKCS#8 DER, to be stored sealed.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a JWK's coordinates: `x` and `y`, base64url.
    fn coordinates(&self) -> (String, String) {
        // An uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = self.pair.public_key().as_ref();
        let (x, y) = point.get(1..).unwrap_or_default().split_at(32);
        (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
    }

    /// The public key as a JWK, members in lexicographic order, without
    /// whitespace: exactly the input of the RFC 7638 thumbprint.
    fn jwk_json(&self) -> String {
        let (x, y) = self.coordinates();
        format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
    }

    /// The RFC 7638 JWK thumbprint (SHA-256), base64url.
    pub fn thumbprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.jwk_json().as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// What an HTTP-01 challenge file holds: `token.thumbprint`.
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint())
    }

    /// The flattened JWS for a POST to `url`: `payload` as JSON, or the
    /// empty payload of a POST-as-GET when `None`.
    pub(crate) fn sign(
        &self,
        url: &str,
        nonce: &str,
        signer: Signer<'_>,
        payload: Option<&Value>,
    ) -> Result<Value, AcmeError> {
        let protected = URL_SAFE_NO_PAD.encode(self.protected_header(url, nonce, signer)?);
        let payload = match payload {
            Some(value) => URL_SAFE_NO_PAD.encode(value.to_string()),
            None => String::new(),
        };
        let signature = self
            .pair
            .sign(&self.rng, format!("{protected}.{payload}").as_bytes())
            .map_err(|_| AcmeError::Failed("cannot sign an ACME request".into()))?;
        Ok(json!({
            "protected": protected,
            "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
        }))
    }

    /// The JWS protected header: ES256, the nonce, the URL, and either the
    /// key (`jwk`) or the account URL (`kid`).
    fn protected_header(
        &self,
        url: &str,
        nonce: &str,
        signer: Signer<'_>,
    ) -> Result<String, AcmeError> {
        let mut header = json!({ "alg": "ES256", "nonce": nonce, "url": url });
        let member = match signer {
            Signer::Jwk => (
                "jwk",
                serde_json::from_str(&self.jwk_json())
                    .map_err(|e| AcmeError::Failed(format!("cannot encode the JWK: {e}")))?,
            ),
            Signer::Kid(kid) => ("kid", Value::from(kid)),
        };
        if let Value::Object(map) = &mut header {
            map.insert(member.0.to_owned(), member.1);
        }
        Ok(header.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    fn decode(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    fn field<'a>(jws: &'a Value, name: &str) -> &'a str {
        jws[name].as_str().unwrap()
    }

    #[test]
    fn the_key_survives_pkcs8() {
        let key = AccountKey::generate().unwrap();
        let again = AccountKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(key.thumbprint(), again.thumbprint());
        assert!(AccountKey::from_pkcs8(b"not a key").is_err());
    }

    #[test]
    fn thumbprint_is_rfc7638_base64url() {
        let key = AccountKey::generate().unwrap();
        let thumbprint = key.thumbprint();
        // SHA-256 is 32 bytes: 43 base64url characters without padding.
        assert_eq!(thumbprint.len(), 43);
        assert!(
            thumbprint
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let (x, y) = key.coordinates();
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        assert_eq!(decode(&thumbprint), digest.as_ref());
        assert_eq!(decode(&x).len(), 32);
        assert_eq!(decode(&y).len(), 32);
        assert_eq!(
            key.key_authorization("tok-EN_1"),
            format!("tok-EN_1.{thumbprint}")
        );
        assert_ne!(thumbprint, AccountKey::generate().unwrap().thumbprint());
    }

    /// The ES256 key of RFC 7515 §A.3 as PKCS#8; its thumbprint was
    /// computed independently (Python: sorted compact JSON, SHA-256).
    #[test]
    fn thumbprint_of_a_known_key() {
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(
                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL+YBIffH1136cspYG6+0iY7\
                 X1fCE9+E9LKhRANCAAR/zc4ncPbEXUGDy+5v20t7WAczNXvp7xO6z248e9FURcfxRM0bvZt+hyzf7bnu\
                 ufSzaV1uqQskrYpGIyiFiOWt",
            )
            .unwrap();
        let key = AccountKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(
            key.jwk_json(),
            r#"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#
        );
        assert_eq!(
            key.thumbprint(),
            "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"
        );
    }

    #[test]
    fn jws_with_kid_verifies() {
        let key = AccountKey::generate().unwrap();
        let payload = json!({ "csr": "abc" });
        let jws = key
            .sign(
                "https://ca/order/1",
                "n0nce",
                Signer::Kid("https://ca/acct/7"),
                Some(&payload),
            )
            .unwrap();
        let header: Value = serde_json::from_slice(&decode(field(&jws, "protected"))).unwrap();
        assert_eq!(
            header,
            json!({ "alg": "ES256", "nonce": "n0nce", "url": "https://ca/order/1",
                    "kid": "https://ca/acct/7" })
        );
        let body: Value = serde_json::from_slice(&decode(field(&jws, "payload"))).unwrap();
        assert_eq!(body, payload);
        let signature = decode(field(&jws, "signature"));
        assert_eq!(signature.len(), 64, "r || s, 32 bytes each");
        let input = format!("{}.{}", field(&jws, "protected"), field(&jws, "payload"));
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.pair.public_key().as_ref())
            .verify(input.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn jws_with_jwk_and_empty_payload() {
        let key = AccountKey::generate().unwrap();
        let jws = key
            .sign("https://ca/new-acct", "n1", Signer::Jwk, None)
            .unwrap();
        assert_eq!(field(&jws, "payload"), "");
        let header: Value = serde_json::from_slice(&decode(field(&jws, "protected"))).unwrap();
        let (x, y) = key.coordinates();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["nonce"], "n1");
        assert_eq!(header["url"], "https://ca/new-acct");
        assert_eq!(
            header["jwk"],
            json!({ "crv": "P-256", "kty": "EC", "x": x, "y": y })
        );
        assert!(header.get("kid").is_none());
        let input = format!("{}.", field(&jws, "protected"));
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.pair.public_key().as_ref())
            .verify(input.as_bytes(), &decode(field(&jws, "signature")))
            .unwrap();
    }
}
