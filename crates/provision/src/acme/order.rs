//! Getting a certificate (RFC 8555 §7.4–7.5.1, §8.3): newOrder and its
//! HTTP-01 challenges, then — once the caller has published the key
//! authorizations — answering the challenges, waiting for every
//! authorization, finalizing with the CSR, waiting for the order and
//! downloading the PEM chain. Waiting polls with backoff (200 ms doubling
//! to 2 s, or the CA's `Retry-After`), at most 90 s per wait.
//!
//! [`AcmeClient::complete`] reads the CA's state before acting, so calling
//! it again after an interruption resumes instead of failing.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::client::{Account, JSON};
use super::error::{Identifier, ProblemDoc, short_kind};
use super::{AccountKey, AcmeClient, AcmeError};

const FIRST_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(2);
const POLL_TIMEOUT: Duration = Duration::from_secs(90);
const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// An order just placed: where it is, where to finalize it, its
/// authorizations, and the HTTP-01 challenges still to be met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// The order URL.
    pub url: String,
    /// The order's status when placed (`pending`, or `ready` when every
    /// name was already authorized).
    pub status: String,
    /// Where the CSR goes.
    pub finalize: String,
    /// Every authorization URL of the order.
    pub authorizations: Vec<String>,
    /// One HTTP-01 challenge per authorization still pending.
    pub challenges: Vec<Http01>,
}

/// An HTTP-01 challenge: serve `key_authorization` (as `text/plain`) at
/// `http://{name}/.well-known/acme-challenge/{token}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Http01 {
    /// The DNS name being validated.
    pub name: String,
    /// The token: base64url characters only, safe as a file name.
    pub token: String,
    /// The challenge URL (told when the file is in place).
    pub url: String,
    /// The file's content: `token.thumbprint`.
    pub key_authorization: String,
}

impl Http01 {
    /// The path the CA fetches: `/.well-known/acme-challenge/{token}`.
    pub fn path(&self) -> String {
        format!("/.well-known/acme-challenge/{}", self.token)
    }
}

/// An order object (RFC 8555 §7.1.3), the members used here.
#[derive(Debug, Deserialize)]
struct OrderDoc {
    status: String,
    #[serde(default)]
    identifiers: Vec<Identifier>,
    #[serde(default)]
    authorizations: Vec<String>,
    #[serde(default)]
    finalize: String,
    #[serde(default)]
    certificate: Option<String>,
    #[serde(default)]
    error: Option<ProblemDoc>,
}

/// An authorization object (RFC 8555 §7.1.4).
#[derive(Debug, Deserialize)]
struct AuthzDoc {
    status: String,
    identifier: Identifier,
    #[serde(default)]
    wildcard: bool,
    #[serde(default)]
    challenges: Vec<ChallengeDoc>,
}

/// A challenge object (RFC 8555 §7.1.5, §8.3).
#[derive(Debug, Deserialize)]
struct ChallengeDoc {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    error: Option<ProblemDoc>,
}

impl AuthzDoc {
    fn name(&self) -> String {
        if self.wildcard {
            format!("*.{}", self.identifier.value)
        } else {
            self.identifier.value.clone()
        }
    }

    fn http01(&self) -> Result<&ChallengeDoc, AcmeError> {
        self.challenges
            .iter()
            .find(|c| c.kind == "http-01")
            .ok_or_else(|| {
                AcmeError::Failed(format!(
                    "the certificate authority offers no HTTP-01 validation for {}",
                    self.name()
                ))
            })
    }

    /// Why this authorization failed: the first challenge error, or its
    /// status.
    fn failure(&self) -> AcmeError {
        let why = self
            .challenges
            .iter()
            .find_map(|c| c.error.as_ref())
            .map(|e| format!("{}: {}", short_kind(&e.kind), e.full_detail()))
            .unwrap_or_else(|| format!("the authorization is {}", self.status));
        AcmeError::Failed(format!(
            "the certificate authority could not validate {}: {why}",
            self.name()
        ))
    }
}

impl OrderDoc {
    fn failure(&self) -> AcmeError {
        let names: Vec<&str> = self.identifiers.iter().map(|i| i.value.as_str()).collect();
        let why = self
            .error
            .as_ref()
            .map(|e| format!("{}: {}", short_kind(&e.kind), e.full_detail()))
            .unwrap_or_else(|| format!("the order is {}", self.status));
        AcmeError::Failed(format!(
            "the certificate authority gave up on the certificate for {}: {why}",
            names.join(", ")
        ))
    }
}

impl AcmeClient {
    /// Places an order for `names` (DNS names) and reads each of its
    /// authorizations: the order, with the HTTP-01 challenge of every
    /// authorization still pending (those already valid need nothing).
    pub async fn order(&self, acct: &Account<'_>, names: &[String]) -> Result<NewOrder, AcmeError> {
        if names.is_empty() {
            return Err(AcmeError::Failed(
                "a certificate needs at least one name".into(),
            ));
        }
        let identifiers: Vec<Value> = names
            .iter()
            .map(|name| json!({ "type": "dns", "value": name }))
            .collect();
        let payload = json!({ "identifiers": identifiers });
        let reply = self
            .post_by(acct, &self.directory().new_order, &payload)
            .await?;
        let doc: OrderDoc = reply.json("order")?;
        let url = reply.location.ok_or_else(|| {
            AcmeError::Failed("the certificate authority did not say where the order is".into())
        })?;
        if doc.status == "invalid" {
            return Err(doc.failure());
        }
        let mut challenges = Vec::new();
        for authz in &doc.authorizations {
            if let Some(challenge) = self.pending_http01(acct, authz).await? {
                challenges.push(challenge);
            }
        }
        Ok(NewOrder {
            url,
            status: doc.status,
            finalize: doc.finalize,
            authorizations: doc.authorizations,
            challenges,
        })
    }

    /// The HTTP-01 challenge of a pending authorization; `None` if valid.
    async fn pending_http01(
        &self,
        acct: &Account<'_>,
        url: &str,
    ) -> Result<Option<Http01>, AcmeError> {
        let authz: AuthzDoc = self
            .post_as_get(acct, url, JSON)
            .await?
            .json("authorization")?;
        match authz.status.as_str() {
            "valid" => Ok(None),
            "pending" => http01(acct.key, &authz).map(Some),
            _ => Err(authz.failure()),
        }
    }

    /// Once the caller serves every key authorization: has the CA check
    /// them, waits for every authorization, finalizes with `csr_der` (a
    /// DER PKCS#10 request for the order's names), waits for the order and
    /// returns the certificate chain as PEM (leaf first).
    pub async fn complete(
        &self,
        acct: &Account<'_>,
        order: &NewOrder,
        csr_der: &[u8],
    ) -> Result<String, AcmeError> {
        let mut waiting = Vec::new();
        for url in &order.authorizations {
            if self.respond(acct, url).await? {
                waiting.push(url);
            }
        }
        for url in waiting {
            self.wait_authorization(acct, url).await?;
        }
        let doc = self.finalized(acct, order, csr_der).await?;
        let url = doc.certificate.ok_or_else(|| {
            AcmeError::Failed("the certificate authority issued no certificate URL".into())
        })?;
        self.download(acct, &url).await
    }

    /// Once every authorization is valid: waits for the order to be ready,
    /// finalizes it with the CSR unless that was done before, and waits
    /// for it to be valid.
    async fn finalized(
        &self,
        acct: &Account<'_>,
        order: &NewOrder,
        csr_der: &[u8],
    ) -> Result<OrderDoc, AcmeError> {
        let doc = self
            .wait_order(acct, &order.url, &["ready", "processing", "valid"])
            .await?;
        let doc = if doc.status == "ready" {
            let payload = json!({ "csr": URL_SAFE_NO_PAD.encode(csr_der) });
            self.post_by(acct, &order.finalize, &payload)
                .await?
                .json("order")?
        } else {
            doc
        };
        match doc.status.as_str() {
            "valid" => Ok(doc),
            "invalid" => Err(doc.failure()),
            _ => self.wait_order(acct, &order.url, &["valid"]).await,
        }
    }

    /// Answers the HTTP-01 challenge of the authorization at `url` if it
    /// is pending (and the challenge not answered yet): whether it needs
    /// waiting for.
    async fn respond(&self, acct: &Account<'_>, url: &str) -> Result<bool, AcmeError> {
        let authz: AuthzDoc = self
            .post_as_get(acct, url, JSON)
            .await?
            .json("authorization")?;
        match authz.status.as_str() {
            "valid" => return Ok(false),
            "pending" => {}
            _ => return Err(authz.failure()),
        }
        let challenge = authz.http01()?;
        if challenge.status == "pending" {
            self.post_by(acct, &challenge.url, &json!({})).await?;
        }
        Ok(true)
    }

    /// Polls the authorization at `url` until it is valid.
    async fn wait_authorization(&self, acct: &Account<'_>, url: &str) -> Result<(), AcmeError> {
        self.poll(acct, url, "authorization", |authz: AuthzDoc| {
            match authz.status.as_str() {
                "valid" => Ok(Some(())),
                "pending" => Ok(None),
                _ => Err(authz.failure()),
            }
        })
        .await
    }

    /// Polls the order until its status is one of `wanted`.
    async fn wait_order(
        &self,
        acct: &Account<'_>,
        url: &str,
        wanted: &[&str],
    ) -> Result<OrderDoc, AcmeError> {
        self.poll(acct, url, "order", |doc: OrderDoc| {
            if wanted.contains(&doc.status.as_str()) {
                Ok(Some(doc))
            } else if doc.status == "invalid" {
                Err(doc.failure())
            } else {
                Ok(None)
            }
        })
        .await
    }

    /// The certificate chain at `url`, as PEM.
    async fn download(&self, acct: &Account<'_>, url: &str) -> Result<String, AcmeError> {
        let reply = self.post_as_get(acct, url, PEM_CHAIN).await?;
        let pem = String::from_utf8(reply.body).map_err(|_| {
            AcmeError::Failed("the certificate authority sent a certificate that is not PEM".into())
        })?;
        if !pem.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
            return Err(AcmeError::Failed(
                "the certificate authority sent a certificate that is not PEM".into(),
            ));
        }
        Ok(pem)
    }

    /// POST-as-GETs `url` until `check` says done (`Some`) or fails,
    /// waiting between reads; gives up after [`POLL_TIMEOUT`].
    async fn poll<T: DeserializeOwned, R>(
        &self,
        acct: &Account<'_>,
        url: &str,
        what: &str,
        mut check: impl FnMut(T) -> Result<Option<R>, AcmeError>,
    ) -> Result<R, AcmeError> {
        let deadline = Instant::now() + POLL_TIMEOUT;
        let mut backoff = FIRST_DELAY;
        loop {
            let reply = self.post_as_get(acct, url, JSON).await?;
            if let Some(done) = check(reply.json(what)?)? {
                return Ok(done);
            }
            let wait = backoff.max(until(reply.retry_after));
            if Instant::now() + wait > deadline {
                return Err(AcmeError::Transport(format!(
                    "the certificate authority did not finish the {what} within {} s",
                    POLL_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_DELAY);
        }
    }
}

/// The time left until `at` (zero if none or past).
fn until(at: Option<OffsetDateTime>) -> Duration {
    at.and_then(|at| Duration::try_from(at - OffsetDateTime::now_utc()).ok())
        .unwrap_or(Duration::ZERO)
}

/// The HTTP-01 challenge of a pending authorization, with its key
/// authorization. The token becomes a file name, so it must be base64url.
fn http01(key: &AccountKey, authz: &AuthzDoc) -> Result<Http01, AcmeError> {
    let challenge = authz.http01()?;
    let token_ok = !challenge.token.is_empty()
        && challenge
            .token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !token_ok {
        return Err(AcmeError::Failed(format!(
            "the certificate authority sent an unusable HTTP-01 token for {}",
            authz.name()
        )));
    }
    Ok(Http01 {
        name: authz.name(),
        token: challenge.token.clone(),
        url: challenge.url.clone(),
        key_authorization: key.key_authorization(&challenge.token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authz(body: &str) -> AuthzDoc {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn an_invalid_authorization_names_the_name_and_the_reason() {
        let doc = authz(
            r#"{"status":"invalid","identifier":{"type":"dns","value":"www.example.test"},
               "challenges":[{"type":"http-01","url":"https://ca/chal/1","token":"t",
                 "status":"invalid","error":{"type":"urn:ietf:params:acme:error:connection",
                 "detail":"127.0.0.9: Connection refused","status":400}}]}"#,
        );
        assert_eq!(
            doc.failure().to_string(),
            "the certificate authority could not validate www.example.test: connection: \
             127.0.0.9: Connection refused"
        );
    }

    #[test]
    fn the_http01_challenge_and_its_key_authorization() {
        let key = AccountKey::generate().unwrap();
        let doc = authz(
            r#"{"status":"pending","identifier":{"type":"dns","value":"site.test"},
               "challenges":[{"type":"dns-01","url":"https://ca/chal/0","token":"x"},
                 {"type":"http-01","url":"https://ca/chal/1","token":"Ab-_9","status":"pending"}]}"#,
        );
        let challenge = http01(&key, &doc).unwrap();
        assert_eq!(challenge.name, "site.test");
        assert_eq!(challenge.url, "https://ca/chal/1");
        assert_eq!(challenge.path(), "/.well-known/acme-challenge/Ab-_9");
        assert_eq!(
            challenge.key_authorization,
            format!("Ab-_9.{}", key.thumbprint())
        );
    }

    #[test]
    fn a_token_that_is_not_base64url_is_refused() {
        let key = AccountKey::generate().unwrap();
        let doc = authz(
            r#"{"status":"pending","identifier":{"type":"dns","value":"site.test"},
               "challenges":[{"type":"http-01","url":"https://ca/chal/1","token":"../etc"}]}"#,
        );
        assert!(
            http01(&key, &doc)
                .unwrap_err()
                .to_string()
                .contains("site.test")
        );
        let none = authz(
            r#"{"status":"pending","identifier":{"type":"dns","value":"x.test"},"wildcard":true,
               "challenges":[{"type":"dns-01","url":"https://ca/chal/0","token":"x"}]}"#,
        );
        assert_eq!(
            http01(&key, &none).unwrap_err().to_string(),
            "the certificate authority offers no HTTP-01 validation for *.x.test"
        );
    }

    #[test]
    fn an_invalid_order_names_its_names() {
        let doc: OrderDoc = serde_json::from_str(
            r#"{"status":"invalid","identifiers":[{"type":"dns","value":"a.test"},
               {"type":"dns","value":"b.test"}],"authorizations":[],"finalize":"f",
               "error":{"type":"urn:ietf:params:acme:error:badCSR","detail":"CSR names differ"}}"#,
        )
        .unwrap();
        assert_eq!(
            doc.failure().to_string(),
            "the certificate authority gave up on the certificate for a.test, b.test: \
             badCSR: CSR names differ"
        );
    }
}
