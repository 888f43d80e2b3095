//! Mailboxes of a hosting subscription: another one within the plan's
//! count, and a new password for one. Staff for the tenant's, a customer
//! for their own (the services' rule); the work is queued, the page says
//! so.

use axum::Form;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::identity::Permission;
use mpanel_domain::{ResourceId, SubscriptionId};
use mpanel_services::hosting::{self, NewMailbox};
use serde::Deserialize;

use super::session::Viewer;
use super::view::PageError;

#[derive(Deserialize)]
pub struct NewMailboxForm {
    subscription_id: String,
    local_part: String,
    password: String,
    /// Where to come back to (the page the form was on).
    #[serde(default)]
    back: String,
}

/// Back to the page the form was on, if it is one of ours.
fn back_to(back: &str, done: &str) -> Response {
    let page = if back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains(['?', '\\'])
        && !back.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        back
    } else {
        "/"
    };
    Redirect::to(&format!("{page}?done={done}")).into_response()
}

/// `POST /mailboxes`.
pub async fn create(viewer: Viewer, Form(f): Form<NewMailboxForm>) -> Result<Response, PageError> {
    viewer.require(Permission::MailboxesWrite)?;
    let subscription_id: SubscriptionId = f
        .subscription_id
        .parse()
        .map_err(|_| PageError::not_found())?;
    let input = NewMailbox {
        subscription_id,
        local_part: f.local_part,
        password: f.password,
    };
    hosting::create_mailbox(&viewer, input).await?;
    Ok(back_to(&f.back, "mailbox_added"))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
    #[serde(default)]
    back: String,
}

/// `POST /mailboxes/{id}/password`.
pub async fn password(
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::MailboxesWrite)?;
    let id: ResourceId = raw.parse().map_err(|_| PageError::not_found())?;
    hosting::set_mail_password(&viewer, id, &f.password).await?;
    Ok(back_to(&f.back, "mailbox_password"))
}
