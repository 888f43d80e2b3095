//! RFC 9457 problem details: every error the API returns is one, with a
//! stable machine `code` (snake_case) beside the human `title`/`detail`.
//! A 5xx never carries its internal cause: that goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpanel_services::ServiceError;
use mpanel_store::StoreError;
use serde_json::{Map, Value, json};

pub mod codes;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Extra members (`line`, `column`, `retry_after`, …).
    pub extensions: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extensions: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// The problem for a bare status, when nothing more specific is known.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::BAD_REQUEST => (codes::BAD_REQUEST, "The request could not be understood."),
            StatusCode::UNAUTHORIZED => (codes::UNAUTHORIZED, "Authentication is required."),
            StatusCode::FORBIDDEN => (codes::FORBIDDEN, "You may not do this."),
            StatusCode::NOT_FOUND => (codes::NOT_FOUND, "There is nothing at this address."),
            StatusCode::METHOD_NOT_ALLOWED => (
                codes::METHOD_NOT_ALLOWED,
                "This address does not accept this method.",
            ),
            StatusCode::REQUEST_TIMEOUT => (codes::REQUEST_TIMEOUT, "The request took too long."),
            StatusCode::PAYLOAD_TOO_LARGE => {
                (codes::PAYLOAD_TOO_LARGE, "The request body is too large.")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                codes::UNSUPPORTED_MEDIA_TYPE,
                "The request body has an unsupported content type.",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => {
                (codes::INVALID_REQUEST, "The request is not valid.")
            }
            StatusCode::TOO_MANY_REQUESTS => (codes::RATE_LIMITED, "Too many requests."),
            StatusCode::SERVICE_UNAVAILABLE => (
                codes::SERVICE_UNAVAILABLE,
                "The service is unavailable; try again later.",
            ),
            s if s.is_server_error() => {
                (codes::INTERNAL_ERROR, "Something went wrong on our side.")
            }
            _ => (codes::ERROR, "The request failed."),
        };
        Self::new(status, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, detail)
    }

    /// A failure whose cause must not reach the client: logs it and answers
    /// a bare 500.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(cause), "internal error");
        Self::for_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("type".into(), json!("about:blank"));
        body.insert(
            "title".into(),
            json!(self.status.canonical_reason().unwrap_or("Error")),
        );
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("code".into(), json!(self.code));
        body.insert("detail".into(), json!(self.detail));
        for (k, v) in &self.extensions {
            body.insert(k.clone(), v.clone());
        }
        body
    }
}

/// A problem body as a response with the problem content type.
pub fn response(status: StatusCode, body: &Map<String, Value>) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut res = (status, bytes).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    res
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = response(self.status, &self.to_json());
        // A problem that says when to retry says it in the header too.
        if let Some(secs) = self.extensions.get("retry_after").and_then(Value::as_u64)
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => Self::new(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                "This conflicts with existing data.",
            ),
            StoreError::Unavailable(ref cause) => {
                tracing::error!(error = %error_chain(cause), "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::DATABASE_UNAVAILABLE,
                    "The database is unavailable; try again later.",
                )
            }
            other => Self::internal(&other),
        }
    }
}

impl From<ServiceError> for Problem {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid { field, message } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::VALIDATION_FAILED,
                format!("{field}: {message}"),
            )
            .with("field", field.into_owned()),
            ServiceError::Refused {
                field,
                reason,
                message,
            } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::VALIDATION_FAILED,
                format!("{field}: {message}"),
            )
            .with("field", field)
            .with("reason", reason),
            ServiceError::Conflict(m) => Self::new(StatusCode::CONFLICT, codes::CONFLICT, m),
            ServiceError::Transition {
                what,
                from,
                to,
                ref allowed,
            } => {
                let allowed = allowed.clone();
                Self::new(
                    StatusCode::CONFLICT,
                    codes::INVALID_TRANSITION,
                    err.to_string(),
                )
                .with("from", from)
                .with("to", to)
                .with("allowed", allowed)
                .with("resource", what)
            }
            ServiceError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, m),
            ServiceError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, m),
            ServiceError::Unauthenticated(m) => {
                Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, m)
            }
            ServiceError::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                codes::INVALID_CREDENTIALS,
                "The tenant, e-mail address or password is wrong.",
            ),
            ServiceError::AccountDisabled => Self::new(
                StatusCode::FORBIDDEN,
                codes::ACCOUNT_DISABLED,
                "This account is disabled.",
            ),
            ServiceError::TenantSuspended => Self::new(
                StatusCode::FORBIDDEN,
                codes::TENANT_SUSPENDED,
                "This tenant is suspended by the platform's operator.",
            ),
            ServiceError::Throttled { retry_after_secs } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::LOGIN_THROTTLED,
                format!("Too many failed logins; try again in {retry_after_secs} s."),
            )
            .with("retry_after", retry_after_secs),
            ServiceError::MfaEnrollmentRequired => Self::new(
                StatusCode::FORBIDDEN,
                codes::MFA_ENROLLMENT_REQUIRED,
                "The tenant's policy requires a second factor: enrol one at /api/security/me/mfa/enable or /api/security/me/webauthn/register/start.",
            ),
            ServiceError::ReauthenticationRequired => Self::new(
                StatusCode::FORBIDDEN,
                codes::REAUTHENTICATION_REQUIRED,
                "This change needs you, not just your session: enter your password (or a second factor) at POST /api/auth/reauthenticate, then repeat it within 5 minutes. API tokens cannot make it.",
            ),
            ServiceError::Unavailable(m) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, codes::NOT_READY, m)
                    .with("retry_after", 60)
            }
            ServiceError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::BUSY,
                "The server is busy; try again in a moment.",
            )
            .with("retry_after", 1),
            ServiceError::Store(store) => Self::from(store),
            ServiceError::Internal(ref _cause) => Self::internal(&err),
        }
    }
}

/// An error and its sources, for the log.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_answers_a_bare_500() {
        let cause = serde_json::from_str::<u32>("x").unwrap_err();
        let problem = Problem::from(ServiceError::internal("billing settings", cause));
        assert_eq!(problem.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(problem.code, codes::INTERNAL_ERROR);
        assert!(!problem.detail.contains("billing"), "{}", problem.detail);
        assert!(problem.extensions.is_empty());
    }
}
