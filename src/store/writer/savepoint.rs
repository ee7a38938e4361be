//! The savepoint rules: a write runs inside its batch's transaction, in a savepoint of
//! its own when it must not undo the others (see the writer module's comment for when).

use diesel::Connection;
use diesel::connection::TransactionManager;

use crate::cached;
use crate::store::{Conn, StoreError};

/// Runs `f` inside the batch's transaction; when `isolated`, in its own savepoint: kept
/// when it succeeds, undone when it fails, so one failing write does not undo the others.
///
/// These are cached statements rather than diesel's nested `transaction`, which sends
/// each `SAVEPOINT` through `sqlite3_exec` and so parses it again for every write.
/// `broken` is set when the savepoint cannot be closed, or a transaction `f` leaked
/// cannot be rolled back: the batch must then roll back.
pub(super) fn guarded<T>(
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
