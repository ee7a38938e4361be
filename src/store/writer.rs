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

// One idea: the group-commit writer, its job types, its health and its batch loop share
// private state (the job trait, the ledger, the savepoint rules) that a split would have to
// make public; two other engineers are changing this file (the store's backends, the WAL
// checkpoint), so it is not split now.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::TransactionManager;
use tokio::sync::{mpsc, oneshot};

use super::files::FileWatch;
use super::{Conn, StoreError};
use crate::cached;
use crate::store::deliveries::DeliveryRow;
use crate::store::events::{self, EventRow, Lineage, NewEvent};
use crate::store::writer_marks::{self, ID_BLOCK};

/// What a job leaves behind for the Router: an event it inserted, its propagation
/// depth, and the deliveries (outbox rows) written with it.
#[derive(Debug, Clone)]
pub struct Committed {
    pub event: Arc<EventRow>,
    pub depth: u32,
    /// The root event this one descends from; `None` when it is a root.
    pub root: Option<i64>,
    pub deliveries: Arc<Vec<DeliveryRow>>,
}

impl Committed {
    pub fn lineage(&self) -> Lineage {
        Lineage {
            root: self.root,
            depth: self.depth,
        }
    }
}

/// Runs inside the transaction that inserts each event, so the event and what it owes
/// (its deliveries) commit together or not at all. The delivery subsystem implements it.
pub trait EventHook: Send + Sync {
    fn on_insert(&self, conn: &mut Conn, event: &EventRow) -> Result<Vec<DeliveryRow>, StoreError>;
}

/// A hook that owes nothing (tools and tests that have no delivery engine).
pub struct NoHook;

impl EventHook for NoHook {
    fn on_insert(&self, _: &mut Conn, _: &EventRow) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(Vec::new())
    }
}

/// Receives the events of every committed batch, in commit order.
pub type CommitSink = Box<dyn Fn(Vec<Committed>) + Send>;

/// One queued write, as the batch sees it.
trait BatchJob: Send {
    /// Runs the write inside the batch's transaction, in a savepoint of its own when
    /// `isolated`; returns whether it succeeded. Sets `broken` when the transaction's
    /// state is no longer known (a savepoint that could not be closed, a diesel
    /// transaction that could not be rolled back): the batch must not commit.
    fn run(
        &mut self,
        conn: &mut Conn,
        out: &mut Vec<Committed>,
        hook: &dyn EventHook,
        next_id: &mut i64,
        isolated: bool,
        broken: &mut bool,
    ) -> bool;
    /// Whether the write may run again after its batch was rolled back.
    fn repeatable(&self) -> bool;
    /// Answers the waiter, once the batch's commit is known.
    fn answer(self: Box<Self>, commit: Result<(), String>);
    /// Answers the waiter with `reason`, without running the write.
    fn fail(self: Box<Self>, reason: String);
    /// Answers the waiter with `error`, without running the write.
    fn refuse(self: Box<Self>, error: StoreError);
}

type Job = Box<dyn BatchJob>;

/// The closure of a write: run at most once, or as often as its batch is retried.
trait Body<T>: Send {
    const REPEATABLE: bool;
    fn call(&mut self, conn: &mut Conn, emitted: &mut Emitted<'_>) -> Result<T, StoreError>;
}

struct Once<F>(Option<F>);

impl<T, F> Body<T> for Once<F>
where
    F: FnOnce(&mut Conn, &mut Emitted<'_>) -> Result<T, StoreError> + Send,
{
    const REPEATABLE: bool = false;
    fn call(&mut self, conn: &mut Conn, emitted: &mut Emitted<'_>) -> Result<T, StoreError> {
        match self.0.take() {
            Some(f) => f(conn, emitted),
            // Batches holding a run-once write never retry; this is a writer bug.
            None => Err(StoreError::Panicked(
                "a run-once write was run twice".into(),
            )),
        }
    }
}

struct Repeat<F>(F);

impl<T, F> Body<T> for Repeat<F>
where
    F: Fn(&mut Conn, &mut Emitted<'_>) -> Result<T, StoreError> + Send,
{
    const REPEATABLE: bool = true;
    fn call(&mut self, conn: &mut Conn, emitted: &mut Emitted<'_>) -> Result<T, StoreError> {
        (self.0)(conn, emitted)
    }
}

/// A write, its latest outcome and its waiter.
struct Write<T, B> {
    body: B,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send, B: Body<T>> BatchJob for Write<T, B> {
    fn run(
        &mut self,
        conn: &mut Conn,
        out: &mut Vec<Committed>,
        hook: &dyn EventHook,
        next_id: &mut i64,
        isolated: bool,
        broken: &mut bool,
    ) -> bool {
        let mut mine = Vec::new();
        let body = &mut self.body;
        let result = guarded(conn, isolated, broken, |c| {
            // A panic must not kill the one thread every write goes through: it becomes
            // this write's error, and what it wrote is rolled back.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                body.call(
                    c,
                    &mut Emitted {
                        out: &mut mine,
                        hook,
                        next_id: &mut *next_id,
                    },
                )
            }))
            .unwrap_or_else(|p| Err(StoreError::Panicked(super::panic_message(&*p))))
        });
        let ok = result.is_ok();
        if ok {
            out.append(&mut mine);
        }
        self.result = Some(result);
        ok
    }

    fn repeatable(&self) -> bool {
        B::REPEATABLE
    }

    fn answer(self: Box<Self>, commit: Result<(), String>) {
        let answer = match (self.result, commit) {
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(reason)) => Err(StoreError::Database(
                diesel::result::Error::QueryBuilderError(reason.into()),
            )),
            (None, _) => Err(StoreError::WriterGone),
        };
        let _ = self.reply.send(answer);
    }

    fn fail(self: Box<Self>, reason: String) {
        let _ = self.reply.send(Err(StoreError::Database(
            diesel::result::Error::QueryBuilderError(reason.into()),
        )));
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// What the writer thread receives: a job, or the request to finish and close.
enum Cmd {
    Job(Job),
    /// Commit everything queued before this, close the connection (which checkpoints
    /// the WAL), then answer. Writes sent afterwards fail with `WriterGone`.
    Close(oneshot::Sender<()>),
}

/// Running totals, read by /worker_status and the metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub queued: AtomicUsize,
    pub batches: AtomicUsize,
    pub jobs: AtomicUsize,
    pub last_batch_size: AtomicUsize,
    pub last_commit_micros: AtomicUsize,
    /// Events were committed that the agents' counts do not include yet.
    pub uncounted: AtomicBool,
    /// Batches that did not commit, since start.
    pub failed_batches: AtomicUsize,
    /// Set when the writer thread has stopped (the checkpoint thread ends with it).
    pub stopped: AtomicBool,
    /// On PostgreSQL, the writer connection's backend process id, learnt from its
    /// first NOTIFY: the node's listener skips its own writer's notifications.
    pub pg_pid: Arc<AtomicI32>,
    /// Set while the latest batch failed; the details are in `health`.
    failing: AtomicBool,
    /// Set while the queue is deeper than `behind_at` (see [`behind_signal`]).
    behind: AtomicBool,
    behind_at: AtomicUsize,
    health: std::sync::Mutex<WriteHealth>,
}

/// Whether writes work, as `/healthz` reports it.
#[derive(Debug, Clone, Default)]
pub struct WriteHealth {
    /// Set once the database file was deleted or replaced: every write is refused.
    pub database_gone: Option<String>,
    /// The latest batch's error, when it failed.
    pub last_error: Option<String>,
    /// Batches failed in a row, up to the latest one.
    pub failures_in_a_row: usize,
    /// When the current run of failures began.
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
}

impl WriteHealth {
    /// Why writes do not work right now, if they do not.
    pub fn problem(&self) -> Option<String> {
        if let Some(gone) = &self.database_gone {
            return Some(gone.clone());
        }
        self.last_error.as_ref().map(|e| {
            format!(
                "the last {} write batch(es) failed to commit: {e}",
                self.failures_in_a_row
            )
        })
    }
}

impl WriterStats {
    /// A copy of the write health.
    pub fn health(&self) -> WriteHealth {
        self.health
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn with_health(&self, f: impl FnOnce(&mut WriteHealth)) {
        match self.health.lock() {
            Ok(mut h) => f(&mut h),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Records a batch's outcome. Touches the lock only when the state changes or
    /// writes are failing, so a healthy writer pays one atomic load per batch.
    fn record(&self, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => {
                // A load first: a healthy writer does not write the shared cache line.
                if self.failing.load(Ordering::Relaxed)
                    && self.failing.swap(false, Ordering::Relaxed)
                {
                    let mut failed = 0;
                    self.with_health(|h| {
                        failed = h.failures_in_a_row;
                        h.last_error = None;
                        h.failures_in_a_row = 0;
                        h.failing_since = None;
                    });
                    tracing::info!(failed_batches = failed, "writes commit again");
                }
            }
            Err(e) => {
                self.failed_batches.fetch_add(1, Ordering::Relaxed);
                crate::ops::metrics::writer_failure();
                self.failing.store(true, Ordering::Relaxed);
                self.with_health(|h| {
                    h.last_error = Some(e.to_string());
                    h.failures_in_a_row += 1;
                    h.failing_since.get_or_insert_with(chrono::Utc::now);
                });
            }
        }
    }

    fn record_gone(&self, reason: &str) {
        self.failed_batches.fetch_add(1, Ordering::Relaxed);
        crate::ops::metrics::writer_failure();
        self.failing.store(true, Ordering::Relaxed);
        self.with_health(|h| {
            if h.database_gone.is_none() {
                h.database_gone = Some(reason.to_string());
                h.failing_since.get_or_insert_with(chrono::Utc::now);
            }
        });
    }
}

/// A cheap, cloneable handle for submitting writes.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Cmd>,
    stats: Arc<WriterStats>,
    queue_max: usize,
}

/// The only way a job inserts events: each event gets the next id the Writer hands
/// out, is written with its outbox rows and collected so it reaches the Router after
/// commit. The emitting agents' `events_count` and `last_event_at` are brought up to
/// date about once a second (see [`Ledger`]), not by each write.
pub struct Emitted<'a> {
    out: &'a mut Vec<Committed>,
    hook: &'a dyn EventHook,
    next_id: &'a mut i64,
}

impl Emitted<'_> {
    /// Inserts the events in order, each with the deliveries it owes.
    pub fn insert(
        &mut self,
        conn: &mut Conn,
        new: &[NewEvent],
        depth: u32,
    ) -> Result<Vec<Arc<EventRow>>, StoreError> {
        let lineage = Lineage { root: None, depth };
        self.insert_with(conn, new, lineage, None)
    }

    /// Like [`Emitted::insert`], for events made from another event: `lineage` (stored
    /// with each) names their root and depth.
    pub fn insert_derived(
        &mut self,
        conn: &mut Conn,
        new: &[NewEvent],
        lineage: Lineage,
    ) -> Result<Vec<Arc<EventRow>>, StoreError> {
        self.insert_with(conn, new, lineage, None)
    }

    /// Like [`Emitted::insert`], with every event addressed to the agent `target`.
    pub fn insert_targeted(
        &mut self,
        conn: &mut Conn,
        new: &[NewEvent],
        depth: u32,
        target: Option<i64>,
    ) -> Result<Vec<Arc<EventRow>>, StoreError> {
        self.insert_with(conn, new, Lineage { root: None, depth }, target)
    }

    fn insert_with(
        &mut self,
        conn: &mut Conn,
        new: &[NewEvent],
        lineage: Lineage,
        target: Option<i64>,
    ) -> Result<Vec<Arc<EventRow>>, StoreError> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let n = new.len() as i64;
        let first = match conn {
            // Several writers share the database: the ids come from the row lock that
            // orders them by commit (see `postgres.rs`), held until this batch ends.
            super::DbConn::Pg(c) => {
                let first = super::postgres::reserve_event_ids(c, n)?;
                // Only for this node's count of its events (see `Ledger`).
                *self.next_id = (*self.next_id).max(first + n);
                first
            }
            super::DbConn::Sqlite(_) => {
                let first = *self.next_id;
                // Taken before the insert: an id a failed insert may have used is
                // never reused.
                *self.next_id += n;
                first
            }
        };
        let rows = events::insert_all(conn, new, target, lineage, first)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let deliveries = self.hook.on_insert(conn, &row)?;
            let event = Arc::new(row);
            self.out.push(Committed {
                event: event.clone(),
                depth: lineage.depth,
                root: lineage.root,
                deliveries: Arc::new(deliveries),
            });
            out.push(event);
        }
        Ok(out)
    }
}

impl Writer {
    /// Starts the writer thread on `conn`. `hook` runs for every inserted event inside
    /// its transaction; `sink` is called after each commit. With `watch`, batches check
    /// before they commit that the database file is still there (see [`FileWatch`]).
    pub fn start(
        mut conn: Conn,
        batch_max: usize,
        queue_max: usize,
        hook: Arc<dyn EventHook>,
        sink: CommitSink,
        watch: Option<FileWatch>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel::<Cmd>();
        let mut ledger = Ledger::load(&mut conn)?;
        ledger.watch = watch;
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
                let closed = run(
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

/// Logs the queue crossing `behind_at` upwards (WARN, the writer falls behind the
/// writes asked of it) and falling back under half of it (caught up), each once per
/// crossing; the gap between the two keeps a queue hovering at the line from logging
/// every write. Returns whether the writer now counts as behind.
fn behind_signal(stats: &WriterStats, depth: usize) -> bool {
    let at = stats.behind_at.load(Ordering::Relaxed).max(1);
    if depth >= at {
        if !stats.behind.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                signal = "writer_behind",
                queue_depth = depth,
                threshold = at,
                "the database writer is falling behind: writes are queueing (muninn_writer_queue_depth)"
            );
        }
    } else if depth < at / 2 && stats.behind.swap(false, Ordering::Relaxed) {
        tracing::warn!(
            signal = "writer_caught_up",
            queue_depth = depth,
            threshold = at,
            "the database writer caught up with its queue"
        );
    }
    stats.behind.load(Ordering::Relaxed)
}

/// How often at most the agents' counts are brought up to date.
const COUNT_EVERY: Duration = Duration::from_secs(1);

/// What the writer thread keeps between batches about event ids and agents' counts,
/// mirroring the `writer_marks` row (see that module for why these are not written
/// by every commit).
///
/// Ids: events get `next_id`, `next_id + 1`, ... . A batch that hands out an id above
/// `reserved` moves the reservation a block ahead in its own transaction, so a
/// committed id is always covered by a committed reservation, and a restart resumes
/// above both. Ids of writes rolled back are skipped, never reused.
///
/// Counts: every [`COUNT_EVERY`], the first batch after it counts every event below
/// its own into the agents' rows, in its own transaction; readers add what lies above
/// the counted mark, so they see exact figures in between and after a crash.
///
/// File: whether the database file is still the one the connection writes to (see
/// [`FileWatch`]); once it is not, `gone` holds why and every later write is refused.
struct Ledger {
    next_id: i64,
    reserved: i64,
    counted_upto: i64,
    counted_at: Instant,
    watch: Option<FileWatch>,
    gone: Option<String>,
}

impl Ledger {
    fn load(conn: &mut Conn) -> Result<Ledger, StoreError> {
        let marks = writer_marks::load(conn)?;
        Ok(Ledger {
            next_id: marks.event_ids_reserved.max(events::max_id(conn)?) + 1,
            reserved: marks.event_ids_reserved,
            counted_upto: marks.events_counted_upto,
            counted_at: Instant::now(),
            watch: None,
            gone: None,
        })
    }

    /// The mark to count up to, when events above the counted one may exist.
    fn uncounted(&self) -> Option<i64> {
        let upto = self.next_id - 1;
        (upto > self.counted_upto).then_some(upto)
    }

    /// The mark this batch counts up to, when that is due.
    fn count_due(&self) -> Option<i64> {
        self.uncounted()
            .filter(|_| self.counted_at.elapsed() >= COUNT_EVERY)
    }
}

/// Runs `f` inside the batch's transaction; when `isolated`, in its own savepoint: kept
/// when it succeeds, undone when it fails, so one failing write does not undo the others.
///
/// These are cached statements rather than diesel's nested `transaction`, which sends
/// each `SAVEPOINT` through `sqlite3_exec` and so parses it again for every write.
/// `broken` is set when the savepoint cannot be closed, or a transaction `f` leaked
/// cannot be rolled back: the batch must then roll back.
fn guarded<T>(
    conn: &mut Conn,
    isolated: bool,
    broken: &mut bool,
    f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if isolated && let Err(e) = cached!("SAVEPOINT job", Vec::new()).execute(conn) {
        *broken = true;
        return Err(e.into());
    }
    let depth = diesel_depth(conn);
    let mut result = f(conn);
    // A diesel transaction inside the write can be left open (a panic inside it, caught
    // above). Roll it back, so that diesel and SQLite agree again on what is open, and
    // fail the write.
    while diesel_depth(conn) > depth {
        if let Err(e) = <Conn as Connection>::TransactionManager::rollback_transaction(conn) {
            *broken = true;
            return Err(e.into());
        }
        if result.is_ok() {
            result = Err(StoreError::Panicked(
                "the write left a transaction open".into(),
            ));
        }
    }
    if diesel_depth(conn) != depth {
        *broken = true;
        return Err(StoreError::Panicked(
            "the write closed a transaction it did not open".into(),
        ));
    }
    if !isolated {
        return result;
    }
    let release = |conn: &mut Conn| cached!("RELEASE job", Vec::new()).execute(conn);
    let closed = match &result {
        Ok(_) => release(conn),
        Err(_) => cached!("ROLLBACK TO job", Vec::new())
            .execute(conn)
            .and_then(|_| release(conn)),
    };
    if let Err(e) = closed {
        *broken = true;
        return Err(e.into());
    }
    result
}

/// How many transactions diesel believes are open on `conn`.
fn diesel_depth(conn: &mut Conn) -> Option<std::num::NonZeroU32> {
    <Conn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .flatten()
}

fn run(
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
            jobs = commit_batch(conn, jobs, ledger, stats, hook, sink);
        }
    }
    // Leave the counts complete, so a clean start has nothing to add to them.
    if let Some(upto) = ledger.uncounted().filter(|_| ledger.gone.is_none()) {
        match conn.transaction(|c| writer_marks::count_events(c, upto)) {
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

/// Runs `jobs` in one transaction, commits, answers every waiter, reports the events.
/// Returns the jobs it did not run: those after a write that broke the batch.
// One idea: one group-commit transaction: run the batch (with savepoints or not), retry it job
// by job, commit, then answer every waiter; the steps share the transaction and its
// bookkeeping.
fn commit_batch(
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
    let (outcome, ran, committed, reserved, counted) = loop {
        let mut committed = Vec::new();
        let mut broken = false;
        let mut ran = 0;
        let mut reserved = None;
        let mut counted = false;
        let next_id = &mut ledger.next_id;
        let reserved_before = ledger.reserved;
        let watch = &mut ledger.watch;
        let outcome = conn.transaction::<(), Abort, _>(|c| {
            let store_failed = |e: StoreError| {
                Abort::Failed(diesel::result::Error::QueryBuilderError(
                    e.to_string().into(),
                ))
            };
            if let Some(upto) = count_upto {
                // In a savepoint of its own: the batch's writes must not fail with it.
                let mut count_broken = false;
                let count = guarded(c, true, &mut count_broken, |c| {
                    writer_marks::count_events(c, upto)
                });
                if count_broken {
                    return Err(Abort::CountFailed);
                }
                match count {
                    Ok(()) => counted = true,
                    Err(e) => tracing::warn!(error = %e, "could not count events into their agents; will try again"),
                }
            }
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
            // Other nodes learn of this batch's events on commit (see `listen`).
            if let (super::DbConn::Pg(pg), Some(high)) =
                (&mut *c, committed.iter().map(|e| e.event.id).max())
            {
                let pid = super::listen::notify(pg, high).map_err(store_failed)?;
                stats.pg_pid.store(pid, Ordering::Relaxed);
            }
            // On PostgreSQL each insert reserved its own ids in the shared row.
            if *next_id - 1 > reserved_before && !c.is_pg() {
                let upto = *next_id - 1 + ID_BLOCK;
                writer_marks::reserve_event_ids(c, upto).map_err(store_failed)?;
                reserved = Some(upto);
            }
            // Last, so the window between the check and the commit is as small as it
            // can be.
            if let Some(reason) = watch.as_mut().and_then(FileWatch::lost_due) {
                return Err(Abort::Gone(reason));
            }
            Ok(())
        });
        match outcome {
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
            Err(Abort::Failed(e)) => break (Err(e), ran, committed, None, false),
            Err(Abort::Gone(reason)) => {
                tracing::error!(error = %reason, "the database file is gone; refusing every write from now on");
                stats.record_gone(&reason);
                ledger.gone = Some(reason.clone());
                for job in jobs {
                    job.refuse(StoreError::DatabaseGone(reason.clone()));
                }
                return Vec::new();
            }
            Ok(()) => break (Ok(()), ran, committed, reserved, counted),
        }
    };
    if outcome.is_ok() {
        if let Some(upto) = reserved {
            ledger.reserved = upto;
        }
        if let Some(upto) = count_upto.filter(|_| counted) {
            ledger.counted_upto = upto;
        }
        if count_upto.is_some() {
            // After a failed count too: it is tried again a second later, not in
            // every batch.
            ledger.counted_at = Instant::now();
        }
        stats
            .uncounted
            .store(ledger.uncounted().is_some(), Ordering::Relaxed);
    }
    if outcome.is_err() && ran == 0 {
        // Not even the transaction could begin: answer everyone now rather than
        // handing the same jobs back to be retried forever.
        let error = outcome.err();
        let reason = error.as_ref().map(|e| e.to_string()).unwrap_or_default();
        tracing::error!(error = %reason, batch = jobs.len(), "could not begin a transaction; every write in the batch is answered with an error");
        stats.record(Err(&reason));
        // On PostgreSQL a BEGIN fails only when the connection is gone (the server
        // stopped, the database was dropped; the first error after that is often the
        // server's "terminating connection", before libpq has marked the connection
        // closed): the database is unavailable, not the write wrong, so the answer is
        // a 503 with the reason, as for a SQLite file deleted under the hub.
        let closed = matches!(
            &error,
            Some(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                _,
            ))
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
            return Vec::new();
        }
        for job in jobs {
            job.fail(reason.clone());
        }
        return Vec::new();
    }
    let rest = jobs.split_off(ran);
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
    rest
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::Connection;

    use super::super::{NoHook, Store, users};

    fn store() -> (tempfile::TempDir, Store) {
        store_with_sink(Box::new(|_| {}))
    }

    #[test]
    fn falling_behind_is_flagged_on_crossing_and_cleared_under_half() {
        let stats = super::WriterStats::default();
        stats.behind_at.store(100, Ordering::Relaxed);
        assert!(!super::behind_signal(&stats, 99));
        assert!(super::behind_signal(&stats, 100));
        assert!(super::behind_signal(&stats, 60), "still behind above half");
        assert!(!super::behind_signal(&stats, 49), "caught up under half");
    }

    #[test]
    fn falling_behind_and_catching_up_are_each_logged_once_with_their_fields() {
        let stats = super::WriterStats::default();
        stats.behind_at.store(100, Ordering::Relaxed);
        let lines = crate::ops::logging::captured_json(|| {
            for depth in [10, 100, 150, 99, 60, 49, 10, 120] {
                super::behind_signal(&stats, depth);
            }
        });
        let signals: Vec<(&str, &str, u64)> = lines
            .iter()
            .map(|l| {
                (
                    l["level"].as_str().unwrap(),
                    l["fields"]["signal"].as_str().unwrap(),
                    l["fields"]["queue_depth"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            signals,
            [
                ("WARN", "writer_behind", 100),
                ("WARN", "writer_caught_up", 49),
                ("WARN", "writer_behind", 120)
            ],
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| l["fields"]["threshold"] == 100));
    }

    fn store_with_sink(sink: super::CommitSink) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let store = Store::open(&config.store_options(), Arc::new(NoHook), sink).unwrap();
        (dir, store)
    }

    /// Occupies the writer with a slow write and returns once it is running, so the
    /// writes queued next wait together and form one batch.
    fn hold(
        writer: &super::Writer,
    ) -> impl std::future::Future<Output = Result<(), super::StoreError>> + use<> {
        let (started, running) = std::sync::mpsc::channel();
        let gate = writer.write(move |_, _| {
            let _ = started.send(());
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok(())
        });
        running.recv().unwrap();
        gate
    }

    /// Repeatable writes share a batch without savepoints. When one of them fails
    /// halfway, the batch is rolled back and run again with a savepoint per write: the
    /// failing write leaves nothing, the others commit, and each answer is its own.
    #[actix_rt::test]
    async fn a_failing_repeatable_write_undoes_only_itself() {
        let (_dir, store) = store();
        let writer = store.writer();
        // Holds the writer while the next three queue up, so they form one batch.
        let gate = hold(writer);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let a = writer.write_repeatable(move |c, _| {
            counted.fetch_add(1, Ordering::SeqCst);
            users::insert(c, "a", false).map(|u| u.name)
        });
        let b = writer.write_repeatable(|c, _| {
            users::insert(c, "b", false)?;
            users::insert(c, "a", false).map(|u| u.name)
        });
        let c = writer.write_repeatable(|c, _| users::insert(c, "c", false).map(|u| u.name));
        gate.await.unwrap();
        assert_eq!(a.await.unwrap(), "a");
        assert!(b.await.is_err(), "the duplicate name fails its write");
        assert_eq!(c.await.unwrap(), "c");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "the write before the failure ran without and then with its savepoint"
        );
        let mut names: Vec<String> = store
            .read(|c| Ok(users::list(c)?.into_iter().map(|u| u.name).collect()))
            .await
            .unwrap();
        names.retain(|n| n.len() == 1);
        names.sort();
        assert_eq!(names, ["a", "c"]);
    }

    /// The events of a batch that was rolled back and run again reach the Router once,
    /// from the run that committed, and only those of the writes that succeeded.
    #[actix_rt::test]
    async fn a_retried_batch_reports_each_committed_event_once() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = seen.clone();
        let (_dir, store) = store_with_sink(Box::new(move |batch| {
            let mut seen = sink.lock().unwrap();
            seen.extend(batch.iter().map(|c| c.event.event_type.clone()));
        }));
        let writer = store.writer();
        let user = writer
            .write(|c, _| users::insert(c, "owner", false).map(|u| u.id))
            .await
            .unwrap();
        let event = move |name: &str| crate::store::events::NewEvent {
            user_id: user,
            agent_id: None,
            event_type: name.to_string(),
            payload: "{}".into(),
            keep_for_seconds: 0,
        };
        let gate = hold(writer);
        let (a, b, c) = (event("a"), event("b"), event("c"));
        let first = writer.write_repeatable(move |conn, out| {
            out.insert(conn, std::slice::from_ref(&a), 0).map(|_| ())
        });
        let failing = writer.write_repeatable(move |conn, out| {
            out.insert(conn, std::slice::from_ref(&b), 0)?;
            Err::<(), _>(super::StoreError::NotFound("the thing this write needed"))
        });
        let last = writer.write_repeatable(move |conn, out| {
            out.insert(conn, std::slice::from_ref(&c), 0).map(|_| ())
        });
        gate.await.unwrap();
        first.await.unwrap();
        assert!(failing.await.is_err());
        last.await.unwrap();
        // The sink runs after the waiters are answered, before the next batch.
        writer.write(|_, _| Ok(())).await.unwrap();
        let reported = seen.lock().unwrap().clone();
        assert_eq!(reported, ["a", "c"]);
        let mut stored: Vec<String> = store
            .read(|c| {
                let all = crate::store::events::EventQuery {
                    limit: 100,
                    ..Default::default()
                };
                Ok(crate::store::events::list(c, &all)?
                    .into_iter()
                    .map(|e| e.event_type)
                    .collect())
            })
            .await
            .unwrap();
        stored.sort();
        assert_eq!(stored, ["a", "c"]);
    }

    fn open_in(dir: &std::path::Path) -> Store {
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.to_path_buf();
        Store::open(&config.store_options(), Arc::new(NoHook), Box::new(|_| {})).unwrap()
    }

    /// A store in a temporary directory (reopened with [`open_in`]) with one agent.
    async fn store_with_agent() -> (tempfile::TempDir, Store, crate::store::agents::AgentRow) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path());
        let agent = store
            .writer()
            .write(|c, _| crate::store::test_webhook_agent(c))
            .await
            .unwrap();
        (dir, store, agent)
    }

    /// Inserts `n` events emitted by `agent` and returns their ids.
    async fn emit(store: &Store, agent: &crate::store::agents::AgentRow, n: usize) -> Vec<i64> {
        let event = crate::store::events::NewEvent {
            user_id: agent.user_id,
            agent_id: Some(agent.id),
            event_type: "test".into(),
            payload: "{}".into(),
            keep_for_seconds: 0,
        };
        let events = vec![event; n];
        store
            .writer()
            .write(move |c, out| Ok(out.insert(c, &events, 0)?.iter().map(|e| e.id).collect()))
            .await
            .unwrap()
    }

    /// Ids come from the Writer, not from AUTOINCREMENT, and must still never be
    /// reused: pollers remember the last id they saw, so an id given twice would hide
    /// the second event from them. Deleting the newest events and reopening the
    /// database are the two ways an id could come back.
    #[actix_rt::test]
    async fn event_ids_are_never_reused() {
        let (dir, store, agent) = store_with_agent().await;
        let first = emit(&store, &agent, 3).await;
        assert_eq!(first.len(), 3);
        assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
        let newest = first[2];
        let gone = first[1..].to_vec();
        store
            .writer()
            .write(move |c, _| {
                gone.iter()
                    .try_for_each(|id| crate::store::events::delete(c, *id))
            })
            .await
            .unwrap();
        let after_delete = emit(&store, &agent, 1).await[0];
        assert!(
            after_delete > newest,
            "{after_delete} reuses an id up to {newest}"
        );
        store
            .writer()
            .write(move |c, _| crate::store::events::delete(c, after_delete))
            .await
            .unwrap();
        store.writer().close().await;
        drop(store);

        let reopened = open_in(dir.path());
        let after_restart = emit(&reopened, &agent, 1).await[0];
        assert!(
            after_restart > after_delete,
            "{after_restart} reuses an id up to {after_delete}"
        );
        reopened.writer().close().await;
    }

    /// The Writer counts events into their agents' rows about once a second; every
    /// read of an agent still shows the exact count and the newest event's time, at
    /// once, after events are deleted, and after a restart.
    #[actix_rt::test]
    async fn agents_show_exact_event_counts_before_and_after_they_are_counted() {
        use crate::store::{agents, writer_marks};
        let (dir, store, agent) = store_with_agent().await;
        let id = agent.id;
        let read = |store: &Store| {
            store.read(move |c| {
                let one = agents::find(c, id)?.unwrap();
                let all = agents::list(c, None)?;
                let listed = all.into_iter().find(|a| a.id == id).unwrap();
                Ok((one.events_count, listed.events_count, one.last_event_at))
            })
        };
        let ids = emit(&store, &agent, 3).await;
        let (found, listed, last) = read(&store).await.unwrap();
        assert_eq!((found, listed), (3, 3));
        assert!(last.is_some());

        // Counted into the row by a batch a second later: the figures stay the same.
        std::thread::sleep(super::COUNT_EVERY);
        store.writer().write(|_, _| Ok(())).await.unwrap();
        let marks = store.read(writer_marks::load).await.unwrap();
        assert_eq!(marks.events_counted_upto, ids[2]);
        let (found, listed, _) = read(&store).await.unwrap();
        assert_eq!((found, listed), (3, 3));

        // Two more, one uncounted and one counted deleted, then recounted.
        let more = emit(&store, &agent, 2).await;
        let (deleted, kept) = (ids[0], more[0]);
        store
            .writer()
            .write(move |c, _| {
                crate::store::events::delete(c, deleted)?;
                crate::store::events::delete(c, kept)?;
                agents::recount_events(c, id)
            })
            .await
            .unwrap();
        let (found, listed, _) = read(&store).await.unwrap();
        assert_eq!((found, listed), (3, 3));

        // A clean close leaves the counts complete in the row itself.
        store.writer().close().await;
        drop(store);
        let reopened = open_in(dir.path());
        let (column, marks) = reopened
            .read(move |c| {
                use crate::store::schema::agents::dsl;
                use diesel::prelude::*;
                let column: i64 = dsl::agents.find(id).select(dsl::events_count).first(c)?;
                Ok((column, writer_marks::load(c)?))
            })
            .await
            .unwrap();
        assert_eq!(column, 3);
        assert_eq!(marks.events_counted_upto, more[1]);
        let (found, listed, _) = read(&reopened).await.unwrap();
        assert_eq!((found, listed), (3, 3));
        reopened.writer().close().await;
    }

    #[actix_rt::test]
    async fn a_panicking_write_is_rolled_back_and_the_writer_carries_on() {
        let (_dir, store) = store();
        let failed = store
            .writer()
            .write(|c, _| {
                users::insert(c, "ghost", false)?;
                panic!("bug in a write");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await;
        assert!(
            matches!(&failed, Err(super::StoreError::Panicked(m)) if m == "bug in a write"),
            "{failed:?}"
        );
        let later = store.writer().write(|_, _| Ok(7)).await;
        assert_eq!(later.unwrap(), 7);
        // A panic inside a diesel transaction opened by the write: that transaction
        // is rolled back with the write, and later batches still commit.
        let failed = store
            .writer()
            .write(|c, _| {
                c.transaction::<(), super::StoreError, _>(|c| {
                    users::insert(c, "phantom", false)?;
                    panic!("bug inside a nested transaction");
                })?;
                Ok(())
            })
            .await;
        assert!(
            matches!(failed, Err(super::StoreError::Panicked(_))),
            "{failed:?}"
        );
        store
            .writer()
            .write(|c, _| users::insert(c, "real", false).map(|_| ()))
            .await
            .unwrap();
        let names: Vec<String> = store
            .read(|c| Ok(users::list(c)?.into_iter().map(|u| u.name).collect()))
            .await
            .unwrap();
        assert!(
            !names.contains(&"ghost".to_string()) && !names.contains(&"phantom".to_string()),
            "rolled back: {names:?}"
        );
        assert!(names.contains(&"real".to_string()), "committed: {names:?}");
    }
}
