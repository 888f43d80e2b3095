//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use mpanel_services::ops_overview;

use crate::problem::codes;
use crate::{AppState, Problem};

/// Request counts and latency histograms by route and status, and whatever
/// else the process records.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String),
        (status = 401, description = "A metrics token is configured and was not given"),
    ))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            let mut res = Problem::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "The metrics endpoint needs the configured bearer token.",
            )
            .into_response();
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    state.metrics.handle.run_upkeep();
    let mut text = state.metrics.handle.render();
    text.push_str(&database_figures(&state).await);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// How often the database figures are read at most: a scraper (or
/// anyone, when no token is configured) cannot make the endpoint query
/// the database faster than this.
pub const FIGURES_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// The platform's figures from the database (bounded, indexed queries, see
/// `mpanel_store::ops_overview`), read at most every [`FIGURES_EVERY`]:
/// concurrent scrapes wait for one read. `mpanel_ops_figures_ok` says
/// whether the last read worked (an alert can watch it; the figures of a
/// failed read are left out rather than shown stale).
async fn database_figures(state: &AppState) -> String {
    let mut cached = state.metrics.figures.lock().await;
    if let Some((at, text)) = cached.as_ref()
        && at.elapsed() < FIGURES_EVERY
    {
        return text.clone();
    }
    let mut text = String::new();
    let ok = match ops_overview::metrics_figures(&state.store, state.clock.as_ref()).await {
        Ok(figures) => {
            render_figures(&mut text, &figures);
            1
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the platform's figures for /metrics");
            0
        }
    };
    text.push_str(&format!(
        "# HELP mpanel_ops_figures_ok Whether the database figures could be read (1) or not (0).\n\
         # TYPE mpanel_ops_figures_ok gauge\nmpanel_ops_figures_ok {ok}\n"
    ));
    *cached = Some((std::time::Instant::now(), text.clone()));
    text
}

/// Appends the database figures in the Prometheus text format (gauges:
/// each is the state now, so a kind or node that went away goes away).
fn render_figures(out: &mut String, f: &ops_overview::MetricsFigures) {
    use std::fmt::Write;
    let mut family = |name: &str, help: &str, samples: Vec<(String, i64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    family(
        "mpanel_node_up",
        "Whether the server's last health check answered (1) or failed (0); unchecked servers are absent.",
        f.nodes
            .iter()
            .filter(|n| n.up != "UNCHECKED")
            .map(|n| {
                (
                    labels(&[("node", &n.name), ("role", &n.role), ("status", &n.status)]),
                    i64::from(n.up == "UP"),
                )
            })
            .collect(),
    );
    family(
        "mpanel_node_check_age_seconds",
        "Seconds since the server's last health check (a stopped check shows here).",
        f.nodes
            .iter()
            .filter_map(|n| {
                let age = n.check_age_secs?;
                Some((labels(&[("node", &n.name), ("role", &n.role)]), age))
            })
            .collect(),
    );
    family(
        "mpanel_nodes",
        "Servers by the outcome of their last health check (up, down, unchecked).",
        ["UP", "DOWN", "UNCHECKED"]
            .iter()
            .map(|state| {
                let n = f.nodes.iter().filter(|n| n.up == *state).count();
                (
                    labels(&[("state", &state.to_lowercase())]),
                    i64::try_from(n).unwrap_or(i64::MAX),
                )
            })
            .collect(),
    );
    let mut jobs = Vec::new();
    for q in &f.queues {
        for (state, n) in [
            ("waiting", q.waiting),
            ("running", q.running),
            ("scheduled", q.scheduled),
            ("retrying", q.retrying),
            ("dead", q.dead),
        ] {
            jobs.push((labels(&[("kind", &q.kind), ("state", state)]), n));
        }
    }
    family(
        "mpanel_queue_jobs",
        "Jobs by kind and state (waiting: due and unclaimed; scheduled: due later; retrying: failed, to be retried; dead: out of attempts).",
        jobs,
    );
    family(
        "mpanel_queue_oldest_waiting_seconds",
        "Seconds the oldest waiting job of the kind has waited (0 when none waits).",
        f.queues
            .iter()
            .map(|q| {
                (
                    labels(&[("kind", &q.kind)]),
                    q.oldest_waiting_age_secs.unwrap_or(0),
                )
            })
            .collect(),
    );
    family(
        "mpanel_queue_completed_5m",
        "Jobs of the kind completed in the last 5 minutes.",
        f.queues
            .iter()
            .map(|q| (labels(&[("kind", &q.kind)]), q.completed_last_5m))
            .collect(),
    );
    family(
        "mpanel_provisioning_orders_24h",
        "Orders provisioned or failed in the last 24 hours.",
        vec![
            (labels(&[("outcome", "provisioned")]), f.provisioned_24h),
            (labels(&[("outcome", "failed")]), f.failed_24h),
        ],
    );
    family(
        "mpanel_failed_logins_15m",
        "Failed logins in the last 15 minutes.",
        vec![(String::new(), f.failed_logins_15m)],
    );
    family(
        "mpanel_failed_logins_24h",
        "Failed logins in the last 24 hours.",
        vec![(String::new(), f.failed_logins_24h)],
    );
    family(
        "mpanel_backup_oldest_age_seconds",
        "Seconds since the oldest ACTIVE backup target's last good backup (or its creation, never backed up); 0 without targets.",
        vec![(String::new(), f.backup_oldest_age_secs.unwrap_or(0))],
    );
    family(
        "mpanel_backup_overdue_targets",
        "ACTIVE backup targets whose last good backup is older than allowed (26 h).",
        vec![(String::new(), f.backup_overdue)],
    );
    family(
        "mpanel_certificates_expiring",
        "Sites' served certificates that end within 14 days (a renewal failing, or an uploaded one not replaced).",
        vec![(String::new(), f.certificates_expiring)],
    );
}

/// `{a="x",b="y"}` with the values escaped as the text format wants.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            super::labels(&[("node", "a\"b\\c\nd"), ("role", "WEB")]),
            r#"{node="a\"b\\c\nd",role="WEB"}"#
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_inputs() {
        assert!(super::constant_time_eq(b"secret", b"secret"));
        assert!(!super::constant_time_eq(b"secret", b"secreT"));
        assert!(!super::constant_time_eq(b"secret", b"secret!"));
    }
}
