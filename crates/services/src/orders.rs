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
use mpanel_domain::identity::account_link::LinkPurpose::Invitation;
use mpanel_domain::orders::{OrderStatus, domain_name, name_claims};
use mpanel_domain::provisioning::payloads::ProvisionSubscription;
use mpanel_domain::provisioning::{PROVISION_JOB, plan};
use mpanel_domain::webhooks::EventType;
use mpanel_domain::{Clock, CustomerId, OrderId, OrderItemId, ProductId, SubscriptionId, UserId};
use mpanel_jobs::{JobOptions, enqueue_job};
use mpanel_store::billing::InvoiceRecord;
use mpanel_store::catalog::ProductRecord;
use mpanel_store::domain_verifications::DomainVerification;
use mpanel_store::orders::{
    CustomerRecord, NewOrder, NewOrderItem, NewOrderStep, OrderFilter, OrderItemRecord,
    OrderRecord, OrderStepRecord,
};
use mpanel_store::{ActorType, NewUser, Store, TenantRecord, Tx, UserStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::actor::Change;
use crate::billing::lines::LineIn;
use crate::billing::stripe::StripeClient;
use crate::billing::{invoices, payments};
use crate::catalog::quote_from;
use crate::idempotency::IdempotencyHold;
use crate::{Actor, Context, ServiceError};

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
    #[schema(schema_with = crate::api_schema::country_code)]
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
pub(crate) struct CheckedItem {
    product_id: ProductId,
    name: String,
    period: Period,
    domain: Option<String>,
    options: Option<Value>,
    amount_minor: i64,
    setup_fee_minor: i64,
    pub(crate) template: ProvisioningTemplate,
}

fn invalid(
    field: impl Into<std::borrow::Cow<'static, str>>,
    message: impl Into<String>,
) -> ServiceError {
    ServiceError::invalid(field, message)
}

pub(crate) fn check_customer(c: &CustomerInput) -> Result<(), ServiceError> {
    mpanel_domain::contact::email(&c.email).map_err(|m| invalid("customer.email", m))?;
    if c.name.trim().is_empty() || c.name.chars().count() > 200 {
        return Err(invalid("customer.name", "must be 1 to 200 characters long"));
    }
    mpanel_domain::contact::country(&c.country).map_err(|m| invalid("customer.country", m))?;
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

/// Who sells: the marketing site (public, active products at list
/// prices) or staff (any product not archived, at the tenant's prices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seller {
    Site,
    Staff,
}

/// Checks every item against the catalog; nothing is written.
pub(crate) async fn check_items(
    store: &Store,
    tenant: &TenantRecord,
    currency: Currency,
    items: &[ItemInput],
) -> Result<Vec<CheckedItem>, ServiceError> {
    check_items_for(store, tenant, Seller::Site, currency, items).await
}

/// [`check_items`] for `seller`.
pub(crate) async fn check_items_for(
    store: &Store,
    tenant: &TenantRecord,
    seller: Seller,
    currency: Currency,
    items: &[ItemInput],
) -> Result<Vec<CheckedItem>, ServiceError> {
    if items.is_empty() || items.len() > 50 {
        return Err(invalid("items", "an order has 1 to 50 items"));
    }
    // The names already claimed by earlier items, so two items of one
    // order cannot overlap (the store only sees names already live).
    let mut domains = Vec::new();
    let mut checked = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let sale = Sale {
            store,
            tenant,
            seller,
            currency,
        };
        checked.push(check_item(&sale, i, item, &mut domains).await?);
    }
    Ok(checked)
}

/// One item, checked in the order a customer would fix it: the product,
/// its price for the period, the domain, then the options.
/// What checking an item needs.
struct Sale<'a> {
    store: &'a Store,
    tenant: &'a TenantRecord,
    seller: Seller,
    currency: Currency,
}

async fn check_item(
    sale: &Sale<'_>,
    i: usize,
    item: &ItemInput,
    domains: &mut Vec<String>,
) -> Result<CheckedItem, ServiceError> {
    let (store, tenant, currency) = (sale.store, sale.tenant, sale.currency);
    let at = |f: &str| format!("items[{i}].{f}");
    let product = sellable_product(
        store,
        tenant,
        sale.seller,
        &item.product_id,
        at("product_id"),
    )
    .await?;
    let period: Period = item
        .period
        .parse()
        .map_err(|e: String| invalid(at("period"), e))?;
    let rules = store.prices_of(tenant.id, product.id).await?;
    let request = PriceRequest {
        period,
        currency,
        region: None,
        tenant: (sale.seller == Seller::Staff).then_some(tenant.id),
    };
    let quote =
        quote_from(&product, &rules, &request).map_err(|e| invalid(at("period"), e.to_string()))?;
    let domain = match &item.domain {
        Some(raw) => Some(claim_domain(store, raw, domains, at("domain")).await?),
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
    if let ProvisioningTemplate::CloudPod { .. } = product.fields.template {
        let pod = crate::cloudpods::order_item::check(item.options.as_ref(), &at("options"))?;
        crate::cloudpods::order_item::check_image(store, &pod, &at("options")).await?;
    }
    let options =
        hash_mailbox_password(item.options.clone(), at("options.mailbox_password")).await?;
    Ok(CheckedItem {
        product_id: product.id,
        name: product.fields.name.clone(),
        period,
        domain,
        options,
        amount_minor: quote.rule.amount_minor,
        setup_fee_minor: quote.rule.setup_fee_minor,
        template: product.fields.template,
    })
}

/// The product an item names, if this tenant sells it now: to the public
/// (active, public or beta), or by staff (anything not archived: a
/// partner's private plan, a migration to a retired one).
async fn sellable_product(
    store: &Store,
    tenant: &TenantRecord,
    seller: Seller,
    raw_id: &str,
    field: String,
) -> Result<ProductRecord, ServiceError> {
    let product_id: ProductId = raw_id
        .parse()
        .map_err(|_| invalid(field.clone(), "is not a product id"))?;
    // Only a miss is bad input: a database that does not answer is not
    // the site's mistake, and a retry must not be told to change the order.
    let product = store
        .product(tenant.id, product_id)
        .await?
        .ok_or_else(|| invalid(field.clone(), "no such product"))?;
    let public = product.fields.status == ProductStatus::Active
        && matches!(
            product.fields.visibility,
            Visibility::Public | Visibility::Beta
        );
    let sellable = product.archived_at.is_none() && (public || seller == Seller::Staff);
    if !sellable {
        return Err(invalid(
            field,
            format!("{} is not for sale", product.fields.slug),
        ));
    }
    Ok(product)
}

/// An item's domain, normalised, free on the platform and apart from the
/// names of the order's earlier items (to which it is then added).
async fn claim_domain(
    store: &Store,
    raw: &str,
    domains: &mut Vec<String>,
    field: String,
) -> Result<String, ServiceError> {
    let name = domain_name::normalise(raw).map_err(|m| invalid(field.clone(), m))?;
    if domains
        .iter()
        .any(|d: &String| name_claims::overlaps(d, &name))
    {
        return Err(invalid(
            field,
            format!("{name} is in this order twice, or inside another of its names"),
        ));
    }
    domains.push(name.clone());
    check_name_is_free(store, &name, field).await?;
    Ok(name)
}

/// An item's options with the first mailbox's password (chosen on the
/// site) replaced by the hash Dovecot checks.
async fn hash_mailbox_password(
    options: Option<Value>,
    field: String,
) -> Result<Option<Value>, ServiceError> {
    let mut map = match options {
        Some(Value::Object(map)) => map,
        other => return Ok(other),
    };
    // Only a hash made here reaches the mail node: one sent by the client
    // could be any scheme (even {PLAIN}).
    map.remove("mailbox_password_hash");
    if let Some(password) = map.remove("mailbox_password") {
        let hash =
            crate::hosting::mailbox_password_hash(password.as_str().unwrap_or_default(), field)
                .await?;
        map.insert("mailbox_password_hash".into(), Value::String(hash));
    }
    Ok(Some(Value::Object(map)))
}

/// Queues the provisioning of every item of a paid order (one
/// `provision.subscription` job per item, its steps listed on the order),
/// inside the transaction that made it paid. An item staff had provisioned
/// before payment is not queued again.
pub(crate) async fn enqueue_order_provisioning(
    tx: &mut Tx,
    tenant: &TenantRecord,
    order: OrderId,
    now: time::OffsetDateTime,
) -> Result<(), ServiceError> {
    for item in tx.order_items(tenant.id, order).await? {
        if tx.order_item_has_steps(tenant.id, item.id).await? {
            continue;
        }
        let product = tx
            .product(tenant.id, item.product_id)
            .await?
            .ok_or_else(ServiceError::missing("product"))?;
        let template = &product.fields.template;
        if *template == ProvisioningTemplate::None {
            continue;
        }
        let payload = ProvisionSubscription {
            subscription_id: item.subscription_id,
            template: template.clone(),
            domain: item.domain.clone(),
            mailbox_password_hash: item
                .options
                .as_ref()
                .and_then(|o| o.get("mailbox_password_hash"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            tenant_id: Some(tenant.id),
        };
        let options = JobOptions {
            queue: "provisioning".into(),
            unique_key: Some(format!("{PROVISION_JOB}:{}", item.subscription_id)),
            max_attempts: 10,
            ..JobOptions::default()
        };
        let (job, _) = enqueue_job(tx, &payload, &options, now).await?;
        for step in plan(template) {
            tx.insert_order_step(&NewOrderStep {
                tenant: tenant.id,
                order,
                item: item.id,
                step: step.name(),
                job,
                at: now,
            })
            .await?;
        }
    }
    Ok(())
}

/// The invoice lines of an order: each item's first period, and its setup
/// fee on a line of its own.
fn invoice_lines(
    items: &[CheckedItem],
    subscriptions: &[SubscriptionId],
    currency: Currency,
) -> Vec<LineIn> {
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

/// Whether a new customer's portal user is sent an invitation now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalInvitation {
    Send,
    /// Later, by `POST /api/users/{id}/invite` (staff importing customers).
    Hold,
}

/// The customer by e-mail, created if new, with its portal user (sent an
/// invitation unless held).
pub(crate) async fn find_or_create_customer(
    tx: &mut Tx,
    tenant: &TenantRecord,
    c: &CustomerInput,
    invitation: PortalInvitation,
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
            if invitation == PortalInvitation::Send {
                crate::identity::account_links::send_in(tx, tenant, &user, Invitation, now).await?;
            }
            user.id
        }
    };
    let customer = CustomerRecord {
        id: CustomerId::new(),
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
        id: CustomerId::new(),
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
    // Everything is checked before the transaction opens, so bad input
    // writes nothing and holds no lock.
    let currency = Currency::parse(&input.currency).map_err(|m| invalid("currency", m))?;
    check_customer(&input.customer)?;
    let items = check_items(store, tenant, currency, &input.items).await?;
    let total = order_total(&items)?;
    let paid = check_payment(store, stripe, tenant, input.payment.as_ref(), currency).await?;

    let now = clock.now();
    let order_id = OrderId::new();
    let mut tx = store.begin().await?;
    let (customer, new_customer) = find_or_create_customer(
        &mut tx,
        tenant,
        &input.customer,
        PortalInvitation::Send,
        now,
    )
    .await?;
    let placing = Placing {
        tenant,
        customer: &customer,
        order_id,
        currency,
        paid,
        actor: Actor {
            kind: ActorType::System,
            id: None,
            label: "webhook:orders".into(),
            request_id,
        },
        now,
    };
    placing
        .insert_order(&mut tx, total, input.payment.as_ref(), &hold.key)
        .await?;
    let (placed_items, subscriptions) = placing.insert_items(&mut tx, &items).await?;
    let mut invoice = placing
        .issue_invoice(&mut tx, &items, &subscriptions, total)
        .await?;
    // A free order is settled on issue: nothing to record.
    if let Some(p) = input.payment.as_ref().filter(|_| invoice.total_minor > 0) {
        invoice = placing.record_site_payment(&mut tx, invoice, p).await?;
    }
    let placed = placing.placed(&invoice, placed_items);
    placing
        .audit(&mut tx, &placed, &invoice, new_customer)
        .await?;
    let event = serde_json::to_value(&placed)
        .map_err(|e| ServiceError::internal("cannot serialize the order for its event", e))?;
    crate::webhooks::emit(&mut tx, tenant.id, EventType::OrderCreated, event, now).await?;
    let body = serde_json::to_string(&placed)
        .map_err(|e| ServiceError::internal("cannot serialize the answer to keep", e))?;
    tx.finish_idempotency(tenant.id, &hold.key, hold.held_since, 201, &body)
        .await?;
    tx.commit().await?;
    Ok(placed)
}

/// The sum of the items' first periods and setup fees, before tax.
pub(crate) fn order_total(items: &[CheckedItem]) -> Result<i64, ServiceError> {
    items
        .iter()
        .try_fold(0i64, |acc, i| {
            acc.checked_add(i.amount_minor)?
                .checked_add(i.setup_fee_minor)
        })
        .ok_or_else(|| invalid("items", "the order total is too large"))
}

/// Whether the site says the order is paid, after checking its claim (a
/// Stripe one with Stripe); `false` when it sent no payment.
async fn check_payment(
    store: &Store,
    stripe: &StripeClient,
    tenant: &TenantRecord,
    payment: Option<&PaymentInput>,
    currency: Currency,
) -> Result<bool, ServiceError> {
    let Some(p) = payment else {
        return Ok(false);
    };
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
    if !matches!(
        provider,
        Ok(PaymentProvider::Manual | PaymentProvider::BankTransfer | PaymentProvider::Stripe)
    ) {
        return Err(invalid(
            "payment.provider",
            "must be one of STRIPE, BANK_TRANSFER, MANUAL",
        ));
    }
    crate::payment_claims::check(store, stripe, tenant, p, currency).await?;
    Ok(true)
}

/// What every write step of one order shares, inside its transaction.
pub(crate) struct Placing<'a> {
    pub tenant: &'a TenantRecord,
    pub customer: &'a CustomerRecord,
    pub order_id: OrderId,
    pub currency: Currency,
    /// The site took the money (its claim was checked).
    pub paid: bool,
    pub actor: Actor,
    pub now: time::OffsetDateTime,
}

impl Placing<'_> {
    /// The order row, unpaid until its invoice is; a payment reference
    /// already on another order is refused here (unique in the store).
    pub(crate) async fn insert_order(
        &self,
        tx: &mut Tx,
        total: i64,
        payment: Option<&PaymentInput>,
        idempotency_key: &str,
    ) -> Result<(), ServiceError> {
        let payment = payment.map(|p| {
            json!({"status": p.status, "provider": p.provider, "reference": p.reference, "amount_minor": p.amount_minor})
        });
        let order = NewOrder {
            id: self.order_id,
            tenant: self.tenant.id,
            customer: self.customer.id,
            status: OrderStatus::PendingPayment,
            currency: self.currency,
            total_minor: total,
            payment: payment.as_ref(),
            idempotency_key,
        };
        tx.insert_order(&order, self.now)
            .await
            .map_err(|e| match e {
                mpanel_store::StoreError::Conflict(_) => invalid(
                    "payment.reference",
                    "this payment was already recorded for another order",
                ),
                other => other.into(),
            })
    }

    /// Each item with its subscription and, for a domain, the token that
    /// proves control of it; returns the items as answered and their
    /// subscriptions (in item order).
    pub(crate) async fn insert_items(
        &self,
        tx: &mut Tx,
        items: &[CheckedItem],
    ) -> Result<(Vec<PlacedItem>, Vec<SubscriptionId>), ServiceError> {
        let mut placed_items = Vec::new();
        let mut subscriptions = Vec::new();
        for item in items {
            let new = NewOrderItem {
                id: OrderItemId::new(),
                subscription_id: SubscriptionId::new(),
                product_id: item.product_id,
                period: item.period,
                domain: item.domain.clone(),
                options: item.options.clone(),
                amount_minor: item.amount_minor,
                setup_fee_minor: item.setup_fee_minor,
            };
            let (tenant, order, now) = (self.tenant.id, self.order_id, self.now);
            tx.insert_order_item(tenant, order, self.customer.id, self.currency, &new, now)
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
                tx.insert_domain_verification(tenant, new.subscription_id, domain, &token, now)
                    .await?;
            }
            if let Some(plan) = mpanel_domain::cloudpods::PodPlan::of(&item.template) {
                let pod = crate::cloudpods::order_item::NewPod {
                    tenant,
                    customer: self.customer.id,
                    subscription: new.subscription_id,
                    domain: item.domain.as_deref(),
                    options: item.options.as_ref(),
                    plan: &plan,
                };
                crate::cloudpods::order_item::create_in(tx, pod, now).await?;
            }
            subscriptions.push(new.subscription_id);
            placed_items.push(self.placed_item(item, &new));
        }
        Ok((placed_items, subscriptions))
    }

    /// An item as answered, with the provisioning steps it queues when paid.
    fn placed_item(&self, item: &CheckedItem, new: &NewOrderItem) -> PlacedItem {
        let steps = if self.paid && item.template != ProvisioningTemplate::None {
            plan(&item.template)
                .into_iter()
                .map(|step| step.name().to_owned())
                .collect()
        } else {
            Vec::new()
        };
        PlacedItem {
            id: new.id.to_string(),
            product_id: item.product_id.to_string(),
            subscription_id: new.subscription_id.to_string(),
            period: item.period.as_str().to_owned(),
            domain: item.domain.clone(),
            amount_minor: item.amount_minor,
            setup_fee_minor: item.setup_fee_minor,
            steps,
        }
    }

    /// The order's invoice, issued now: paid at once when the site took the
    /// money, else paid later (or from the customer's credit right away).
    /// The order takes the invoice's total, tax included.
    pub(crate) async fn issue_invoice(
        &self,
        tx: &mut Tx,
        items: &[CheckedItem],
        subscriptions: &[SubscriptionId],
        total: i64,
    ) -> Result<InvoiceRecord, ServiceError> {
        let lines = invoice_lines(items, subscriptions, self.currency);
        let draft = invoices::NewDraft {
            customer: self.customer,
            currency: self.currency,
            lines: &lines,
            notes: Vec::new(),
            order_id: Some(self.order_id),
        };
        let draft = invoices::create_in(tx, self.tenant, draft, self.now).await?;
        let invoice =
            invoices::issue_in(tx, self.tenant, draft.id, &self.actor, !self.paid, self.now)
                .await?;
        if invoice.total_minor != total {
            tx.set_order_total(self.tenant.id, self.order_id, invoice.total_minor, self.now)
                .await?;
        }
        Ok(invoice)
    }

    /// Records the payment the site took against the invoice; it must be
    /// the invoice's total, tax included.
    async fn record_site_payment(
        &self,
        tx: &mut Tx,
        invoice: InvoiceRecord,
        p: &PaymentInput,
    ) -> Result<InvoiceRecord, ServiceError> {
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
            tx,
            self.tenant,
            invoice,
            payments::Received {
                provider,
                reference: Some(p.reference.trim().to_owned()),
                amount_minor: p.amount_minor,
            },
            &self.actor,
            self.now,
        )
        .await
        .map_err(|e| match e {
            ServiceError::Conflict(_) => invalid(
                "payment.reference",
                "this payment was already recorded for another order",
            ),
            other => other,
        })?;
        Ok(paid_invoice)
    }

    /// The answer: the order is paid exactly when its invoice is.
    pub(crate) fn placed(&self, invoice: &InvoiceRecord, items: Vec<PlacedItem>) -> OrderPlaced {
        OrderPlaced {
            order_id: self.order_id.to_string(),
            status: order_status(invoice).as_str().to_owned(),
            customer_id: self.customer.id.to_string(),
            currency: self.currency.code().to_owned(),
            total_minor: invoice.total_minor,
            invoice_id: invoice.id.to_string(),
            invoice_number: invoice.number.clone(),
            items,
        }
    }

    pub(crate) async fn audit(
        &self,
        tx: &mut Tx,
        placed: &OrderPlaced,
        invoice: &InvoiceRecord,
        new_customer: bool,
    ) -> Result<(), ServiceError> {
        tx.record_audit(&self.actor.audit(Change {
            tenant: self.tenant.id,
            action: "order.create",
            target_type: "order",
            target_id: self.order_id.to_string(),
            before: None,
            after: Some(json!({"status": order_status(invoice), "total_minor": invoice.total_minor, "invoice_id": invoice.id, "currency": self.currency, "customer_id": self.customer.id, "new_customer": new_customer, "items": placed.items.len()})),
            at: self.now,
        }))
        .await?;
        Ok(())
    }
}

fn order_status(invoice: &InvoiceRecord) -> OrderStatus {
    OrderStatus::from_paid(invoice.status == InvoiceStatus::Paid)
}

/// What an order's detailed view is built from: its items, their
/// provisioning steps and the proofs of domain control they wait for.
pub struct OrderRows {
    pub items: Vec<(OrderId, OrderItemRecord)>,
    pub steps: Vec<OrderStepRecord>,
    pub proofs: Vec<DomainVerification>,
}

/// The tenant's orders, newest first (staff).
pub async fn list(
    cx: &Context,
    filter: OrderFilter,
    before: Option<OrderId>,
    limit: u32,
) -> Result<Vec<OrderRecord>, ServiceError> {
    Ok(cx
        .store
        .list_orders(cx.tenant_id(), filter, before, limit)
        .await?)
}

/// One of the tenant's orders.
pub async fn get(cx: &Context, id: OrderId) -> Result<OrderRecord, ServiceError> {
    cx.store
        .order(cx.tenant_id(), id)
        .await?
        // Only a miss is a 404; an unavailable database stays a 503/500.
        .ok_or_else(ServiceError::missing("order"))
}

/// The signed-in customer's orders, newest first; `None` for a user who
/// is not a customer.
pub async fn mine(
    cx: &Context,
    before: Option<OrderId>,
    limit: u32,
) -> Result<Option<Vec<OrderRecord>>, ServiceError> {
    let Some(customer) = crate::customers::own(cx).await? else {
        return Ok(None);
    };
    Ok(Some(
        cx.store
            .list_orders(
                cx.tenant_id(),
                OrderFilter {
                    customer: Some(customer),
                    status: None,
                },
                before,
                limit,
            )
            .await?,
    ))
}

/// The rows of `orders`' detailed views, in three queries whatever their
/// number.
pub async fn rows_of(cx: &Context, orders: &[OrderRecord]) -> Result<OrderRows, ServiceError> {
    let tenant = cx.tenant_id();
    let ids: Vec<OrderId> = orders.iter().map(|o| o.id).collect();
    let items = cx.store.order_items_of(tenant, &ids).await?;
    let steps = cx.store.order_steps_of(tenant, &ids).await?;
    let subscriptions: Vec<SubscriptionId> = items.iter().map(|(_, i)| i.subscription_id).collect();
    let proofs = cx
        .store
        .domain_verifications_of(tenant, &subscriptions)
        .await?;
    Ok(OrderRows {
        items,
        steps,
        proofs,
    })
}
