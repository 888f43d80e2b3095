//! Staff lists of the tenant's customers and orders, page by page.

use axum::response::{IntoResponse, Response};
use mpanel_domain::identity::Permission;
use mpanel_domain::{CustomerId, OrderId};
use mpanel_services::{customer_notes, customers};
use serde::Serialize;

use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use crate::routes::customers::{CustomerFilter, CustomerNoteView, CustomerView, list_for};
use crate::routes::orders::{OrderListFilter, OrderView};

#[derive(Serialize)]
struct CustomersPage {
    items: Vec<CustomerView>,
    next_href: Option<String>,
    q: String,
}

/// `GET /customers`, searched with `?q=`.
pub async fn customers(
    viewer: Viewer,
    listed: Listed<CustomerFilter>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CustomersRead)?;
    let Listed { listing, links } = listed;
    let q = links.value("q");
    let found = list_for(&viewer, listing).await?;
    let data = CustomersPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        items: found.items,
        q,
    };
    page(&viewer, "/customers", "Customers", "customers.html", data)
}

#[derive(Serialize)]
struct OrdersPage {
    items: Vec<OrderView>,
    next_href: Option<String>,
    status: String,
    customer_id: String,
}

/// `GET /orders`, filtered by state and customer.
pub async fn orders(
    viewer: Viewer,
    listed: Listed<OrderListFilter>,
) -> Result<Response, PageError> {
    viewer.require(Permission::OrdersRead)?;
    let Listed { listing, links } = listed;
    let status = links.value("status");
    let customer_id = links.value("customer_id");
    let found = crate::routes::orders::list_for(&viewer, listing).await?;
    let data = OrdersPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        items: found.items,
        status,
        customer_id,
    };
    page(&viewer, "/orders", "Orders", "orders.html", data)
}

#[derive(Serialize)]
struct CustomerPage {
    customer: CustomerView,
    credit: Vec<mpanel_services::billing::movements::Balance>,
    services: Vec<mpanel_services::hosting::HostingAccountView>,
    invoices: Vec<mpanel_services::billing::invoices::InvoiceView>,
    notes: Vec<CustomerNoteView>,
    may_write: bool,
    notice: Option<super::Notice>,
}

/// Notes shown on a customer's page (the API pages through all).
const NOTES_SHOWN: u32 = 50;

/// `GET /customers/{id}`: who they are, their services and invoices.
pub async fn customer(
    viewer: Viewer,
    axum::extract::Path(raw): axum::extract::Path<String>,
    axum::extract::Query(done): axum::extract::Query<super::Done>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CustomersRead)?;
    let id: CustomerId = raw.parse().map_err(|_| PageError::not_found())?;
    let customer = CustomerView::from(customers::get(&viewer, id).await?);
    let services = if viewer.may(Permission::HostingRead) {
        mpanel_services::hosting::list_hosting(&viewer, Some(id)).await?
    } else {
        Vec::new()
    };
    let invoices = if viewer.may(Permission::InvoicesRead) {
        let filter = mpanel_store::billing::InvoiceFilter {
            customer: Some(id),
            limit: 20,
            ..Default::default()
        };
        let now = viewer.now();
        mpanel_services::billing::invoices::list(&viewer, &filter)
            .await?
            .into_iter()
            .map(|i| mpanel_services::billing::invoices::view(i, None, now))
            .collect()
    } else {
        Vec::new()
    };
    let credit = if viewer.may(Permission::InvoicesRead) {
        mpanel_services::billing::movements::customer_credit(&viewer, id)
            .await?
            .balances
    } else {
        Vec::new()
    };
    let notes = customer_notes::list(&viewer, id, None, NOTES_SHOWN)
        .await?
        .into_iter()
        .map(CustomerNoteView::from)
        .collect();
    let title = customer.name.clone();
    let data = CustomerPage {
        notes,
        may_write: viewer.may(Permission::CustomersWrite),
        notice: done.notice(),
        credit,
        customer,
        services,
        invoices,
    };
    page(&viewer, "/customers", &title, "customer.html", data)
}

#[derive(Serialize)]
struct OrderPage {
    order: OrderView,
    /// Some step is still on its way: the page follows it.
    working: bool,
    next: u32,
}

/// How many times a followed page was asked for.
#[derive(serde::Deserialize, Default)]
pub struct Poll {
    #[serde(default)]
    n: u32,
}

/// Two seconds apart: five minutes, then a page stops asking.
pub const MAX_POLLS: u32 = 150;

/// `GET /orders/{id}`: the order and each item's provisioning steps,
/// followed on the page until every step is done or dead.
pub async fn order(
    viewer: Viewer,
    axum::extract::Path(raw): axum::extract::Path<String>,
    axum::extract::Query(poll): axum::extract::Query<Poll>,
) -> Result<Response, PageError> {
    viewer.require(Permission::OrdersRead)?;
    let id: OrderId = raw.parse().map_err(|_| PageError::not_found())?;
    let order = crate::routes::orders::order_view(&viewer, id).await?;
    // A step whose job is queued, running or retrying; a job long gone
    // (pruned) or a domain waiting for its proof is not followed.
    let working = poll.n < MAX_POLLS
        && order
            .items
            .iter()
            .flatten()
            .flat_map(|i| &i.steps)
            .any(|s| matches!(s.state.as_deref(), Some("PENDING" | "RUNNING" | "FAILED")));
    let data = OrderPage {
        order,
        working,
        next: poll.n + 1,
    };
    page(&viewer, "/orders", "Order", "order.html", data)
}

#[derive(serde::Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    body: String,
}

/// `POST /customers/{id}/notes`.
pub async fn add_note(
    viewer: Viewer,
    axum::extract::Path(raw): axum::extract::Path<String>,
    axum::Form(form): axum::Form<NoteForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CustomersWrite)?;
    let id: CustomerId = raw.parse().map_err(|_| PageError::not_found())?;
    customer_notes::add(&viewer, id, &form.body).await?;
    Ok(axum::response::Redirect::to(&format!("/customers/{id}?done=note_added")).into_response())
}
