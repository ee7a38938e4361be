//! Delivery claims: which node is sending a delivery, until when (`deliveries.claimed_by`,
//! `claim_expires_at`). Only several nodes on PostgreSQL need them; on SQLite the one
//! node owns every subscription and the single writer serializes everything.
//!
//! A node claims the due deliveries it reads in one short transaction committed before
//! any HTTP call (`FOR UPDATE SKIP LOCKED`: two nodes never wait on, or both take, the
//! same row), renews its claims while their attempts run, and an attempt's outcome
//! clears its claim. A claim that is not renewed (its node died) expires, and the
//! delivery returns to the pool for the subscription's next owner.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::deliveries::{self, DeliveryRow, PENDING, RETRYING};
use super::events::EventRow;
use super::nodes::{db_now, placeholders};
use super::schema::deliveries as d;
use super::{Conn, DbConn, StoreError};
use crate::ids::{DeliveryId, SubscriptionId};

/// What one refill read: the deliveries to send, and whether more may be due behind
/// them (the caller reads again soon rather than waiting for a push or a due time).
pub struct Claimed {
    pub rows: Vec<(DeliveryRow, EventRow)>,
    pub more: bool,
}

/// Claims up to `limit` due deliveries of `subscription_id` for `node` for `lease`
/// (those unclaimed, already `node`'s, or whose claim expired) and reads them with their
/// events, as [`deliveries::due`] orders them. An ordered subscription's queue stops at
/// its first delivery another node still holds, so order is kept across a handover.
///
/// `more` must not be judged by how many rows come back: `SKIP LOCKED` passes over rows
/// whose outcome the writer is committing at that moment, and another node may hold
/// some. Judged that way, a refill that met such rows read fewer than `limit`, the
/// actor concluded the queue was empty, and 2 743 due deliveries waited with nothing
/// left to wake them (the benchmark's PostgreSQL delivery row, session 31).
pub fn claim_due(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
    at: NaiveDateTime,
    ordered: bool,
    limit: i64,
    node: &str,
    lease: std::time::Duration,
) -> Result<Claimed, StoreError> {
    if !conn.is_pg() {
        return unclaimed_due(conn, subscription_id, at, ordered, limit, &HashSet::new());
    }
    conn.transaction(|c| {
        let now = db_now(c)?;
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let due_filter = if ordered {
            ""
        } else {
            "AND next_attempt_at <= ? "
        };
        let order = if ordered { "id" } else { "next_attempt_at, id" };
        let sql = placeholders(
            c,
            &format!(
                "UPDATE deliveries SET claimed_by = ?, claim_expires_at = ? WHERE id IN \
                 (SELECT id FROM deliveries WHERE subscription_id = ? \
                 AND status IN ('{PENDING}', '{RETRYING}') {due_filter}\
                 AND (claimed_by IS NULL OR claimed_by = ? OR claim_expires_at < ?) \
                 ORDER BY {order} LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING id"
            ),
        );
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: DeliveryId,
        }
        let q = diesel::sql_query(sql)
            .bind::<Text, _>(node)
            .bind::<Timestamp, _>(until)
            .bind::<BigInt, _>(subscription_id);
        let claimed: Vec<Id> = if ordered {
            q.bind::<Text, _>(node)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(limit)
                .load(c)?
        } else {
            q.bind::<Timestamp, _>(at)
                .bind::<Text, _>(node)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(limit)
                .load(c)?
        };
        let full = claimed.len() as i64 >= limit;
        let mine: HashSet<DeliveryId> = claimed.into_iter().map(|r| r.id).collect();
        if !ordered {
            // Read exactly what was claimed: a second "first `limit` due" read would
            // also hold the rows skipped above and miss the ones claimed past them.
            let rows = deliveries::with_events(c, &mine)?;
            let more = full || held_elsewhere(c, subscription_id, at, node)?;
            return Ok(Claimed { rows, more });
        }
        let due = deliveries::due(c, subscription_id, at, ordered, limit)?;
        let read = due.len();
        let rows: Vec<_> = due
            .into_iter()
            .take_while(|(row, _)| mine.contains(&row.id))
            .collect();
        // The head is held elsewhere (another node, or an outcome being committed):
        // look again at the next tick rather than waiting for a push.
        let more = read as i64 >= limit || rows.len() < read;
        Ok(Claimed { rows, more })
    })
}

/// The first `limit` due deliveries without claiming them (one node: SQLite), less
/// those in `held` (already in the sender's hands) when the subscription is unordered.
/// An ordered sender rebuilds its queue from what it reads, so it gets every row.
pub fn unclaimed_due(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
    at: NaiveDateTime,
    ordered: bool,
    limit: i64,
    held: &HashSet<DeliveryId>,
) -> Result<Claimed, StoreError> {
    if ordered {
        let rows = deliveries::due(conn, subscription_id, at, ordered, limit)?;
        let more = rows.len() as i64 >= limit;
        return Ok(Claimed { rows, more });
    }
    let (rows, read) = deliveries::due_unheld(conn, subscription_id, at, limit, held)?;
    Ok(Claimed {
        rows,
        more: read as i64 >= limit,
    })
}

/// Whether due deliveries of the subscription are claimed by another node: after a
/// failover, the dead node's claims. Nothing pushes when they expire, so the refill
/// must look again (each poll tick) until it has them; without this, a handover that
/// ended its load before those claims expired left them unsent (the failover test,
/// under load).
fn held_elsewhere(
    c: &mut Conn,
    subscription_id: SubscriptionId,
    at: NaiveDateTime,
    node: &str,
) -> Result<bool, StoreError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(
        d::table
            .filter(d::subscription_id.eq(subscription_id))
            .filter(d::status.eq_any([PENDING, RETRYING]))
            .filter(d::next_attempt_at.le(at))
            .filter(d::claimed_by.is_not_null())
            .filter(d::claimed_by.ne(node)),
    ))
    .get_result(c)?)
}

/// Extends `node`'s claims on `ids` by `lease` (their attempts are still running or
/// waiting in the node's window). Answers how many it still holds.
pub fn renew(
    conn: &mut Conn,
    node: &str,
    ids: &[DeliveryId],
    lease: std::time::Duration,
) -> Result<usize, StoreError> {
    if !conn.is_pg() || ids.is_empty() {
        return Ok(ids.len());
    }
    let until = db_now(conn)? + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    Ok(diesel::update(
        d::table
            .filter(d::id.eq_any(ids))
            .filter(d::claimed_by.eq(node)),
    )
    .set(d::claim_expires_at.eq(until))
    .execute(conn)?)
}

/// Clears the claim on delivery `id` (its attempt's outcome is being recorded).
pub fn clear(conn: &mut Conn, id: DeliveryId) -> Result<(), StoreError> {
    if let DbConn::Pg(_) = conn {
        diesel::update(d::table.find(id).filter(d::claimed_by.is_not_null()))
            .set((
                d::claimed_by.eq(None::<String>),
                d::claim_expires_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// How many deliveries `node` has claimed and not settled.
pub fn count_claimed(conn: &mut Conn, node: &str) -> Result<i64, StoreError> {
    Ok(d::table
        .filter(d::claimed_by.eq(node))
        .filter(d::status.eq_any([PENDING, RETRYING]))
        .count()
        .get_result(conn)?)
}
