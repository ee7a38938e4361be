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

/// Records the answer to `key` (replacing an expired record), and prunes some expired keys.
pub fn insert(
    conn: &mut Conn,
    endpoint: &str,
    key: &str,
    status: u16,
    body: &str,
    content_type: &str,
    window_seconds: i64,
) -> Result<(), StoreError> {
    let at = now();
    // A window too large to represent keeps the key as long as a date can say.
    let expires = chrono::TimeDelta::try_seconds(window_seconds.max(1))
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(chrono::NaiveDateTime::MAX);
    let expired: Vec<i64> = idempotency_keys::table
        .filter(idempotency_keys::expires_at.le(at))
        .select(idempotency_keys::id)
        .limit(PRUNE_BATCH)
        .load(conn)?;
    if !expired.is_empty() {
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::id.eq_any(&expired)))
            .execute(conn)?;
    }
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::endpoint.eq(endpoint))
            .filter(idempotency_keys::idem_key.eq(key)),
    )
    .execute(conn)?;
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::endpoint.eq(endpoint),
            idempotency_keys::idem_key.eq(key),
            idempotency_keys::status.eq(i32::from(status)),
            idempotency_keys::body.eq(body),
            idempotency_keys::content_type.eq(content_type),
            idempotency_keys::created_at.eq(at),
            idempotency_keys::expires_at.eq(expires),
        ))
        .execute(conn)?;
    Ok(())
}
