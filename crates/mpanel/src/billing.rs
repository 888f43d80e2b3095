//! `mpanel billing run`: the billing run on demand (the scheduler runs it
//! daily per tenant): renewals, usage, end-of-term cancellations, dunning.
//! Prints the report as JSON; draws a progress bar on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use mpanel_services::billing::run;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::BillingRunArgs;
use crate::config::Config;
use crate::serve::open_store;

/// `--as-of`: an RFC 3339 instant, or a date meaning the end of that day
/// (UTC).
pub fn parse_as_of(raw: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(at.to_offset(time::UtcOffset::UTC));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(raw, &format).map_err(|_| {
        anyhow::anyhow!("invalid --as-of {raw:?}: write a date (2027-01-31) or an RFC 3339 time")
    })?;
    Ok(date.with_hms(23, 59, 59)?.assume_utc())
}

pub async fn run_cmd(config: Config, args: BillingRunArgs) -> anyhow::Result<()> {
    let as_of = match &args.as_of {
        Some(raw) => parse_as_of(raw)?,
        None => OffsetDateTime::now_utc(),
    };
    let store = open_store(&config).await?;
    let result = async {
        let tenant = match &args.tenant {
            Some(slug) => Some(
                store
                    .tenant_by_slug(slug)
                    .await?
                    .ok_or_else(|| {
                        anyhow::anyhow!("invalid --tenant: no tenant with slug {slug:?}")
                    })?
                    .id,
            ),
            None => None,
        };
        let bar = std::io::stderr().is_terminal().then(|| ProgressBar::new(0));
        if let Some(bar) = &bar {
            bar.total.store(
                run::count_due(&store, tenant, as_of).await?,
                Ordering::Relaxed,
            );
            bar.draw();
        }
        let progress = |n: usize| {
            if let Some(bar) = &bar {
                bar.done.fetch_add(n as u64, Ordering::Relaxed);
                bar.draw();
            }
        };
        let scope = run::RunScope {
            dry_run: args.dry_run,
            ..run::RunScope::new(tenant, as_of)
        };
        let report = run::run(&store, &mpanel_domain::SystemClock, &scope, &progress).await?;
        if bar.is_some() {
            eprintln!();
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
        if !report.failed.is_empty() {
            anyhow::bail!(
                "the billing run of {} tenant(s) failed (listed under \"failed\"); the others were billed",
                report.failed.len()
            );
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

/// `[#####.....] 5000/10000 subscriptions` on one line of stderr.
struct ProgressBar {
    total: AtomicU64,
    done: AtomicU64,
}

impl ProgressBar {
    fn new(total: u64) -> Self {
        Self {
            total: AtomicU64::new(total),
            done: AtomicU64::new(0),
        }
    }

    fn draw(&self) {
        let (done, total) = (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        );
        let width = 40u64;
        let filled = (done.min(total) * width)
            .checked_div(total)
            .unwrap_or(width);
        let bar: String = (0..width)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r[{bar}] {done}/{total} subscriptions");
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_takes_a_date_or_an_instant() {
        assert_eq!(
            parse_as_of("2027-01-31").unwrap(),
            time::macros::datetime!(2027-01-31 23:59:59 UTC)
        );
        assert_eq!(
            parse_as_of("2027-01-31T10:00:00+01:00").unwrap(),
            time::macros::datetime!(2027-01-31 09:00:00 UTC)
        );
        assert!(parse_as_of("31/01/2027").is_err());
    }
}
