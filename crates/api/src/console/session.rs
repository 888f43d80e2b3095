//! The console's session: the API's own access and refresh tokens, kept in
//! two cookies (HttpOnly, SameSite=Strict, Secure behind TLS) instead of in
//! a script's memory. Every request is authenticated by the same service
//! as a bearer token (revocation, idle timeout, the tenant's address
//! rules); an expired access token is traded for a new pair through the
//! same refresh rule (rotation, reuse detection) and the cookies replaced.
//!
//! Anti-forgery: every POST carries `_csrf` (forms) or `X-CSRF-Token`
//! (htmx), checked here before any handler runs. Signed in, the token is
//! a keyed hash of the session id; before sign-in it is a random value
//! also set as a cookie (double submit).

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::identity::Permission;
use mpanel_services::identity::authenticate::{Authenticated, authenticate};
use mpanel_services::identity::login::{self, TokenPair};
use mpanel_services::identity::{AccessTokens, Principal};
use mpanel_services::{Actor, Context, ServiceError};

use super::view::PageError;
use crate::AppState;
use crate::caller::{Caller, context_for};
use crate::middleware::{ClientIp, RequestId};

pub const ACCESS_COOKIE: &str = "mp_access";
pub const REFRESH_COOKIE: &str = "mp_refresh";
/// The anti-forgery value of a browser not signed in yet.
pub const PRE_CSRF_COOKIE: &str = "mp_csrf";
pub const CSRF_FIELD: &str = "_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The largest console form read for its token (an e-mail template's
/// three parts, URL-encoded, are the largest).
const FORM_LIMIT: usize = 512 * 1024;

/// The signed-in user of a console request, with the services' context.
#[derive(Clone)]
pub struct Viewer {
    pub cx: Context,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl Viewer {
    pub fn principal(&self) -> &Principal {
        &self.cx.principal
    }

    pub fn is_staff(&self) -> bool {
        self.cx.principal.role().is_staff()
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.cx.principal.require(permission).is_ok()
    }

    /// The page's rule: a customer never learns a staff page exists (the
    /// not-found page); staff see why they are refused.
    pub fn require(&self, permission: Permission) -> Result<(), PageError> {
        match self.cx.principal.require(permission) {
            Ok(()) => Ok(()),
            Err(_) if !self.is_staff() => Err(PageError::not_found()),
            Err(e) => Err(e.into()),
        }
    }
}

impl std::ops::Deref for Viewer {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.cx
    }
}

/// What the session layer found, for the handlers.
#[derive(Clone)]
pub(crate) enum Found {
    SignedIn(Box<Viewer>),
    /// Not signed in; the anti-forgery value forms must carry.
    Anonymous {
        csrf: String,
    },
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        match parts.extensions.get::<Found>() {
            Some(Found::SignedIn(v)) => {
                let path = parts.uri.path();
                let enrolling =
                    path == "/security" || path.starts_with("/security/") || path == "/sign-out";
                if v.principal().restricted && !enrolling {
                    // The policy wants a second factor first.
                    return Err(Redirect::to("/security").into_response());
                }
                Ok((**v).clone())
            }
            _ if parts.headers.contains_key("hx-request") => {
                // A fragment polled by a page whose session ended: the
                // whole page goes to the sign-in, not the fragment.
                let mut res = StatusCode::NO_CONTENT.into_response();
                res.headers_mut()
                    .insert("hx-redirect", HeaderValue::from_static("/sign-in"));
                Err(res)
            }
            _ => Err(sign_in_redirect(parts.uri.path_and_query()).into_response()),
        }
    }
}

/// The anti-forgery value of a request not signed in.
pub struct AnonymousCsrf(pub String);

impl FromRequestParts<AppState> for AnonymousCsrf {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        match parts.extensions.get::<Found>() {
            Some(Found::Anonymous { csrf }) => Ok(Self(csrf.clone())),
            // Signed in already: the sign-in pages lead home.
            _ => Err(Redirect::to("/").into_response()),
        }
    }
}

fn sign_in_redirect(wanted: Option<&axum::http::uri::PathAndQuery>) -> Redirect {
    let next = wanted.map(|p| p.as_str()).unwrap_or("/");
    if next == "/" {
        Redirect::to("/sign-in")
    } else {
        let encoded: String = url_encode(next);
        Redirect::to(&format!("/sign-in?next={encoded}"))
    }
}

pub fn url_encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// Whether cookies get `Secure`: behind TLS (HSTS on, or a trusted proxy
/// saying https).
#[derive(Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

fn cookie(name: &str, value: &str, max_age: Option<i64>, policy: CookiePolicy) -> HeaderValue {
    let secure = if policy.secure { "; Secure" } else { "" };
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("mp_invalid=; Max-Age=0"))
}

/// The cookies that hold a signed-in session.
pub fn session_cookies(pair: &TokenPair, policy: CookiePolicy) -> [HeaderValue; 2] {
    let refresh_age = mpanel_domain::identity::refresh::REFRESH_TOKEN_TTL.whole_seconds();
    [
        cookie(ACCESS_COOKIE, &pair.access_token, None, policy),
        cookie(
            REFRESH_COOKIE,
            &pair.refresh_token,
            Some(refresh_age),
            policy,
        ),
    ]
}

/// The cookies that end a session in the browser.
pub fn cleared_cookies(policy: CookiePolicy) -> [HeaderValue; 2] {
    [
        cookie(ACCESS_COOKIE, "", Some(0), policy),
        cookie(REFRESH_COOKIE, "", Some(0), policy),
    ]
}

pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// The session layer of every console route.
pub async fn console_session(
    State((state, policy)): State<(AppState, CookiePolicy)>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let resolved = match resolve(&state, &parts).await {
        Ok(r) => r,
        Err(problem) => return PageError::from(problem).into_response(),
    };
    let found = match &resolved.viewer {
        Some(v) => Found::SignedIn(Box::new(v.clone())),
        None => Found::Anonymous {
            csrf: match read_cookie(&parts.headers, PRE_CSRF_COOKIE) {
                Some(c) => c.to_owned(),
                None => match fresh_csrf() {
                    Ok(c) => c,
                    Err(e) => return PageError::from(e).into_response(),
                },
            },
        },
    };
    let mut expected = vec![match &found {
        Found::SignedIn(v) => v.csrf.clone(),
        Found::Anonymous { csrf } => csrf.clone(),
    }];
    // A sign-in form shown while the browser's cookies were held back
    // (a page opened from another site) carries the pre-session token.
    if parts.uri.path().starts_with("/sign-in")
        && let Some(pre) = read_cookie(&parts.headers, PRE_CSRF_COOKIE)
    {
        expected.push(pre.to_owned());
    }
    let body = if parts.method == Method::POST {
        match checked_body(&parts.headers, body, &expected).await {
            Ok(body) => body,
            Err(refused) => return refused.into_response(),
        }
    } else {
        body
    };
    parts.extensions.insert(found.clone());
    parts.extensions.insert(policy);
    let mut res = next.run(Request::from_parts(parts, body)).await;
    let headers = res.headers_mut();
    // A handler that set the session (a sign-in) has the last word.
    let handler_set = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|c| c.as_bytes().starts_with(ACCESS_COOKIE.as_bytes()));
    let layer_cookies = match (&resolved.refreshed, resolved.ended) {
        _ if handler_set => Vec::new(),
        (Some(pair), _) => session_cookies(pair, policy).to_vec(),
        (None, true) => cleared_cookies(policy).to_vec(),
        (None, false) => Vec::new(),
    };
    for c in layer_cookies {
        headers.append(header::SET_COOKIE, c);
    }
    if let Found::Anonymous { csrf } = &found {
        headers.append(
            header::SET_COOKIE,
            cookie(PRE_CSRF_COOKIE, csrf, None, policy),
        );
    }
    res
}

fn fresh_csrf() -> Result<String, ServiceError> {
    use base64::Engine as _;
    let bytes = mpanel_services::identity::secrets::random_bytes::<32>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The form's token (or htmx's header) against the expected one; the body
/// is handed on unchanged.
async fn checked_body(
    headers: &HeaderMap,
    body: Body,
    expected: &[String],
) -> Result<Body, PageError> {
    let refused = || {
        PageError::new(
            StatusCode::FORBIDDEN,
            "The form has expired or did not come from this console. Go back, reload the page and try again.",
        )
    };
    if let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if expected.iter().any(|e| same(sent, e)) {
            Ok(body)
        } else {
            Err(refused())
        };
    }
    let bytes = to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let sent = fields
        .iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.as_str());
    match sent {
        Some(sent) if expected.iter().any(|e| same(sent, e)) => Ok(Body::from(bytes)),
        _ => Err(refused()),
    }
}

fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    !b.is_empty() && a.as_bytes().ct_eq(b.as_bytes()).into()
}

struct Resolved {
    viewer: Option<Viewer>,
    /// A new pair to set.
    refreshed: Option<TokenPair>,
    /// The session ended: clear the cookies.
    ended: bool,
}

async fn resolve(state: &AppState, parts: &Parts) -> Result<Resolved, crate::Problem> {
    let access = read_cookie(&parts.headers, ACCESS_COOKIE);
    let refresh = read_cookie(&parts.headers, REFRESH_COOKIE);
    let nobody = |ended| Resolved {
        viewer: None,
        refreshed: None,
        ended,
    };
    if access.is_none() && refresh.is_none() {
        return Ok(nobody(false));
    }
    let ip = parts.extensions.get::<ClientIp>().map(|c| c.0);
    if let Some(access) = access {
        match authenticate(
            &state.store,
            state.clock.as_ref(),
            &state.tokens,
            access,
            ip,
        )
        .await
        {
            Ok(p) => return signed(state, parts, p, None).await,
            Err(ServiceError::Unauthenticated(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let Some(refresh) = refresh else {
        return Ok(nobody(true));
    };
    let pair = match login::refresh(
        &state.store,
        state.clock.as_ref(),
        &state.tokens,
        refresh,
        ip.map(|i| i.to_string()),
    )
    .await
    {
        Ok(pair) => pair,
        Err(ServiceError::Unauthenticated(_)) => return Ok(nobody(true)),
        Err(e) => return Err(e.into()),
    };
    match authenticate(
        &state.store,
        state.clock.as_ref(),
        &state.tokens,
        &pair.access_token,
        ip,
    )
    .await
    {
        Ok(p) => signed(state, parts, p, Some(pair)).await,
        Err(ServiceError::Unauthenticated(_)) => Ok(nobody(true)),
        Err(e) => Err(e.into()),
    }
}

async fn signed(
    state: &AppState,
    parts: &Parts,
    authenticated: Authenticated,
    refreshed: Option<TokenPair>,
) -> Result<Resolved, crate::Problem> {
    let Authenticated { principal, tenant } = authenticated;
    let Some(session) = principal.session_id else {
        // API tokens are for programs, not the console's cookies.
        return Ok(Resolved {
            viewer: None,
            refreshed: None,
            ended: true,
        });
    };
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
    let caller = Caller {
        actor: Actor::principal(&principal, request_id),
        ip: parts.extensions.get::<ClientIp>().map(|c| c.0.to_string()),
        principal,
        tenant,
    };
    let cx = context_for(state, caller).await?;
    Ok(Resolved {
        viewer: Some(Viewer {
            cx,
            csrf: csrf_for(&state.tokens, session),
        }),
        refreshed,
        ended: false,
    })
}

pub fn csrf_for(tokens: &AccessTokens, session: mpanel_domain::SessionId) -> String {
    tokens.csrf_token(session)
}
