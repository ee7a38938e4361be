//! The single writer and its group commit.
//!
//! One thread owns the only write connection. It blocks for the first job, then takes
//! every job already queued (up to a cap) and runs them all in one transaction; then it
//! commits once and answers every waiter. There are no timers: under load batches grow
//! by themselves, when idle a batch is a single job and pays no added latency.
//!
//! One failing job must not undo the others. A job that may only run once runs in its
//! own savepoint. A *repeatable* job (one that only touches the database, see
//! [`Writer::write_repeatable`]) runs without one, as long as its whole batch is
//! repeatable: if one of them fails, the batch is rolled back and run again with a
//! savepoint per job. Savepoints cost SQLite a copy of every page a job touches, and
//! under webhook load that copying was a tenth of the writer's time; failures are rare.
//!
//! This is a thread with a channel rather than an actix `SyncArbiter` actor because an
//! actor's mailbox hands over one message at a time; group commit needs to see the whole
//! queue at once.
//!
//! The parts: `job` (a queued write and its waiter), `emitted` (what a job leaves for
//! the Router and how it inserts events), `batch` (the loop and one group-commit
//! transaction), `savepoint` (when a write runs in a savepoint of its own), `ledger`
//! (event ids and agents' counts between batches), `health` (totals, queue depth, write
//! health) and `pg` (what only PostgreSQL does).

mod batch;
mod emitted;
mod health;
mod job;
mod ledger;
mod pg;
mod savepoint;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::files::FileWatch;
use super::{Conn, StoreError};
use crate::store::writer_marks;
use health::behind_signal;
use job::{Body, Cmd, Job, Once, Repeat, Write};
use ledger::Ledger;

pub use emitted::{CommitSink, Committed, Emitted, EventHook, NoHook};
pub use health::{WriteHealth, WriterStats};

/// A cheap, cloneable handle for submitting writes.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Cmd>,
    stats: Arc<WriterStats>,
    queue_max: usize,
}

impl Writer {
    /// Starts the writer thread on `conn`. `hook` runs for every inserted event inside
    /// its transaction; `sink` is called after each commit. With `watch`, batches check
    /// before they commit that the database file is still there (see [`FileWatch`]).
    /// With `pg_url` (the URL `conn` was opened with), the writer connects there again
    /// when its PostgreSQL connection is lost (see `pg`).
    pub fn start(
        mut conn: Conn,
        batch_max: usize,
        queue_max: usize,
        hook: Arc<dyn EventHook>,
        sink: CommitSink,
        watch: Option<FileWatch>,
        pg_url: Option<String>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel::<Cmd>();
        let mut ledger = Ledger::load(&mut conn)?;
        ledger.watch = watch;
        ledger.reconnect = pg_url.map(pg::Reconnect::new);
        let stats = Arc::new(WriterStats::default());
        // Half the shedding depth: a warning before callers start getting 503s.
        stats
            .behind_at
            .store((queue_max / 2).max(1), Ordering::Relaxed);
        stats
            .uncounted
            .store(ledger.uncounted().is_some(), Ordering::Relaxed);
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("muninn-writer".into())
            .spawn(move || {
                let closed = batch::run(
                    &mut conn,
                    rx,
                    batch_max.max(1),
                    &mut ledger,
                    &thread_stats,
                    &*hook,
                    &sink,
                );
                thread_stats.stopped.store(true, Ordering::Relaxed);
                // Closing the last connection checkpoints the WAL into the database.
                drop(conn);
                tracing::info!("writer stopped: every queued write was committed");
                if let Some(done) = closed {
                    let _ = done.send(());
                }
            })
            .map_err(|e| StoreError::Open {
                path: "writer thread".into(),
                reason: e.to_string(),
            })?;
        Ok(Writer {
            tx,
            stats,
            queue_max,
        })
    }

    /// Commits every write queued so far, stops the writer thread and closes the
    /// database; resolves when that is done (at once if it already stopped). Later
    /// writes fail with `WriterGone`, so nothing is acknowledged that is not committed.
    pub fn close(&self) -> impl Future<Output = ()> + use<> {
        let (done, closed) = oneshot::channel();
        let sent = self.tx.send(Cmd::Close(done)).is_ok();
        async move {
            if sent {
                let _ = closed.await;
            }
        }
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    /// Whether writes work, from the outcome of the latest batches.
    pub fn health(&self) -> WriteHealth {
        self.stats.health()
    }

    /// A write that reaches the disk. Its outcome, like every batch's, updates
    /// [`Writer::health`]: `/healthz` uses it to learn whether writes that failed work
    /// again when nothing else writes.
    pub fn probe(&self) -> impl Future<Output = Result<(), StoreError>> + use<> {
        self.write_repeatable(|c, _| writer_marks::touch(c))
    }

    /// Lets the Writer bring the agents' counts up to date when it is idle: a batch
    /// does that when a second has passed since the last time (see [`Ledger`]), and
    /// this queues an empty one. The clock calls it every second.
    pub fn nudge_counts(&self) {
        if self.stats.uncounted.load(Ordering::Relaxed) && self.queue_depth() == 0 {
            // Queued now; nobody waits for the answer. Repeatable, so the writes it
            // shares a batch with still run without savepoints.
            drop(self.write_repeatable(|_, _| Ok(())));
        }
    }

    /// Jobs waiting for the writer right now.
    pub fn queue_depth(&self) -> usize {
        self.stats.queued.load(Ordering::Relaxed)
    }

    /// True when load-facing callers should shed (answer 503) instead of queueing more.
    pub fn is_overloaded(&self) -> bool {
        self.queue_depth() >= self.queue_max
    }

    /// Queues `f` now (so writes keep the order in which they were submitted) and
    /// returns a future that resolves once the batch holding it has committed.
    pub fn write<T, F>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn, &mut Emitted<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(Once(Some(f)))
    }

    /// Like [`Writer::write`], for a write that only touches the database through
    /// `conn` and `emitted`: it may run more than once, and only its last run counts.
    /// It must return every database error it meets (not recover from one and go on):
    /// without a savepoint, a failed statement may have ended the transaction.
    /// Such writes skip the per-write savepoint (see the module's comment), so the
    /// frequent writes (webhooks, inbound logs) use this.
    pub fn write_repeatable<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + use<T, F>
    where
        T: Send + 'static,
        F: Fn(&mut Conn, &mut Emitted<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(Repeat(f))
    }

    /// Like [`Writer::write_repeatable`], but refuses with `Overloaded` when the queue is
    /// full. Ingest uses this so overload shows as 503 instead of growing memory.
    pub fn try_write_repeatable<T, F>(
        &self,
        f: F,
    ) -> Result<impl Future<Output = Result<T, StoreError>> + use<T, F>, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut Conn, &mut Emitted<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let depth = self.queue_depth();
        if depth >= self.queue_max {
            return Err(StoreError::Overloaded(depth));
        }
        Ok(self.write_repeatable(f))
    }

    /// Queues the write now (so writes keep the order in which they were submitted)
    /// and returns a future that resolves once the batch holding it has committed.
    fn submit<T, B>(&self, body: B) -> impl Future<Output = Result<T, StoreError>> + use<T, B>
    where
        T: Send + 'static,
        B: Body<T> + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(Write {
            body,
            result: None,
            reply,
        });
        let depth = self.stats.queued.fetch_add(1, Ordering::Relaxed) + 1;
        behind_signal(&self.stats, depth);
        let sent = self.tx.send(Cmd::Job(job)).is_ok();
        if !sent {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        }
        async move {
            if !sent {
                return Err(StoreError::WriterGone);
            }
            answer.await.unwrap_or(Err(StoreError::WriterGone))
        }
    }
}
