//! Liveness and readiness probes.
//!
//! `/api/health` answers from memory (is the process serving?); `/api/ready`
//! asks the database (does it answer, is the schema this binary's?), so a
//! load balancer sends traffic only to nodes that can serve it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::codes;
use crate::{AppState, Problem};

/// How long readiness waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `OK`.
    pub status: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `READY`.
    pub status: &'static str,
    /// `SQLITE` or `POSTGRES`.
    pub engine: String,
    /// Schema versions applied.
    pub migrations_applied: Vec<i64>,
    /// Versions applied by a newer release (tolerated during upgrades).
    pub migrations_unknown: Vec<i64>,
    /// `OK`, or `NOT_CONFIGURED` without `smtp_url` (a warning: mPanel
    /// serves, and its messages stay in the outbox, undeliverable).
    pub email: &'static str,
    /// What works but wants an operator's look; empty when nothing does.
    pub warnings: Vec<String>,
}

/// Liveness: the process is up and serving. Touches nothing else.
#[utoipa::path(get, path = "/api/health", tag = "ops",
    responses((status = 200, description = "The process is serving", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "OK",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Readiness: the database answers and every migration of this release is
/// applied.
#[utoipa::path(get, path = "/api/ready", tag = "ops",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Not ready (code `not_ready`)"),
    ))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = |detail: &str, database: &str, migrations: &str| {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, codes::NOT_READY, detail)
            .with(
                "checks",
                serde_json::json!({"database": database, "migrations": migrations}),
            )
            .into_response()
    };
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Err(_) => return not_ready("The database did not answer in time.", "TIMEOUT", "UNKNOWN"),
        Ok(Err(err)) => {
            tracing::warn!(error = %crate::problem::error_chain(&err), "readiness: database ping failed");
            return not_ready("The database is unavailable.", "UNAVAILABLE", "UNKNOWN");
        }
        Ok(Ok(())) => {}
    }
    let status = match tokio::time::timeout(READY_TIMEOUT, state.store.migration_status()).await {
        Ok(Ok(status)) => status,
        Ok(Err(err)) => {
            tracing::warn!(error = %crate::problem::error_chain(&err), "readiness: migration status failed");
            return not_ready("The schema version could not be read.", "OK", "UNKNOWN");
        }
        Err(_) => return not_ready("The database did not answer in time.", "TIMEOUT", "UNKNOWN"),
    };
    if !status.is_current() {
        let pending: Vec<String> = status
            .pending
            .iter()
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        let detail = if pending.is_empty() {
            "Applied migrations differ from this release's.".to_owned()
        } else {
            format!("Migrations pending: {}.", pending.join(", "))
        };
        return not_ready(&detail, "OK", "PENDING");
    }
    let (email, warnings) = if state.mail.smtp_configured() {
        ("OK", Vec::new())
    } else {
        (
            "NOT_CONFIGURED",
            vec![
                "No smtp_url is configured: e-mail stays in the outbox, undeliverable.".to_owned(),
            ],
        )
    };
    Json(Readiness {
        email,
        warnings,
        status: "READY",
        engine: state.store.engine().as_str().to_ascii_uppercase(),
        migrations_applied: status.applied,
        migrations_unknown: status.unknown,
    })
    .into_response()
}
