//! Every route × every role, and an API token of every scope, against the
//! permission matrix in the domain crate. The route list and the permission
//! each route needs come from the router's own OpenAPI document, so a route
//! added later is walked too; a protected route without a permission, or a
//! public route not listed here, fails the test.

use mpanel_domain::identity::{Access, Permission, Role, Scope, ScopeSet};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestApp;

/// Routes anyone may call without credentials.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("GET", "/api/ready"),
    ("GET", "/metrics"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/refresh"),
    ("POST", "/api/auth/mfa"),
    ("POST", "/api/auth/invitations/accept"),
    ("POST", "/api/auth/password/forgot"),
    ("POST", "/api/auth/password/reset"),
    ("GET", "/api/public/products"),
    ("POST", "/api/orders"),
    ("GET", "/api/billing/products/catalog/public"),
    ("POST", "/api/billing/stripe/webhook"),
];

struct Operation {
    method: Method,
    path: String,
    permission: Option<Permission>,
}

/// Every operation of the document, with the permission it declares.
fn operations(doc: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let permission = op.get("security").map(|sec| {
                let needs: Vec<&str> = sec[0]["bearer"]
                    .as_array()
                    .unwrap_or_else(|| {
                        panic!("{method} {path}: security names no bearer permission")
                    })
                    .iter()
                    .map(|p| p.as_str().unwrap())
                    .collect();
                assert_eq!(needs.len(), 1, "{method} {path}: one permission per route");
                needs[0]
                    .parse::<Permission>()
                    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
            });
            if permission.is_none() {
                assert!(
                    PUBLIC.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} declares no permission and is not a known public route"
                );
            }
            ops.push(Operation {
                method,
                path: path.clone(),
                permission,
            });
        }
    }
    // Logging out ends the caller's session: walk it last.
    ops.sort_by_key(|op| op.path == "/api/auth/logout");
    ops
}

/// The path with every `{param}` filled with an id nothing has.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&uuid::Uuid::now_v7().to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The routes whose changes need the password entered within the last
/// few minutes (docs/identity.md, "Step-up for sensitive changes").
const STEP_UP: &[(&str, &str)] = &[
    ("POST", "/api/security/tokens"),
    ("POST", "/api/security/me/mfa/enable"),
    ("POST", "/api/security/me/webauthn/register/start"),
    ("PUT", "/api/billing/settings"),
    ("POST", "/api/settings/webhook-secret/rotate"),
    ("POST", "/api/users"),
    ("PATCH", "/api/users/{id}"),
    ("PUT", "/api/security/policy"),
];

#[tokio::test]
async fn every_route_enforces_the_permission_matrix_for_every_role_and_scope() {
    let app = TestApp::start().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let ops = operations(&doc);
    assert!(
        ops.iter().filter(|o| o.permission.is_some()).count() >= 14,
        "routes went missing"
    );

    // One signed-in user per role, and a token of each scope for the
    // role that may grant them all.
    let mut callers: Vec<(String, Access, String)> = Vec::new();
    for role in Role::ALL {
        let account = app
            .account(
                "acme",
                &format!("{}@acme.test", role.as_str().to_lowercase()),
                role,
            )
            .await;
        callers.push((
            format!("{role} session"),
            Access { role, scopes: None },
            account.access_token,
        ));
    }
    let minter = app
        .account("acme", "minter@acme.test", Role::TenantAdmin)
        .await;
    for scope in Scope::ALL {
        let (token, _) = app.api_token(&minter.access_token, &[scope.as_str()]).await;
        callers.push((
            format!("TENANT_ADMIN token {}", scope.as_str()),
            Access {
                role: Role::TenantAdmin,
                scopes: Some(ScopeSet::new([scope])),
            },
            token,
        ));
    }
    // A customer's token, of a customer of its own: an API token's
    // revoke-all ends every session of its user.
    let customer = app
        .account("acme", "customer2@acme.test", Role::Customer)
        .await;
    let (customer_token, _) = app
        .api_token(&customer.access_token, &["READ", "WRITE", "SECURITY"])
        .await;
    callers.push((
        "CUSTOMER token READ+WRITE+SECURITY".into(),
        Access {
            role: Role::Customer,
            scopes: Some(ScopeSet::new([Scope::Read, Scope::Write, Scope::Security])),
        },
        customer_token,
    ));

    let mut checked = 0;
    for op in &ops {
        let Some(permission) = op.permission else {
            continue;
        };
        let path = concrete(&op.path);
        let body =
            matches!(op.method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));

        let anonymous = app.call(op.method.clone(), &path, None, body.clone()).await;
        assert_eq!(
            anonymous.status(),
            401,
            "{} {} without credentials",
            op.method,
            op.path
        );

        for (who, access, token) in &callers {
            let res = app
                .call(op.method.clone(), &path, Some(token), body.clone())
                .await;
            let status = res.status().as_u16();
            if access.permits(permission) {
                // Past the matrix, the sensitive changes (and only they)
                // may still want the user to re-enter the password
                // (step-up): not a refusal of the permission.
                let code = if status == 403 {
                    res.json::<Value>().await.unwrap()["code"].clone()
                } else {
                    Value::Null
                };
                let step_up = STEP_UP
                    .iter()
                    .any(|(m, p)| *m == op.method.as_str() && *p == op.path);
                assert!(
                    status != 401
                        && (status != 403 || (step_up && code == "reauthentication_required")),
                    "{who} may {permission} but {} {} answered {status} {code}",
                    op.method,
                    op.path
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{who} may not {permission}, but {} {} answered {status}",
                    op.method, op.path
                );
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["code"], "forbidden");
            }
            checked += 1;
        }
    }
    assert!(checked >= 14 * 12, "only {checked} checks ran");
}
