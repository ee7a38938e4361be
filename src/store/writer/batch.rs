//! The batch loop: the writer thread takes every queued job (up to a cap), runs them in
//! one transaction, commits once and answers every waiter.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use super::emitted::{CommitSink, Committed, EventHook};
use super::health::{WriterStats, behind_signal};
use super::job::{Cmd, Job};
use super::ledger::{self, Ledger};
use super::pg;
use super::savepoint::guarded;
use crate::ids::AgentId;
use crate::store::files::FileWatch;
use crate::store::{Conn, StoreError};

/// The writer thread: blocks for the first job, takes every job already queued (up to
/// `batch_max`) and commits them as one batch, until the channel closes. Answers the
/// close request it received, if any.
pub(super) fn run(
    conn: &mut Conn,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    batch_max: usize,
    ledger: &mut Ledger,
    stats: &WriterStats,
    hook: &dyn EventHook,
    sink: &CommitSink,
) -> Option<oneshot::Sender<()>> {
    let mut closing: Option<oneshot::Sender<()>> = None;
    loop {
        // After a close request the channel is closed, so this drains what was queued
        // before it and then ends.
        let first = match rx.blocking_recv() {
            Some(Cmd::Job(job)) => job,
            Some(Cmd::Close(done)) => {
                rx.close();
                closing.get_or_insert(done);
                continue;
            }
            None => break,
        };
        let mut jobs = vec![first];
        while jobs.len() < batch_max {
            match rx.try_recv() {
                Ok(Cmd::Job(job)) => jobs.push(job),
                Ok(Cmd::Close(done)) => {
                    rx.close();
                    closing.get_or_insert(done);
                }
                Err(_) => break,
            }
        }
        let before = stats.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
        behind_signal(stats, before.saturating_sub(jobs.len()));
        if let Some(reason) = &ledger.gone {
            for job in jobs {
                job.refuse(StoreError::DatabaseGone(reason.clone()));
            }
            continue;
        }
        // Writes left unrun by a broken batch go into a batch of their own.
        while !jobs.is_empty() {
            if let Some(link) = ledger.reconnect.as_mut()
                && let Err(reason) = link.ready(conn)
            {
                refuse_unconnected(jobs, &reason, stats);
                break;
            }
            jobs = commit_batch(conn, jobs, ledger, stats, hook, sink);
        }
    }
    // Leave the counts complete, so a clean start has nothing to add to them.
    if let Some(upto) = ledger.uncounted().filter(|_| ledger.gone.is_none()) {
        let agents = ledger.uncounted_agents.as_ref();
        match conn.transaction(|c| ledger::count_events(c, upto, agents)) {
            Ok(()) => ledger.counted_upto = upto,
            Err(e) => {
                tracing::warn!(error = %e, "could not count the last events into their agents; readers still add them")
            }
        }
    }
    closing
}

/// Why a batch's transaction ended without committing.
enum Abort {
    /// A repeatable write failed in a batch run without savepoints: run it again with them.
    Retry,
    /// Counting events into their agents left the transaction in an unknown state: run
    /// the batch again without counting.
    CountFailed,
    /// A write broke the transaction's state, or the database failed.
    Failed(diesel::result::Error),
    /// The database file was deleted or replaced: nothing may commit any more.
    Gone(String),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Abort {
        Abort::Failed(e)
    }
}

/// A store error met by the batch's own steps, as the batch's failure.
fn store_failed(e: StoreError) -> Abort {
    Abort::Failed(diesel::result::Error::QueryBuilderError(
        e.to_string().into(),
    ))
}

/// What one run of a batch's transaction left.
struct Attempt {
    outcome: Result<(), Abort>,
    /// Jobs run, up to and including one that broke the transaction.
    ran: usize,
    /// The events of the jobs that succeeded.
    committed: Vec<Committed>,
    /// The SQLite id reservation this run moved ahead to, if it did.
    reserved: Option<i64>,
    /// Whether the agents' counts were brought up to the batch's mark.
    counted: bool,
}

/// Runs `jobs` in one transaction, commits, answers every waiter, reports the events.
/// Returns the jobs it did not run: those after a write that broke the batch.
pub(super) fn commit_batch(
    conn: &mut Conn,
    mut jobs: Vec<Job>,
    ledger: &mut Ledger,
    stats: &WriterStats,
    hook: &dyn EventHook,
    sink: &CommitSink,
) -> Vec<Job> {
    let started = Instant::now();
    let mut isolated = !jobs.iter().all(|j| j.repeatable());
    // Counted first, so the mark is below every event this batch inserts.
    let mut count_upto = ledger.count_due();
    let (outcome, ran, committed) = loop {
        let tried = attempt(conn, &mut jobs, ledger, stats, hook, isolated, count_upto);
        match tried.outcome {
            Err(Abort::Retry) => {
                crate::ops::metrics::writer_retry();
                isolated = true;
            }
            Err(Abort::CountFailed) => {
                tracing::warn!(
                    "counting events into their agents failed; the batch runs again without it, and the count a second later"
                );
                count_upto = None;
                ledger.counted_at = Instant::now();
            }
            Err(Abort::Failed(e)) => break (Err(e), tried.ran, tried.committed),
            Err(Abort::Gone(reason)) => {
                refuse_gone(jobs, reason, ledger, stats);
                return Vec::new();
            }
            Ok(()) => {
                let counted = count_upto.filter(|_| tried.counted);
                ledger.note_committed(counted, &tried.committed);
                settle_ledger(ledger, stats, tried.reserved, count_upto.is_some());
                break (Ok(()), tried.ran, tried.committed);
            }
        }
    };
    if let Err(error) = &outcome
        && let Some(link) = ledger.reconnect.as_mut()
        && pg::connection_lost(conn)
    {
        let reason = link.lose(&error.to_string());
        return refuse_lost(jobs, ran, &reason, stats);
    }
    if ran == 0
        && let Err(error) = &outcome
    {
        answer_unbegun(conn, jobs, error, stats);
        return Vec::new();
    }
    let rest = jobs.split_off(ran);
    finish(jobs, outcome, committed, started, stats, sink);
    rest
}

/// One run of the batch's transaction: the agents' counts when `count_upto` says so,
/// every job (each in a savepoint when `isolated`), then what must happen last before
/// the commit.
fn attempt(
    conn: &mut Conn,
    jobs: &mut [Job],
    ledger: &mut Ledger,
    stats: &WriterStats,
    hook: &dyn EventHook,
    isolated: bool,
    count_upto: Option<i64>,
) -> Attempt {
    let mut committed = Vec::new();
    let mut ran = 0;
    let mut reserved = None;
    let mut counted = false;
    let next_id = &mut ledger.next_id;
    let reserved_before = ledger.reserved;
    let watch = &mut ledger.watch;
    let agents = ledger.uncounted_agents.as_ref();
    let outcome = conn.transaction::<(), Abort, _>(|c| {
        if let Some(upto) = count_upto {
            counted = count_events(c, upto, agents)?;
        }
        let mut broken = false;
        for job in jobs.iter_mut() {
            let ok = job.run(c, &mut committed, hook, next_id, isolated, &mut broken);
            ran += 1;
            if broken {
                return Err(Abort::Failed(diesel::result::Error::QueryBuilderError(
                    "a write left the transaction in an unknown state; the batch is rolled back"
                        .into(),
                )));
            }
            if !ok && !isolated {
                return Err(Abort::Retry);
            }
        }
        reserved = before_commit(c, &committed, *next_id, reserved_before, watch, stats)?;
        Ok(())
    });
    Attempt {
        outcome,
        ran,
        committed,
        reserved,
        counted,
    }
}

/// Counts every event up to `upto` into its agent's row, in a savepoint of its own: the
/// batch's writes must not fail with it. Answers whether it counted.
fn count_events(
    c: &mut Conn,
    upto: i64,
    agents: Option<&BTreeSet<AgentId>>,
) -> Result<bool, Abort> {
    let mut count_broken = false;
    let count = guarded(c, true, &mut count_broken, |c| {
        ledger::count_events(c, upto, agents)
    });
    if count_broken {
        return Err(Abort::CountFailed);
    }
    match count {
        Ok(()) => Ok(true),
        Err(e) => {
            tracing::warn!(error = %e, "could not count events into their agents; will try again");
            Ok(false)
        }
    }
}

/// The batch's last steps inside its transaction, after every job ran: tell other nodes
/// (PostgreSQL), move the SQLite id reservation ahead, and check that the database file
/// is still there. Answers the new reservation, if any.
fn before_commit(
    c: &mut Conn,
    committed: &[Committed],
    next_id: i64,
    reserved_before: i64,
    watch: &mut Option<FileWatch>,
    stats: &WriterStats,
) -> Result<Option<i64>, Abort> {
    // Other nodes learn of this batch's events on commit (see `listen`).
    pg::notify_batch(c, committed, stats).map_err(store_failed)?;
    let reserved = ledger::reserve_block(c, next_id, reserved_before).map_err(store_failed)?;
    // Last, so the window between the check and the commit is as small as it can be.
    if let Some(reason) = watch.as_mut().and_then(FileWatch::lost_due) {
        return Err(Abort::Gone(reason));
    }
    Ok(reserved)
}

/// After a commit: the ledger takes the batch's reservation and count.
fn settle_ledger(
    ledger: &mut Ledger,
    stats: &WriterStats,
    reserved: Option<i64>,
    count_tried: bool,
) {
    if let Some(upto) = reserved {
        ledger.reserved = upto;
    }
    if count_tried {
        // After a failed count too: it is tried again a second later, not in every
        // batch.
        ledger.counted_at = Instant::now();
    }
    stats
        .uncounted
        .store(ledger.uncounted().is_some(), Ordering::Relaxed);
}

/// The database file is gone: this batch and every later one are refused.
fn refuse_gone(jobs: Vec<Job>, reason: String, ledger: &mut Ledger, stats: &WriterStats) {
    tracing::error!(error = %reason, "the database file is gone; refusing every write from now on");
    stats.record_gone(&reason);
    ledger.gone = Some(reason.clone());
    for job in jobs {
        job.refuse(StoreError::DatabaseGone(reason.clone()));
    }
}

/// The connection was lost under the batch (PostgreSQL): the writes that ran are
/// refused, since none of them is known to have committed (a 503: the sender retries,
/// and a write whose commit did reach the server is then stored twice rather than
/// lost); the ones that did not run are handed back, to run once the writer has
/// connected again.
fn refuse_lost(mut jobs: Vec<Job>, ran: usize, reason: &str, stats: &WriterStats) -> Vec<Job> {
    stats.record(Err(reason));
    let unrun = jobs.split_off(ran);
    for job in jobs {
        job.refuse(StoreError::DatabaseGone(reason.to_string()));
    }
    unrun
}

/// The writer has no connection to PostgreSQL and may not try again yet: the batch is
/// refused at once, with why.
fn refuse_unconnected(jobs: Vec<Job>, reason: &str, stats: &WriterStats) {
    stats.record(Err(reason));
    for job in jobs {
        job.refuse(StoreError::DatabaseGone(reason.to_string()));
    }
}

/// Not even the transaction could begin: answers everyone now rather than handing the
/// same jobs back to be retried forever.
fn answer_unbegun(
    conn: &mut Conn,
    jobs: Vec<Job>,
    error: &diesel::result::Error,
    stats: &WriterStats,
) {
    let reason = error.to_string();
    tracing::error!(error = %reason, batch = jobs.len(), "could not begin a transaction; every write in the batch is answered with an error");
    stats.record(Err(&reason));
    // On PostgreSQL a BEGIN fails only when the connection is gone (the server
    // stopped, the database was dropped; the first error after that is often the
    // server's "terminating connection", before libpq has marked the connection
    // closed): the database is unavailable, not the write wrong, so the answer is
    // a 503 with the reason, as for a SQLite file deleted under the hub.
    let closed = matches!(
        error,
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ClosedConnection,
            _,
        )
    );
    if closed || conn.is_pg() {
        let gone = format!(
            "the connection to the database was lost ({}); writes are refused: see \
             that PostgreSQL runs and the database exists, then restart muninn",
            reason.trim()
        );
        for job in jobs {
            job.refuse(StoreError::DatabaseGone(gone.clone()));
        }
        return;
    }
    for job in jobs {
        job.fail(reason.clone());
    }
}

/// Records the batch in the totals, answers every waiter and, when it committed, hands
/// its events to the sink.
fn finish(
    jobs: Vec<Job>,
    outcome: Result<(), diesel::result::Error>,
    committed: Vec<Committed>,
    started: Instant,
    stats: &WriterStats,
    sink: &CommitSink,
) {
    let size = jobs.len();
    let outcome = outcome.map_err(|e| {
        tracing::error!(error = %e, batch = size, "commit failed; every write in the batch is answered with an error");
        e.to_string()
    });
    let took = started.elapsed();
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.jobs.fetch_add(size, Ordering::Relaxed);
    stats.last_batch_size.store(size, Ordering::Relaxed);
    stats
        .last_commit_micros
        .store(took.as_micros() as usize, Ordering::Relaxed);
    let ok = outcome.is_ok();
    stats.record(outcome.as_ref().map(|_| ()).map_err(String::as_str));
    crate::ops::metrics::writer_batch(size, took, if ok { committed.len() } else { 0 });
    for job in jobs {
        job.answer(outcome.clone());
    }
    if ok && !committed.is_empty() {
        sink(committed);
    }
}
