-- The e-mail mPanel sends. A message is written to the outbox in the same
-- transaction as the event that causes it, and delivered by its
-- `notify.email` job; the row says where it stands for staff.
CREATE TABLE email_outbox (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    -- INVOICE_ISSUED, INVOICE_REMINDER, ...
    kind        TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    text_body   TEXT NOT NULL,
    html_body   TEXT NOT NULL,
    -- What regenerates each attachment (JSON array), not its bytes.
    attachments TEXT NOT NULL,
    -- Fixed at the first attempt, so every resend carries the same ones:
    -- the sender's address and its display name (kept apart, never
    -- parsed back from `Name <address>`).
    sender      TEXT,
    sender_name TEXT,
    message_id  TEXT,
    -- QUEUED, SENDING (claimed by the attempt handing it to the server),
    -- SENT, FAILED, UNDELIVERABLE, UNKNOWN (a SENDING whose outcome was
    -- never recorded: maybe delivered, never resent; staff decide).
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    sent_at     TEXT
);
CREATE INDEX email_outbox_tenant ON email_outbox (tenant_id, id);
CREATE INDEX email_outbox_tenant_status ON email_outbox (tenant_id, status, id);

-- A tenant's DKIM key per signing domain, made on first use. The private
-- key (PKCS#1 PEM) is sealed with the secrets box, bound to its row; the
-- public key (base64 DER) is what the TXT record publishes.
CREATE TABLE dkim_keys (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    domain      TEXT NOT NULL,
    selector    TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (tenant_id, domain)
);

-- Who a tenant's messages come from; the platform's sender when unset.
ALTER TABLE tenants ADD COLUMN sender_name TEXT;
ALTER TABLE tenants ADD COLUMN sender_address TEXT;
