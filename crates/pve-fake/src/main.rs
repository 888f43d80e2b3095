//! `mpanel-pve-fake`: serves the fake Proxmox VE API on loopback until
//! killed, after printing one JSON line: url, fingerprint, token_id,
//! token_secret.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use mpanel_pve_fake::{Config, NodeSpec, serve};

#[derive(Parser)]
#[command(about = "A fake Proxmox VE API server (HTTPS on 127.0.0.1) for tests")]
struct Args {
    /// TCP port; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Node names (each 32 GiB RAM, 16 cores, 1 TiB disk).
    #[arg(long, value_delimiter = ',', default_value = "pve1,pve2")]
    nodes: Vec<String>,
    /// Template names each node starts with (VMIDs 9000+100·node+i).
    #[arg(long, value_delimiter = ',', default_value = "debian-12,ubuntu-24.04")]
    templates: Vec<String>,
    /// How long a task (clone, backup, start, …) runs.
    #[arg(long, default_value_t = 300)]
    task_ms: u64,
    /// A clone instead runs a uniformly random time in this range, in ms:
    /// `MIN-MAX` (e.g. `2000-5000`).
    #[arg(long, value_parser = parse_range_ms)]
    clone_ms: Option<(u64, u64)>,
    /// Append each ended task's type, id and start and end times (ms since
    /// the epoch) here, one JSON line per task.
    #[arg(long)]
    task_log: Option<PathBuf>,
    /// How long a 401 is held back (PVE: 3 s).
    #[arg(long, default_value_t = 3000)]
    auth_delay_ms: u64,
    /// Write the state dump (as GET /__fake/state) here on SIGINT/SIGTERM.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Write the certificate (PEM) here, for clients that trust it.
    #[arg(long)]
    cert_pem: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config {
        port: args.port,
        nodes: args.nodes.iter().map(|n| NodeSpec::standard(n)).collect(),
        templates: args.templates,
        task_duration: Duration::from_millis(args.task_ms),
        clone_duration: args
            .clone_ms
            .map(|(low, high)| (Duration::from_millis(low), Duration::from_millis(high))),
        task_log: args.task_log,
        auth_delay: Duration::from_millis(args.auth_delay_ms),
    };
    let running = serve(config).await?;
    if let Some(path) = &args.cert_pem {
        std::fs::write(path, &running.cert_pem)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", running.startup_line())?;
    out.flush()?;
    drop(out);
    wait_for_signal().await?;
    if let Some(path) = &args.state {
        std::fs::write(path, serde_json::to_vec_pretty(&running.state())?)?;
    }
    Ok(())
}

/// `MIN-MAX` in ms, MIN <= MAX.
fn parse_range_ms(s: &str) -> Result<(u64, u64), String> {
    let (low, high) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not MIN-MAX"))?;
    let ms = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|e| format!("{v:?} is not a number of ms: {e}"))
    };
    let (low, high) = (ms(low)?, ms(high)?);
    if low > high {
        return Err(format!("{low} is more than {high}"));
    }
    Ok((low, high))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
