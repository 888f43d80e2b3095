//! The transport (§1, §2): one HTTPS client per cluster, pinned to the
//! certificate's fingerprint, `Authorization: PVEAPIToken=…`, parameters
//! in the query string for GET/DELETE and as a form body for POST/PUT,
//! the `{"data": …}` envelope, and the classification of every failure
//! into a [`DriverError`] ([`classify`]).

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;

use super::pinning::{self, Fingerprint};
use crate::DriverError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a non-JSON error body goes into a [`DriverError`].
const MAX_ERROR_TEXT: usize = 400;

/// One Proxmox VE cluster's API, reached through one of its nodes
/// (pveproxy forwards calls for other nodes to them).
#[derive(Clone)]
pub struct Cluster {
    http: reqwest::Client,
    /// `https://host:port[/prefix]/api2/json`, no trailing slash.
    base: String,
    /// `host:port`, for messages.
    host: String,
    /// `USER@REALM!TOKENID` (not secret), for `Debug`.
    token_id: String,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("base", &self.base)
            .field("token_id", &self.token_id)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A client for the API at `api_url` (`https://10.0.0.2:8006`, with or
    /// without `/api2/json`), authenticating with the API token
    /// `USER@REALM!TOKENID=SECRET`, trusting only the certificate whose
    /// SHA-256 is `fingerprint` (`AB:CD:…`, PVE's `ssl_fingerprint`;
    /// case-insensitive, colons optional). The hostname is not checked.
    /// Connecting times out after 5 s, a whole request after 30 s.
    pub fn new(api_url: &str, token: &str, fingerprint: &str) -> Result<Self, DriverError> {
        // No process-wide crypto provider is needed: the TLS configuration
        // names ring itself (pinning::client_config).
        let (base, host) = parse_url(api_url)?;
        let (token_id, authorization) = parse_token(token)?;
        let fingerprint = Fingerprint::parse(fingerprint)?;
        let tls = pinning::client_config(fingerprint)?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| {
                DriverError::Permanent(format!("cannot build the Proxmox VE HTTP client: {e}"))
            })?;
        Ok(Self {
            http,
            base,
            host,
            token_id,
            fingerprint,
        })
    }

    /// `GET path?params`: the envelope's `data`.
    pub(super) async fn get(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, DriverError> {
        Ok(self.call(Method::GET, path, params).await?)
    }

    /// `POST path` with a form body: the envelope's `data`.
    pub(super) async fn post(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, DriverError> {
        Ok(self.call(Method::POST, path, params).await?)
    }

    /// `PUT path` with a form body: the envelope's `data`.
    pub(super) async fn put(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, DriverError> {
        Ok(self.call(Method::PUT, path, params).await?)
    }

    /// `DELETE path?params` (never a body: PVE answers 501 to one).
    pub(super) async fn delete(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, DriverError> {
        Ok(self.call(Method::DELETE, path, params).await?)
    }

    /// One request: the envelope's `data`.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, Failure> {
        let mut envelope = self.envelope(method, path, params).await?;
        Ok(envelope
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// One request: the whole envelope (`data`, and `total` for logs).
    /// `path` is relative to `/api2/json` with its segments already
    /// percent-encoded ([`super::values::segment`]). Booleans are sent as
    /// `1`/`0` by the callers.
    pub(super) async fn envelope(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, Failure> {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let in_body = method == Method::POST || method == Method::PUT;
        let mut url = format!("{}{path}", self.base);
        if !in_body && !encoded.is_empty() {
            url.push('?');
            url.push_str(&encoded);
        }
        let mut request = self.http.request(method.clone(), &url);
        if in_body {
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encoded);
        }
        tracing::debug!(%method, path, "Proxmox VE request");
        let what = format!("{method} {path}");
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Other(self.transport_error(&method, &e)))?;
        let status = response.status().as_u16();
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| response.status().canonical_reason().map(str::to_owned))
            .unwrap_or_default();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Other(self.transport_error(&method, &e)))?;
        tracing::debug!(%method, path, status, %reason, "Proxmox VE answer");
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            return match body {
                Some(envelope) if envelope.is_object() => Ok(envelope),
                _ => Err(Failure::Other(DriverError::Transient(format!(
                    "Proxmox VE {what}: the answer is not PVE's JSON envelope: {}",
                    cut(text.trim())
                )))),
            };
        }
        let message = body
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
            .map(|m| m.trim_end().to_owned())
            .filter(|m| !m.is_empty())
            .or_else(|| {
                // Errors raised outside the handler come as plain text.
                (body.is_none() && !text.trim().is_empty()).then(|| cut(text.trim()))
            })
            .unwrap_or_else(|| reason.clone());
        let errors = body
            .as_ref()
            .and_then(|b| b.get("errors"))
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| {
                        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        (k.clone(), text.trim_end().replace('\n', " "))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Err(Failure::Refused(Refusal {
            status,
            reason,
            message,
            errors,
            what,
            host: self.host.clone(),
        }))
    }

    /// No answer: unreachable (transient), or the certificate is not the
    /// pinned one (permanent: the handshake failed before any request, so
    /// the token was not sent).
    fn transport_error(&self, method: &Method, e: &reqwest::Error) -> DriverError {
        if let Some(found) = pinning::find_mismatch(e) {
            let detail = found.map_or_else(String::new, |m| {
                format!(" (it presents {}, pinned is {})", m.presented, m.pinned)
            });
            return DriverError::Permanent(format!(
                "the certificate of {} does not match the pinned fingerprint{detail}: \
                 if the node's certificate was renewed, pin its new `ssl_fingerprint` \
                 (GET /nodes)",
                self.host
            ));
        }
        // A request that may have reached PVE before the failure (sent,
        // then timed out or cut) has an unknown outcome unless it only reads.
        let maybe_done = !e.is_connect() && *method != Method::GET;
        DriverError::Transient(format!(
            "the Proxmox VE API at {} is unreachable: {}{}",
            self.host,
            chain(e),
            if maybe_done {
                " (outcome unknown: re-read the state before retrying)"
            } else {
                ""
            }
        ))
    }
}

/// Why a request did not give data.
#[derive(Debug)]
pub(super) enum Failure {
    /// PVE (or pveproxy) answered with an error status.
    Refused(Refusal),
    /// No usable answer at all, already classified.
    Other(DriverError),
}

/// An error status with PVE's words.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    pub status: u16,
    /// The status line's reason phrase (PVE puts the message's first line there).
    pub reason: String,
    /// The body's `message` without its trailing newline, else the reason.
    pub message: String,
    /// The 400's `errors` map: parameter → text.
    pub errors: Vec<(String, String)>,
    /// `METHOD /path`, for messages.
    pub what: String,
    pub host: String,
}

impl Refusal {
    /// The 500 PVE gives when the VM's config is not on that node (or
    /// nowhere): `Configuration file 'nodes/pve1/qemu-server/105.conf'
    /// does not exist`, `unable to find configuration file for VM 105 on
    /// node 'pve1'` (older: `… - no such machine`).
    pub fn vm_missing(&self) -> bool {
        let m = &self.message;
        self.status == 500
            && ((m.contains("Configuration file") && m.contains("does not exist"))
                || m.contains("unable to find configuration file"))
    }
}

impl From<Failure> for DriverError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused(r) => classify(&r),
            Failure::Other(e) => e,
        }
    }
}

/// PVE's lock errors (§4.1): the config `lock` ("VM is locked (clone)")
/// and the flock timeouts ("can't lock file '…' - got timeout"). Both go
/// away when the task holding them ends.
pub fn is_lock_error(message: &str) -> bool {
    message.contains("VM is locked")
        || message.contains("can't lock file")
        || message.contains("got timeout")
}

/// Every error status of the API as a [`DriverError`]:
///
/// - 401 (bad, expired or revoked token; the reason is in the status line,
///   the body is empty) → permanent;
/// - 403 (permission check failed) → permanent with PVE's message;
/// - 400 (parameter verification) → permanent with the `errors` map
///   rendered `key: text`;
/// - 500 with a lock error ("VM is locked", "can't lock file", "got
///   timeout") → transient: the lock goes away with its task;
/// - 500 "checksum mismatch" (the config changed since it was read) →
///   transient;
/// - other 500 → permanent with PVE's message (the "does not exist" cases
///   that mean "no such VM" are turned into `None` by the readers before
///   they get here);
/// - 595–599 (pveproxy could not reach the node or pvedaemon, or gave up
///   after 30 s while the call may still complete) → transient, "outcome
///   unknown": re-read the state before repeating a non-idempotent call;
/// - 501 (no such method/path, a body on GET/DELETE) → permanent;
/// - any other 5xx, 408 and 429 → transient; any other 4xx → permanent.
///
/// The message is the body's `message`, else the status line's reason.
/// The token is never part of it.
pub(super) fn classify(r: &Refusal) -> DriverError {
    let Refusal {
        status,
        reason,
        message,
        errors,
        what,
        host,
    } = r;
    match *status {
        401 => DriverError::Permanent(format!(
            "Proxmox VE refused the API token (401 {reason}) at {host}: check the token id \
             and secret, and that the token is not expired or revoked"
        )),
        403 => DriverError::Permanent(format!(
            "Proxmox VE {what}: 403 {message} (grant the API token the permission; \
             tokens with privilege separation only have their own ACLs)"
        )),
        400 => {
            let details = errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; ");
            DriverError::Permanent(if details.is_empty() {
                format!("Proxmox VE {what}: 400 {message}")
            } else {
                format!("Proxmox VE {what}: 400 {message} {details}")
            })
        }
        500 if is_lock_error(message) => DriverError::Transient(format!(
            "Proxmox VE {what}: 500 {message} (a lock held by a running task)"
        )),
        // Someone changed the config between our read and our write: read
        // it again and retry.
        500 if message.contains("checksum mismatch") => DriverError::Transient(format!(
            "Proxmox VE {what}: 500 {message} (the config changed meanwhile)"
        )),
        500 | 501 => DriverError::Permanent(format!("Proxmox VE {what}: {status} {message}")),
        595..=599 => DriverError::Transient(format!(
            "outcome unknown: Proxmox VE {what}: {status} {message} (pveproxy lost the call; \
             re-read the state before retrying)"
        )),
        408 | 429 | 502..=599 => {
            DriverError::Transient(format!("Proxmox VE {what}: {status} {message}"))
        }
        _ => DriverError::Permanent(format!("Proxmox VE {what}: {status} {message}")),
    }
}

/// `https://host:port[/prefix]/api2/json` and `host:port` from what the
/// operator entered.
fn parse_url(api_url: &str) -> Result<(String, String), DriverError> {
    let bad =
        |why: &str| DriverError::Permanent(format!("the Proxmox VE API URL {api_url:?} {why}"));
    let url = url::Url::parse(api_url.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(bad(
            "is not https (PVE serves its API over HTTPS, port 8006)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    let host = url.host_str().ok_or_else(|| bad("has no host"))?;
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/api2/json").unwrap_or(path);
    Ok((format!("https://{host}{path}/api2/json"), host))
}

/// The token id and the `Authorization` value (marked sensitive).
fn parse_token(token: &str) -> Result<(String, HeaderValue), DriverError> {
    let token = token.trim();
    let shape = || {
        DriverError::Permanent(
            "the Proxmox VE API token must look like USER@REALM!TOKENID=SECRET".to_owned(),
        )
    };
    // PVE splits at the last `=`.
    let (id, secret) = token.rsplit_once('=').ok_or_else(shape)?;
    let id_ok = id
        .split_once('!')
        .is_some_and(|(user, name)| user.contains('@') && !name.is_empty());
    if !id_ok || secret.is_empty() {
        return Err(shape());
    }
    let mut value = HeaderValue::from_str(&format!("PVEAPIToken={token}")).map_err(|_| {
        DriverError::Permanent(
            "the Proxmox VE API token holds characters a header cannot carry".to_owned(),
        )
    })?;
    value.set_sensitive(true);
    Ok((id.to_owned(), value))
}

/// At most [`MAX_ERROR_TEXT`] characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// An error and its causes (reqwest hides "connection refused" in them),
/// each text once.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = pinning::cause(err);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::{Refusal, classify, parse_token, parse_url};
    use crate::DriverError;

    fn refusal(status: u16, message: &str) -> Refusal {
        Refusal {
            status,
            reason: message.lines().next().unwrap_or("").to_owned(),
            message: message.to_owned(),
            errors: Vec::new(),
            what: "PUT /nodes/pve1/qemu/105/config".to_owned(),
            host: "10.0.0.2:8006".to_owned(),
        }
    }

    #[test]
    fn statuses_are_classified_as_documented() {
        let transient = |s, m| classify(&refusal(s, m)).is_transient();
        assert!(transient(500, "VM is locked (clone)"));
        assert!(transient(
            500,
            "can't lock file '/var/lock/qemu-server/lock-105.conf' - got timeout"
        ));
        assert!(!transient(500, "VM 105 is running - destroy failed"));
        assert!(!transient(501, "Method 'GET /x' not implemented"));
        assert!(!transient(401, ""));
        assert!(!transient(
            403,
            "Permission check failed (/vms/105, VM.Allocate)"
        ));
        assert!(!transient(400, "Parameter verification failed."));
        assert!(transient(502, "Bad Gateway"));
        assert!(transient(429, "Too Many Requests"));
        for code in 595..=599 {
            let e = classify(&refusal(code, "Connection timed out"));
            assert!(
                matches!(&e, DriverError::Transient(m) if m.starts_with("outcome unknown")),
                "{e:?}"
            );
        }
        let mut bad = refusal(400, "Parameter verification failed.");
        bad.errors = vec![("vmid".to_owned(), "VM 105 already exists".to_owned())];
        assert_eq!(
            classify(&bad).to_string(),
            "Proxmox VE PUT /nodes/pve1/qemu/105/config: 400 Parameter verification failed. \
             vmid: VM 105 already exists"
        );
        let mut denied = refusal(401, "");
        denied.reason = "Authentication failed!".to_owned();
        assert!(
            classify(&denied)
                .to_string()
                .starts_with("Proxmox VE refused the API token (401 Authentication failed!)")
        );
    }

    #[test]
    fn missing_vms_are_recognised() {
        assert!(
            refusal(
                500,
                "Configuration file 'nodes/pve1/qemu-server/105.conf' does not exist"
            )
            .vm_missing()
        );
        assert!(
            refusal(
                500,
                "unable to find configuration file for VM 105 on node 'pve1'"
            )
            .vm_missing()
        );
        assert!(!refusal(500, "storage 'x' does not exist").vm_missing());
        assert!(!refusal(400, "Configuration file 'x' does not exist").vm_missing());
    }

    #[test]
    fn the_url_may_carry_the_api_prefix_or_not() {
        for input in [
            "https://10.0.0.2:8006",
            "https://10.0.0.2:8006/",
            "https://10.0.0.2:8006/api2/json",
            "https://10.0.0.2:8006/api2/json/",
        ] {
            let (base, host) = parse_url(input).unwrap();
            assert_eq!(base, "https://10.0.0.2:8006/api2/json");
            assert_eq!(host, "10.0.0.2:8006");
        }
        assert_eq!(
            parse_url("https://pve.example/proxy/api2/json").unwrap().0,
            "https://pve.example/proxy/api2/json"
        );
        assert!(parse_url("http://10.0.0.2:8006").is_err());
        assert!(parse_url("https://root:pw@10.0.0.2:8006").is_err());
        assert!(parse_url("10.0.0.2").is_err());
    }

    #[test]
    fn a_token_needs_user_realm_name_and_secret_and_errors_never_show_it() {
        let (id, value) = parse_token("mpanel@pve!ci=0b5c-secret").unwrap();
        assert_eq!(id, "mpanel@pve!ci");
        assert!(value.is_sensitive());
        assert_eq!(
            value.to_str().unwrap(),
            "PVEAPIToken=mpanel@pve!ci=0b5c-secret"
        );
        for bad in [
            "mpanel@pve!ci",
            "mpanel@pve=s3cret",
            "mpanel!ci=s3cret",
            "mpanel@pve!ci=",
        ] {
            let e = parse_token(bad).unwrap_err();
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }
}
