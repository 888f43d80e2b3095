//! PowerDNS zones and record sets over its HTTP API (`/api/v1`).
//!
//! Every action looks before it changes anything and is safe to repeat:
//! a zone is created only when absent, a record set that differs is
//! replaced in place (`PATCH` with `changetype: REPLACE`, never a delete
//! followed by an add), and deleting something absent succeeds.
//!
//! Names are made canonical with [`mpanel_domain::dns`] before they reach
//! a URL or a body; record contents are sent as given (validate customer
//! input with [`mpanel_domain::dns::validate_rrset`] first).
//!
//! Errors: no answer, a timeout, 5xx (after two quick retries) or 429 are
//! [`DriverError::Transient`]; any other refusal (401, 403, 400, 422 …) is
//! [`DriverError::Permanent`] with PowerDNS's own text. The API key is never
//! logged nor put in an error.

use std::fmt;
use std::time::{Duration, Instant};

use mpanel_domain::dns::{
    DEFAULT_TTL, DnsRuleError, RecordSet, RecordType, canonical_name, canonical_target,
    canonical_zone,
};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{DriverError, Ensured};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a request answered with 5xx is sent in all.
const SERVER_ERROR_ATTEMPTS: u32 = 3;
/// The pause before the second attempt (doubled before the third).
const SERVER_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// How much of an error body goes into a [`DriverError`].
const MAX_ERROR_TEXT: usize = 400;

/// A PowerDNS authoritative server's HTTP API.
#[derive(Clone)]
pub struct PowerDns {
    client: reqwest::Client,
    /// `{api_url}/api/v1/servers/{server_id}`, without a trailing slash.
    base: String,
}

impl fmt::Debug for PowerDns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerDns")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A zone as `GET …/zones/{name}` returns it (the fields used here).
#[derive(Debug, Deserialize)]
struct ApiZone {
    #[serde(default)]
    rrsets: Vec<ApiRrset>,
}

#[derive(Debug, Deserialize)]
struct ApiRrset {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    records: Vec<ApiRecord>,
}

#[derive(Debug, Deserialize)]
struct ApiRecord {
    content: String,
    #[serde(default)]
    disabled: bool,
}

/// A status and body PowerDNS answered with.
struct Reply {
    status: StatusCode,
    text: String,
}

impl Reply {
    /// 404, or the 422 PowerDNS gives for some unknown zones.
    fn zone_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
            || (self.status == StatusCode::UNPROCESSABLE_ENTITY
                && self.text.contains("Could not find domain"))
    }
}

impl PowerDns {
    /// A client for the API at `api_url` (`http://127.0.0.1:8081`) with the
    /// key sent as `X-API-Key`, for the server `server_id` (`localhost`).
    /// Connecting times out after 5 s, a whole request after 15 s.
    pub fn new(api_url: &str, api_key: &str, server_id: &str) -> Result<Self, DriverError> {
        // The workspace's reqwest uses rustls without a built-in crypto
        // provider; install ring's once per process (later calls are no-ops).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = url::Url::parse(api_url.trim()).map_err(|e| {
            DriverError::Permanent(format!(
                "the PowerDNS API URL {api_url:?} is not a URL: {e}"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DriverError::Permanent(format!(
                "the PowerDNS API URL {api_url:?} is not http(s)"
            )));
        }
        let id_ok = !server_id.is_empty()
            && server_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !id_ok {
            return Err(DriverError::Permanent(format!(
                "the PowerDNS server id {server_id:?} is not valid"
            )));
        }
        let mut key = HeaderValue::from_str(api_key)
            .ok()
            .filter(|_| !api_key.is_empty())
            .ok_or_else(|| {
                DriverError::Permanent("the PowerDNS API key is empty or not valid".to_owned())
            })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("X-API-Key", key);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .build()
            .map_err(|e| {
                DriverError::Permanent(format!("cannot build the PowerDNS HTTP client: {e}"))
            })?;
        let base = format!(
            "{}/api/v1/servers/{server_id}",
            url.as_str().trim_end_matches('/')
        );
        Ok(Self { client, base })
    }

    /// Checks that the API answers for this server and the key is accepted;
    /// returns how long the request took.
    pub async fn ping(&self) -> Result<Duration, DriverError> {
        let started = Instant::now();
        self.expect_success(Method::GET, "", None).await?;
        Ok(started.elapsed())
    }

    /// The zone's record sets (enabled records only; types mPanel does not
    /// know are left out), or `None` when PowerDNS has no such zone.
    pub async fn zone(&self, name: &str) -> Result<Option<Vec<RecordSet>>, DriverError> {
        let zone = canonical_zone(name).map_err(rule)?;
        let Some(rrsets) = self.fetch_zone(&zone).await? else {
            return Ok(None);
        };
        let sets = rrsets
            .into_iter()
            .filter_map(|set| {
                let Ok(rtype) = set.rtype.parse::<RecordType>() else {
                    tracing::debug!(
                        zone = %zone,
                        name = %set.name,
                        rtype = %set.rtype,
                        "record type left out"
                    );
                    return None;
                };
                let records: Vec<String> = set
                    .records
                    .into_iter()
                    .filter(|r| !r.disabled)
                    .map(|r| r.content)
                    .collect();
                (!records.is_empty()).then(|| RecordSet {
                    name: set.name.to_ascii_lowercase(),
                    rtype,
                    ttl: set.ttl,
                    records,
                })
            })
            .collect();
        Ok(Some(sets))
    }

    /// Makes sure the zone exists (kind `Native`) with these nameservers
    /// (its apex NS set) and these record sets. An absent zone is created
    /// with all of them in one request; in a present zone each given set
    /// that differs (TTL or contents) is replaced on its own, and sets not
    /// named are left alone. `Created` when anything was written,
    /// `AlreadyThere` when all matched.
    pub async fn ensure_zone(
        &self,
        name: &str,
        nameservers: &[String],
        records: &[RecordSet],
    ) -> Result<Ensured, DriverError> {
        let zone = canonical_zone(name).map_err(rule)?;
        let nameservers = nameservers
            .iter()
            .map(|ns| canonical_target(ns))
            .collect::<Result<Vec<_>, _>>()
            .map_err(rule)?;
        let wanted = records
            .iter()
            .map(|set| canonical_set(&zone, set))
            .collect::<Result<Vec<_>, _>>()?;
        let current = match self.fetch_zone(&zone).await? {
            Some(current) => current,
            None => {
                if self.create_zone(&zone, &nameservers, &wanted).await? {
                    tracing::info!(zone = %zone, "PowerDNS zone created");
                    return Ok(Ensured::Created);
                }
                // Created meanwhile, or by the failed request: compare.
                self.fetch_zone(&zone).await?.ok_or_else(|| {
                    DriverError::Transient(format!("PowerDNS zone {zone} vanished while created"))
                })?
            }
        };
        let mut wanted = wanted;
        if !nameservers.is_empty() {
            let ttl = find(&current, &zone, RecordType::NS).map_or(DEFAULT_TTL, |s| s.ttl);
            wanted.push(RecordSet {
                name: zone.clone(),
                rtype: RecordType::NS,
                ttl,
                records: nameservers,
            });
        }
        let mut changed = Ensured::AlreadyThere;
        for want in &wanted {
            if !matches(find(&current, &want.name, want.rtype), want) {
                self.patch(&zone, &want.name, want.rtype, want).await?;
                tracing::info!(
                    zone = %zone,
                    name = %want.name,
                    rtype = %want.rtype,
                    "PowerDNS rrset replaced"
                );
                changed = Ensured::Created;
            }
        }
        Ok(changed)
    }

    /// Deletes the zone; a zone that is not there is fine.
    pub async fn delete_zone(&self, name: &str) -> Result<(), DriverError> {
        let zone = canonical_zone(name).map_err(rule)?;
        let path = format!("/zones/{zone}");
        let reply = self.send(Method::DELETE, &path, None).await?;
        if reply.status.is_success() || reply.zone_not_found() {
            tracing::info!(zone = %zone, "PowerDNS zone deleted");
            return Ok(());
        }
        Err(failure(&Method::DELETE, &path, &reply))
    }

    /// Sets the record set to exactly these records and TTL (0 means 3600),
    /// creating it if absent. The zone must exist.
    pub async fn replace_rrset(&self, zone: &str, set: &RecordSet) -> Result<(), DriverError> {
        let zone = canonical_zone(zone).map_err(rule)?;
        let set = canonical_set(&zone, set)?;
        if set.records.is_empty() {
            return Err(DriverError::Permanent(format!(
                "no records for {} {}: delete the record set instead",
                set.name, set.rtype
            )));
        }
        self.patch(&zone, &set.name, set.rtype, &set).await
    }

    /// Deletes the record set; an absent set or zone is fine.
    pub async fn delete_rrset(
        &self,
        zone: &str,
        name: &str,
        rtype: RecordType,
    ) -> Result<(), DriverError> {
        let zone = canonical_zone(zone).map_err(rule)?;
        let name = canonical_name(&zone, name).map_err(rule)?;
        let path = format!("/zones/{zone}");
        let body = json!({ "rrsets": [rrset_json(&name, rtype, None)] });
        let reply = self.send(Method::PATCH, &path, Some(&body)).await?;
        if reply.status.is_success() || reply.zone_not_found() {
            return Ok(());
        }
        Err(failure(&Method::PATCH, &path, &reply))
    }

    /// `GET …/zones/{zone}`: its rrsets, or `None` when absent.
    async fn fetch_zone(&self, zone: &str) -> Result<Option<Vec<ApiRrset>>, DriverError> {
        let path = format!("/zones/{zone}");
        let reply = self.send(Method::GET, &path, None).await?;
        if reply.zone_not_found() {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(failure(&Method::GET, &path, &reply));
        }
        let parsed: ApiZone = serde_json::from_str(&reply.text).map_err(|e| {
            DriverError::Transient(format!("PowerDNS GET {path}: unexpected answer: {e}"))
        })?;
        Ok(Some(parsed.rrsets))
    }

    /// `POST …/zones`. `true` when this request created the zone; `false`
    /// when PowerDNS says it exists (409) or refused it with a 422 after
    /// which the zone is there (look again).
    async fn create_zone(
        &self,
        zone: &str,
        nameservers: &[String],
        sets: &[RecordSet],
    ) -> Result<bool, DriverError> {
        let rrsets: Vec<Value> = sets
            .iter()
            .map(|s| rrset_json(&s.name, s.rtype, Some(s)))
            .collect();
        let body = json!({
            "name": zone,
            "kind": "Native",
            "nameservers": nameservers,
            "rrsets": rrsets,
        });
        let reply = self.send(Method::POST, "/zones", Some(&body)).await?;
        match reply.status {
            s if s.is_success() => Ok(true),
            StatusCode::CONFLICT => Ok(false),
            StatusCode::UNPROCESSABLE_ENTITY if self.fetch_zone(zone).await?.is_some() => {
                tracing::warn!(
                    zone = %zone,
                    error = %error_text(&reply),
                    "PowerDNS refused the zone but has it"
                );
                Ok(false)
            }
            _ => Err(failure(&Method::POST, "/zones", &reply)),
        }
    }

    /// One `PATCH …/zones/{zone}` replacing one rrset with `set`.
    async fn patch(
        &self,
        zone: &str,
        name: &str,
        rtype: RecordType,
        set: &RecordSet,
    ) -> Result<(), DriverError> {
        let body = json!({ "rrsets": [rrset_json(name, rtype, Some(set))] });
        self.expect_success(Method::PATCH, &format!("/zones/{zone}"), Some(&body))
            .await
            .map(drop)
    }

    async fn expect_success(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, DriverError> {
        let reply = self.send(method.clone(), path, body).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(failure(&method, path, &reply))
        }
    }

    /// One request; only a transport failure is an error here.
    /// One request; only a transport failure is an error here. A 5xx
    /// answer is tried again twice, shortly after: every request this
    /// driver makes is safe to repeat, and PowerDNS's SQLite backend
    /// answers 500 ("database is locked") when writes collide.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, DriverError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 1;
        loop {
            tracing::debug!(%method, url = %url, attempt, "PowerDNS request");
            let mut request = self.client.request(method.clone(), &url);
            if let Some(body) = body {
                request = request.json(body);
            }
            let transient = |e: reqwest::Error| {
                DriverError::Transient(format!("PowerDNS {method} {path}: {}", chain(&e)))
            };
            let response = request.send().await.map_err(transient)?;
            let status = response.status();
            let text = response.text().await.map_err(transient)?;
            if !status.is_server_error() || attempt >= SERVER_ERROR_ATTEMPTS {
                return Ok(Reply { status, text });
            }
            tracing::debug!(%method, url = %url, %status, text, "PowerDNS server error, again");
            tokio::time::sleep(SERVER_ERROR_PAUSE * attempt).await;
            attempt += 1;
        }
    }
}

/// The set with its name made absolute and a TTL of 0 made 3600.
fn canonical_set(zone: &str, set: &RecordSet) -> Result<RecordSet, DriverError> {
    Ok(RecordSet {
        name: canonical_name(zone, &set.name).map_err(rule)?,
        rtype: set.rtype,
        ttl: if set.ttl == 0 { DEFAULT_TTL } else { set.ttl },
        records: set.records.clone(),
    })
}

fn rrset_json(name: &str, rtype: RecordType, set: Option<&RecordSet>) -> Value {
    match set {
        Some(set) => json!({
            "name": name,
            "type": rtype.as_str(),
            "ttl": set.ttl,
            "changetype": "REPLACE",
            "records": set.records.iter()
                .map(|content| json!({ "content": content, "disabled": false }))
                .collect::<Vec<_>>(),
        }),
        None => json!({ "name": name, "type": rtype.as_str(), "changetype": "DELETE" }),
    }
}

fn find<'a>(sets: &'a [ApiRrset], name: &str, rtype: RecordType) -> Option<&'a ApiRrset> {
    sets.iter()
        .find(|s| s.rtype == rtype.as_str() && s.name.eq_ignore_ascii_case(name))
}

/// Same TTL, same contents (in any order), none disabled.
fn matches(current: Option<&ApiRrset>, want: &RecordSet) -> bool {
    let Some(current) = current else {
        return false;
    };
    let mut have: Vec<&str> = current.records.iter().map(|r| r.content.as_str()).collect();
    let mut wanted: Vec<&str> = want.records.iter().map(String::as_str).collect();
    have.sort_unstable();
    wanted.sort_unstable();
    current.ttl == want.ttl && current.records.iter().all(|r| !r.disabled) && have == wanted
}

fn rule(e: DnsRuleError) -> DriverError {
    DriverError::Permanent(format!("invalid DNS input: {e}"))
}

/// A non-success reply as an error: 5xx, 408 and 429 are worth retrying.
fn failure(method: &Method, path: &str, reply: &Reply) -> DriverError {
    let message = format!(
        "PowerDNS {method} {path}: {}: {}",
        reply.status,
        error_text(reply)
    );
    let status = reply.status;
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        DriverError::Transient(message)
    } else {
        DriverError::Permanent(message)
    }
}

/// PowerDNS's own words: the `error` of a JSON body (422s), else the
/// plain text, cut short.
fn error_text(reply: &Reply) -> String {
    let text = serde_json::from_str::<Value>(&reply.text)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| reply.text.trim().to_owned());
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// An error and its causes (reqwest hides "connection refused" in them).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
