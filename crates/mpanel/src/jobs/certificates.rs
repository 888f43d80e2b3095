//! The job handlers of sites' certificates (`tls.issue`, `tls.install`,
//! `tls.renew`; see `mpanel_provision::certificates`).

use mpanel_jobs::Registry;

/// Sites' certificates: issue (and renew), install an upload, and the
/// daily look for renewals due.
pub(super) fn register_certificates(
    registry: &mut Registry,
    provisioner: &mpanel_provision::saga::Provisioner,
) {
    use mpanel_domain::tls::{InstallCertificate, IssueCertificate, RenewDue};
    let p = provisioner.clone();
    registry.handle(move |_ctx, job: IssueCertificate| {
        let p = p.clone();
        async move { Ok(p.issue_certificate(&job).await?) }
    });
    let p = provisioner.clone();
    registry.handle(move |_ctx, job: InstallCertificate| {
        let p = p.clone();
        async move { Ok(p.install_uploaded(&job).await?) }
    });
    let p = provisioner.clone();
    registry.handle(move |_ctx, _: RenewDue| {
        let p = p.clone();
        async move {
            let queued = p.queue_renewals().await?;
            if queued > 0 {
                tracing::info!(queued, "certificate renewals queued");
            }
            Ok(())
        }
    });
}
