//! The `idempotency_keys` table: the answer given to the first request with a key, so
//! a repeat within the window gets the same answer and creates nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::idempotency_keys;
use super::{Conn, StoreError, now};

/// Expired keys removed per insert, so the table stays bounded without a sweeper.
const PRUNE_BATCH: i64 = 100;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub id: i64,
    pub endpoint: String,
    pub idem_key: String,
    pub status: i32,
    pub body: String,
    pub content_type: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// The stored answer for `key` at `endpoint`, unless it has expired.
pub fn find(
    conn: &mut Conn,
    endpoint: &str,
    key: &str,
) -> Result<Option<IdempotencyRow>, StoreError> {
    Ok(idempotency_keys::table
        .filter(idempotency_keys::endpoint.eq(endpoint))
        .filter(idempotency_keys::idem_key.eq(key))
        .filter(idempotency_keys::expires_at.gt(now()))
        .select(IdempotencyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Claims `key` at `endpoint` for the request being written, in its transaction:
/// answers the stored answer of the request that claimed it first (a replay), or
/// `None` when this request is the first. The first must then [`answer`] (or
/// [`release`]) in the same transaction.
///
/// First wins through the table's unique `(endpoint, idem_key)`: the claim is an
/// `INSERT ... ON CONFLICT DO NOTHING`, so two requests with one key, on one node or
/// on two nodes sharing a PostgreSQL database, never both insert. A loser never sees
/// the winner in flight: on PostgreSQL the claim first takes the event-order lock
/// (`postgres::lock_event_order`) that every event-writing transaction holds until it
/// commits, so a claim waits for any transaction that might hold the same key and then
/// reads its committed answer, exactly as the single writer serializes them on one
/// node. Taking that lock before the key (never after) also keeps two nodes' batches
/// from deadlocking on a key and the lock in opposite orders.
pub fn claim(
    conn: &mut Conn,
    endpoint: &str,
    key: &str,
    window_seconds: i64,
) -> Result<Option<IdempotencyRow>, StoreError> {
    if let super::DbConn::Pg(pg) = conn {
        super::postgres::lock_event_order(pg)?;
    }
    let at = now();
    prune(conn, at)?;
    // An expired record of this key is replaced by the new claim.
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::endpoint.eq(endpoint))
            .filter(idempotency_keys::idem_key.eq(key))
            .filter(idempotency_keys::expires_at.le(at)),
    )
    .execute(conn)?;
    // A window too large to represent keeps the key as long as a date can say.
    let expires = chrono::TimeDelta::try_seconds(window_seconds.max(1))
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(chrono::NaiveDateTime::MAX);
    // Status 0 until `answer`: only this transaction can see the row before then.
    let insert = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::endpoint.eq(endpoint),
            idempotency_keys::idem_key.eq(key),
            idempotency_keys::status.eq(0),
            idempotency_keys::body.eq(""),
            idempotency_keys::content_type.eq(""),
            idempotency_keys::created_at.eq(at),
            idempotency_keys::expires_at.eq(expires),
        ))
        .on_conflict((idempotency_keys::endpoint, idempotency_keys::idem_key))
        .do_nothing();
    if crate::per_backend!(conn, |c| insert.execute(c))? == 1 {
        return Ok(None);
    }
    idempotency_keys::table
        .filter(idempotency_keys::endpoint.eq(endpoint))
        .filter(idempotency_keys::idem_key.eq(key))
        .select(IdempotencyRow::as_select())
        .first(conn)
        .optional()?
        .filter(|row| row.status != 0)
        .map(Some)
        .ok_or_else(|| {
            StoreError::Conflict(
                "a request with this idempotency key is still being handled; retry in a moment"
                    .into(),
            )
        })
}

/// Stores the answer of the request that claimed `key` (see [`claim`]).
pub fn answer(
    conn: &mut Conn,
    endpoint: &str,
    key: &str,
    status: u16,
    body: &str,
    content_type: &str,
) -> Result<(), StoreError> {
    diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::endpoint.eq(endpoint))
            .filter(idempotency_keys::idem_key.eq(key)),
    )
    .set((
        idempotency_keys::status.eq(i32::from(status)),
        idempotency_keys::body.eq(body),
        idempotency_keys::content_type.eq(content_type),
    ))
    .execute(conn)?;
    Ok(())
}

/// Gives up the claim on `key`: the request's answer is not kept (a redirect).
pub fn release(conn: &mut Conn, endpoint: &str, key: &str) -> Result<(), StoreError> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::endpoint.eq(endpoint))
            .filter(idempotency_keys::idem_key.eq(key)),
    )
    .execute(conn)?;
    Ok(())
}

/// Removes up to [`PRUNE_BATCH`] expired keys, so the table stays bounded without a
/// sweeper.
fn prune(conn: &mut Conn, at: NaiveDateTime) -> Result<(), StoreError> {
    let expired: Vec<i64> = idempotency_keys::table
        .filter(idempotency_keys::expires_at.le(at))
        .select(idempotency_keys::id)
        .limit(PRUNE_BATCH)
        .load(conn)?;
    if !expired.is_empty() {
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::id.eq_any(&expired)))
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_claim_wins_and_later_ones_read_its_answer() {
        let (_dir, mut c) = crate::store::test_conn();
        assert!(claim(&mut c, "agent:1", "k", 60).unwrap().is_none());
        answer(&mut c, "agent:1", "k", 201, "Event Created", "text/plain").unwrap();
        let again = claim(&mut c, "agent:1", "k", 60).unwrap().unwrap();
        assert_eq!((again.status, again.body.as_str()), (201, "Event Created"));
        // Another endpoint's key of the same name is its own.
        assert!(claim(&mut c, "agent:2", "k", 60).unwrap().is_none());
        // A released claim (an answer that is not kept) leaves the key free.
        release(&mut c, "agent:2", "k").unwrap();
        assert!(claim(&mut c, "agent:2", "k", 60).unwrap().is_none());
    }
}
