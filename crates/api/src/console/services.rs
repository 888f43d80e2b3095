//! A customer's start page: their sites (state, disk use, name servers),
//! mailboxes, and what they owe.

use axum::response::Response;
use mpanel_domain::dns::RecordType;
use mpanel_provision::records;
use mpanel_services::billing::invoices::{self, InvoiceView};
use mpanel_services::customers;
use mpanel_services::hosting::{self, AccountView, HostingAccountView};
use mpanel_store::billing::InvoiceFilter;
use mpanel_store::provisioning::ResourceKind;
use serde::Serialize;

use super::session::Viewer;
use super::view::{PageError, page};

#[derive(Serialize)]
struct Service {
    account: HostingAccountView,
    name_servers: Vec<String>,
    mailboxes: Vec<AccountView>,
}

#[derive(Serialize)]
struct ServicesPage {
    services: Vec<Service>,
    open_invoices: Vec<InvoiceView>,
    may_mailboxes: bool,
    notice: Option<super::Notice>,
}

pub async fn home(viewer: Viewer, done: super::Done) -> Result<Response, PageError> {
    let may_mailboxes = viewer.may(mpanel_domain::identity::Permission::MailboxesWrite);
    let Some(own) = customers::own(&viewer).await? else {
        let empty = ServicesPage {
            services: Vec::new(),
            open_invoices: Vec::new(),
            may_mailboxes,
            notice: done.notice(),
        };
        return page(&viewer, "/", "Your services", "home_customer.html", empty);
    };
    let accounts = hosting::mine(&viewer).await?;
    let mailboxes = hosting::list(&viewer, ResourceKind::MailAccount, Some(own)).await?;
    let secrets = viewer.cx.store.secrets().cloned();
    // Each zone's name servers, asked for side by side, each for at most
    // two seconds (a server that does not answer shows none).
    let asked = accounts.iter().map(|a| {
        let (viewer, secrets) = (&viewer, secrets.as_ref());
        let domain = a.account.name.clone();
        async move {
            let listed = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                records::list(viewer, secrets, &domain),
            )
            .await;
            match listed {
                Ok(Ok(sets)) => sets
                    .into_iter()
                    .filter(|s| s.rtype == RecordType::NS && s.name.trim_end_matches('.') == domain)
                    .flat_map(|s| s.records)
                    .collect(),
                _ => Vec::new(),
            }
        }
    });
    let name_servers: Vec<Vec<String>> = futures_util::future::join_all(asked).await;
    let mut services = Vec::with_capacity(accounts.len());
    for (account, name_servers) in accounts.into_iter().zip(name_servers) {
        let domain = account.account.name.clone();
        let suffix = format!("@{domain}");
        services.push(Service {
            mailboxes: mailboxes
                .iter()
                .filter(|m| m.name.ends_with(&suffix) && m.status != "DELETED")
                .cloned()
                .collect(),
            name_servers,
            account,
        });
    }
    let now = viewer.now();
    let filter = InvoiceFilter {
        customer: Some(own),
        issued_only: true,
        limit: 20,
        ..InvoiceFilter::default()
    };
    let open_invoices = invoices::list(&viewer, &filter)
        .await?
        .into_iter()
        .map(|i| invoices::view(i, None, now))
        .filter(|i| i.amount_due_minor > 0 && i.status != "VOID")
        .collect();
    let data = ServicesPage {
        services,
        open_invoices,
        may_mailboxes,
        notice: done.notice(),
    };
    page(&viewer, "/", "Your services", "home_customer.html", data)
}
