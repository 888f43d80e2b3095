//! Subscriptions: staff list them (by state), open one, and suspend,
//! resume or cancel it (asked first), as `/api/billing/subscriptions`.

use axum::Form;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::ProductId;
use mpanel_domain::SubscriptionId;
use mpanel_domain::billing::subscription::{CancelMode, SubscriptionStatus};
use mpanel_domain::identity::Permission;
use mpanel_services::billing::plan_change::{self, PlanPreview, UpdateInput};
use mpanel_services::billing::subscriptions::{self, SubscriptionView, Transition};
use mpanel_services::catalog;
use serde::{Deserialize, Serialize};

use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice, confirm};
use crate::routes::subscriptions::{ListFilter, list_for};

#[derive(Serialize)]
struct SubscriptionsPage {
    subscriptions: Vec<SubscriptionView>,
    next_href: Option<String>,
    status: String,
    states: [&'static str; 5],
}

/// `GET /subscriptions`.
pub async fn list(viewer: Viewer, listed: Listed<ListFilter>) -> Result<Response, PageError> {
    viewer.require(Permission::SubscriptionsRead)?;
    let Listed { listing, links } = listed;
    let found = list_for(&viewer, listing, None).await?;
    let data = SubscriptionsPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        subscriptions: found.items,
        status: links.value("status"),
        states: [
            "PENDING_ACTIVATION",
            "ACTIVE",
            "SUSPENDED",
            "CANCELLED",
            "EXPIRED",
        ],
    };
    page(
        &viewer,
        "/subscriptions",
        "Subscriptions",
        "subscriptions.html",
        data,
    )
}

#[derive(Serialize)]
struct PlanChoice {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct SubscriptionPage {
    subscription: SubscriptionView,
    /// Products it may change to (staff who may write).
    plans: Vec<PlanChoice>,
    may_suspend: bool,
    may_resume: bool,
    may_cancel: bool,
    notice: Option<Notice>,
}

fn sub_id(raw: &str) -> Result<SubscriptionId, PageError> {
    raw.parse().map_err(|_| PageError::not_found())
}

/// `GET /subscriptions/{id}`.
pub async fn show(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SubscriptionsRead)?;
    let s = subscriptions::get(&viewer, sub_id(&raw)?).await?;
    let writes = viewer.may(Permission::SubscriptionsWrite);
    let can = |to: SubscriptionStatus| writes && s.allowed_transitions.contains(&to);
    let changeable = writes
        && matches!(
            s.status,
            SubscriptionStatus::Active | SubscriptionStatus::Suspended
        );
    let plans = if changeable && viewer.may(Permission::CatalogRead) {
        catalog::list_products(&viewer, Default::default(), None, 200)
            .await?
            .into_iter()
            .filter(|p| p.id != s.product_id && p.archived_at.is_none())
            .map(|p| PlanChoice {
                id: p.id.to_string(),
                name: p.fields.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let data = SubscriptionPage {
        plans,
        may_suspend: can(SubscriptionStatus::Suspended),
        may_resume: s.status == SubscriptionStatus::Suspended && can(SubscriptionStatus::Active),
        may_cancel: can(SubscriptionStatus::Cancelled),
        notice: done.notice(),
        subscription: s,
    };
    page(
        &viewer,
        "/subscriptions",
        "Subscription",
        "subscription.html",
        data,
    )
}

fn transition_of(action: &str) -> Result<(Transition, &'static str, &'static str), PageError> {
    match action {
        "suspend" => Ok((
            Transition::Suspend,
            "Suspend",
            "Its services are suspended too, until it is resumed.",
        )),
        "resume" => Ok((
            Transition::Resume,
            "Resume",
            "The subscription and its services come back.",
        )),
        "cancel" => Ok((
            Transition::Cancel(CancelMode::EndOfTerm),
            "Cancel at the end of the term",
            "It runs until the end of the period paid for, then ends with its services.",
        )),
        "cancel-now" => Ok((
            Transition::Cancel(CancelMode::Immediate),
            "Cancel now",
            "It ends at once, and its services with it. This cannot be undone.",
        )),
        _ => Err(PageError::not_found()),
    }
}

/// `GET /subscriptions/{id}/{action}`: asks first.
pub async fn action_confirm(
    viewer: Viewer,
    Path((raw, action)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SubscriptionsWrite)?;
    let (_, verb, detail) = transition_of(&action)?;
    let id = subscriptions::get(&viewer, sub_id(&raw)?).await?.id;
    confirm(
        &viewer,
        "/subscriptions",
        super::confirm::Question {
            title: format!("{verb}?"),
            detail: detail.to_owned(),
            action: format!("/subscriptions/{id}/{action}"),
            button: verb.to_owned(),
            back: format!("/subscriptions/{id}"),
        },
    )
}

/// `POST /subscriptions/{id}/{action}`.
pub async fn action(
    viewer: Viewer,
    Path((raw, action)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SubscriptionsWrite)?;
    let (what, _, _) = transition_of(&action)?;
    let s = subscriptions::transition(&viewer, sub_id(&raw)?, what).await?;
    Ok(Redirect::to(&format!(
        "/subscriptions/{}?done=subscription_{}",
        s.id,
        action.replace('-', "_")
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct ChangeQuery {
    product_id: String,
}

#[derive(Serialize)]
struct ChangePage {
    subscription: SubscriptionView,
    product_id: String,
    preview: PlanPreview,
}

/// `GET /subscriptions/{id}/change?product_id=…`: what the change costs
/// now, before it is made.
pub async fn change_preview(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(q): Query<ChangeQuery>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SubscriptionsWrite)?;
    let id = sub_id(&raw)?;
    let product: ProductId = q.product_id.parse().map_err(|_| PageError::not_found())?;
    let preview = plan_change::preview(&viewer, id, product).await?;
    let data = ChangePage {
        subscription: subscriptions::get(&viewer, id).await?,
        product_id: product.to_string(),
        preview,
    };
    page(
        &viewer,
        "/subscriptions",
        "Change plan",
        "change_plan.html",
        data,
    )
}

#[derive(Deserialize)]
pub struct ChangeForm {
    product_id: String,
}

/// `POST /subscriptions/{id}/change`: made, prorated as previewed.
pub async fn change(
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<ChangeForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SubscriptionsWrite)?;
    let id = sub_id(&raw)?;
    let product: ProductId = f.product_id.parse().map_err(|_| PageError::not_found())?;
    let input = UpdateInput {
        product_id: Some(product),
        addons: None,
        auto_renew: None,
    };
    plan_change::update(&viewer, id, input).await?;
    Ok(Redirect::to(&format!("/subscriptions/{id}?done=plan_changed")).into_response())
}
