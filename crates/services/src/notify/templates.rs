//! The built-in templates of each message kind (a subject line, plain
//! text and HTML), rendered with minijinja. HTML output is auto-escaped;
//! a template sees only the typed context it is given (no globals, no
//! loader), and a name missing from it is an error, not an empty string.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use mpanel_domain::notify::EmailKind;
use serde::Serialize;

use crate::ServiceError;

/// A message's rendered parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The three templates of a kind: subject, text, HTML.
fn sources(kind: EmailKind) -> [&'static str; 3] {
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

/// Renders `kind`'s templates with `context`.
pub fn render<C: Serialize>(kind: EmailKind, context: &C) -> Result<Rendered, ServiceError> {
    let mut env = environment();
    let [subject, text, html] = sources(kind);
    let names = ["subject.txt", "body.txt", "body.html"];
    for (name, source) in names.iter().zip([subject, text, html]) {
        env.add_template(name, source)
            .map_err(|e| ServiceError::internal(format!("template {kind:?} {name}"), e))?;
    }
    let value = minijinja::Value::from_serialize(context);
    let one = |name: &str| {
        env.get_template(name)
            .and_then(|t| t.render(&value))
            .map_err(|e| ServiceError::internal(format!("rendering {kind:?} {name}"), e))
    };
    Ok(Rendered {
        // One line, whatever the context holds.
        subject: one(names[0])?
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        text: one(names[1])?,
        html: one(names[2])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::invoice_issued::InvoiceIssued;

    fn context(name: &str) -> InvoiceIssued {
        InvoiceIssued {
            customer_name: name.into(),
            seller_name: "Host & Co".into(),
            number: "INV-2026-000001".into(),
            issued_date: "2026-11-21".into(),
            due_date: "2026-12-05".into(),
            total: "12.34 EUR".into(),
            amount_due: "12.34 EUR".into(),
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let r = render(EmailKind::InvoiceIssued, &context("<b>Eve</b>")).unwrap();
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
        assert!(render(EmailKind::InvoiceIssued, &Partial { number: "X" }).is_err());
    }
}
