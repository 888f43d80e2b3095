//! The templates of each message kind (a subject line, plain text and
//! HTML), rendered with minijinja: the built-in ones, or the tenant's own
//! (`/api/notifications/templates`). HTML output is auto-escaped; a
//! template sees only the typed context it is given (no globals, no
//! loader), and a name missing from it is an error, not an empty string.
//! A tenant's template runs on a budget (fuel and output size), is
//! checked against a sample of its kind before it is stored, and if it
//! still fails on real data the built-in one is used, so mail goes out.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use mpanel_domain::TenantId;
use mpanel_domain::notify::EmailKind;
use mpanel_store::Tx;
use mpanel_store::email_templates::EmailTemplateRecord;
use serde::Serialize;

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
/// The most a tenant's template may write (each part).
const MAX_OUTPUT_LEN: usize = 256 * 1024;
/// The instructions a tenant's template may run (each part): far more
/// than any message needs, far less than a loop meant to stall a worker.
const FUEL: u64 = 100_000;

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

fn environment(budget: bool) -> Environment<'static> {
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
    if budget {
        env.set_fuel(Some(FUEL));
    }
    env
}

/// Why a set of templates did not render: which part, and minijinja's
/// words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// `subject`, `text` or `html`.
    pub part: &'static str,
    pub message: String,
}

const PARTS: [(&str, &str); 3] = [
    ("subject", "subject.txt"),
    ("text", "body.txt"),
    ("html", "body.html"),
];

/// Renders `sources` with `context`; `budget` limits what they may run
/// and write (a tenant's templates).
fn render_sources<C: Serialize>(
    sources: &Sources,
    context: &C,
    budget: bool,
) -> Result<Rendered, TemplateError> {
    let mut env = environment(budget);
    let texts = [&sources.subject, &sources.text, &sources.html];
    for ((part, name), source) in PARTS.iter().zip(texts) {
        env.add_template_owned(*name, source.clone())
            .map_err(|e| TemplateError {
                part,
                message: e.to_string(),
            })?;
    }
    let value = minijinja::Value::from_serialize(context);
    let mut out = Vec::with_capacity(3);
    for (part, name) in PARTS {
        let mut sink = Capped::default();
        env.get_template(name)
            .and_then(|t| t.render_captured_to(&value, &mut sink).map(drop))
            .map_err(|e| TemplateError {
                part,
                message: if sink.over {
                    format!("writes more than {MAX_OUTPUT_LEN} bytes")
                } else {
                    e.to_string()
                },
            })?;
        out.push(String::from_utf8(sink.bytes).map_err(|e| TemplateError {
            part,
            message: e.to_string(),
        })?);
    }
    let [subject, text, html]: [String; 3] = out.try_into().map_err(|_| TemplateError {
        part: "subject",
        message: "three parts".into(),
    })?;
    Ok(Rendered {
        // One line, whatever the context holds.
        subject: subject
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        text,
        html,
    })
}

/// A writer that refuses to hold more than [`MAX_OUTPUT_LEN`] bytes.
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_LEN {
            self.over = true;
            return Err(std::io::Error::other("output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `kind`'s built-in templates with `context`.
fn render_builtin<C: Serialize>(kind: EmailKind, context: &C) -> Result<Rendered, ServiceError> {
    render_sources(&builtin(kind), context, false).map_err(|e| {
        ServiceError::internal_msg(format!(
            "rendering the built-in {} {}: {}",
            kind.as_str(),
            e.part,
            e.message
        ))
    })
}

/// Renders `kind` for `tenant` with `context`, in the transaction that
/// writes the message: the tenant's own templates when it has them (the
/// built-in ones if those fail on this context).
pub async fn render_in<C: Serialize>(
    tx: &mut Tx,
    tenant: TenantId,
    kind: EmailKind,
    context: &C,
) -> Result<Rendered, ServiceError> {
    let Some(own) = tx.email_template(tenant, kind).await? else {
        return render_builtin(kind, context);
    };
    match render_sources(&own_sources(&own), context, true) {
        Ok(rendered) => Ok(rendered),
        Err(e) => {
            tracing::warn!(tenant = %tenant, kind = kind.as_str(), part = e.part,
                error = %e.message, "the tenant's template failed: the built-in one is used");
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
/// [`MAX_TEMPLATE_LEN`], and rendering the kind's sample within the
/// budget. Answers the sample as rendered (a preview).
pub fn check(kind: EmailKind, sources: &Sources) -> Result<Rendered, ServiceError> {
    for ((part, _), source) in PARTS
        .iter()
        .zip([&sources.subject, &sources.text, &sources.html])
    {
        if source.len() > MAX_TEMPLATE_LEN {
            return Err(ServiceError::invalid(
                *part,
                format!("must be at most {MAX_TEMPLATE_LEN} bytes"),
            ));
        }
    }
    if sources.subject.trim().is_empty() {
        return Err(ServiceError::invalid("subject", "must not be empty"));
    }
    render_sources(sources, &sample(kind)?, true)
        .map_err(|e| ServiceError::invalid(e.part, format!("does not render: {}", e.message)))
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
            ..builtin(EmailKind::InvoiceIssued)
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
            check(kind, &builtin(kind)).unwrap();
        }
    }

    #[test]
    fn a_tenants_template_runs_on_a_budget() {
        let endless = Sources {
            text: "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}"
                .into(),
            ..builtin(EmailKind::Invitation)
        };
        let err = check(EmailKind::Invitation, &endless).unwrap_err();
        assert!(
            matches!(&err, ServiceError::Invalid { field, .. } if field == "text"),
            "{err:?}"
        );
        let huge = Sources {
            html: "{{ 'x' * 10000000 }}".into(),
            ..builtin(EmailKind::Invitation)
        };
        let err = check(EmailKind::Invitation, &huge).unwrap_err();
        assert!(format!("{err:?}").contains("writes more than"), "{err:?}");
    }
}
