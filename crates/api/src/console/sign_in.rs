//! Signing in to the console: the API's own login service (tenant,
//! throttling, the tenant's policy), then its second step (TOTP, a
//! recovery code or a passkey), then the session cookies. Signing out
//! ends the session as `POST /api/auth/logout` does.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use mpanel_domain::identity::account_link::PasswordResetRequest;
use mpanel_services::ServiceError;
use mpanel_services::identity::login::{self, LoginInput, LoginOutcome, MfaInput, TokenPair};
use mpanel_services::identity::{password_reset, sessions};
use serde::{Deserialize, Serialize};

use super::session::{AnonymousCsrf, CookiePolicy, Viewer, cleared_cookies, session_cookies};
use super::view::{PageError, bare_page};
use crate::AppState;
use crate::middleware::ClientIp;
use crate::routes::auth::{client_ip, sign_in, user_agent};

#[derive(Deserialize, Default)]
pub struct Wanted {
    #[serde(default)]
    next: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    email: String,
}

#[derive(Serialize, Default)]
struct SignInPage<'a> {
    step: &'a str,
    tenant: String,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<&'a str>,
    mfa_token: String,
    methods: Vec<&'static str>,
    /// The passkey request options as JSON, for the page's script.
    webauthn: Option<String>,
}

/// Only a path on this site, never another origin.
fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    if ok { next.to_owned() } else { "/".to_owned() }
}

fn show(csrf: &str, status: StatusCode, page: &SignInPage<'_>) -> Response {
    bare_page(status, "Sign in", csrf, "sign_in.html", page).unwrap_or_else(|e| e.into_response())
}

/// `GET /sign-in`.
pub async fn form(AnonymousCsrf(csrf): AnonymousCsrf, Query(q): Query<Wanted>) -> Response {
    show(
        &csrf,
        StatusCode::OK,
        &SignInPage {
            step: "password",
            tenant: q.tenant,
            email: q.email,
            next: safe_next(&q.next),
            ..SignInPage::default()
        },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    tenant: String,
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /sign-in`.
pub async fn password(
    State(state): State<AppState>,
    Extension(policy): Extension<CookiePolicy>,
    AnonymousCsrf(csrf): AnonymousCsrf,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let input = LoginInput {
        tenant: f.tenant.trim().to_owned(),
        email: f.email.trim().to_owned(),
        password: f.password,
        ip: client_ip(ip),
        user_agent: user_agent(&headers),
    };
    let next = safe_next(&f.next);
    match login::login(&sign_in(&state), &input).await {
        Ok(LoginOutcome::Signed(pair)) => signed_in(&pair, policy, &next),
        Ok(LoginOutcome::MfaRequired {
            mfa_token,
            methods,
            webauthn,
        }) => show(
            &csrf,
            StatusCode::OK,
            &SignInPage {
                step: "code",
                mfa_token,
                methods,
                webauthn: webauthn.map(|w| w.to_string()),
                next,
                ..SignInPage::default()
            },
        ),
        Err(e) => refused(
            &csrf,
            e,
            SignInPage {
                step: "password",
                tenant: input.tenant,
                email: input.email,
                next,
                ..SignInPage::default()
            },
        ),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    mfa_token: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    webauthn_response: String,
    #[serde(default)]
    next: String,
}

/// `POST /sign-in/verify`: the second step. A code of six digits is a
/// TOTP code; anything longer a recovery code.
pub async fn verify(
    State(state): State<AppState>,
    Extension(policy): Extension<CookiePolicy>,
    AnonymousCsrf(csrf): AnonymousCsrf,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let code = f.code.trim().replace(' ', "");
    let is_totp = code.len() == 6 && code.chars().all(|c| c.is_ascii_digit());
    let webauthn_response = if f.webauthn_response.is_empty() {
        None
    } else {
        serde_json::from_str(&f.webauthn_response).ok()
    };
    let input = MfaInput {
        mfa_token: f.mfa_token.clone(),
        code: (is_totp && webauthn_response.is_none()).then(|| code.clone()),
        recovery_code: (!is_totp && !code.is_empty()).then_some(code),
        webauthn_response,
        ip: client_ip(ip),
        user_agent: user_agent(&headers),
    };
    let next = safe_next(&f.next);
    match login::complete_mfa(&sign_in(&state), &input).await {
        Ok(pair) => signed_in(&pair, policy, &next),
        // The token is spent or expired: start again.
        Err(ServiceError::Unauthenticated(why)) => refused(
            &csrf,
            ServiceError::Unauthenticated(why),
            SignInPage {
                step: "password",
                next,
                ..SignInPage::default()
            },
        ),
        Err(e) => refused(
            &csrf,
            e,
            SignInPage {
                step: "code",
                mfa_token: f.mfa_token,
                methods: vec!["TOTP", "RECOVERY_CODE"],
                next,
                ..SignInPage::default()
            },
        ),
    }
}

fn signed_in(pair: &TokenPair, policy: CookiePolicy, next: &str) -> Response {
    let mut res = Redirect::to(next).into_response();
    for c in session_cookies(pair, policy) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// The sign-in page again with the problem's message (the service's
/// wording: the same for a wrong address as for a wrong password).
fn refused(csrf: &str, e: ServiceError, mut page: SignInPage<'_>) -> Response {
    let problem = crate::Problem::from(e);
    if problem.status.is_server_error() {
        return PageError::from(problem).into_response();
    }
    page.error = Some(problem.detail);
    show(csrf, problem.status, &page)
}

/// `POST /sign-out`.
pub async fn sign_out(Extension(policy): Extension<CookiePolicy>, viewer: Viewer) -> Response {
    // An API token cannot reach here (the console has sessions only).
    let ended = sessions::logout(&viewer.cx).await;
    if let Err(e) = ended {
        return PageError::from(e).into_response();
    }
    let mut res = Redirect::to("/sign-in").into_response();
    for c in cleared_cookies(policy) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// `GET /sign-in/forgot`.
pub async fn forgot_form(AnonymousCsrf(csrf): AnonymousCsrf, Query(q): Query<Wanted>) -> Response {
    show(
        &csrf,
        StatusCode::OK,
        &SignInPage {
            step: "forgot",
            tenant: q.tenant,
            ..SignInPage::default()
        },
    )
}

#[derive(Deserialize)]
pub struct ForgotForm {
    tenant: String,
    email: String,
}

/// `POST /sign-in/forgot`: the same answer whether or not the account
/// exists (the service's rule).
pub async fn forgot(
    State(state): State<AppState>,
    AnonymousCsrf(csrf): AnonymousCsrf,
    ip: Option<Extension<ClientIp>>,
    Form(f): Form<ForgotForm>,
) -> Response {
    let input = PasswordResetRequest {
        tenant: f.tenant.trim().to_owned(),
        email: f.email.trim().to_owned(),
        ip: client_ip(ip),
    };
    let page = SignInPage {
        step: "forgot",
        tenant: input.tenant.clone(),
        ..SignInPage::default()
    };
    match password_reset::request(&state.store, state.clock.as_ref(), &input).await {
        Ok(()) => show(
            &csrf,
            StatusCode::OK,
            &SignInPage {
                notice: Some(
                    "If the address has an account, a link to set a new password is on its way.",
                ),
                ..page
            },
        ),
        Err(e) => refused(&csrf, e, page),
    }
}
