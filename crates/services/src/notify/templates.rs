//! The templates of each message kind (a subject line, plain text and
//! HTML): the built-in ones, rendered with minijinja (HTML auto-escaped,
//! a template sees only the typed context it is given: no globals, no
//! loader, and a name missing from it is an error), or the tenant's own
//! (`/api/notifications/templates`), which are plain substitutions
//! ([`super::tenant_markup`]): checked against a sample of their kind
//! before they are stored, and if they still fail on real data the
//! built-in ones are used, so mail goes out.

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
    }
}

/// What a kind's templates see, with made-up values: a tenant's template
/// must render with it before it is stored.
pub fn sample(kind: EmailKind) -> Result<serde_json::Value, ServiceError> {
    use super::{account_link, invoice_issued, invoice_reminder};
    let value = match kind {
        EmailKind::InvoiceIssued => serde_json::to_value(invoice_issued::InvoiceIssued::sample()),
        EmailKind::InvoiceReminder => {
            serde_json::to_value(invoice_reminder::InvoiceReminder::sample())
        }
        EmailKind::Invitation | EmailKind::PasswordReset => {
            serde_json::to_value(account_link::AccountLink::sample())
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

/// Renders the built-in `sources` with `context` (minijinja's error on
/// failure).
fn render_minijinja<C: Serialize>(sources: &Sources, context: &C) -> Result<Rendered, String> {
    let mut env = environment();
    let names = ["subject.txt", "body.txt", "body.html"];
    let texts = [&sources.subject, &sources.text, &sources.html];
    for (name, source) in names.iter().zip(texts) {
        env.add_template_owned(*name, source.clone())
            .map_err(|e| format!("{name}: {e}"))?;
    }
    let value = minijinja::Value::from_serialize(context);
    let one = |name: &str| {
        env.get_template(name)
            .and_then(|t| t.render(&value))
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok(Rendered {
        subject: one_line(&one(names[0])?),
        text: one(names[1])?,
        html: one(names[2])?,
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
    render_minijinja(&builtin(kind), context).map_err(|e| {
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
    let own = match which {
        Templates::Tenant => tx.email_template(tenant, kind).await?,
        Templates::BuiltIn => None,
    };
    let Some(own) = own else {
        return render_builtin(kind, context);
    };
    match render_own(kind, &own_sources(&own), context) {
        Ok(rendered) => Ok(rendered),
        Err((part, why)) => {
            tracing::warn!(tenant = %tenant, kind = kind.as_str(), part, error = %why,
                "the tenant's template failed: the built-in one is used");
            render_builtin(kind, context)
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
            EmailKind::PasswordReset,
            &sources("<img src=\"https://evil.example/{{ link }}\">"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ServiceError::Invalid { field, .. } if field == "html"),
            "{err:?}"
        );
        assert!(check(EmailKind::Invitation, &sources("<p>no link</p>")).is_err());
    }
}
