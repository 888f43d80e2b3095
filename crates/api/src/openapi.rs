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
use crate::routes::{
    account_links, api_tokens, audit, auth, backups, catalog, certificates, cloudpods, customers,
    dns, health, hosting, hosting_sftp, invoices, metrics, mfa, my_hosting, notifications, ops,
    ops_overview, orders, public_catalog, security_events, security_policy, security_profile,
    servers, sessions, settings, stripe, subscriptions, tenants, users, webhooks,
};

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
            Errors are application/problem+json (RFC 9457) with a stable `code`. \
            No text may contain U+0000 (refused with 422)."
    ),
    tags(
        (name = "ops", description = "Health, readiness, metrics and the job queue"),
        (name = "auth", description = "Log in, refresh, log out"),
        (name = "users", description = "The tenant's users"),
        (name = "security", description = "Your sessions and API tokens"),
        (name = "audit", description = "The tenant's audit log"),
        (name = "catalog", description = "Products, prices and the public catalog"),
        (name = "orders", description = "Orders from the marketing site, and their status"),
        (name = "customers", description = "The tenant's customers"),
        (name = "hosting", description = "Hosting accounts and mailboxes, and their lifecycle"),
        (name = "backups", description = "Backups of sites and mailboxes (restic): policy, snapshots, restores"),
        (name = "cloudpods", description = "Virtual machines on Proxmox VE: plans, power, resize, backups"),
        (name = "dns", description = "DNS zones and their record sets"),
        (name = "servers", description = "The platform's server inventory"),
        (name = "billing", description = "Invoices, payments, credit notes, billing settings"),
        (name = "settings", description = "The tenant's settings"),
        (name = "notifications", description = "The e-mail mPanel sends: outbox and DKIM record"),
        (name = "webhooks", description = "Signed event deliveries to the tenant's URLs"),
        (name = "tenants", description = "The platform's tenants, for its operator"),
    ),
    components(schemas(ProblemDoc)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The `bearer` scheme. Each operation's security requirement lists the
/// permission it needs (OpenAPI 3.1 allows role names there); the
/// permission matrix is in `mpanel_domain::identity::permission`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut OpenApiDoc) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /api/auth/login, or an API token (mpt_…)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every documented route, with the document built from them.
pub fn routes() -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    webhook_routes(provisioning_routes(billing_routes(identity_routes(router))))
}

/// Health, sign-in, one's own security, users, audit.
fn identity_routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::mfa))
        .routes(routes!(account_links::accept_invitation))
        .routes(routes!(account_links::forgot_password))
        .routes(routes!(account_links::reset_password))
        .routes(routes!(security_profile::profile))
        .routes(routes!(mfa::mfa_enable))
        .routes(routes!(mfa::mfa_confirm))
        .routes(routes!(mfa::mfa_disable))
        .routes(routes!(mfa::webauthn_start))
        .routes(routes!(mfa::webauthn_finish))
        .routes(routes!(security_events::events))
        .routes(routes!(
            security_policy::get_policy,
            security_policy::put_policy
        ))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::reauthenticate))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update))
        .routes(routes!(users::disable))
        .routes(routes!(users::invite))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::revoke_session))
        .routes(routes!(sessions::revoke_all_sessions))
        .routes(routes!(api_tokens::list_tokens, api_tokens::create_token))
        .routes(routes!(api_tokens::revoke_token))
        .routes(routes!(audit::list))
        .routes(routes!(settings::rotate_secret))
}

/// The catalog, invoices, subscriptions, Stripe, customers.
fn billing_routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(catalog::list, catalog::create))
        .routes(routes!(catalog::get, catalog::update, catalog::archive))
        .routes(routes!(catalog::list_prices, catalog::add_price))
        .routes(routes!(catalog::update_price, catalog::delete_price))
        .routes(routes!(catalog::pricing))
        .routes(routes!(public_catalog::public_catalog))
        .routes(routes!(public_catalog::public_catalog_alias))
        .routes(routes!(invoices::list, invoices::create))
        .routes(routes!(invoices::get, invoices::update))
        .routes(routes!(invoices::issue))
        .routes(routes!(invoices::void))
        .routes(routes!(invoices::pay))
        .routes(routes!(invoices::credit_note))
        .routes(routes!(invoices::movements))
        .routes(routes!(invoices::pdf))
        .routes(routes!(invoices::credit_note_pdf))
        .routes(routes!(invoices::customer_credit))
        .routes(routes!(invoices::my_list))
        .routes(routes!(invoices::my_get))
        .routes(routes!(invoices::my_pdf))
        .routes(routes!(invoices::get_settings, invoices::put_settings))
        .routes(routes!(subscriptions::list, subscriptions::create))
        .routes(routes!(subscriptions::get, subscriptions::update))
        .routes(routes!(subscriptions::cancel))
        .routes(routes!(subscriptions::suspend))
        .routes(routes!(subscriptions::resume))
        .routes(routes!(subscriptions::record_usage))
        .routes(routes!(subscriptions::record_batch))
        .routes(routes!(subscriptions::my_list))
        .routes(routes!(subscriptions::payment_method))
        .routes(routes!(stripe::payment_intent))
        .routes(routes!(stripe::webhook))
        .routes(routes!(customers::list, customers::create))
        .routes(routes!(customers::notes, customers::add_note))
        .routes(routes!(customers::get, customers::update))
        .routes(routes!(notifications::outbox))
        .routes(routes!(notifications::resend))
        .routes(routes!(notifications::dkim, notifications::publish_dkim))
        .routes(routes!(notifications::templates))
        .routes(routes!(
            notifications::template,
            notifications::put_template,
            notifications::reset_template
        ))
}

/// Orders and what they run: hosting, mail, DNS, servers, the job queue.
fn provisioning_routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(hosting::list_hosting))
        .routes(routes!(hosting::list_mail, hosting::create_mail))
        .routes(routes!(hosting::suspend))
        .routes(routes!(hosting::unsuspend))
        .routes(routes!(hosting::terminate))
        .routes(routes!(hosting::mail_password))
        .routes(routes!(hosting_sftp::staff_sftp))
        .routes(routes!(hosting_sftp::my_sftp))
        .routes(routes!(certificates::of_site, certificates::upload))
        .routes(routes!(certificates::issue))
        .routes(routes!(certificates::list))
        .routes(routes!(certificates::settings, certificates::set_settings))
        .routes(routes!(my_hosting::my_list))
        .routes(routes!(my_hosting::my_get))
        .routes(routes!(cloudpods::list, cloudpods::create))
        .routes(routes!(
            cloudpods::get,
            cloudpods::update,
            cloudpods::delete
        ))
        .routes(routes!(cloudpods::suspend))
        .routes(routes!(cloudpods::resume))
        .routes(routes!(cloudpods::reboot))
        .routes(routes!(cloudpods::resize))
        .routes(routes!(cloudpods::seed_plans))
        .routes(routes!(cloudpods::backups, cloudpods::backup))
        .routes(routes!(cloudpods::restore))
        .routes(routes!(backups::site_backups, backups::site_backup))
        .routes(routes!(backups::site_restore))
        .routes(routes!(backups::mailbox_backups, backups::mailbox_backup))
        .routes(routes!(backups::mailbox_restore))
        .routes(routes!(dns::zones))
        .routes(routes!(dns::list, dns::put))
        .routes(routes!(dns::replace, dns::delete))
        .routes(routes!(servers::list, servers::create))
        .routes(routes!(servers::get, servers::update))
        .routes(routes!(orders::place, orders::list))
        .routes(routes!(orders::get))
        .routes(routes!(orders::mine))
        .routes(routes!(ops::list))
        .routes(routes!(ops::get))
        .routes(routes!(ops::retry))
        .routes(routes!(ops::cancel))
        .routes(routes!(ops::queues))
        .routes(routes!(ops_overview::get))
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

/// Outbound webhooks: endpoints, deliveries, redelivery.
fn webhook_routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::get, tenants::update))
}
