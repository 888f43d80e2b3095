-- Messages that carry a link with a secret (an invitation, a password
-- reset): the body holds a placeholder and the link is kept here sealed
-- with the secrets key, put in only when the message is built, so the
-- outbox never holds a usable token in clear.
ALTER TABLE email_outbox ADD COLUMN link_sealed TEXT;

-- Staff filter the outbox by kind (`?kind=`), newest first.
CREATE INDEX email_outbox_kind ON email_outbox (tenant_id, kind, id);

-- Invitation and reset links are auth_challenges rows (token hash only);
-- a new link retires the user's earlier ones of the same kind.
CREATE INDEX auth_challenges_user_kind ON auth_challenges (user_id, kind);

-- A tenant's own templates of a message kind, instead of the built-in
-- ones; rendered with the same context, so a template can read only what
-- that kind gives it.
CREATE TABLE email_templates (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    text_body  TEXT NOT NULL,
    html_body  TEXT NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

-- A subscription's order item and its steps, read for every subscription
-- page since staff-made subscriptions go the way of orders.
CREATE INDEX order_items_subscription ON order_items (subscription_id);
CREATE INDEX order_steps_item ON order_steps (order_item_id);
