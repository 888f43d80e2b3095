//! Benchmark of mPanel's job queue, printing one JSON line per measurement.
//!
//! `bench-queue --db URL --mode backlog --n 100000 --rounds 3`: N no-op jobs
//! enqueued first, then drained (claim + run + complete) by one worker
//! pool; each round prunes the last round's completed jobs first, so the
//! rounds show whether throughput holds as the table ages.
//!
//! `bench-queue --db URL --mode live --clients 16 --per-client 500
//! --interval-ms 20`: the pool runs while 16 clients each enqueue one job
//! per transaction; pickup latency is commit returned → handler started.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use mpanel_domain::jobs::JobState;
use mpanel_domain::{Clock, SystemClock};
use mpanel_jobs::{JobOptions, PoolConfig, Registry, WorkerPool};
use mpanel_store::jobs::NewJob;
use mpanel_store::{PoolSettings, Store};
use serde_json::json;
use tokio::sync::{Mutex, oneshot};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    db: String,
    #[arg(long, default_value = "backlog")]
    mode: String,
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 500)]
    per_client: usize,
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value_t = 500)]
    batch: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Every connection kept open, as `mpanel serve` and `mpanel worker` do.
        let settings = PoolSettings {
            max_connections: u32::try_from(args.clients + 8).unwrap_or(32),
            keep_open: true,
            ..PoolSettings::default()
        };
        let store = Store::connect(&args.db, &settings)
            .await
            .context("connect")?;
        store.migrate().await?;
        raw_sql(&args.db, "DELETE FROM jobs").await?;
        match args.mode.as_str() {
            "backlog" => {
                for round in 1..=args.rounds {
                    backlog(&store, &args, round).await?;
                }
                Ok(())
            }
            "live" => live(&store, &args).await,
            other => bail!("unknown mode {other}"),
        }
    })
}

fn pool_config(args: &Args) -> PoolConfig {
    PoolConfig {
        concurrency: args.concurrency,
        batch_size: args.batch,
        poll_interval: Duration::from_millis(500),
        ..PoolConfig::default()
    }
}

/// Starts a pool; the returned sender stops it.
fn start_pool(
    store: &Store,
    args: &Args,
    registry: Registry,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), mpanel_store::StoreError>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let pool = WorkerPool::new(
        store.clone(),
        Arc::new(SystemClock),
        registry,
        pool_config(args),
    );
    let task = tokio::spawn(pool.run(async move {
        let _ = rx.await;
    }));
    (tx, task)
}

async fn completed(store: &Store) -> anyhow::Result<i64> {
    Ok(store.count_jobs(JobState::Completed).await?)
}

async fn backlog(store: &Store, args: &Args, round: usize) -> anyhow::Result<()> {
    // What housekeeping does: finished jobs go, the table stays small.
    store
        .prune_jobs(
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            u32::MAX,
        )
        .await?;
    let now = SystemClock.now();
    let jobs: Vec<NewJob> = (0..args.n)
        .map(|i| NewJob {
            queue: "default".into(),
            kind: "noop".into(),
            payload: json!({"i": i}),
            priority: 0,
            run_at: now,
            max_attempts: 5,
            unique_key: None,
        })
        .collect();
    store.enqueue_many(&jobs, now).await?;
    // As the graphile-worker harness does: statistics as a long-running
    // database's autovacuum would have them.
    if store.engine() == mpanel_store::Engine::Postgres {
        raw_sql(&args.db, "ANALYZE jobs").await?;
    }

    let ran = Arc::new(AtomicUsize::new(0));
    let (all_ran_tx, all_ran_rx) = oneshot::channel::<()>();
    let all_ran = Arc::new(Mutex::new(Some(all_ran_tx)));
    let mut registry = Registry::new();
    {
        let (ran, all_ran, n) = (ran.clone(), all_ran.clone(), args.n);
        registry.register("noop", move |_ctx, _: serde_json::Value| {
            let (ran, all_ran) = (ran.clone(), all_ran.clone());
            async move {
                if ran.fetch_add(1, Ordering::SeqCst) + 1 == n
                    && let Some(tx) = all_ran.lock().await.take()
                {
                    let _ = tx.send(());
                }
                Ok(())
            }
        });
    }
    let started = Instant::now();
    let (stop, task) = start_pool(store, args, registry);
    let target = i64::try_from(args.n)?;
    // Every job has run; the clock stops when the last completion is stored.
    tokio::time::timeout(Duration::from_secs(600), all_ran_rx).await??;
    while completed(store).await? < target {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await??;
    println!(
        "{}",
        json!({
            "system": "mpanel", "engine": store.engine().as_str(), "mode": "backlog", "round": round,
            "n": args.n, "concurrency": args.concurrency, "batch": args.batch,
            "seconds": round3(seconds), "jobs_per_sec": (args.n as f64 / seconds).round(),
        })
    );
    Ok(())
}

async fn live(store: &Store, args: &Args) -> anyhow::Result<()> {
    let total = args.clients * args.per_client;
    let origin = Instant::now();
    let committed: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new(
        (0..total)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
    );
    let picked: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new(
        (0..total)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Mutex::new(None::<oneshot::Sender<()>>));
    let (all_done_tx, all_done_rx) = oneshot::channel();
    *done.lock().await = Some(all_done_tx);

    let mut registry = Registry::new();
    {
        let picked = picked.clone();
        let ran = ran.clone();
        let done = done.clone();
        registry.register("live", move |_ctx, p: serde_json::Value| {
            let picked = picked.clone();
            let ran = ran.clone();
            let done = done.clone();
            async move {
                let at = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
                let seq = p["seq"].as_u64().unwrap_or(0) as usize;
                if let Some(slot) = picked.get(seq) {
                    slot.store(at, Ordering::SeqCst);
                }
                if ran.fetch_add(1, Ordering::SeqCst) + 1 == total
                    && let Some(tx) = done.lock().await.take()
                {
                    let _ = tx.send(());
                }
                Ok(())
            }
        });
    }
    let (stop, task) = start_pool(store, args, registry);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .map(|c| {
            let store = store.clone();
            let committed = committed.clone();
            let per_client = args.per_client;
            let interval = Duration::from_millis(args.interval_ms);
            tokio::spawn(async move {
                for i in 0..per_client {
                    let seq = c * per_client + i;
                    let mut tx = store.begin().await?;
                    mpanel_jobs::enqueue(
                        &mut tx,
                        "live",
                        &json!({"seq": seq}),
                        &JobOptions::default(),
                        SystemClock.now(),
                    )
                    .await?;
                    tx.commit().await?;
                    committed[seq].store(
                        u64::try_from(origin.elapsed().as_micros()).unwrap_or(0),
                        Ordering::SeqCst,
                    );
                    if !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for c in clients {
        c.await??;
    }
    tokio::time::timeout(Duration::from_secs(300), all_done_rx).await??;
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await??;

    let mut latencies: Vec<f64> = (0..total)
        .map(|i| {
            let c = committed[i].load(Ordering::SeqCst) as f64;
            let p = picked[i].load(Ordering::SeqCst) as f64;
            // A handler can start before its client stores the commit time.
            ((p - c) / 1000.0).max(0.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{}",
        json!({
            "system": "mpanel", "engine": store.engine().as_str(), "mode": "live",
            "clients": args.clients, "jobs": total, "interval_ms": args.interval_ms,
            "concurrency": args.concurrency, "batch": args.batch,
            "seconds": round3(seconds), "jobs_per_sec": (total as f64 / seconds).round(),
            "pickup_p50_ms": round3(pct(0.50)), "pickup_p99_ms": round3(pct(0.99)),
        })
    );
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs one statement of the benchmark's own (emptying the queue,
/// gathering statistics) on a connection of its own: the store offers no
/// such thing outside its test builds, and the benchmark links the store
/// as `mpanel` does.
async fn raw_sql(url: &str, sql: &'static str) -> anyhow::Result<()> {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await?;
        conn.close().await?;
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await?;
        conn.close().await?;
    }
    Ok(())
}
