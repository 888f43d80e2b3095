//! The web console: one app for staff and customers at `/`, each shown
//! what their role may do. Pages are rendered on the server from
//! templates compiled into the binary; the handlers call the same
//! services as the JSON API (never the store), under the same permission
//! matrix and tenant isolation, with a cookie session and anti-forgery
//! tokens (`session`).

mod amount;
mod assets;
mod audit;
mod backups;
mod card_payment;
mod charts;
mod cloudpods;
pub(crate) mod confirm;
mod dashboard;
mod dns;
mod hosting;
mod invoices;
mod jobs;
mod listing;
mod lists;
mod mailboxes;
mod products;
mod security;
mod security_center;
mod servers;
mod services;
mod session;
mod settings;
mod sign_in;
mod subscriptions;
mod view;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub use session::CookiePolicy;
pub use view::{error_page, not_found_page};

use crate::AppState;
use session::Viewer;
use view::PageError;

/// The console's routes behind its session layer.
pub fn routes(state: AppState, policy: CookiePolicy) -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::home))
        .route("/sign-in", get(sign_in::form).post(sign_in::password))
        .route("/sign-in/verify", post(sign_in::verify))
        .route(
            "/sign-in/forgot",
            get(sign_in::forgot_form).post(sign_in::forgot),
        )
        .route("/sign-out", post(sign_in::sign_out))
        .route("/invoices", get(invoices::list))
        .route("/invoices/{id}", get(invoices::show))
        .route("/invoices/{id}/pdf", get(invoices::pdf))
        .route("/invoices/{id}/pay", get(card_payment::pay))
        .route("/invoices/{id}/payments", post(invoices::record_payment))
        .route("/invoices/{id}/issue", post(invoices::issue))
        .route("/invoices/{id}/credit-notes", post(invoices::credit_note))
        .route(
            "/invoices/{id}/void",
            get(invoices::void_confirm).post(invoices::void),
        )
        .route("/products", get(products::list).post(products::create))
        .route("/products/{id}", get(products::show).post(products::edit))
        .route("/products/{id}/prices", post(products::add_price))
        .route("/subscriptions", get(subscriptions::list))
        .route("/subscriptions/{id}", get(subscriptions::show))
        .route(
            "/subscriptions/{id}/change",
            get(subscriptions::change_preview).post(subscriptions::change),
        )
        .route(
            "/subscriptions/{id}/{action}",
            get(subscriptions::action_confirm).post(subscriptions::action),
        )
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route(
            "/jobs/{id}/cancel",
            get(jobs::cancel_confirm).post(jobs::cancel),
        )
        .route("/audit", get(audit::list))
        .route("/servers", get(servers::list))
        .route("/settings", get(settings::show))
        .route("/settings/billing", post(settings::billing))
        .route("/settings/webhook-secret", post(settings::rotate))
        .route(
            "/settings/templates/{kind}",
            get(settings::template).post(settings::save_template),
        )
        .route(
            "/settings/templates/{kind}/reset",
            post(settings::reset_template),
        )
        .route("/customers", get(lists::customers))
        .route("/customers/{id}", get(lists::customer))
        .route("/customers/{id}/notes", post(lists::add_note))
        .route("/orders", get(lists::orders))
        .route("/orders/{id}", get(lists::order))
        .route("/hosting", get(hosting::list))
        .route("/hosting/{id}", get(hosting::show))
        .route("/hosting/{id}/progress", get(hosting::progress))
        .route(
            "/hosting/{id}/backups",
            get(backups::show).post(backups::backup),
        )
        .route(
            "/hosting/{id}/backups/{snapshot}/restore",
            get(backups::restore_form).post(backups::restore),
        )
        .route(
            "/hosting/{id}/{action}",
            get(hosting::action_confirm).post(hosting::action),
        )
        .route("/mailboxes", post(mailboxes::create))
        .route("/mailboxes/{id}/password", post(mailboxes::password))
        .route("/cloudpods", get(cloudpods::list))
        .route("/cloudpods/{id}", get(cloudpods::show))
        .route("/cloudpods/{id}/backups", post(cloudpods::backup))
        .route(
            "/cloudpods/{id}/backups/{backup}/restore",
            get(cloudpods::restore_confirm).post(cloudpods::restore),
        )
        .route(
            "/cloudpods/{id}/{action}",
            get(cloudpods::action_confirm).post(cloudpods::action),
        )
        .route("/dns", get(dns::zones))
        .route("/dns/{zone}", get(dns::zone).post(dns::add))
        .route(
            "/dns/{zone}/delete",
            get(dns::delete_confirm).post(dns::delete),
        )
        .route("/security", get(security::show))
        .route(
            "/security/policy",
            get(security_center::show).post(security_center::update),
        )
        .route("/security/events", get(security_center::events))
        .route("/security/totp", post(security::totp_start))
        .route("/security/reauthenticate", post(security::reauthenticate))
        .route("/security/tokens", post(security::create_token))
        .route(
            "/security/tokens/{id}/revoke",
            get(security::revoke_token_confirm).post(security::revoke_token),
        )
        .route("/security/totp/confirm", post(security::totp_confirm))
        .route(
            "/security/sessions/{id}/revoke",
            get(security::revoke_session_confirm).post(security::revoke_session),
        )
        .layer(from_fn_with_state(
            (state, policy),
            session::console_session,
        ))
        .route("/static/{name}", get(assets::serve))
}

/// `?done=…` after an action: which message to show (fixed texts, so an
/// address cannot put words on the page).
#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

#[derive(Serialize)]
pub struct Notice {
    kind: &'static str,
    text: &'static str,
}

impl Done {
    pub fn notice(&self) -> Option<Notice> {
        let text = match self.done.as_deref()? {
            "payment_recorded" => "The payment is recorded.",
            "note_added" => "The note is kept.",
            "card_paid" => "Thank you: your payment is received.",
            "product_created" => "The product is created. Give it a price so it can be ordered.",
            "price_added" => "The price is added.",
            "product_saved" => "The product is saved.",
            "job_retried" => "The job is queued again.",
            "job_cancelled" => "The job is cancelled.",
            "plan_changed" => "The plan is changed, prorated for the rest of the period.",
            "subscription_suspend" => "The subscription is suspended.",
            "subscription_resume" => "The subscription is active again.",
            "subscription_cancel" => "The subscription ends with its current period.",
            "subscription_cancel_now" => "The subscription is cancelled.",
            "invoice_voided" => "The invoice is void.",
            "invoice_issued" => "The invoice is issued and on its way to the customer.",
            "credit_note_issued" => "The credit note is issued.",
            "suspend" => "Suspension requested: the site answers 503 once it is done.",
            "unsuspend" => "Restore requested: the site comes back once it is done.",
            "terminate" => "Termination requested.",
            "pod_reboot" => "Rebooting: the server is back in a minute.",
            "pod_suspend" => "Suspending the server.",
            "pod_resume" => "Starting the server again.",
            "pod_backup" => "A backup is being made.",
            "pod_restore" => "The restore has started: the server is back once it is done.",
            "backup_queued" => "A backup is on its way.",
            "restore_queued" => "The restore is on its way.",
            "record_added" => "The record is saved on the name servers.",
            "mailbox_added" => "The mailbox is being made; it works within a minute.",
            "mailbox_password" => "The new password is being set; it works within a minute.",
            "record_deleted" => "The record is deleted from the name servers.",
            "session_revoked" => "The session is signed out.",
            "reauthenticated" => "Thank you. You can make the change now.",
            "settings_saved" => "The settings are saved.",
            "template_saved" => "The template is saved: the next message of this kind uses it.",
            "template_reset" => "The built-in templates are in use again.",
            "policy_saved" => "The policy is saved: it applies from the next request.",
            "token_revoked" => "The token is revoked: programs using it are refused from now on.",
            _ => return None,
        };
        Some(Notice { kind: "ok", text })
    }
}

/// The confirmation page of a destructive action whose form carries
/// fields of its own.
pub fn confirm_form(
    viewer: &Viewer,
    section: &str,
    question: confirm::Question,
    fields: &[(&str, &str)],
) -> Result<Response, PageError> {
    let title = question.title.clone();
    let data = confirm::WithFields {
        question,
        fields: fields.to_vec(),
    };
    view::page(viewer, section, &title, "confirm.html", data)
}

/// The confirmation page of a destructive action.
pub fn confirm(
    viewer: &Viewer,
    section: &str,
    question: confirm::Question,
) -> Result<Response, PageError> {
    view::page(
        viewer,
        section,
        &question.title.clone(),
        "confirm.html",
        question,
    )
}
