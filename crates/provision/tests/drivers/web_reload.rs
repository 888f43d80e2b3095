//! nginx's reload takes effect a moment after `nginx -s reload` returns;
//! the driver returns only once it has, so what a driver call changed is
//! what the very next request gets (a certificate authority checking a
//! new site's challenge at once, a customer told the site is ready).

use mpanel_provision::Ensured;

use crate::web::{fresh_domain, get, node, php_spec};

#[tokio::test]
async fn web_each_change_is_served_when_the_driver_returns() {
    let web = node();
    let domain = fresh_domain("served");
    let site = php_spec(&domain);
    for round in 0..3 {
        assert_eq!(web.ensure_site(&site).await.unwrap(), Ensured::Created);
        let (status, body) = get(&domain).await;
        assert_eq!(status, 200, "round {round}, made: {body}");
        assert!(body.contains(&domain), "round {round}: {body}");

        assert_eq!(web.suspend(&domain).await.unwrap(), Ensured::Created);
        let (status, body) = get(&domain).await;
        assert_eq!(status, 503, "round {round}, suspended: {body}");
        assert_eq!(web.unsuspend(&domain).await.unwrap(), Ensured::Created);
        assert_eq!(get(&domain).await.0, 200, "round {round}, unsuspended");

        web.terminate(&domain, &site.user).await.unwrap();
        let (status, body) = get(&domain).await;
        assert!(
            status != 200 || !body.contains(&domain),
            "round {round}, terminated: {status} {body}"
        );
    }
}

/// Sites made at once share nginx's reloads; each is served when its own
/// call returns, not only when the last one does.
#[tokio::test]
async fn web_sites_made_at_once_are_each_served_when_their_call_returns() {
    let web = node();
    let sites: Vec<_> = (0..4)
        .map(|i| php_spec(&fresh_domain(&format!("together{i}"))))
        .collect();
    let made = sites.iter().map(|site| async {
        assert_eq!(web.ensure_site(site).await.unwrap(), Ensured::Created);
        let (status, body) = get(&site.domain).await;
        (site.domain.clone(), status, body)
    });
    for (domain, status, body) in futures_util::future::join_all(made).await {
        assert_eq!(status, 200, "{domain}: {body}");
        assert!(body.contains(&domain), "{domain}: {body}");
    }
    for site in &sites {
        web.terminate(&site.domain, &site.user).await.unwrap();
    }
}
