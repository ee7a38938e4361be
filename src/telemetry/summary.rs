//! The database reads behind the console's summary (`GET /api/summary`): the caller's
//! stored rows it counts (shared by the callers of one scope for a short while, so a
//! console polling every second does not read them each time), and the database's
//! size on disk.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::stats::{Stats, StoredCounts};
use crate::store::{DbConn, Store, StoreError, agents, deliveries, subscriptions};

/// The rows `scope` may see (everyone's for `None`): another user's are never read. A
/// read younger than `max_age` for the same scope is answered again.
pub async fn stored_counts(
    stats: &Stats,
    store: &Store,
    scope: Option<i64>,
    max_age: Duration,
) -> Result<Arc<StoredCounts>, StoreError> {
    if let Some(c) = stats.stored_counts(scope, max_age) {
        return Ok(c);
    }
    let counts = store
        .read(move |c| {
            Ok(StoredCounts {
                subscriptions: subscriptions::list(c, scope)?,
                open: deliveries::open_counts(c, scope)?,
                agents: agents::list(c, scope)?,
            })
        })
        .await?;
    let counts = Arc::new(counts);
    stats.keep_stored_counts(scope, counts.clone(), max_age);
    Ok(counts)
}

/// Bytes the database takes: PostgreSQL's own count when it is the store, else the
/// SQLite file and its write-ahead log (`sqlite_file`).
pub async fn database_bytes(
    store: &Store,
    postgres: bool,
    sqlite_file: &Path,
) -> Result<u64, StoreError> {
    if postgres {
        return store
            .read(|c| match c {
                DbConn::Pg(pg) => crate::store::postgres::database_bytes(pg),
                DbConn::Sqlite(_) => Ok(0),
            })
            .await;
    }
    let mut wal = sqlite_file.as_os_str().to_os_string();
    wal.push("-wal");
    Ok([sqlite_file.as_os_str().to_os_string(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum())
}
