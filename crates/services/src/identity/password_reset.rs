//! "Forgot my password": a request answers the same, in about the same
//! time, whether or not the account exists. It only queues the
//! `identity.password_reset` job (throttled per client and per address);
//! the job finds the account and, when there is one that may sign in,
//! sends it a reset link. The link itself is honoured by
//! [`super::account_links::set_password`].

use mpanel_domain::Clock;
use mpanel_domain::TenantStatus;
use mpanel_domain::identity::account_link::{
    LinkPurpose, PasswordResetRequest, RESET_PER_ADDRESS, RESET_PER_CLIENT,
};
use mpanel_domain::identity::throttle::client_group;
use mpanel_jobs::{JobOptions, enqueue_job};
use mpanel_store::identity::security_events::SecurityEvent;
use mpanel_store::{Store, UserStatus};

use super::throttle;
use crate::ServiceError;

/// Queues a reset for whoever `input` names. Too many requests from one
/// client are refused (429: that says nothing about any account); too
/// many for one address are dropped quietly, so a stranger cannot fill
/// someone's mailbox.
pub async fn request(
    store: &Store,
    clock: &dyn Clock,
    input: &PasswordResetRequest,
) -> Result<(), ServiceError> {
    // The shape only (the same for every address): what the API documents.
    if input.tenant.chars().count() > 100 {
        return Err(ServiceError::invalid(
            "tenant",
            "must be at most 100 characters long",
        ));
    }
    if input.email.chars().count() > 254 {
        return Err(ServiceError::invalid(
            "email",
            "must be at most 254 characters long",
        ));
    }
    let now = clock.now();
    if let Some(ip) = &input.ip {
        let key = format!("reset-client:{}", client_group(ip));
        throttle::begin(store, key, RESET_PER_CLIENT, now).await?;
    }
    let address = input.email.trim().to_lowercase();
    let key = format!("reset-address:{}:{address}", input.tenant.trim());
    match throttle::begin(store, key, RESET_PER_ADDRESS, now).await {
        Ok(_) => {}
        // Quiet: the answer stays the same.
        Err(ServiceError::Throttled { .. }) => return Ok(()),
        Err(other) => return Err(other),
    }
    let mut tx = store.begin().await?;
    let options = JobOptions {
        queue: "notify".into(),
        max_attempts: 5,
        ..JobOptions::default()
    };
    enqueue_job(&mut tx, input, &options, now).await?;
    tx.commit().await?;
    Ok(())
}

/// The job: sends the reset link when the tenant and an account that may
/// sign in exist (active, or invited and never set up); otherwise nothing.
pub async fn send(
    store: &Store,
    clock: &dyn Clock,
    job: &PasswordResetRequest,
) -> Result<(), ServiceError> {
    let Some(tenant) = store.tenant_by_slug(job.tenant.trim()).await? else {
        return Ok(());
    };
    if tenant.status == TenantStatus::Suspended {
        return Ok(());
    }
    let Some(user) = store.user_by_email(tenant.id, job.email.trim()).await? else {
        return Ok(());
    };
    if user.status == UserStatus::Disabled {
        return Ok(());
    }
    let now = clock.now();
    let mut tx = store.begin().await?;
    super::account_links::send_in(&mut tx, &tenant, &user, LinkPurpose::PasswordReset, now).await?;
    tx.record_security_event(&SecurityEvent {
        tenant_id: Some(tenant.id),
        user_id: Some(user.id),
        kind: "PASSWORD_RESET_REQUESTED",
        ip: job.ip.clone(),
        detail: None,
        at: now,
    })
    .await?;
    tx.commit().await?;
    Ok(())
}
