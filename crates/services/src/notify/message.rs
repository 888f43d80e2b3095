//! An outbox row as an RFC 5322 message: its fixed sender and
//! `Message-ID`, the date it was written, plain text and HTML as
//! alternatives, and its attachments laid out again from what they refer
//! to.

use lettre::Message;
use lettre::message::header::{self, ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use mpanel_domain::notify::Attachment;
use mpanel_store::Store;
use mpanel_store::notify::EmailRecord;

use super::outbox;
use crate::ServiceError;
use crate::billing::documents;

/// Why a message cannot be built.
#[derive(Debug)]
pub enum BuildError {
    /// Nothing a retry changes (a recipient that is no address).
    Permanent(String),
    /// Ours, maybe passing (the database).
    Internal(ServiceError),
}

impl From<ServiceError> for BuildError {
    fn from(e: ServiceError) -> Self {
        Self::Internal(e)
    }
}

/// The message of `email` from `from` (the row's sender and `Message-ID`
/// are fixed before this is called), its link below `portal_url`.
pub async fn build(
    store: &Store,
    email: &EmailRecord,
    from: Mailbox,
    portal_url: &str,
) -> Result<Message, BuildError> {
    let to: Mailbox = email
        .recipient
        .parse()
        .map_err(|e| BuildError::Permanent(format!("the recipient is not an address: {e}")))?;
    let parts = outbox::with_link(store, email, portal_url)?;
    let body = MultiPart::alternative_plain_html(parts.text, parts.html);
    let mut mixed = MultiPart::mixed().multipart(body);
    for part in attachments(store, email).await? {
        mixed = mixed.singlepart(part);
    }
    let (content_type, body) = lift(&mixed)?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(parts.subject)
        .date(std::time::SystemTime::from(email.created_at))
        .message_id(email.message_id.clone())
        .header(header::MIME_VERSION_1_0)
        .header(content_type)
        .body(body)
        .map_err(|e| BuildError::Permanent(format!("the message cannot be built: {e}")))
}

/// The multipart's `Content-Type` and its body, apart, so the
/// `Content-Type` is one of the message's own headers: lettre signs only
/// those, and RFC 6376 §5.4 wants it (with `MIME-Version`) signed.
fn lift(mixed: &MultiPart) -> Result<(ContentType, Body), BuildError> {
    let content_type = mixed
        .headers()
        .get::<ContentType>()
        .ok_or_else(|| BuildError::Permanent("the multipart has no Content-Type".into()))?;
    let headers = mixed.headers().to_string().len() + 2;
    let formatted = mixed.formatted();
    let raw = formatted.get(headers..).unwrap_or_default().to_vec();
    // lettre laid the parts out (each quoted-printable, base64 or 7-bit,
    // lines under 1000), so the body is encoded already; 8-bit only if a
    // part was left 8-bit.
    let encoding = if raw.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    let body = Body::dangerous_pre_encoded(raw, encoding);
    Ok((content_type, body))
}

async fn attachments(store: &Store, email: &EmailRecord) -> Result<Vec<SinglePart>, BuildError> {
    let refs: Vec<Attachment> = serde_json::from_str(&email.attachments)
        .map_err(|e| ServiceError::internal("reading the attachments of a message", e))?;
    let mut parts = Vec::with_capacity(refs.len());
    for reference in refs {
        parts.push(match reference {
            Attachment::InvoicePdf { invoice_id } => {
                // As of the message's date, so every resend is the same.
                let (number, pdf) = documents::render_invoice_pdf(
                    store,
                    email.tenant_id,
                    invoice_id,
                    email.created_at,
                )
                .await?;
                lettre::message::Attachment::new(format!("{number}.pdf")).body(pdf, pdf_type())
            }
        });
    }
    Ok(parts)
}

fn pdf_type() -> ContentType {
    ContentType::parse("application/pdf").unwrap_or(ContentType::TEXT_PLAIN)
}
