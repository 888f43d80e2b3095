//! Hosting accounts: staff list the tenant's, open one, and suspend,
//! restore or terminate it (asked first; the page then follows the work
//! until the account reaches its new state). A customer opens their own.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::ResourceId;
use mpanel_domain::identity::Permission;
use mpanel_services::hosting::{self, AccountView, Action, HostingAccountView};
use mpanel_store::provisioning::ResourceKind;
use serde::{Deserialize, Serialize};

use super::listing::{Listed, ResourceFilter};
use super::session::Viewer;
use super::view::{PageError, fragment, page};
use super::{Done, Notice, confirm};

#[derive(Serialize)]
struct HostingPage {
    accounts: Vec<HostingAccountView>,
    next_href: Option<String>,
    status: String,
    q: String,
}

/// `GET /hosting`: staff only (a customer's services are on `/`).
pub async fn list(viewer: Viewer, listed: Listed<ResourceFilter>) -> Result<Response, PageError> {
    viewer.require(Permission::HostingRead)?;
    let Listed { listing, links } = listed;
    let paging = &listing.paging;
    let query = listing
        .filter
        .query(None, paging.after()?, paging.fetch())?;
    let fetched = hosting::hosting_page(&viewer, &query).await?;
    let found = paging.page(fetched, |a| a.account.id.to_string(), |a| a);
    let data = HostingPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        accounts: found.items,
        status: links.value("status"),
        q: links.value("q"),
    };
    page(&viewer, "/hosting", "Hosting", "hosting.html", data)
}

/// The account, if the viewer may see it.
async fn visible(viewer: &Viewer, raw: &str) -> Result<HostingAccountView, PageError> {
    let id: ResourceId = raw.parse().map_err(|_| PageError::not_found())?;
    if viewer.is_staff() {
        viewer.require(Permission::HostingRead)?;
    }
    Ok(hosting::get_hosting(viewer, id).await?)
}

#[derive(Serialize)]
struct AccountPage {
    account: HostingAccountView,
    mailboxes: Vec<AccountView>,
    may_mailboxes: bool,
    /// Where the mailbox forms come back to.
    back: String,
    may_act: bool,
    /// The state the page waits for, while work is under way.
    waiting_for: Option<String>,
    notice: Option<Notice>,
}

#[derive(Deserialize, Default)]
pub struct Follow {
    until: Option<String>,
    /// How many times the fragment was asked for.
    #[serde(default)]
    n: u32,
}

/// Two seconds apart: five minutes, then the page stops asking.
const MAX_POLLS: u32 = 150;

impl Follow {
    /// The state waited for, when it is one and not reached yet.
    fn waiting(&self, status: &str) -> Option<String> {
        self.until
            .as_deref()
            .filter(|u| ["ACTIVE", "SUSPENDED", "TERMINATED"].contains(u))
            .filter(|u| *u != status)
            .map(str::to_owned)
    }
}

/// `GET /hosting/{id}`.
pub async fn show(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
    Query(follow): Query<Follow>,
) -> Result<Response, PageError> {
    let account = visible(&viewer, &raw).await?;
    let waiting_for = follow.waiting(&account.account.status);
    let title = account.account.name.clone();
    let suffix = format!("@{}", account.account.name);
    let mailboxes = hosting::list(
        &viewer,
        ResourceKind::MailAccount,
        Some(account.account.customer_id),
    )
    .await?
    .into_iter()
    .filter(|m| m.name.ends_with(&suffix) && m.status != "DELETED")
    .collect();
    let data = AccountPage {
        mailboxes,
        may_mailboxes: viewer.may(Permission::MailboxesWrite),
        back: format!("/hosting/{}", account.account.id),
        may_act: viewer.may(Permission::HostingWrite),
        waiting_for,
        notice: done.notice(),
        account,
    };
    page(&viewer, "/hosting", &title, "hosting_account.html", data)
}

#[derive(Serialize)]
struct Progress {
    id: String,
    status: String,
    waiting_for: Option<String>,
    /// The next poll's number.
    next: u32,
    /// Asked too often: the page stops and says so.
    gave_up: bool,
}

/// `GET /hosting/{id}/progress?until=STATE`: the fragment the account's
/// page polls while work is under way; it stops asking once done.
pub async fn progress(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(follow): Query<Follow>,
) -> Result<Response, PageError> {
    let account = visible(&viewer, &raw).await?;
    let status = account.account.status.clone();
    let arrived = follow.until.as_ref().is_some_and(|u| *u == status);
    let gave_up = follow.n >= MAX_POLLS;
    let waiting_for = follow.waiting(&status).filter(|_| !gave_up);
    let mut res = fragment(
        "hosting_progress.html",
        Progress {
            id: account.account.id.to_string(),
            waiting_for,
            status,
            next: follow.n + 1,
            gave_up,
        },
    )?;
    if arrived {
        // Done: the whole page again, with the actions of the new state.
        res.headers_mut()
            .insert("hx-refresh", axum::http::HeaderValue::from_static("true"));
    }
    Ok(res)
}

fn action_of(raw: &str) -> Result<(Action, &'static str, &'static str), PageError> {
    match raw {
        "suspend" => Ok((
            Action::Suspend,
            "Suspend",
            "The site will answer 503 and its mailboxes refuse logins until it is restored.",
        )),
        "unsuspend" => Ok((
            Action::Unsuspend,
            "Restore",
            "The site and its mailboxes come back as they were.",
        )),
        "terminate" => Ok((
            Action::Terminate,
            "Terminate",
            "The mailboxes are deleted, the site archived then removed and the DNS zone deleted. This cannot be undone.",
        )),
        _ => Err(PageError::not_found()),
    }
}

/// `GET /hosting/{id}/{action}`: asks first.
pub async fn action_confirm(
    viewer: Viewer,
    Path((raw, action)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::HostingWrite)?;
    let (_, verb, detail) = action_of(&action)?;
    let account = visible(&viewer, &raw).await?;
    let id = account.account.id;
    confirm(
        &viewer,
        "/hosting",
        super::confirm::Question {
            title: format!("{verb} {}?", account.account.name),
            detail: detail.to_owned(),
            action: format!("/hosting/{id}/{action}"),
            button: verb.to_owned(),
            back: format!("/hosting/{id}"),
        },
    )
}

/// `POST /hosting/{id}/{action}`: queued; the page follows it.
pub async fn action(
    viewer: Viewer,
    Path((raw, action)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require(Permission::HostingWrite)?;
    let (what, _, _) = action_of(&action)?;
    let account = visible(&viewer, &raw).await?;
    let id = account.account.id;
    hosting::request(&viewer, id, what).await?;
    let until = what.target().as_str();
    Ok(Redirect::to(&format!("/hosting/{id}?done={action}&until={until}")).into_response())
}
