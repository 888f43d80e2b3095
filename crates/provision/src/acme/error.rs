//! What can go wrong talking to an ACME certificate authority, worded for
//! the hosting customer or operator who reads it, and the two things read
//! from a failed answer: the RFC 7807 problem document (RFC 8555 §6.7) and
//! the `Retry-After` header (seconds or an HTTP-date, RFC 9110 §10.2.3).

use serde::Deserialize;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// The prefix of every ACME problem type; [`AcmeError::Problem`] keeps
/// only what follows it.
const ACME_ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

/// An HTTP-date in the preferred IMF-fixdate form
/// (`Sun, 06 Nov 1994 08:49:37 GMT`).
const IMF_FIXDATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// How a retry time is shown in messages.
const SHOWN_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute] UTC");

/// A failed ACME operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcmeError {
    /// The CA answered with an RFC 7807 problem document.
    #[error("{}", problem_text(.kind, .detail, .retry_after))]
    Problem {
        /// The problem type without `urn:ietf:params:acme:error:`
        /// (`rateLimited`, `badNonce`, `unauthorized`, `connection`, …);
        /// a type outside that namespace is kept whole.
        kind: String,
        /// The CA's explanation.
        detail: String,
        /// The HTTP status of the answer.
        status: u16,
        /// When the CA asked to be retried (`Retry-After`), if it did.
        retry_after: Option<OffsetDateTime>,
    },
    /// The CA could not be reached or did not answer in time (network,
    /// TLS, timeout, a gateway error): worth retrying.
    #[error("{0}")]
    Transport(String),
    /// The CA's answer made no sense, or an authorization or order became
    /// invalid; the message says which name and why.
    #[error("{0}")]
    Failed(String),
}

impl AcmeError {
    /// Whether trying again later may succeed: network trouble, a server
    /// error at the CA, a rate limit, or a rejected nonce.
    pub fn is_transient(&self) -> bool {
        match self {
            AcmeError::Transport(_) => true,
            AcmeError::Problem { kind, status, .. } => {
                *status >= 500 || kind == "rateLimited" || kind == "badNonce"
            }
            AcmeError::Failed(_) => false,
        }
    }

    /// The problem type without its ACME prefix, if the CA sent one.
    pub fn problem_kind(&self) -> Option<&str> {
        match self {
            AcmeError::Problem { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// The message of [`AcmeError::Problem`].
fn problem_text(kind: &str, detail: &str, retry_after: &Option<OffsetDateTime>) -> String {
    let retry = retry_after
        .and_then(|at| at.format(SHOWN_TIME).ok())
        .map(|at| format!("; retry after {at}"))
        .unwrap_or_default();
    match kind {
        "rateLimited" => {
            format!("the certificate authority's rate limit was reached: {detail}{retry}")
        }
        "badNonce" => format!("the certificate authority rejected a request's nonce: {detail}"),
        _ => format!("the certificate authority refused the request ({kind}): {detail}{retry}"),
    }
}

/// `urn:ietf:params:acme:error:rateLimited` → `rateLimited`; any other
/// type (`about:blank`, a CA's own URN) is kept whole.
pub(crate) fn short_kind(kind: &str) -> &str {
    kind.strip_prefix(ACME_ERROR_PREFIX).unwrap_or(kind)
}

/// An RFC 7807 problem document as ACME sends it (RFC 8555 §6.7).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ProblemDoc {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub subproblems: Vec<SubProblem>,
}

/// One name's share of a compound problem (RFC 8555 §6.7.1).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SubProblem {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub identifier: Option<Identifier>,
}

/// An ACME identifier (`{"type": "dns", "value": "example.com"}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Identifier {
    #[serde(default)]
    pub value: String,
}

impl ProblemDoc {
    /// The detail, followed by each subproblem's name and detail unless
    /// the detail already mentions it.
    pub fn full_detail(&self) -> String {
        let mut text = self.detail.clone();
        for sub in &self.subproblems {
            if !sub.detail.is_empty() && !text.contains(&sub.detail) {
                let name = sub.identifier.as_ref().map_or("", |i| i.value.as_str());
                text.push_str(&format!(
                    "; {name}: {} ({})",
                    sub.detail,
                    short_kind(&sub.kind)
                ));
            }
        }
        text
    }
}

/// The error for a non-2xx answer: its problem document if it carried
/// one, otherwise a transport error for a 5xx (a gateway in the way) and
/// a failure for anything else.
pub(crate) fn problem_from(
    status: u16,
    body: &[u8],
    retry_after: Option<OffsetDateTime>,
) -> AcmeError {
    match serde_json::from_slice::<ProblemDoc>(body) {
        Ok(doc) if !doc.kind.is_empty() => AcmeError::Problem {
            kind: short_kind(&doc.kind).to_owned(),
            detail: doc.full_detail(),
            status,
            retry_after,
        },
        _ if status >= 500 => AcmeError::Transport(format!(
            "the certificate authority answered HTTP {status}: {}",
            snippet(body)
        )),
        _ => AcmeError::Failed(format!(
            "the certificate authority answered HTTP {status}: {}",
            snippet(body)
        )),
    }
}

/// The start of a body that was not a problem document, for a message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.to_owned(),
    }
}

/// A `Retry-After` value: delay seconds (from `now`) or an IMF-fixdate.
/// The obsolete HTTP-date forms and anything unreadable give `None`.
pub(crate) fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(now + Duration::seconds(i64::from(seconds)));
    }
    PrimitiveDateTime::parse(value, IMF_FIXDATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retry_after_in_seconds_counts_from_now() {
        let now = datetime!(2026-12-03 09:59:00 UTC);
        assert_eq!(
            parse_retry_after(" 60 ", now),
            Some(datetime!(2026-12-03 10:00:00 UTC))
        );
        assert_eq!(parse_retry_after("0", now), Some(now));
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let now = datetime!(2000-01-01 00:00:00 UTC);
        assert_eq!(
            parse_retry_after("Thu, 03 Dec 2026 10:00:30 GMT", now),
            Some(datetime!(2026-12-03 10:00:30 UTC))
        );
    }

    #[test]
    fn unreadable_retry_after_is_ignored() {
        let now = datetime!(2000-01-01 00:00:00 UTC);
        for value in ["", "-5", "soon", "Thursday, 03-Dec-26 10:00:30 GMT", "1.5"] {
            assert_eq!(parse_retry_after(value, now), None, "{value}");
        }
    }

    #[test]
    fn a_rate_limit_problem_says_when_to_retry() {
        let body = br#"{"type":"urn:ietf:params:acme:error:rateLimited",
            "detail":"too many certificates already issued","status":429}"#;
        let at = datetime!(2026-12-03 10:00:00 UTC);
        let err = problem_from(429, body, Some(at));
        assert_eq!(
            err,
            AcmeError::Problem {
                kind: "rateLimited".into(),
                detail: "too many certificates already issued".into(),
                status: 429,
                retry_after: Some(at),
            }
        );
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "the certificate authority's rate limit was reached: too many certificates \
             already issued; retry after 2026-12-03 10:00 UTC"
        );
    }

    #[test]
    fn subproblems_name_their_identifier() {
        let body = br#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier",
            "detail":"Error creating new order",
            "subproblems":[{"type":"urn:ietf:params:acme:error:rejectedIdentifier",
              "detail":"forbidden name","identifier":{"type":"dns","value":"bad.test"}}]}"#;
        let err = problem_from(400, body, None);
        assert_eq!(err.problem_kind(), Some("rejectedIdentifier"));
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "the certificate authority refused the request (rejectedIdentifier): Error \
             creating new order; bad.test: forbidden name (rejectedIdentifier)"
        );
    }

    #[test]
    fn answers_without_a_problem_document() {
        let gateway = problem_from(502, b"<html>Bad Gateway</html>", None);
        assert!(matches!(gateway, AcmeError::Transport(_)));
        assert!(gateway.is_transient());
        let missing = problem_from(404, b"", None);
        assert_eq!(
            missing,
            AcmeError::Failed("the certificate authority answered HTTP 404: (empty body)".into())
        );
        assert!(!missing.is_transient());
    }

    #[test]
    fn which_errors_are_transient() {
        let problem = |kind: &str, status| AcmeError::Problem {
            kind: kind.into(),
            detail: String::new(),
            status,
            retry_after: None,
        };
        assert!(problem("badNonce", 400).is_transient());
        assert!(problem("serverInternal", 500).is_transient());
        assert!(!problem("unauthorized", 403).is_transient());
        assert!(AcmeError::Transport("timeout".into()).is_transient());
        assert_eq!(short_kind("about:blank"), "about:blank");
    }
}
