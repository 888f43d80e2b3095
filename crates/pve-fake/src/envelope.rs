//! PVE's response envelope: `{"data": …}` on success; on error the first
//! line of the message as the status-line reason, and a body
//! `{"data":null[,"errors"][,"message"]}` (pve-http-server ≥ 5.2.0).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// An answer before it is put on the wire.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The status-line reason; `None` uses the standard one.
    pub reason: Option<String>,
    /// `None` sends an empty body (401, 59x).
    pub body: Option<Value>,
}

impl Reply {
    pub fn data(data: Value) -> Self {
        Self {
            status: 200,
            reason: None,
            body: Some(json!({ "data": data })),
        }
    }

    /// `{"data": …, "total": n}` (task log).
    pub fn data_total(data: Value, total: usize) -> Self {
        Self {
            status: 200,
            reason: None,
            body: Some(json!({ "data": data, "total": total })),
        }
    }

    /// A status with its reason and no body (401, 595, 596).
    pub fn bare(status: u16, reason: &str) -> Self {
        Self {
            status,
            reason: Some(reason.to_owned()),
            body: None,
        }
    }
}

/// An error raised by a handler, as PVE's `die` or `raise_param_exc`.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// 400 "Parameter verification failed." with a map of key → text.
    Params(BTreeMap<String, String>),
    /// Any other status with a message (a plain `die` is 500).
    Status(u16, String),
}

impl ApiError {
    /// A plain `die "…\n"` in a handler: HTTP 500.
    pub fn die(msg: impl Into<String>) -> Self {
        Self::Status(500, msg.into())
    }

    pub fn param(key: &str, msg: impl Into<String>) -> Self {
        Self::Params(BTreeMap::from([(key.to_owned(), msg.into())]))
    }

    /// 501 as the method/URI dispatcher gives it.
    pub fn not_implemented(msg: impl Into<String>) -> Self {
        Self::Status(501, msg.into())
    }

    pub fn into_reply(self) -> Reply {
        match self {
            Self::Params(errors) => Reply {
                status: 400,
                reason: Some("Parameter verification failed.".to_owned()),
                body: Some(json!({
                    "errors": errors,
                    "data": null,
                    "message": "Parameter verification failed.\n",
                })),
            },
            Self::Status(status, msg) => {
                let first = msg.lines().next().unwrap_or("").to_owned();
                let message = if msg.ends_with('\n') {
                    msg
                } else {
                    format!("{msg}\n")
                };
                Reply {
                    status,
                    reason: Some(first),
                    body: Some(json!({ "data": null, "message": message })),
                }
            }
        }
    }
}

pub type ApiResult = Result<Reply, ApiError>;
