//! A tenant's due subscriptions billed chunk after chunk, each in its own
//! transaction, by one lane (SQLite: one writer) or two (PostgreSQL: one is
//! read and priced while the other is written) sharing a cursor. A failed
//! chunk rolls back at once and its lane goes on.

use mpanel_domain::SubscriptionId;
use mpanel_store::billing::DueSubscription;
use mpanel_store::{Engine, Store, Tx};
use time::OffsetDateTime;

use super::run::{RunContext, RunReport, RunScope, bill_chunk, finish};
use crate::ServiceError;

/// The tenant's due subscriptions billed, chunk after chunk.
pub(super) async fn bill_tenant(
    store: &Store,
    ctx: &RunContext<'_>,
    scope: &RunScope,
    progress: &(dyn Fn(usize) + Sync),
    report: &mut RunReport,
) -> Result<(), ServiceError> {
    let cursor = tokio::sync::Mutex::new(Cursor::default());
    let lane = || bill_lane(store, ctx, &cursor, scope.chunk, progress);
    let lanes = match store.engine() {
        // Two chunks at once: one is read and priced while the other is
        // written, so mPanel and the database each keep a core busy (one
        // at a time, each waited for the other about half the run).
        Engine::Postgres => {
            let (a, b) = tokio::join!(lane(), lane());
            vec![a, b]
        }
        // One writer: a second transaction would only wait for the first.
        Engine::Sqlite => vec![lane().await],
    };
    let mut outcome = Ok(());
    for (done, result) in lanes {
        report.add(done);
        match (&outcome, result) {
            (Ok(()), failed) => outcome = failed,
            (Err(_), Err(e)) => {
                tracing::error!(tenant = %ctx.tenant.slug, error = %e, "the other billing lane failed too");
            }
            (Err(_), Ok(())) => {}
        }
    }
    outcome
}

/// Where the run has got to: the last subscription handed to a chunk (by
/// the due subscriptions' order), or the end.
#[derive(Default)]
struct Cursor {
    after: Option<(OffsetDateTime, SubscriptionId)>,
    done: bool,
}

/// Bills chunk after chunk, each in its own transaction, taking the next
/// chunk from `cursor` until no subscription is due; several lanes share
/// one cursor, so each chunk goes to one lane. A chunk that fails is rolled
/// back (its subscriptions wait for the next run) and the lane goes on
/// with the next, unless the one before failed too, or the chunk could not
/// even be read (the database is away). Answers what the committed chunks
/// billed, and the first failure.
async fn bill_lane(
    store: &Store,
    ctx: &RunContext<'_>,
    cursor: &tokio::sync::Mutex<Cursor>,
    chunk: u32,
    progress: &(dyn Fn(usize) + Sync),
) -> (RunReport, Result<(), ServiceError>) {
    let mut report = RunReport::default();
    let mut first_failure = None;
    let mut failed_last = false;
    loop {
        match bill_next_chunk(store, ctx, cursor, chunk).await {
            Ok(Chunk::Billed(done, n)) => {
                report.add(done);
                progress(n);
                failed_last = false;
            }
            Ok(Chunk::Failed(e, n)) if !failed_last => {
                tracing::error!(tenant = %ctx.tenant.slug, error = %e,
                    "a billing chunk failed: its subscriptions wait for the next run");
                progress(n);
                failed_last = true;
                first_failure.get_or_insert(e);
            }
            Ok(Chunk::None) => break,
            Ok(Chunk::Failed(e, _)) | Err(e) => {
                if first_failure.is_some() {
                    tracing::error!(tenant = %ctx.tenant.slug, error = %e,
                        "billing failed again: the lane stops");
                }
                first_failure.get_or_insert(e);
                break;
            }
        }
    }
    (report, first_failure.map_or(Ok(()), Err))
}

/// What became of a lane's next chunk.
enum Chunk {
    /// Committed: what it billed, and how many subscriptions it took.
    Billed(RunReport, usize),
    /// Rolled back, and how many subscriptions it took; the cursor is
    /// past them.
    Failed(ServiceError, usize),
    /// No subscription is left.
    None,
}

/// The next chunk billed and committed. `Err`: it could not be read (or
/// committed); the cursor may not have moved.
async fn bill_next_chunk(
    store: &Store,
    ctx: &RunContext<'_>,
    cursor: &tokio::sync::Mutex<Cursor>,
    chunk: u32,
) -> Result<Chunk, ServiceError> {
    let mut tx = store.begin().await?;
    let due = match next_due(&mut tx, ctx, cursor, chunk).await {
        Ok(due) => due,
        Err(e) => {
            roll_back(tx, ctx).await;
            return Err(e);
        }
    };
    let n = due.len();
    if n == 0 {
        tx.rollback().await?;
        return Ok(Chunk::None);
    }
    let mut done = RunReport::default();
    if let Err(e) = bill_chunk(&mut tx, ctx, due, &mut done).await {
        roll_back(tx, ctx).await;
        return Ok(Chunk::Failed(e, n));
    }
    finish(tx, ctx.dry_run).await?;
    Ok(Chunk::Billed(done, n))
}

/// A failed chunk's transaction rolled back at once, not when its
/// connection goes back to the pool: the tenant's dunning runs next, and
/// the other lane reads on, and either may need its rows.
async fn roll_back(tx: Tx, ctx: &RunContext<'_>) {
    if let Err(e) = tx.rollback().await {
        tracing::warn!(tenant = %ctx.tenant.slug, error = %e, "rolling a failed chunk back failed");
    }
}

/// The next chunk's due subscriptions, the cursor moved past them (none:
/// the cursor is done).
async fn next_due(
    tx: &mut Tx,
    ctx: &RunContext<'_>,
    cursor: &tokio::sync::Mutex<Cursor>,
    chunk: u32,
) -> Result<Vec<DueSubscription>, ServiceError> {
    let mut cursor = cursor.lock().await;
    if cursor.done {
        return Ok(Vec::new());
    }
    let due = tx
        .due_subscriptions(ctx.tenant.id, ctx.at, cursor.after, chunk)
        .await?;
    match due.last() {
        Some(last) => cursor.after = last.sub.next_bill_at.map(|at| (at, last.sub.id)),
        None => cursor.done = true,
    }
    Ok(due)
}
