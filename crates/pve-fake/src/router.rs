//! From a request to a reply, in pveproxy's order: the `/api2/<format>`
//! prefix, authentication (401 after a delay), a body on GET/DELETE
//! (501), parameter extraction (query merged over a form or JSON body),
//! injected 596s, then the endpoint.

use std::sync::Arc;

use hyper::body::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::envelope::{ApiError, Reply};
use crate::params::Raw;
use crate::world::Shared;
use crate::{auth, faults, routes};

pub struct Incoming {
    pub method: String,
    /// The path as sent (still percent-encoded).
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub content_length: usize,
    pub body: Bytes,
}

pub async fn handle(shared: &Arc<Shared>, req: Incoming) -> Reply {
    // pveproxy uri-unescapes the path before routing.
    let path = percent_decode_str(&req.path)
        .decode_utf8_lossy()
        .into_owned();
    if let Some(rest) = path.strip_prefix("/__fake/") {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        return faults::admin(shared, &req.method, rest, &body);
    }
    let Some(rel) = rel_path(&path) else {
        return ApiError::not_implemented("no such uri").into_reply();
    };
    let user = match auth::check(shared, req.authorization.as_deref()) {
        Ok(user) => user,
        Err(reply) => {
            tokio::time::sleep(shared.config.auth_delay).await;
            return reply;
        }
    };
    if matches!(req.method.as_str(), "GET" | "DELETE") && req.content_length > 0 {
        return ApiError::not_implemented(format!(
            "Unexpected content for method '{}'",
            req.method
        ))
        .into_reply();
    }
    let raw = match extract_params(&req) {
        Ok(raw) => raw,
        Err(e) => return e.into_reply(),
    };
    let timeout = shared.world().faults.take_timeout();
    if timeout == Some(false) {
        return Reply::bare(596, "Connection timed out");
    }
    let reply = match routes::dispatch(shared, &req.method, &rel, raw, &user).await {
        Ok(reply) => reply,
        Err(e) => e.into_reply(),
    };
    if timeout == Some(true) {
        return Reply::bare(596, "Connection timed out");
    }
    reply
}

/// `/api2/json/nodes` → `/nodes`; `None` without the `json` format.
fn rel_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api2/json")?;
    if rest.is_empty() {
        return Some("/".to_owned());
    }
    rest.starts_with('/').then(|| rest.to_owned())
}

fn extract_params(req: &Incoming) -> Result<Raw, ApiError> {
    let mut raw = Raw::new();
    if req.method == "POST" || req.method == "PUT" {
        let json = req
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"));
        if json && !req.body.is_empty() {
            let value: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::Status(400, format!("malformed JSON string: {e}")))?;
            match value {
                Value::Object(map) => raw.extend(map),
                _ => {
                    return Err(ApiError::Status(
                        400,
                        "JSON body is not an object".to_owned(),
                    ));
                }
            }
        } else {
            for (k, v) in form(&req.body) {
                raw.insert(k, Value::String(v));
            }
        }
    }
    for (k, v) in form(req.query.as_bytes()) {
        raw.insert(k, Value::String(v));
    }
    Ok(raw)
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default()
}
