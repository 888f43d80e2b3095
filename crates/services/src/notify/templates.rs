//! The templates of each message kind (a subject line, plain text and
//! HTML): the built-in ones, rendered with minijinja (HTML auto-escaped,
//! a template sees only the typed context it is given: no globals, no
//! loader, and a name missing from it is an error), or the tenant's own
//! (`/api/notifications/templates`), which are plain substitutions
//! ([`super::tenant_markup`]): checked against a sample of their kind
//! before they are stored, and if they still fail on real data the
//! built-in ones are used, so mail goes out.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use mpanel_domain::TenantId;
use mpanel_domain::notify::EmailKind;
use mpanel_store::Tx;
use mpanel_store::email_templates::EmailTemplateRecord;
use serde::Serialize;

use super::tenant_markup::{self, Part};
use crate::ServiceError;

/// A message's rendered parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The three templates of a kind, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The longest template a tenant may store (each of the three).
pub const MAX_TEMPLATE_LEN: usize = 32 * 1024;

/// The built-in templates of `kind`.
pub fn builtin(kind: EmailKind) -> Sources {
    let [subject, text, html] = builtin_sources(kind);
    Sources {
        subject: subject.into(),
        text: text.into(),
        html: html.into(),
    }
}

fn builtin_sources(kind: EmailKind) -> [&'static str; 3] {
    match kind {
        EmailKind::InvoiceIssued => [
            include_str!("templates/invoice_issued.subject.txt"),
            include_str!("templates/invoice_issued.txt"),
            include_str!("templates/invoice_issued.html"),
        ],
        EmailKind::InvoiceReminder => [
            include_str!("templates/invoice_reminder.subject.txt"),
            include_str!("templates/invoice_reminder.txt"),
            include_str!("templates/invoice_reminder.html"),
        ],
        EmailKind::Invitation => [
            include_str!("templates/invitation.subject.txt"),
            include_str!("templates/invitation.txt"),
            include_str!("templates/invitation.html"),
        ],
        EmailKind::PasswordReset => [
            include_str!("templates/password_reset.subject.txt"),
            include_str!("templates/password_reset.txt"),
            include_str!("templates/password_reset.html"),
        ],
        EmailKind::PaymentReceived => [
            include_str!("templates/payment_received.subject.txt"),
            include_str!("templates/payment_received.txt"),
            include_str!("templates/payment_received.html"),
        ],
        EmailKind::ServiceReady => [
            include_str!("templates/service_ready.subject.txt"),
            include_str!("templates/service_ready.txt"),
            include_str!("templates/service_ready.html"),
        ],
        EmailKind::ServiceSuspended => [
            include_str!("templates/service_suspended.subject.txt"),
            include_str!("templates/service_suspended.txt"),
            include_str!("templates/service_suspended.html"),
        ],
        EmailKind::ServiceRestored => [
            include_str!("templates/service_restored.subject.txt"),
            include_str!("templates/service_restored.txt"),
            include_str!("templates/service_restored.html"),
        ],
        EmailKind::SubscriptionCancelled => [
            include_str!("templates/subscription_cancelled.subject.txt"),
            include_str!("templates/subscription_cancelled.txt"),
            include_str!("templates/subscription_cancelled.html"),
        ],
        EmailKind::NewSignIn => [
            include_str!("templates/new_sign_in.subject.txt"),
            include_str!("templates/new_sign_in.txt"),
            include_str!("templates/new_sign_in.html"),
        ],
        EmailKind::MfaChanged => [
            include_str!("templates/mfa_changed.subject.txt"),
            include_str!("templates/mfa_changed.txt"),
            include_str!("templates/mfa_changed.html"),
        ],
        EmailKind::ApiTokenCreated => [
            include_str!("templates/api_token_created.subject.txt"),
            include_str!("templates/api_token_created.txt"),
            include_str!("templates/api_token_created.html"),
        ],
        EmailKind::WebhookEndpointDisabled => [
            include_str!("templates/webhook_endpoint_disabled.subject.txt"),
            include_str!("templates/webhook_endpoint_disabled.txt"),
            include_str!("templates/webhook_endpoint_disabled.html"),
        ],
    }
}

/// What a kind's templates see, with made-up values: a tenant's template
/// must render with it before it is stored.
pub fn sample(kind: EmailKind) -> Result<serde_json::Value, ServiceError> {
    use super::*;
    use serde_json::to_value;
    let value = match kind {
        EmailKind::InvoiceIssued => to_value(invoice_issued::InvoiceIssued::sample()),
        EmailKind::InvoiceReminder => to_value(invoice_reminder::InvoiceReminder::sample()),
        EmailKind::Invitation | EmailKind::PasswordReset => {
            to_value(account_link::AccountLink::sample())
        }
        EmailKind::PaymentReceived => to_value(payment_received::PaymentReceived::sample()),
        EmailKind::ServiceReady => to_value(service_ready::ServiceReady::sample()),
        EmailKind::ServiceSuspended
        | EmailKind::ServiceRestored
        | EmailKind::SubscriptionCancelled => to_value(service_status::ServiceStatus::sample()),
        EmailKind::NewSignIn => to_value(new_sign_in::NewSignIn::sample()),
        EmailKind::MfaChanged => to_value(mfa_changed::MfaChanged::sample()),
        EmailKind::ApiTokenCreated => to_value(api_token_created::ApiTokenCreated::sample()),
        EmailKind::WebhookEndpointDisabled => {
            to_value(webhook_endpoint_disabled::WebhookEndpointDisabled::sample())
        }
    };
    value.map_err(|e| ServiceError::internal("a sample context", e))
}

/// The names a kind's templates may use.
pub fn variables(kind: EmailKind) -> Result<Vec<String>, ServiceError> {
    Ok(match sample(kind)? {
        serde_json::Value::Object(fields) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    })
}

/// What every kind may build on: the letter's frame (`{% extends %}`:
/// greeting, body block, signature) and the advice of security notices
/// (`{% include %}`). A context rendered with the frame has `name` (who
/// it is to) and `sender` (who signs it).
const SHARED: [(&str, &str); 4] = [
    ("letter.txt", include_str!("templates/letter.txt")),
    ("letter.html", include_str!("templates/letter.html")),
    ("not_you.txt", include_str!("templates/not_you.txt")),
    ("not_you.html", include_str!("templates/not_you.html")),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_keep_trailing_newline(true);
    env
}

/// One line, whatever the context holds.
fn one_line(subject: &str) -> String {
    subject
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The built-in templates, compiled once for the process (parsing them
/// for every message cost the billing run most of its time): each kind's
/// three as `<KIND>/subject.txt`, `<KIND>/body.txt`, `<KIND>/body.html`,
/// beside the shared letter parts they extend and include.
fn builtins() -> Result<&'static Environment<'static>, String> {
    static COMPILED: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let mut env = environment();
            for (name, source) in SHARED {
                env.add_template(name, source)
                    .map_err(|e| format!("{name}: {e}"))?;
            }
            for kind in EmailKind::ALL {
                let [subject, text, html] = builtin_sources(kind);
                for (part, source) in [
                    ("subject.txt", subject),
                    ("body.txt", text),
                    ("body.html", html),
                ] {
                    let name = format!("{}/{part}", kind.as_str());
                    env.add_template_owned(name.clone(), source)
                        .map_err(|e| format!("{name}: {e}"))?;
                }
            }
            Ok(env)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Renders `kind`'s built-in templates with `context` (minijinja's error
/// on failure).
fn render_minijinja<C: Serialize>(kind: EmailKind, context: &C) -> Result<Rendered, String> {
    let env = builtins()?;
    let value = minijinja::Value::from_serialize(context);
    let one = |part: &str| {
        let name = format!("{}/{part}", kind.as_str());
        env.get_template(&name)
            .and_then(|t| t.render(&value))
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok(Rendered {
        subject: one_line(&one("subject.txt")?),
        text: one("body.txt")?,
        html: one("body.html")?,
    })
}

/// Renders a tenant's `sources` of `kind` with `context`: (the part's
/// field, why) on failure.
fn render_own<C: Serialize>(
    kind: EmailKind,
    sources: &Sources,
    context: &C,
) -> Result<Rendered, (&'static str, String)> {
    let values = match serde_json::to_value(context) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Err(("subject", "the message's values are not a map".into())),
    };
    let link = kind.carries_link();
    let one = |source: &str, part: Part| {
        tenant_markup::render(source, part, &values, link).map_err(|e| (part.field(), e))
    };
    Ok(Rendered {
        subject: one_line(&one(&sources.subject, Part::Subject)?),
        text: one(&sources.text, Part::Text)?,
        html: one(&sources.html, Part::Html)?,
    })
}

/// Renders `kind`'s built-in templates with `context`.
fn render_builtin<C: Serialize>(kind: EmailKind, context: &C) -> Result<Rendered, ServiceError> {
    render_minijinja(kind, context).map_err(|e| {
        ServiceError::internal_msg(format!("rendering the built-in {}: {e}", kind.as_str()))
    })
}

/// Whose templates a message is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Templates {
    /// The tenant's own when it has them.
    Tenant,
    /// The built-in ones only (a link to a staff account: no tenant
    /// admin's template stands between another staff member and their
    /// password).
    BuiltIn,
}

/// Renders `kind` for `tenant` with `context`, in the transaction that
/// writes the message: the tenant's own templates when it has them and
/// `which` allows them (the built-in ones if those fail on this context).
pub async fn render_in<C: Serialize>(
    tx: &mut Tx,
    tenant: TenantId,
    kind: EmailKind,
    context: &C,
    which: Templates,
) -> Result<Rendered, ServiceError> {
    renderer_in(tx, tenant, kind, which).await?.render(context)
}

/// The templates `kind` is written with for `tenant`, looked up once in
/// `tx`: for many messages of one kind (the billing run's invoices).
pub async fn renderer_in(
    tx: &mut Tx,
    tenant: TenantId,
    kind: EmailKind,
    which: Templates,
) -> Result<Renderer, ServiceError> {
    let own = match which {
        Templates::Tenant if !kind.security_notice() => tx.email_template(tenant, kind).await?,
        _ => None,
    };
    Ok(Renderer {
        tenant,
        kind,
        own: own.as_ref().map(own_sources),
    })
}

/// A kind's templates for one tenant (its own, or none: the built-in ones).
pub struct Renderer {
    tenant: TenantId,
    kind: EmailKind,
    own: Option<Sources>,
}

impl Renderer {
    /// Renders with `context` (the built-in templates if the tenant's own
    /// fail on it).
    pub fn render<C: Serialize>(&self, context: &C) -> Result<Rendered, ServiceError> {
        let (kind, tenant) = (self.kind, self.tenant);
        let Some(own) = &self.own else {
            return render_builtin(kind, context);
        };
        match render_own(kind, own, context) {
            Ok(rendered) => Ok(rendered),
            Err((part, why)) => {
                tracing::warn!(tenant = %tenant, kind = kind.as_str(), part, error = %why,
                    "the tenant's template failed: the built-in one is used");
                render_builtin(kind, context)
            }
        }
    }
}

fn own_sources(t: &EmailTemplateRecord) -> Sources {
    Sources {
        subject: t.subject.clone(),
        text: t.text_body.clone(),
        html: t.html_body.clone(),
    }
}

/// Checks a tenant's templates of `kind`: each within
/// [`MAX_TEMPLATE_LEN`], and rendering the kind's sample. Answers the
/// sample as rendered (a preview).
pub fn check(kind: EmailKind, sources: &Sources) -> Result<Rendered, ServiceError> {
    if kind.security_notice() {
        return Err(ServiceError::Conflict(format!(
            "{} is a security notice: it always uses the built-in templates",
            kind.as_str()
        )));
    }
    let parts = [
        ("subject", &sources.subject),
        ("text", &sources.text),
        ("html", &sources.html),
    ];
    for (field, source) in parts {
        if source.len() > MAX_TEMPLATE_LEN {
            return Err(ServiceError::invalid(
                field,
                format!("must be at most {MAX_TEMPLATE_LEN} bytes"),
            ));
        }
    }
    if sources.subject.trim().is_empty() {
        return Err(ServiceError::invalid("subject", "must not be empty"));
    }
    render_own(kind, sources, &sample(kind)?)
        .map_err(|(field, why)| ServiceError::invalid(field, why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::invoice_issued::InvoiceIssued;

    fn context(name: &str) -> InvoiceIssued {
        InvoiceIssued {
            customer_name: name.into(),
            ..InvoiceIssued::sample()
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let r = render_builtin(EmailKind::InvoiceIssued, &context("<b>Eve</b>")).unwrap();
        assert!(r.html.contains("&lt;b&gt;Eve&lt;&#x2f;b&gt;"), "{}", r.html);
        assert!(r.html.contains("Host &amp; Co"));
        assert!(r.text.contains("Hello <b>Eve</b>,"));
        assert_eq!(r.subject, "Invoice INV-2026-000001 from Host & Co");
    }

    #[test]
    fn a_template_cannot_read_what_it_was_not_given() {
        #[derive(Serialize)]
        struct Partial {
            number: &'static str,
        }
        assert!(render_builtin(EmailKind::InvoiceIssued, &Partial { number: "X" }).is_err());
        let own = Sources {
            subject: "Hi {{ password }}".into(),
            text: "{{ number }}".into(),
            html: "{{ number }}".into(),
        };
        let err = check(EmailKind::InvoiceIssued, &own).unwrap_err();
        assert!(
            matches!(&err, ServiceError::Invalid { field, .. } if field == "subject"),
            "{err:?}"
        );
    }

    #[test]
    fn every_built_in_template_renders_its_sample() {
        for kind in EmailKind::ALL {
            render_builtin(kind, &sample(kind).unwrap()).unwrap();
        }
    }

    #[test]
    fn a_tenants_template_cannot_compute() {
        let endless = Sources {
            subject: "Hello".into(),
            text: "{% for c in 'x' * 30000 %}{% set b = 'x' * 100000000 %}{% endfor %}".into(),
            html: "<a href=\"{{ link }}\">go</a>".into(),
        };
        let err = check(EmailKind::Invitation, &endless).unwrap_err();
        assert!(
            matches!(&err, ServiceError::Invalid { field, .. } if field == "text"),
            "{err:?}"
        );
    }

    #[test]
    fn a_link_kind_must_show_its_link_on_the_portal() {
        let sources = |html: &str| Sources {
            subject: "Welcome {{ name }}".into(),
            text: "Start here:\n{{ link }}\n".into(),
            html: html.into(),
        };
        assert!(
            check(
                EmailKind::Invitation,
                &sources("<a href=\"{{ link }}\">go</a>")
            )
            .is_ok()
        );
        let err = check(
            EmailKind::Invitation,
            &sources("<img src=\"https://evil.example/{{ link }}\">"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ServiceError::Invalid { field, .. } if field == "html"),
            "{err:?}"
        );
        assert!(check(EmailKind::Invitation, &sources("<p>no link</p>")).is_err());
        // A reset is a security notice: always the built-in templates.
        let reset = check(
            EmailKind::PasswordReset,
            &sources("<a href=\"{{ link }}\">go</a>"),
        );
        assert!(matches!(reset, Err(ServiceError::Conflict(_))), "{reset:?}");
    }
}

#[cfg(test)]
mod kinds {
    //! Every kind renders from a typed context; the text is shown as a
    //! mail client would show it (`cargo test -- --nocapture`).
    use super::*;
    use crate::notify::api_token_created::ApiTokenCreated;
    use crate::notify::mfa_changed::MfaChanged;
    use crate::notify::new_sign_in::NewSignIn;
    use crate::notify::payment_received::PaymentReceived;
    use crate::notify::security_notice::Notice;
    use crate::notify::service_ready::{Made, ServiceReady};
    use crate::notify::service_status::ServiceStatus;
    use crate::notify::webhook_endpoint_disabled::WebhookEndpointDisabled;

    fn shown(kind: EmailKind, context: &impl Serialize) -> Rendered {
        let r = render_builtin(kind, context).unwrap();
        println!("== {kind:?}\n{}\n\n{}\n{}", r.subject, r.text, r.html);
        for part in [&r.subject, &r.text, &r.html] {
            assert!(!part.contains("none"), "{kind:?}: {part}");
            assert!(!part.contains("{{") && !part.contains("{%"), "{part}");
        }
        assert!(r.html.starts_with("<!DOCTYPE html>"), "{}", r.html);
        r
    }

    fn notice(ip: Option<&str>) -> Notice {
        Notice {
            name: "Jane <Doe>".into(),
            email: "jane@example.org".into(),
            sender: "Host & Co".into(),
            at: "2026-11-21 09:05 UTC".into(),
            ip: ip.map(str::to_owned),
        }
    }

    #[test]
    fn a_payment_says_what_is_left() {
        let mut c = PaymentReceived {
            name: "Jane".into(),
            sender: "Host & Co".into(),
            number: "INV-2026-000001".into(),
            amount: "15.00 EUR".into(),
            received_on: "2026-11-21".into(),
            remaining: "5.00 EUR".into(),
            paid_in_full: false,
            credited: None,
        };
        let r = shown(EmailKind::PaymentReceived, &c);
        assert_eq!(r.subject, "Payment received for invoice INV-2026-000001");
        assert!(
            r.text
                .starts_with("Hello Jane,\n\nwe received your payment of 15.00 EUR")
        );
        assert!(r.text.contains("Still due on this invoice: 5.00 EUR."));
        assert!(r.text.ends_with("\n\nHost & Co\n"), "{:?}", r.text);
        assert!(r.html.contains("Host &amp; Co"));
        c.paid_in_full = true;
        c.credited = Some("2.00 EUR".into());
        let r = shown(EmailKind::PaymentReceived, &c);
        assert!(r.text.contains("paid in full.\n\n2.00 EUR more than"));
        assert!(!r.text.contains("Still due"));
    }

    #[test]
    fn a_ready_service_lists_what_was_made_and_no_password() {
        let c = ServiceReady {
            name: "Jane".into(),
            sender: "Host & Co".into(),
            service: "Web Pro".into(),
            domain: Some("example.org".into()),
            made: Made {
                name_servers: vec!["ns1.host.test".into(), "ns2.host.test".into()],
                web_address: Some("192.0.2.10".into()),
                sftp_user: Some("mp0123".into()),
                mailboxes: vec!["postmaster@example.org".into()],
                mail_host: Some("mail.host.test".into()),
            },
        };
        let r = shown(EmailKind::ServiceReady, &c);
        assert_eq!(r.subject, "Web Pro for example.org is ready");
        assert!(r.text.contains("\n  ns1.host.test\n  ns2.host.test\n"));
        assert!(r.text.contains("SFTP user:      mp0123"));
        assert!(r.text.contains("Mailbox:        postmaster@example.org"));
        assert!(r.html.contains("<li>ns2.host.test</li>"));
        let bare = ServiceReady {
            domain: None,
            made: Made::default(),
            ..c
        };
        let r = shown(EmailKind::ServiceReady, &bare);
        assert_eq!(r.subject, "Web Pro is ready");
        assert!(!r.text.contains("Name servers") && !r.text.contains("SFTP"));
    }

    #[test]
    fn subscription_states_name_the_service() {
        let c = ServiceStatus {
            name: "Jane".into(),
            sender: "Host & Co".into(),
            service: "Web Pro".into(),
            domain: Some("example.org".into()),
            on: "2026-11-21".into(),
            unpaid: true,
            expired: false,
        };
        let r = shown(EmailKind::ServiceSuspended, &c);
        assert_eq!(r.subject, "Your Web Pro for example.org is suspended");
        assert!(r.text.contains("paid, it is restored automatically."));
        let r = shown(EmailKind::ServiceRestored, &c);
        assert!(r.text.contains("active again since 2026-11-21."));
        let r = shown(EmailKind::SubscriptionCancelled, &c);
        assert_eq!(r.subject, "Your Web Pro for example.org has ended");
        assert!(r.text.contains("was cancelled on 2026-11-21 because"));
    }

    #[test]
    fn security_notices_say_when_where_and_what_to_do() {
        let r = shown(
            EmailKind::NewSignIn,
            &NewSignIn {
                notice: notice(Some("192.0.2.7")),
                user_agent: Some("Firefox".into()),
            },
        );
        assert_eq!(r.subject, "New sign-in to your account at Host & Co");
        assert!(r.text.contains("Signed in from: 192.0.2.7"));
        assert!(r.text.contains("When:           2026-11-21 09:05 UTC"));
        assert!(r.text.contains("If it was not, change your\npassword now"));
        assert!(r.html.contains("Jane &lt;Doe&gt;"));
        let r = shown(
            EmailKind::MfaChanged,
            &MfaChanged {
                notice: notice(None),
                enabled: false,
                method: String::new(),
            },
        );
        assert!(r.subject.starts_with("Second factors were removed"));
        assert!(!r.text.contains("Signed in from"));
        let r = shown(
            EmailKind::MfaChanged,
            &MfaChanged {
                notice: notice(Some("192.0.2.7")),
                enabled: true,
                method: "a passkey".into(),
            },
        );
        assert!(r.text.contains("a passkey was added as a second factor"));
        let r = shown(
            EmailKind::ApiTokenCreated,
            &ApiTokenCreated {
                notice: notice(Some("192.0.2.7")),
                token_name: "deploy".into(),
                scopes: "READ, BILLING".into(),
                expires: "2027-02-19 09:05 UTC".into(),
            },
        );
        assert!(r.text.contains("Scopes:         READ, BILLING"));
    }

    #[test]
    fn a_disabled_endpoint_says_since_when() {
        let r = shown(
            EmailKind::WebhookEndpointDisabled,
            &WebhookEndpointDisabled {
                name: "Ann".into(),
                sender: "mPanel for Host & Co".into(),
                url: "https://hooks.example.com/in".into(),
                description: "ERP".into(),
                failing_since: "2026-11-16 09:00 UTC".into(),
                at: "2026-11-21 09:05 UTC".into(),
            },
        );
        assert_eq!(
            r.subject,
            "Webhook endpoint disabled: https://hooks.example.com/in"
        );
        assert!(r.text.contains("failed since\n2026-11-16 09:00 UTC."));
    }
}
