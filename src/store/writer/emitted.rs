//! What a job leaves behind and how it inserts events: [`Committed`] for the Router,
//! the [`EventHook`] that writes each event's deliveries in its transaction, and
//! [`Emitted`], the only way a job inserts events (with ids from the writer: the
//! SQLite id blocks of [`Ledger`](super::ledger::Ledger), or the PostgreSQL row lock).

use std::sync::Arc;

use crate::store::deliveries::DeliveryRow;
use crate::store::events::{self, EventRow, Lineage, NewEvent};
use crate::store::{Conn, DbConn, StoreError, postgres};

/// What a job leaves behind for the Router: an event it inserted, its propagation
/// depth, and the deliveries (outbox rows) written with it.
#[derive(Debug, Clone)]
pub struct Committed {
    pub event: Arc<EventRow>,
    pub depth: u32,
    /// The root event this one descends from; `None` when it is a root.
    pub root: Option<crate::ids::EventId>,
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

/// The only way a job inserts events: each event gets the next id the Writer hands
/// out, is written with its outbox rows and collected so it reaches the Router after
/// commit. The emitting agents' `events_count` and `last_event_at` are brought up to
/// date about once a second (see [`Ledger`](super::ledger::Ledger)), not by each write.
pub struct Emitted<'a> {
    pub(super) out: &'a mut Vec<Committed>,
    pub(super) hook: &'a dyn EventHook,
    pub(super) next_id: &'a mut i64,
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
        target: Option<crate::ids::AgentId>,
    ) -> Result<Vec<Arc<EventRow>>, StoreError> {
        self.insert_with(conn, new, Lineage { root: None, depth }, target)
    }

    fn insert_with(
        &mut self,
        conn: &mut Conn,
        new: &[NewEvent],
        lineage: Lineage,
        target: Option<crate::ids::AgentId>,
    ) -> Result<Vec<Arc<EventRow>>, StoreError> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let n = new.len() as i64;
        let first = match conn {
            // Several writers share the database: the ids come from the row lock that
            // orders them by commit (see `postgres.rs`), held until this batch ends.
            DbConn::Pg(c) => {
                let first = postgres::reserve_event_ids(c, n)?;
                // Only for this node's count of its events (see `Ledger`).
                *self.next_id = (*self.next_id).max(first + n);
                first
            }
            DbConn::Sqlite(_) => {
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
