//! What only the PostgreSQL writer does: tell the other nodes of a batch's events.

use std::sync::atomic::Ordering;

use super::emitted::Committed;
use super::health::WriterStats;
use crate::store::{Conn, DbConn, StoreError, listen};

/// Sends the batch's notification inside its transaction, so other nodes learn of its
/// events on commit (see `listen`), and records the writer connection's backend process
/// id, by which the node's own listener skips it. Nothing on SQLite or for a batch
/// without events.
pub(super) fn notify_batch(
    conn: &mut Conn,
    committed: &[Committed],
    stats: &WriterStats,
) -> Result<(), StoreError> {
    if let DbConn::Pg(pg) = conn
        && let Some(high) = committed.iter().map(|e| e.event.id).max()
    {
        let pid = listen::notify(pg, high)?;
        stats.pg_pid.store(pid, Ordering::Relaxed);
    }
    Ok(())
}
