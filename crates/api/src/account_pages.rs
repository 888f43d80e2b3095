//! The two pages the links in invitation and reset e-mail open
//! (`/invitation`, `/password-reset`): a form that reads the token from
//! the fragment and posts the new password to the API. Plain static
//! files with a CSP of their own (scripts and styles from here only,
//! requests to here only), so a link works before any console exists.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mpanel_domain::identity::account_link::LinkPurpose;

use crate::AppState;

const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const PAGE: &str = include_str!("account_pages/page.html");

fn page(purpose: LinkPurpose) -> String {
    let (title, intro, endpoint) = match purpose {
        LinkPurpose::Invitation => (
            "Choose your password",
            "Your account is ready: choose the password you will sign in with.",
            "/api/auth/invitations/accept",
        ),
        LinkPurpose::PasswordReset => (
            "Choose a new password",
            "Setting a new password signs you out everywhere.",
            "/api/auth/password/reset",
        ),
    };
    PAGE.replace("{title}", title)
        .replace("{intro}", intro)
        .replace("{endpoint}", endpoint)
}

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut res = body.into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The pages and their script and style.
pub fn routes() -> Router<AppState> {
    let html = "text/html; charset=utf-8";
    Router::new()
        .route(
            LinkPurpose::Invitation.page(),
            get(move || async move { asset(html, page(LinkPurpose::Invitation)) }),
        )
        .route(
            LinkPurpose::PasswordReset.page(),
            get(move || async move { asset(html, page(LinkPurpose::PasswordReset)) }),
        )
        .route(
            "/account/account.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("account_pages/account.js"),
                )
            }),
        )
        .route(
            "/account/account.css",
            get(|| async {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("account_pages/account.css"),
                )
            }),
        )
}
