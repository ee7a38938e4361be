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

/// Claims up to `limit` due deliveries of `subscription_id` for `node` for `lease`
/// (those unclaimed, already `node`'s, or whose claim expired) and reads them with their
/// events, as [`deliveries::due`] orders them. An ordered subscription's queue stops at
/// its first delivery another node still holds, so order is kept across a handover.
pub fn claim_due(
    conn: &mut Conn,
    subscription_id: i64,
    at: NaiveDateTime,
    ordered: bool,
    limit: i64,
    node: &str,
    lease: std::time::Duration,
) -> Result<Vec<(DeliveryRow, EventRow)>, StoreError> {
    if !conn.is_pg() {
        return deliveries::due(conn, subscription_id, at, ordered, limit);
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
            id: i64,
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
        let mine: HashSet<i64> = claimed.into_iter().map(|r| r.id).collect();
        let rows = deliveries::due(c, subscription_id, at, ordered, limit)?;
        Ok(if ordered {
            rows.into_iter()
                .take_while(|(row, _)| mine.contains(&row.id))
                .collect()
        } else {
            rows.into_iter()
                .filter(|(row, _)| mine.contains(&row.id))
                .collect()
        })
    })
}

/// Extends `node`'s claims on `ids` by `lease` (their attempts are still running or
/// waiting in the node's window). Answers how many it still holds.
pub fn renew(
    conn: &mut Conn,
    node: &str,
    ids: &[i64],
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
pub fn clear(conn: &mut Conn, id: i64) -> Result<(), StoreError> {
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
