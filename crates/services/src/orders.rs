//! Placing an order from the marketing site, in one transaction: the
//! customer and its portal user, the order and its items, a subscription
//! per item, the domains and the tokens that prove control of them, and,
//! when paid, the provisioning jobs of each item's template. Everything is
//! checked before anything is written.

use mpanel_domain::billing::invoice::{InvoiceStatus, LineKind, LineSource};
use mpanel_domain::billing::money::from_minor;
use mpanel_domain::billing::payment::PaymentProvider;
use mpanel_domain::catalog::{
    Currency, Period, PriceRequest, ProductStatus, ProvisioningTemplate, Visibility,
};
use mpanel_domain::identity::Role;
use mpanel_domain::orders::{domain_name, name_claims};
use mpanel_domain::provisioning::{PROVISION_JOB, plan};
use mpanel_domain::{Clock, ProductId, UserId};
use mpanel_jobs::{JobOptions, enqueue};
use mpanel_store::orders::{CustomerRecord, NewOrderItem};
use mpanel_store::{ActorType, NewUser, Store, TenantRecord, Tx, UserStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::actor::Change;
use crate::billing::lines::LineIn;
use crate::billing::stripe::StripeClient;
use crate::billing::{invoices, payments};
use crate::catalog::quote_from;
use crate::idempotency::IdempotencyHold;
use crate::{Actor, ServiceError};

/// What the marketing site sends (see the README for every field).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    pub customer: CustomerInput,
    pub items: Vec<ItemInput>,
    #[schema(value_type = mpanel_domain::catalog::Currency)]
    pub currency: String,
    /// When already paid; with `provider: STRIPE` the PaymentIntent is
    /// confirmed with Stripe before the order counts as paid.
    pub payment: Option<PaymentInput>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderCustomer)]
pub struct CustomerInput {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(pattern = "\\S", max_length = 200)]
    pub name: String,
    pub company: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: String,
    #[schema(max_length = 64)]
    pub tax_id: Option<String>,
    /// The marketing site signed this customer in as the owner of `email`.
    /// Only then does an order under an existing customer's address belong
    /// to that customer (its credit, its saved card); otherwise it goes to
    /// a separate pending customer until the address is verified.
    #[serde(default)]
    pub authenticated: bool,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderItem)]
pub struct ItemInput {
    #[schema(value_type = uuid::Uuid)]
    pub product_id: String,
    #[schema(value_type = mpanel_domain::catalog::Period)]
    pub period: String,
    /// The site's domain, for hosting and mail products.
    pub domain: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
}

/// An order paid before it reached mPanel.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderPayment)]
pub struct PaymentInput {
    /// `PAID`.
    #[schema(pattern = "^PAID$")]
    pub status: String,
    /// `STRIPE`, `BANK_TRANSFER` or `MANUAL`.
    #[schema(pattern = "^(STRIPE|BANK_TRANSFER|MANUAL)$")]
    pub provider: String,
    /// The provider's id of the payment (a Stripe PaymentIntent `pi_…`).
    #[schema(pattern = "\\S")]
    pub reference: String,
    pub amount_minor: i64,
}

/// The answer to a placed order (also what a retry is answered with).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct OrderPlaced {
    pub order_id: String,
    pub status: String,
    pub customer_id: String,
    pub currency: String,
    pub total_minor: i64,
    /// The order's invoice (issued; paid when the order is).
    pub invoice_id: String,
    pub invoice_number: Option<String>,
    pub items: Vec<PlacedItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PlacedItem {
    pub id: String,
    pub product_id: String,
    pub subscription_id: String,
    pub period: String,
    pub domain: Option<String>,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
    /// The provisioning steps queued for it (when paid).
    pub steps: Vec<String>,
}

/// An item once checked: what it is, what it costs, what it provisions.
struct CheckedItem {
    product_id: ProductId,
    name: String,
    period: Period,
    domain: Option<String>,
    options: Option<Value>,
    amount_minor: i64,
    setup_fee_minor: i64,
    template: ProvisioningTemplate,
}

fn invalid(
    field: impl Into<std::borrow::Cow<'static, str>>,
    message: impl Into<String>,
) -> ServiceError {
    ServiceError::invalid(field, message)
}

pub(crate) fn check_customer(c: &CustomerInput) -> Result<(), ServiceError> {
    let email = c.email.trim();
    let email_ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if !email_ok {
        return Err(invalid(
            "customer.email",
            format!("{email:?} is not an e-mail address"),
        ));
    }
    if c.name.trim().is_empty() || c.name.chars().count() > 200 {
        return Err(invalid("customer.name", "must be 1 to 200 characters long"));
    }
    if c.country.len() != 2 || !c.country.chars().all(|ch| ch.is_ascii_uppercase()) {
        return Err(invalid(
            "customer.country",
            "must be an ISO 3166-1 alpha-2 code such as DE",
        ));
    }
    if c.tax_id.as_ref().is_some_and(|t| t.chars().count() > 64) {
        return Err(invalid(
            "customer.tax_id",
            "must be at most 64 characters long",
        ));
    }
    Ok(())
}

/// Refuses a name nobody may own (a public suffix) or one that equals,
/// contains or sits inside a name already live anywhere on the platform.
async fn check_name_is_free(store: &Store, name: &str, field: String) -> Result<(), ServiceError> {
    name_claims::check_ownable(name).map_err(|m| invalid(field.clone(), m))?;
    let holders = store.name_holders(name, None).await?;
    if holders.iter().any(|h| h.name == name) {
        return Err(invalid(field, format!("{name} is already in use")));
    }
    if !holders.is_empty() {
        return Err(invalid(
            field,
            format!("{name} contains or sits inside a name already in use"),
        ));
    }
    Ok(())
}

/// Checks every item against the catalog; nothing is written.
async fn check_items(
    store: &Store,
    tenant: &TenantRecord,
    currency: Currency,
    items: &[ItemInput],
) -> Result<Vec<CheckedItem>, ServiceError> {
    if items.is_empty() || items.len() > 50 {
        return Err(invalid("items", "an order has 1 to 50 items"));
    }
    let mut domains = Vec::new();
    let mut checked = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("items[{i}].{f}");
        let product_id: ProductId = item
            .product_id
            .parse()
            .map_err(|_| invalid(at("product_id"), "is not a product id"))?;
        let product = store
            .product(tenant.id, product_id)
            .await
            .map_err(|_| invalid(at("product_id"), "no such product"))?;
        let sellable = product.fields.status == ProductStatus::Active
            && matches!(
                product.fields.visibility,
                Visibility::Public | Visibility::Beta
            )
            && product.archived_at.is_none();
        if !sellable {
            return Err(invalid(
                at("product_id"),
                format!("{} is not for sale", product.fields.slug),
            ));
        }
        let period: Period = item
            .period
            .parse()
            .map_err(|e: String| invalid(at("period"), e))?;
        let rules = store.prices_of(tenant.id, product_id).await?;
        let request = PriceRequest {
            period,
            currency,
            region: None,
            tenant: None,
        };
        let quote = quote_from(&product, &rules, &request)
            .map_err(|e| invalid(at("period"), e.to_string()))?;
        let domain = match &item.domain {
            Some(raw) => {
                let name = domain_name::normalise(raw).map_err(|m| invalid(at("domain"), m))?;
                if domains
                    .iter()
                    .any(|d: &String| name_claims::overlaps(d, &name))
                {
                    return Err(invalid(
                        at("domain"),
                        format!("{name} is in this order twice, or inside another of its names"),
                    ));
                }
                domains.push(name.clone());
                check_name_is_free(store, &name, at("domain")).await?;
                Some(name)
            }
            None => None,
        };
        if matches!(
            product.fields.template,
            ProvisioningTemplate::Hosting { .. } | ProvisioningTemplate::Email { .. }
        ) && domain.is_none()
        {
            return Err(invalid(
                at("domain"),
                "a hosting or e-mail product needs a domain",
            ));
        }
        let options = match item.options.clone() {
            Some(Value::Object(mut map)) => {
                // Only a hash made here reaches the mail node: one sent by
                // the client could be any scheme (even {PLAIN}).
                map.remove("mailbox_password_hash");
                // The first mailbox's password, chosen on the site: kept
                // only as the hash Dovecot checks.
                if let Some(password) = map.remove("mailbox_password") {
                    let hash = crate::hosting::mailbox_password_hash(
                        password.as_str().unwrap_or_default(),
                        at("options.mailbox_password"),
                    )
                    .await?;
                    map.insert("mailbox_password_hash".into(), Value::String(hash));
                }
                Some(Value::Object(map))
            }
            other => other,
        };
        checked.push(CheckedItem {
            product_id,
            name: product.fields.name.clone(),
            period,
            domain,
            options,
            amount_minor: quote.rule.amount_minor,
            setup_fee_minor: quote.rule.setup_fee_minor,
            template: product.fields.template.clone(),
        });
    }
    Ok(checked)
}

/// Queues the provisioning of every item of a paid order (one
/// `provision.subscription` job per item, its steps listed on the order),
/// inside the transaction that made it paid.
pub(crate) async fn enqueue_order_provisioning(
    tx: &mut Tx,
    tenant: &TenantRecord,
    order: Uuid,
    now: time::OffsetDateTime,
) -> Result<(), ServiceError> {
    for item in tx.order_items(tenant.id, order).await? {
        let product = tx.product(tenant.id, item.product_id).await?;
        let template = &product.fields.template;
        if *template == ProvisioningTemplate::None {
            continue;
        }
        let password_hash = item
            .options
            .as_ref()
            .and_then(|o| o.get("mailbox_password_hash"))
            .cloned();
        let payload = json!({"subscription_id": item.subscription_id, "template": template,
            "domain": item.domain, "mailbox_password_hash": password_hash});
        let options = JobOptions {
            queue: "provisioning".into(),
            unique_key: Some(format!("{PROVISION_JOB}:{}", item.subscription_id)),
            max_attempts: 10,
            ..JobOptions::default()
        };
        let (job, _) = enqueue(tx, PROVISION_JOB, &payload, &options, now).await?;
        for step in plan(template) {
            tx.insert_order_step(tenant.id, order, item.id, step.name(), job, now)
                .await?;
        }
    }
    Ok(())
}

/// The invoice lines of an order: each item's first period, and its setup
/// fee on a line of its own.
fn invoice_lines(items: &[CheckedItem], subscriptions: &[Uuid], currency: Currency) -> Vec<LineIn> {
    let mut lines = Vec::new();
    for (item, subscription) in items.iter().zip(subscriptions) {
        let what = match &item.domain {
            Some(domain) => format!("{} ({}), {domain}", item.name, item.period.as_str()),
            None => format!("{} ({})", item.name, item.period.as_str()),
        };
        let line = |description: String, minor: i64| LineIn {
            kind: LineKind::Item,
            source: Some(LineSource::Subscription),
            description,
            quantity: rust_decimal::Decimal::ONE,
            unit_price: from_minor(minor, currency),
            subscription_id: Some(*subscription),
        };
        lines.push(line(what, item.amount_minor));
        if item.setup_fee_minor > 0 {
            lines.push(line(
                format!("Setup fee: {}", item.name),
                item.setup_fee_minor,
            ));
        }
    }
    lines
}

/// The customer by e-mail, created (with its invited portal user) if new.
pub(crate) async fn find_or_create_customer(
    tx: &mut Tx,
    tenant: &TenantRecord,
    c: &CustomerInput,
    now: time::OffsetDateTime,
) -> Result<(CustomerRecord, bool), ServiceError> {
    let email = c.email.trim().to_owned();
    if let Some(existing) = tx.customer_by_email(tenant.id, &email).await? {
        if c.authenticated {
            return Ok((existing, false));
        }
        return Ok((pending_customer(tx, tenant, c, &existing, now).await?, true));
    }
    let portal_user = match tx.user_by_email(tenant.id, &email).await? {
        Some(user) if user.role == Role::Customer => user.id,
        Some(_) => {
            return Err(ServiceError::invalid(
                "customer.email",
                "belongs to a staff account; use the customer's own address",
            ));
        }
        None => {
            let user = tx
                .insert_user(
                    &NewUser {
                        id: UserId::new(),
                        tenant_id: tenant.id,
                        email: &email,
                        display_name: c.name.trim(),
                        role: Role::Customer,
                        password_hash: None,
                        status: UserStatus::Invited,
                    },
                    now,
                )
                .await?;
            user.id
        }
    };
    let customer = CustomerRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        email,
        name: c.name.trim().to_owned(),
        company: c.company.clone(),
        country: c.country.clone(),
        tax_id: c.tax_id.clone(),
        address: None,
        credit_balance_minor: 0,
        portal_user_id: Some(portal_user),
        pending_for: None,
        created_at: now,
        updated_at: now,
    };
    tx.save_customer(&customer).await?;
    Ok((customer, true))
}

/// A customer apart from `owner`, for an order that used `owner`'s address
/// without proof that `owner` placed it: no credit, no saved card and no
/// portal user, so a stranger who knows an address spends nothing of its
/// owner's and sees nothing of theirs.
async fn pending_customer(
    tx: &mut Tx,
    tenant: &TenantRecord,
    c: &CustomerInput,
    owner: &CustomerRecord,
    now: time::OffsetDateTime,
) -> Result<CustomerRecord, ServiceError> {
    let customer = CustomerRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        email: owner.email.clone(),
        name: c.name.trim().to_owned(),
        company: c.company.clone(),
        country: c.country.clone(),
        tax_id: c.tax_id.clone(),
        address: None,
        credit_balance_minor: 0,
        portal_user_id: None,
        pending_for: Some(owner.id),
        created_at: now,
        updated_at: now,
    };
    tx.save_customer(&customer).await?;
    Ok(customer)
}

/// Places an order; the response is stored against the held
/// `Idempotency-Key` in the same transaction. A Stripe payment claim is
/// confirmed with Stripe first (see `payment_claims`).
pub async fn place_order(
    store: &Store,
    clock: &dyn Clock,
    stripe: &StripeClient,
    tenant: &TenantRecord,
    input: &OrderInput,
    hold: &IdempotencyHold,
    request_id: Option<String>,
) -> Result<OrderPlaced, ServiceError> {
    let (idempotency_key, held_since) = (hold.key.as_str(), hold.held_since);
    let currency = Currency::parse(&input.currency).map_err(|m| invalid("currency", m))?;
    check_customer(&input.customer)?;
    let items = check_items(store, tenant, currency, &input.items).await?;
    let total = items
        .iter()
        .try_fold(0i64, |acc, i| {
            acc.checked_add(i.amount_minor)?
                .checked_add(i.setup_fee_minor)
        })
        .ok_or_else(|| invalid("items", "the order total is too large"))?;
    let paid = match &input.payment {
        None => false,
        Some(p) => {
            if p.status != "PAID" {
                return Err(invalid(
                    "payment.status",
                    "only PAID is accepted; leave payment out for unpaid orders",
                ));
            }
            if p.provider.trim().is_empty() || p.reference.trim().is_empty() {
                return Err(invalid("payment", "provider and reference are required"));
            }
            let provider = p
                .provider
                .trim()
                .to_ascii_uppercase()
                .parse::<PaymentProvider>();
            match provider {
                Ok(
                    PaymentProvider::Manual
                    | PaymentProvider::BankTransfer
                    | PaymentProvider::Stripe,
                ) => {}
                _ => {
                    return Err(invalid(
                        "payment.provider",
                        "must be one of STRIPE, BANK_TRANSFER, MANUAL",
                    ));
                }
            }
            crate::payment_claims::check(store, stripe, tenant, p, currency).await?;
            true
        }
    };

    let now = clock.now();
    let order_id = Uuid::now_v7();
    let mut tx = store.begin().await?;
    let (customer, new_customer) =
        find_or_create_customer(&mut tx, tenant, &input.customer, now).await?;
    let payment = input.payment.as_ref().map(|p| {
        json!({"status": p.status, "provider": p.provider, "reference": p.reference, "amount_minor": p.amount_minor})
    });
    tx.insert_order(
        order_id,
        tenant.id,
        customer.id,
        "PENDING_PAYMENT",
        currency,
        total,
        payment.as_ref(),
        idempotency_key,
        now,
    )
    .await
    .map_err(|e| match e {
        mpanel_store::StoreError::Conflict(_) => invalid(
            "payment.reference",
            "this payment was already recorded for another order",
        ),
        other => other.into(),
    })?;
    let mut placed_items = Vec::new();
    let mut subscriptions = Vec::new();
    for item in &items {
        let new = NewOrderItem {
            id: Uuid::now_v7(),
            subscription_id: Uuid::now_v7(),
            product_id: item.product_id,
            period: item.period,
            domain: item.domain.clone(),
            options: item.options.clone(),
            amount_minor: item.amount_minor,
            setup_fee_minor: item.setup_fee_minor,
        };
        tx.insert_order_item(tenant.id, order_id, customer.id, currency, &new, now)
            .await
            .map_err(|e| match e {
                mpanel_store::StoreError::Conflict(_) => {
                    invalid("items.domain", "a domain of this order was just taken")
                }
                other => other.into(),
            })?;
        // Shown on the order from now on: the customer can publish it
        // while the order is still being paid for.
        if let Some(domain) = &item.domain {
            let token = crate::domain_control::new_token()?;
            tx.insert_domain_verification(tenant.id, new.subscription_id, domain, &token, now)
                .await?;
        }
        let steps = if paid && item.template != ProvisioningTemplate::None {
            plan(&item.template)
                .into_iter()
                .map(|step| step.name().to_owned())
                .collect()
        } else {
            Vec::new()
        };
        subscriptions.push(new.subscription_id);
        placed_items.push(PlacedItem {
            id: new.id.to_string(),
            product_id: item.product_id.to_string(),
            subscription_id: new.subscription_id.to_string(),
            period: item.period.as_str().to_owned(),
            domain: item.domain.clone(),
            amount_minor: item.amount_minor,
            setup_fee_minor: item.setup_fee_minor,
            steps,
        });
    }
    let actor = Actor {
        kind: ActorType::System,
        id: None,
        label: "webhook:orders".into(),
        request_id,
    };
    // The order's invoice, issued now: paid at once when the site took the
    // money, else paid later (or from the customer's credit right away).
    let lines = invoice_lines(&items, &subscriptions, currency);
    let draft = invoices::create_in(
        &mut tx,
        tenant,
        &customer,
        currency,
        &lines,
        Vec::new(),
        Some(order_id),
        now,
    )
    .await?;
    let mut invoice = invoices::issue_in(&mut tx, tenant, draft.id, &actor, !paid, now).await?;
    if invoice.total_minor != total {
        tx.set_order_total(tenant.id, order_id, invoice.total_minor, now)
            .await?;
    }
    // A free order is settled on issue: nothing to record.
    if let Some(p) = input.payment.as_ref().filter(|_| invoice.total_minor > 0) {
        if p.amount_minor != invoice.total_minor {
            return Err(invalid(
                "payment.amount_minor",
                format!(
                    "{} does not match the order total of {} (tax included)",
                    p.amount_minor, invoice.total_minor
                ),
            ));
        }
        let provider = p
            .provider
            .trim()
            .to_ascii_uppercase()
            .parse::<PaymentProvider>()
            .map_err(|m| invalid("payment.provider", m))?;
        let (_, paid_invoice) = payments::record_in(
            &mut tx,
            tenant,
            invoice,
            provider,
            Some(p.reference.trim().to_owned()),
            p.amount_minor,
            &actor,
            now,
        )
        .await
        .map_err(|e| match e {
            ServiceError::Conflict(_) => invalid(
                "payment.reference",
                "this payment was already recorded for another order",
            ),
            other => other,
        })?;
        invoice = paid_invoice;
    }
    let status = if invoice.status == InvoiceStatus::Paid {
        "PAID"
    } else {
        "PENDING_PAYMENT"
    };
    let placed = OrderPlaced {
        order_id: order_id.to_string(),
        status: status.to_owned(),
        customer_id: customer.id.to_string(),
        currency: currency.code().to_owned(),
        total_minor: invoice.total_minor,
        invoice_id: invoice.id.to_string(),
        invoice_number: invoice.number.clone(),
        items: placed_items,
    };
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "order.create",
        target_type: "order",
        target_id: order_id.to_string(),
        before: None,
        after: Some(json!({"status": status, "total_minor": invoice.total_minor, "invoice_id": invoice.id, "currency": currency, "customer_id": customer.id, "new_customer": new_customer, "items": placed.items.len()})),
        at: now,
    }))
    .await?;
    let body = serde_json::to_string(&placed)
        .map_err(|e| ServiceError::internal("cannot serialize the answer to keep", e))?;
    tx.finish_idempotency(tenant.id, idempotency_key, held_since, 201, &body)
        .await?;
    tx.commit().await?;
    Ok(placed)
}
