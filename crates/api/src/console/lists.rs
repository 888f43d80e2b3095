//! Staff lists of the tenant's customers and orders, page by page.

use axum::response::Response;
use mpanel_domain::identity::Permission;
use mpanel_domain::{CustomerId, OrderId};
use mpanel_services::{customers, orders};
use serde::Serialize;

use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use crate::query::NoFilter;
use crate::routes::customers::CustomerView;
use crate::routes::orders::{OrderView, summary};

#[derive(Serialize)]
struct ListPage<T> {
    items: Vec<T>,
    next_href: Option<String>,
}

/// `GET /customers`.
pub async fn customers(viewer: Viewer, listed: Listed<NoFilter>) -> Result<Response, PageError> {
    viewer.require(Permission::CustomersRead)?;
    let Listed { listing, links } = listed;
    let paging = &listing.paging;
    let fetched = customers::list(&viewer, paging.after::<CustomerId>()?, paging.fetch()).await?;
    let found = paging.page(fetched, |c| c.id.to_string(), CustomerView::from);
    let data = ListPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        items: found.items,
    };
    page(&viewer, "/customers", "Customers", "customers.html", data)
}

/// `GET /orders`.
pub async fn orders(viewer: Viewer, listed: Listed<NoFilter>) -> Result<Response, PageError> {
    viewer.require(Permission::OrdersRead)?;
    let Listed { listing, links } = listed;
    let paging = &listing.paging;
    let fetched = orders::list(&viewer, paging.after::<OrderId>()?, paging.fetch()).await?;
    let found = paging.page(fetched, |o| o.id.to_string(), summary);
    let data: ListPage<OrderView> = ListPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        items: found.items,
    };
    page(&viewer, "/orders", "Orders", "orders.html", data)
}
