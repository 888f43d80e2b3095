//! The ACME transport (RFC 8555 §6, §7.1–7.3, §7.6): the HTTPS client and
//! its trust roots, the directory, the nonce pool, signed POSTs with the
//! one `badNonce` retry the RFC allows for, and the two account-level
//! calls, newAccount and revokeCert. The order flow is in `order.rs`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::AcmeError;
use super::error::{parse_retry_after, problem_from};
use super::jws::{AccountKey, Signer};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Nonces kept for later requests; the CA hands one out with every answer.
const MAX_NONCES: usize = 16;
pub(crate) const JSON: &str = "application/json";
const JOSE_JSON: &str = "application/jose+json";
const REPLAY_NONCE: &str = "replay-nonce";

/// A client of one ACME certificate authority (its directory URL).
/// Cloning is cheap; clones share the connection pool and the nonces.
#[derive(Clone)]
pub struct AcmeClient {
    http: reqwest::Client,
    directory: Arc<Directory>,
    nonces: Arc<Mutex<Vec<String>>>,
    /// The directory's scheme, host and port: every URL the CA hands back
    /// must be on it, so a directory cannot send the worker elsewhere
    /// (an internal address, say).
    origin: url::Origin,
}

impl fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeClient")
            .field("new_order", &self.directory.new_order)
            .finish_non_exhaustive()
    }
}

/// The directory's URLs this client uses (RFC 8555 §7.1.1).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Directory {
    new_nonce: String,
    new_account: String,
    pub(crate) new_order: String,
    revoke_cert: String,
}

/// An ACME account: its key and its URL (the `kid` every request after
/// newAccount is signed with), as [`AcmeClient::account`] returned it.
#[derive(Debug, Clone)]
pub struct Account<'a> {
    pub key: &'a AccountKey,
    pub url: String,
}

impl Account<'_> {
    fn signer(&self) -> Signer<'_> {
        Signer::Kid(&self.url)
    }
}

/// A successful answer to a POST.
pub(crate) struct Reply {
    pub location: Option<String>,
    pub retry_after: Option<OffsetDateTime>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON; `what` names it in the error.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, AcmeError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            AcmeError::Failed(format!(
                "the certificate authority sent an unreadable {what}: {e}"
            ))
        })
    }
}

impl AcmeClient {
    /// Reads the directory at `directory_url`. The CA's HTTPS certificate
    /// must chain to the webpki (Mozilla) roots or to one of the PEM
    /// certificates in `extra_roots_pem` (a private or test CA such as
    /// Pebble's). Connecting times out after 10 s, a request after 30 s.
    pub async fn connect(
        directory_url: &str,
        extra_roots_pem: Option<&[u8]>,
    ) -> Result<Self, AcmeError> {
        let origin = https_origin(directory_url)?;
        let http = http_client(extra_roots_pem)?;
        let response = http
            .get(directory_url)
            .header(ACCEPT, JSON)
            .send()
            .await
            .map_err(|e| transport("reading the ACME directory", &e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport("reading the ACME directory", &e))?;
        if !(200..300).contains(&status) {
            return Err(problem_from(status, &body, None));
        }
        let directory: Directory = serde_json::from_slice(&body).map_err(|e| {
            AcmeError::Failed(format!("{directory_url} is not an ACME directory: {e}"))
        })?;
        let client = Self {
            http,
            directory: Arc::new(directory),
            nonces: Arc::default(),
            origin,
        };
        let d = &client.directory;
        for url in [&d.new_nonce, &d.new_account, &d.new_order, &d.revoke_cert] {
            client.on_origin(url)?;
        }
        Ok(client)
    }

    /// Registers the account of `key` (newAccount, agreeing to the terms of
    /// service, with `mailto:contact_email` if given) or finds it if it
    /// exists already. Returns the account URL.
    pub async fn account(
        &self,
        key: &AccountKey,
        contact_email: Option<&str>,
    ) -> Result<String, AcmeError> {
        let mut payload = json!({ "termsOfServiceAgreed": true });
        if let (Some(email), Value::Object(map)) = (contact_email, &mut payload) {
            map.insert("contact".into(), json!([format!("mailto:{email}")]));
        }
        let url = &self.directory.new_account;
        let reply = self
            .post(key, Signer::Jwk, url, Some(&payload), JSON)
            .await?;
        reply.location.ok_or_else(|| {
            AcmeError::Failed("the certificate authority did not say where the account is".into())
        })
    }

    /// Revokes a certificate (DER) issued to this account, giving an RFC
    /// 5280 reason code (0 unspecified, 1 keyCompromise, 4 superseded,
    /// 5 cessationOfOperation, …). A certificate already revoked is fine.
    pub async fn revoke(
        &self,
        acct: &Account<'_>,
        cert_der: &[u8],
        reason: u8,
    ) -> Result<(), AcmeError> {
        let payload = json!({ "certificate": URL_SAFE_NO_PAD.encode(cert_der), "reason": reason });
        let url = &self.directory.revoke_cert;
        match self
            .post(acct.key, acct.signer(), url, Some(&payload), JSON)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.problem_kind() == Some("alreadyRevoked") => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn directory(&self) -> &Directory {
        &self.directory
    }

    /// A POST-as-GET (empty payload) signed by the account.
    pub(crate) async fn post_as_get(
        &self,
        acct: &Account<'_>,
        url: &str,
        accept: &str,
    ) -> Result<Reply, AcmeError> {
        self.post(acct.key, acct.signer(), url, None, accept).await
    }

    /// A POST of `payload` signed by the account.
    pub(crate) async fn post_by(
        &self,
        acct: &Account<'_>,
        url: &str,
        payload: &Value,
    ) -> Result<Reply, AcmeError> {
        self.post(acct.key, acct.signer(), url, Some(payload), JSON)
            .await
    }

    /// A signed POST with a fresh nonce, repeated once if the CA rejects
    /// the nonce (with the nonce that rejection carried).
    async fn post(
        &self,
        key: &AccountKey,
        signer: Signer<'_>,
        url: &str,
        payload: Option<&Value>,
        accept: &str,
    ) -> Result<Reply, AcmeError> {
        match self.post_once(key, signer, url, payload, accept).await {
            Err(e) if e.problem_kind() == Some("badNonce") => {
                self.post_once(key, signer, url, payload, accept).await
            }
            other => other,
        }
    }

    async fn post_once(
        &self,
        key: &AccountKey,
        signer: Signer<'_>,
        url: &str,
        payload: Option<&Value>,
        accept: &str,
    ) -> Result<Reply, AcmeError> {
        self.on_origin(url)?;
        let nonce = self.nonce().await?;
        let jws = key.sign(url, &nonce, signer, payload)?;
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, JOSE_JSON)
            .header(ACCEPT, accept)
            .body(jws.to_string())
            .send()
            .await
            .map_err(|e| transport("sending a request", &e))?;
        self.keep_nonce(response.headers());
        let status = response.status().as_u16();
        let location = header_text(response.headers(), LOCATION.as_str());
        let retry_after = header_text(response.headers(), RETRY_AFTER.as_str())
            .and_then(|value| parse_retry_after(&value, OffsetDateTime::now_utc()));
        let body = response
            .bytes()
            .await
            .map_err(|e| transport("reading an answer", &e))?
            .to_vec();
        if !(200..300).contains(&status) {
            return Err(problem_from(status, &body, retry_after));
        }
        Ok(Reply {
            location,
            retry_after,
            body,
        })
    }

    /// Refuses a URL off the directory's origin.
    fn on_origin(&self, url: &str) -> Result<(), AcmeError> {
        match url::Url::parse(url) {
            Ok(u) if u.origin() == self.origin => Ok(()),
            _ => Err(AcmeError::Failed(format!(
                "the certificate authority pointed to {url}, off its directory's host"
            ))),
        }
    }

    /// A nonce from the pool, or a new one from newNonce.
    async fn nonce(&self) -> Result<String, AcmeError> {
        if let Some(nonce) = self.lock_nonces().pop() {
            return Ok(nonce);
        }
        let response = self
            .http
            .head(&self.directory.new_nonce)
            .send()
            .await
            .map_err(|e| transport("asking for a nonce", &e))?;
        header_text(response.headers(), REPLAY_NONCE).ok_or_else(|| {
            AcmeError::Failed(format!(
                "the certificate authority gave no nonce (HTTP {})",
                response.status().as_u16()
            ))
        })
    }

    /// Keeps the `Replay-Nonce` of an answer for the next request.
    fn keep_nonce(&self, headers: &HeaderMap) {
        if let Some(nonce) = header_text(headers, REPLAY_NONCE) {
            let mut nonces = self.lock_nonces();
            if nonces.len() >= MAX_NONCES {
                nonces.remove(0);
            }
            nonces.push(nonce);
        }
    }

    fn lock_nonces(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.nonces.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The HTTPS client: rustls on ring, the webpki roots plus `extra_pem`.
/// The origin of an `https://` directory URL.
fn https_origin(directory_url: &str) -> Result<url::Origin, AcmeError> {
    match url::Url::parse(directory_url) {
        Ok(u) if u.scheme() == "https" => Ok(u.origin()),
        _ => Err(AcmeError::Failed(format!(
            "{directory_url} is not an https:// ACME directory URL"
        ))),
    }
}

fn http_client(extra_pem: Option<&[u8]>) -> Result<reqwest::Client, AcmeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AcmeError::Failed(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(root_store(extra_pem)?)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("mPanel-acme/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| AcmeError::Failed(format!("cannot build the ACME HTTP client: {e}")))
}

/// The webpki roots, plus every certificate in `extra_pem`.
fn root_store(extra_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, AcmeError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let Some(pem) = extra_pem else {
        return Ok(roots);
    };
    let bad = |e: &dyn fmt::Display| {
        AcmeError::Failed(format!("the extra trusted certificates are unusable: {e}"))
    };
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        added += 1;
    }
    if added == 0 {
        return Err(bad(&"no PEM certificate found"));
    }
    Ok(roots)
}

/// A header's value as text, if present and readable.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// A failed exchange: the whole chain of causes (reqwest's own message
/// hides whether it was DNS, TLS or a timeout).
fn transport(doing: &str, error: &reqwest::Error) -> AcmeError {
    let mut text = format!("cannot reach the certificate authority ({doing}): {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    AcmeError::Transport(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_must_hold_a_certificate() {
        assert!(root_store(None).is_ok());
        let err = root_store(Some(b"nothing here")).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}
