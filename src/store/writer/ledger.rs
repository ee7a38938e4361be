//! What the writer thread keeps between batches about event ids and agents' counts
//! (see [`Ledger`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::emitted::Committed;
use super::pg::Reconnect;
use crate::ids::AgentId;
use crate::store::files::FileWatch;
use crate::store::writer_marks::{self, ID_BLOCK};
use crate::store::{Conn, StoreError, events};

/// How often at most the agents' counts are brought up to date.
pub(super) const COUNT_EVERY: Duration = Duration::from_secs(1);

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
///
/// Connection: on PostgreSQL, how the writer connects again after its connection was
/// lost (see [`Reconnect`]); the ids and counts above live in the database there, so
/// nothing else changes with the connection.
pub(super) struct Ledger {
    pub(super) next_id: i64,
    /// Whether the database is SQLite (see `uncounted_agents`).
    sqlite: bool,
    pub(super) reserved: i64,
    pub(super) counted_upto: i64,
    pub(super) counted_at: Instant,
    /// On SQLite, the agents that got events above `counted_upto`, so the count reads
    /// their events on an index (see `writer_marks::count_events_of`). Every event goes
    /// through this Writer there, so the set is complete once the events the last run
    /// left uncounted are counted; `None` until then, and on PostgreSQL, where other
    /// nodes insert too: the count walks the uncounted events instead.
    pub(super) uncounted_agents: Option<BTreeSet<AgentId>>,
    pub(super) watch: Option<FileWatch>,
    pub(super) gone: Option<String>,
    pub(super) reconnect: Option<Reconnect>,
}

impl Ledger {
    pub(super) fn load(conn: &mut Conn) -> Result<Ledger, StoreError> {
        let marks = writer_marks::load(conn)?;
        let max_id = events::max_id(conn)?;
        let sqlite = !conn.is_pg();
        let all_counted = max_id <= marks.events_counted_upto;
        Ok(Ledger {
            next_id: marks.event_ids_reserved.max(max_id) + 1,
            sqlite,
            reserved: marks.event_ids_reserved,
            counted_upto: marks.events_counted_upto,
            counted_at: Instant::now(),
            uncounted_agents: (all_counted && sqlite).then(BTreeSet::new),
            watch: None,
            gone: None,
            reconnect: None,
        })
    }

    /// The mark to count up to, when events above the counted one may exist.
    pub(super) fn uncounted(&self) -> Option<i64> {
        let upto = self.next_id - 1;
        (upto > self.counted_upto).then_some(upto)
    }

    /// After a batch committed: `counted` when it moved the counted mark, and the
    /// events it inserted (all above the mark it counted to).
    pub(super) fn note_committed(&mut self, counted: Option<i64>, committed: &[Committed]) {
        if let Some(upto) = counted {
            self.counted_upto = upto;
            self.uncounted_agents = self.sqlite.then(BTreeSet::new);
        }
        if let Some(agents) = &mut self.uncounted_agents {
            agents.extend(committed.iter().filter_map(|c| c.event.agent_id));
        }
    }

    /// The mark this batch counts up to, when that is due.
    pub(super) fn count_due(&self) -> Option<i64> {
        self.uncounted()
            .filter(|_| self.counted_at.elapsed() >= COUNT_EVERY)
    }
}

/// On SQLite, moves the reservation a block ahead when this batch handed out an id above
/// it (`next_id` is the next id to hand out, `reserved` the committed reservation);
/// answers the new reservation. On PostgreSQL each insert reserved its own ids in the
/// shared row, so there is nothing to do.
pub(super) fn reserve_block(
    conn: &mut Conn,
    next_id: i64,
    reserved: i64,
) -> Result<Option<i64>, StoreError> {
    if next_id - 1 <= reserved || conn.is_pg() {
        return Ok(None);
    }
    let upto = next_id - 1 + ID_BLOCK;
    writer_marks::reserve_event_ids(conn, upto)?;
    Ok(Some(upto))
}

/// Counts the events up to `upto` into their agents' rows: on the index for the
/// agents in `agents` when the Writer knows them all (see [`Ledger::uncounted_agents`]),
/// else by walking the uncounted events.
pub(super) fn count_events(
    conn: &mut Conn,
    upto: i64,
    agents: Option<&BTreeSet<AgentId>>,
) -> Result<(), StoreError> {
    match agents {
        Some(agents) => {
            let agents: Vec<AgentId> = agents.iter().copied().collect();
            writer_marks::count_events_of(conn, upto, &agents)
        }
        None => writer_marks::count_events(conn, upto),
    }
}
