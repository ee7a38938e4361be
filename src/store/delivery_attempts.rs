//! The `delivery_attempts` table: one row per HTTP attempt, what was sent and what
//! came back (headers with secrets masked, bodies cut to 64 KiB).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::delivery_attempts;
use super::{Conn, StoreError, Value};
use crate::cached;
use crate::ids::{DeliveryId, SubscriptionId};

/// Longest request or response body kept in an attempt row.
pub const MAX_BODY_CHARS: usize = 64 * 1024;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = delivery_attempts)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub attempt_number: i32,
    pub started_at: NaiveDateTime,
    pub duration_ms: i64,
    pub request_headers: String,
    pub request_body: String,
    pub response_status: Option<i32>,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = delivery_attempts)]
pub struct NewAttempt {
    pub delivery_id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub attempt_number: i32,
    pub started_at: NaiveDateTime,
    pub duration_ms: i64,
    pub request_headers: String,
    pub request_body: String,
    pub response_status: Option<i32>,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

pub fn cut(s: &str) -> String {
    if s.len() <= MAX_BODY_CHARS {
        return s.to_string();
    }
    let mut end = MAX_BODY_CHARS;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Runs for every delivery attempt, so it is a cached statement (diesel re-prepares
/// inserts whose `Option` fields may be left out).
pub fn insert(conn: &mut Conn, a: &NewAttempt) -> Result<(), StoreError> {
    cached!(
        "INSERT INTO delivery_attempts (delivery_id, subscription_id, attempt_number, \
         started_at, duration_ms, request_headers, request_body, response_status, \
         response_excerpt, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            Value::Int(a.delivery_id.0),
            Value::Int(a.subscription_id.0),
            Value::Int(i64::from(a.attempt_number)),
            Value::Time(a.started_at),
            Value::Int(a.duration_ms),
            Value::Text(&a.request_headers),
            Value::Text(&a.request_body),
            Value::OptInt(a.response_status.map(i64::from)),
            Value::OptText(a.response_excerpt.as_deref()),
            Value::OptText(a.error.as_deref()),
        ],
    )
    .execute(conn)?;
    Ok(())
}

pub fn for_delivery(
    conn: &mut Conn,
    delivery_id: DeliveryId,
) -> Result<Vec<AttemptRow>, StoreError> {
    Ok(delivery_attempts::table
        .filter(delivery_attempts::delivery_id.eq(delivery_id))
        .order(delivery_attempts::id.asc())
        .select(AttemptRow::as_select())
        .load(conn)?)
}

/// Attempts of a subscription, newest first (ids below `before`), with their message
/// id and event type.
pub fn for_subscription(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
    before: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<(AttemptRow, String, String)>, StoreError> {
    use super::schema::{deliveries, events};
    Ok(delivery_attempts::table
        .inner_join(deliveries::table)
        .inner_join(events::table.on(events::id.eq(deliveries::event_id)))
        .filter(delivery_attempts::subscription_id.eq(subscription_id))
        .filter(delivery_attempts::id.lt(before))
        .order(delivery_attempts::id.desc())
        .limit(limit)
        .offset(offset)
        .select((
            AttemptRow::as_select(),
            deliveries::message_id,
            events::event_type,
        ))
        .load(conn)?)
}

/// (total, successful, average duration in ms) of a subscription's attempts.
pub fn totals(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
) -> Result<(i64, i64, f64), StoreError> {
    let total: i64 = delivery_attempts::table
        .filter(delivery_attempts::subscription_id.eq(subscription_id))
        .count()
        .get_result(conn)?;
    let ok: i64 = delivery_attempts::table
        .filter(delivery_attempts::subscription_id.eq(subscription_id))
        .filter(delivery_attempts::response_status.between(200, 299))
        .count()
        .get_result(conn)?;
    let avg: Option<f64> = delivery_attempts::table
        .filter(delivery_attempts::subscription_id.eq(subscription_id))
        .select(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Double>,
        >("AVG(CAST(duration_ms AS REAL))"))
        .first(conn)?;
    Ok((total, ok, avg.unwrap_or(0.0)))
}
