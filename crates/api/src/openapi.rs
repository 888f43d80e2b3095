//! The OpenAPI document, generated from the route annotations, and the
//! interactive docs at `/api/docs` (Swagger UI, its files compiled into the
//! binary: the page needs no network).

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde::Serialize;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::AppState;
use crate::routes::{health, metrics};

/// The CSP of the docs page: its own scripts and styles, nothing remote.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/// An RFC 9457 problem, as every error is returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDoc {
    /// `about:blank`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The HTTP status phrase.
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code, e.g. `not_found`, `malformed_json`.
    pub code: String,
    /// What went wrong, for a person.
    pub detail: String,
    /// The request path.
    pub instance: String,
    /// The request id (also in `X-Request-Id`), to quote to support.
    pub request_id: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mPanel API",
        description = "Control panel and billing platform for hosting providers. \
            Errors are application/problem+json (RFC 9457) with a stable `code`."
    ),
    tags((name = "ops", description = "Health, readiness and metrics")),
    components(schemas(ProblemDoc))
)]
struct ApiDoc;

/// Every documented route, with the document built from them.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
}

/// `/api/openapi.json` and the docs page.
pub fn docs(document: OpenApiDoc) -> Router<AppState> {
    let ui = SwaggerUi::new("/api/docs")
        .url("/api/openapi.json", document)
        .config(Config::new(["/api/openapi.json"]).validator_url("none"));
    Router::from(ui).layer(middleware::from_fn(docs_csp))
}

async fn docs_csp(req: Request, next: Next) -> Response {
    let docs = req.uri().path().starts_with("/api/docs");
    let mut res = next.run(req).await;
    if docs {
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
    }
    res
}
