//! Rendering: the templates (compiled into the binary, parsed once, HTML
//! auto-escaped, an unknown variable an error rather than an empty
//! string), the frame every page shares, and the error pages.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior, Value};
use mpanel_domain::identity::Permission;
use mpanel_services::ServiceError;
use serde::Serialize;

use super::assets;
use super::session::Viewer;
use crate::Problem;

/// Scripts and styles from this origin only, no inline script or style,
/// forms post here only, never framed.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("templates/", $name)))),*]
    };
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("money", |minor: i64, currency: &str| {
        mpanel_services::billing::documents::money(minor, currency)
    });
    env.add_filter("when", when);
    env.add_filter("urlencode_part", |s: &str| super::session::url_encode(s));
    for (name, source) in templates!(
        "base.html",
        "macros.html",
        "error.html",
        "sign_in.html",
        "dashboard.html",
        "home_customer.html",
        "invoices.html",
        "invoice.html",
        "invoice_pay.html",
        "confirm.html",
        "hosting.html",
        "hosting_account.html",
        "hosting_progress.html",
        "orders.html",
        "customers.html",
        "dns_zones.html",
        "dns_zone.html",
        "security.html",
        "products.html",
        "product.html",
        "subscriptions.html",
        "subscription.html",
        "jobs.html",
        "job.html",
        "audit.html",
        "servers.html",
        "customer.html",
        "mailboxes.html",
        "security_policy.html",
        "security_events.html",
        "settings.html",
        "template.html",
        "cloudpods.html",
        "cloudpod.html",
        "change_plan.html",
        "order.html",
        "backups.html",
        "restore.html",
    ) {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "console template does not parse");
        }
    }
    env
});

/// `2026-12-03T10:00:00Z` → `2026-12-03 10:00 UTC`.
fn when(v: Value) -> String {
    let s = v
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string());
    match time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute())
        }
        Err(_) => s,
    }
}

/// One link of the menu.
#[derive(Serialize)]
struct NavItem {
    href: &'static str,
    label: &'static str,
    active: bool,
}

/// What every page's frame shows: who is signed in, the menu they may
/// use, the form token, the assets.
#[derive(Serialize)]
struct Frame<'a> {
    title: &'a str,
    email: Option<&'a str>,
    role: Option<&'static str>,
    staff: bool,
    nav: Vec<NavItem>,
    csrf: &'a str,
    assets: &'static assets::Links,
}

fn nav(viewer: &Viewer, section: &str) -> Vec<NavItem> {
    let staff: [(&str, &str, Option<Permission>); 14] = [
        ("/", "Dashboard", None),
        ("/products", "Products", Some(Permission::CatalogRead)),
        ("/customers", "Customers", Some(Permission::CustomersRead)),
        ("/orders", "Orders", Some(Permission::OrdersRead)),
        ("/invoices", "Invoices", Some(Permission::InvoicesRead)),
        (
            "/subscriptions",
            "Subscriptions",
            Some(Permission::SubscriptionsRead),
        ),
        ("/hosting", "Hosting", Some(Permission::HostingRead)),
        ("/dns", "DNS", Some(Permission::HostingRead)),
        ("/cloudpods", "CloudPods", Some(Permission::CloudPodsRead)),
        ("/servers", "Servers", Some(Permission::ServersRead)),
        ("/jobs", "Jobs", Some(Permission::JobsRead)),
        ("/audit", "Audit log", Some(Permission::AuditRead)),
        (
            "/settings",
            "Settings",
            Some(Permission::BillingSettingsWrite),
        ),
        ("/security", "Security", None),
    ];
    let customer: [(&str, &str, Option<Permission>); 5] = [
        ("/", "Services", None),
        ("/invoices", "Invoices", None),
        ("/cloudpods", "CloudPods", Some(Permission::CloudPodsRead)),
        ("/dns", "DNS", None),
        ("/security", "Security", None),
    ];
    let items: Vec<_> = if viewer.is_staff() {
        staff.to_vec()
    } else {
        customer.to_vec()
    };
    items
        .into_iter()
        .filter(|(_, _, p)| p.is_none_or(|p| viewer.may(p)))
        .map(|(href, label, _)| NavItem {
            href,
            label,
            active: href == section,
        })
        .collect()
}

/// A page in the frame: `template` rendered with `data` as `page`.
pub fn page(
    viewer: &Viewer,
    section: &str,
    title: &str,
    template: &str,
    data: impl Serialize,
) -> Result<Response, PageError> {
    let frame = Frame {
        title,
        email: Some(&viewer.principal().email),
        role: Some(viewer.principal().role().as_str()),
        staff: viewer.is_staff(),
        nav: nav(viewer, section),
        csrf: &viewer.csrf,
        assets: assets::links(),
    };
    render(StatusCode::OK, template, &frame, data)
}

/// A page outside the frame's menu (sign-in, errors).
pub fn bare_page(
    status: StatusCode,
    title: &str,
    csrf: &str,
    template: &str,
    data: impl Serialize,
) -> Result<Response, PageError> {
    let frame = Frame {
        title,
        email: None,
        role: None,
        staff: false,
        nav: Vec::new(),
        csrf,
        assets: assets::links(),
    };
    render(status, template, &frame, data)
}

/// A fragment (an htmx swap), without the frame.
pub fn fragment(template: &str, data: impl Serialize) -> Result<Response, PageError> {
    let tpl = TEMPLATES
        .get_template(template)
        .map_err(|e| PageError::internal(&e))?;
    let html = tpl
        .render(minijinja::context! { page => Value::from_serialize(&data) })
        .map_err(|e| PageError::internal(&e))?;
    Ok(with_headers(StatusCode::OK, Html(html).into_response()))
}

fn render(
    status: StatusCode,
    template: &str,
    frame: &Frame<'_>,
    data: impl Serialize,
) -> Result<Response, PageError> {
    let tpl = TEMPLATES
        .get_template(template)
        .map_err(|e| PageError::internal(&e))?;
    let html = tpl
        .render(minijinja::context! {
            frame => Value::from_serialize(frame),
            page => Value::from_serialize(&data),
        })
        .map_err(|e| PageError::internal(&e))?;
    Ok(with_headers(status, Html(html).into_response()))
}

fn with_headers(status: StatusCode, mut res: Response) -> Response {
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A console request that failed: the problem's status and message on a
/// page (never a stack trace; an internal error says only that).
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "There is no such page, or it is not yours to see.",
        )
    }

    fn internal(e: &dyn std::error::Error) -> Self {
        tracing::error!(error = %crate::problem::error_chain(e), "console page failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side; it has been logged. Try again in a moment.",
        )
    }
}

impl From<Problem> for PageError {
    fn from(p: Problem) -> Self {
        if p.status == StatusCode::NOT_FOUND {
            return Self::not_found();
        }
        Self::new(p.status, p.detail)
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        Problem::from(e).into()
    }
}

#[derive(Serialize)]
struct ErrorData<'a> {
    status: u16,
    heading: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let heading = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let data = ErrorData {
            status: self.status.as_u16(),
            heading,
            message: &self.message,
        };
        bare_page(self.status, heading, "", "error.html", &data)
            .unwrap_or_else(|_| (self.status, self.message).into_response())
    }
}

/// The error page for a browser's request that failed below the
/// console's handlers (a malformed form, a method not allowed).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    if status == StatusCode::NOT_FOUND {
        return not_found_page();
    }
    PageError::new(status, message).into_response()
}

/// The not-found page for a browser that asked for HTML.
pub fn not_found_page() -> Response {
    PageError::not_found().into_response()
}
