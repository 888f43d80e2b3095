//! Access tokens: JWTs signed with HS256, valid 15 minutes, naming their
//! session. The algorithm is pinned (the header's `alg` and `kid` are never
//! trusted; `none` is never accepted); `iss`, `aud`, `typ`, `exp` and `nbf`
//! are checked, time against the injected clock with a small skew.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mpanel_domain::identity::refresh::{ACCESS_TOKEN_TTL, CLOCK_SKEW};
use mpanel_domain::{SessionId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ServiceError;

const ISSUER: &str = "mpanel";
const AUDIENCE: &str = "mpanel-api";
const TYPE: &str = "access";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub typ: String,
    /// The user.
    pub sub: String,
    /// The tenant.
    pub tid: String,
    /// The session.
    pub sid: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Signs and checks access tokens with one secret key.
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Derives refresh-token successors (see `refresh::successor`); kept
    /// apart from the signing key so neither use can stand in for the other.
    successor_key: [u8; 32],
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessTokens([key redacted])")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub session_id: SessionId,
}

impl AccessTokens {
    /// `secret` must be at least 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self, ServiceError> {
        if secret.len() < 32 {
            return Err(ServiceError::internal_msg(
                "the JWT key must be at least 32 bytes",
            ));
        }
        let mut successor_key = Sha256::new();
        successor_key.update(b"mpanel refresh successor key\0");
        successor_key.update(secret);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            successor_key: successor_key.finalize().into(),
        })
    }

    /// The refresh token that replaces `presented` (the same every time).
    pub fn successor_of(&self, presented: &str) -> String {
        mpanel_domain::identity::refresh::successor(&self.successor_key, presented)
    }

    /// The console's anti-forgery token for a session: a keyed hash of
    /// the session id (the same for the session's whole life, useless for
    /// any other session, unguessable without the server's key).
    pub fn csrf_token(&self, session: SessionId) -> String {
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let mut key = Sha256::new();
        key.update(b"mpanel console csrf key\0");
        key.update(self.successor_key);
        let key: [u8; 32] = key.finalize().into();
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(session.to_string().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Seconds an access token lives.
    pub fn ttl_secs() -> i64 {
        ACCESS_TOKEN_TTL.whole_seconds()
    }

    pub fn issue(&self, claims: AccessClaims, now: OffsetDateTime) -> Result<String, ServiceError> {
        let iat = now.unix_timestamp();
        let body = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            typ: TYPE.into(),
            sub: claims.user_id.to_string(),
            tid: claims.tenant_id.to_string(),
            sid: claims.session_id.to_string(),
            iat,
            nbf: iat,
            exp: iat + Self::ttl_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &body, &self.encoding)
            .map_err(|e| ServiceError::internal("cannot sign a token", e))
    }

    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, ServiceError> {
        let invalid =
            |why: &str| ServiceError::Unauthenticated(format!("the access token is {why}"));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| invalid("invalid"))?;
        let c = data.claims;
        if c.typ != TYPE {
            return Err(invalid("not an access token"));
        }
        let now_s = now.unix_timestamp();
        let skew = CLOCK_SKEW.whole_seconds();
        if now_s >= c.exp + skew {
            return Err(invalid("expired"));
        }
        if now_s + skew < c.nbf {
            return Err(invalid("not valid yet"));
        }
        Ok(AccessClaims {
            tenant_id: c.tid.parse().map_err(|_| invalid("invalid"))?,
            user_id: c.sub.parse().map_err(|_| invalid("invalid"))?,
            session_id: c.sid.parse().map_err(|_| invalid("invalid"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use time::Duration;
    use time::macros::datetime;

    fn keys() -> AccessTokens {
        AccessTokens::new(&[9u8; 32]).unwrap()
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            tenant_id: TenantId::new(),
            user_id: UserId::new(),
            session_id: SessionId::new(),
        }
    }

    #[test]
    fn a_token_is_valid_for_fifteen_minutes_on_the_injected_clock() {
        let t0 = datetime!(2026-11-21 10:00 UTC);
        let c = claims();
        let token = keys().issue(c, t0).unwrap();
        assert_eq!(keys().verify(&token, t0).unwrap(), c);
        assert!(
            keys().verify(&token, t0 + Duration::minutes(15)).is_ok(),
            "within skew"
        );
        assert!(keys().verify(&token, t0 + Duration::minutes(16)).is_err());
        assert!(keys().verify(&token, t0 - Duration::minutes(5)).is_err());
    }

    #[test]
    fn forged_tokens_are_refused() {
        let t0 = datetime!(2026-11-21 10:00 UTC);
        let token = keys().issue(claims(), t0).unwrap();
        let other = AccessTokens::new(&[8u8; 32]).unwrap();
        assert!(other.verify(&token, t0).is_err(), "another key");

        let parts: Vec<&str> = token.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            keys()
                .verify(&format!("{none_header}.{}.", parts[1]), t0)
                .is_err()
        );

        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["exp"] = serde_json::json!(payload["exp"].as_i64().unwrap() + 86400);
        let tampered = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
        assert!(
            keys()
                .verify(&format!("{}.{tampered}.{}", parts[0], parts[2]), t0)
                .is_err()
        );
        assert!(AccessTokens::new(b"short").is_err());
    }
}
