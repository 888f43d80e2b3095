//! `Caller`: the authenticated principal of a request, with the actor its
//! changes are audited under. Missing or bad credentials are a 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpanel_domain::identity::Permission;
use mpanel_services::identity::Principal;
use mpanel_services::identity::authenticate::authenticate;
use mpanel_services::{Actor, Context, ServiceError};
use mpanel_store::TenantRecord;

use crate::middleware::{ClientIp, RequestId};
use crate::problem::codes;
use crate::{AppState, Problem};

pub struct Caller {
    pub principal: Principal,
    pub actor: Actor,
    pub ip: Option<String>,
    /// The caller's tenant when authenticating read it (a session), so the
    /// request's context need not read it again.
    pub tenant: Option<TenantRecord>,
}

impl Caller {
    /// 403 unless the caller's role and token scopes allow `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), Problem> {
        self.principal.require(permission).map_err(Problem::from)
    }
}

/// A 401 with `WWW-Authenticate: Bearer`.
pub struct Unauthorized(Problem);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut res = self.0.into_response();
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        res
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(bearer) = bearer else {
            return Err(Unauthorized(Problem::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "Send Authorization: Bearer <access token or API token>.",
            ))
            .into_response());
        };
        let client_ip = parts.extensions.get::<ClientIp>().map(|c| c.0);
        let authenticated = authenticate(
            &state.store,
            state.clock.as_ref(),
            &state.tokens,
            bearer,
            client_ip,
        )
        .await
        .map_err(|err| match err {
            ServiceError::Unauthenticated(_) => Unauthorized(Problem::from(err)).into_response(),
            other => Problem::from(other).into_response(),
        })?;
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let ip = parts.extensions.get::<ClientIp>().map(|c| c.0.to_string());
        let principal = authenticated.principal;
        Ok(Self {
            actor: Actor::principal(&principal, request_id),
            principal,
            ip,
            tenant: authenticated.tenant,
        })
    }
}

/// A permission as a type, so a handler states what it needs in its
/// signature and the check runs before the body is read (an unauthorised
/// caller learns nothing from validation errors).
pub trait Required {
    const PERMISSION: Permission;
}

/// Marker types, one per [`Permission`].
pub mod perm {
    use mpanel_domain::identity::Permission;

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("Needs [`Permission::", stringify!($name), "`].")]
            pub struct $name;
            impl super::Required for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    markers!(
        CertificatesRead,
        CertificatesWrite,
        SelfRead,
        SelfSecurity,
        SelfTokens,
        UsersRead,
        UsersWrite,
        AuditRead,
        JobsRead,
        JobsManage,
        CatalogRead,
        CatalogWrite,
        SelfMfa,
        SecurityPolicyWrite,
        SecurityEventsRead,
        OrdersRead,
        CustomersRead,
        CustomersWrite,
        SettingsWrite,
        InvoicesRead,
        InvoicesWrite,
        PaymentsWrite,
        BillingSettingsWrite,
        ServersRead,
        ServersWrite,
        HostingRead,
        HostingWrite,
        SubscriptionsRead,
        SubscriptionsWrite,
        UsageWrite,
        NotificationsRead,
        WebhooksRead,
        WebhooksWrite,
        CloudPodsRead,
        OpsOverviewRead,
        CloudPodsOperate,
        CloudPodsManage,
        BackupsRead,
        BackupsWrite,
        TenantsRead,
        TenantsWrite,
    );
}

/// A caller who holds permission `P`: 401 without credentials, 403
/// without the permission.
pub struct Authorized<P: Required> {
    pub caller: Caller,
    _permission: std::marker::PhantomData<P>,
}

impl<P: Required> std::ops::Deref for Authorized<P> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<P: Required> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller
            .require(P::PERMISSION)
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            caller,
            _permission: std::marker::PhantomData,
        })
    }
}

/// [`Authorized<P>`] plus the caller's tenant, as the services' request
/// [`Context`]: what a handler passes to a use case as one value.
pub struct Ctx<P: Required> {
    pub cx: Context,
    /// The client's address, for the few rules that read it.
    pub ip: Option<String>,
    _permission: std::marker::PhantomData<P>,
}

impl<P: Required> std::ops::Deref for Ctx<P> {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.cx
    }
}

impl<P: Required> FromRequestParts<AppState> for Ctx<P> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authorized { caller, .. } = Authorized::<P>::from_request_parts(parts, state).await?;
        let ip = caller.ip.clone();
        Ok(Self {
            cx: context_for(state, caller)
                .await
                .map_err(IntoResponse::into_response)?,
            ip,
            _permission: std::marker::PhantomData,
        })
    }
}

/// The services' request [`Context`] for an authenticated caller: its
/// tenant as authenticating read it, or read now (404 when gone, refused
/// while suspended).
pub(crate) async fn context_for(state: &AppState, caller: Caller) -> Result<Context, Problem> {
    let tenant = match caller.tenant {
        Some(tenant) => tenant,
        None => state
            .store
            .tenant(caller.principal.tenant_id)
            .await
            .map_err(|e| Problem::from(ServiceError::from(e)))?
            .ok_or_else(|| Problem::not_found("No such tenant."))?,
    };
    if tenant.status == mpanel_domain::TenantStatus::Suspended {
        return Err(Problem::from(ServiceError::TenantSuspended));
    }
    Ok(Context {
        store: state.store.clone(),
        clock: state.clock.clone(),
        principal: caller.principal,
        actor: caller.actor,
        tenant,
        ip: caller.ip,
    })
}
