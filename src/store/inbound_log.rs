//! The `inbound_log` and `inbound_stats` tables: one line per request to an endpoint
//! (bounded per endpoint) and running totals per outcome. Written in batches.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{inbound_log, inbound_stats};
use super::{Cached, Conn, StoreError, Value};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inbound_log)]
pub struct InboundLogRow {
    pub id: i64,
    pub endpoint: String,
    pub received_at: NaiveDateTime,
    pub source_ip: Option<String>,
    pub method: String,
    pub status: i32,
    pub reason: Option<String>,
    pub processing_ms: i64,
    pub event_ids: String,
}

/// A log line waiting for the next batch.
#[derive(Debug, Clone)]
pub struct NewInboundLog {
    pub endpoint: String,
    pub received_at: NaiveDateTime,
    pub source_ip: Option<String>,
    pub method: String,
    pub status: u16,
    /// `None` when accepted; else a short reason key (`bad_signature`, `rate_limited`, ...).
    pub reason: Option<String>,
    /// The human-readable detail, kept with the reason.
    pub detail: Option<String>,
    pub processing_ms: i64,
    pub event_ids: Vec<i64>,
}

/// Writes a batch, updates the totals and trims each touched endpoint to `keep` lines.
/// The totals are summed per (endpoint, outcome) first: one upsert per outcome, not one
/// per line.
pub fn append(conn: &mut Conn, lines: &[NewInboundLog], keep: i64) -> Result<(), StoreError> {
    let mut touched: Vec<&str> = Vec::new();
    let mut totals: Vec<(&str, &str, i64, i64)> = Vec::new();
    for l in lines {
        let reason = match (&l.reason, &l.detail) {
            (Some(r), Some(d)) => Some(format!("{r}: {}", d.chars().take(500).collect::<String>())),
            (Some(r), None) => Some(r.clone()),
            _ => None,
        };
        let event_ids = serde_json::json!(l.event_ids).to_string();
        Cached::new(
            "INSERT INTO inbound_log (endpoint, received_at, source_ip, method, status, reason, \
             processing_ms, event_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                Value::Text(&l.endpoint),
                Value::Time(l.received_at),
                Value::OptText(l.source_ip.as_deref()),
                Value::Text(&l.method),
                Value::Int(i64::from(l.status)),
                Value::OptText(reason.as_deref()),
                Value::Int(l.processing_ms),
                Value::Text(&event_ids),
            ],
        )
        .execute(conn)?;
        let outcome = l.reason.as_deref().unwrap_or("accepted");
        match totals
            .iter_mut()
            .find(|t| t.0 == l.endpoint && t.1 == outcome)
        {
            Some(t) => {
                t.2 += 1;
                t.3 += l.processing_ms;
            }
            None => totals.push((&l.endpoint, outcome, 1, l.processing_ms)),
        }
        if !touched.contains(&l.endpoint.as_str()) {
            touched.push(&l.endpoint);
        }
    }
    for (endpoint, outcome, requests, total_ms) in totals {
        Cached::new(
            "INSERT INTO inbound_stats (endpoint, outcome, requests, total_ms) VALUES (?, ?, ?, ?) \
             ON CONFLICT (endpoint, outcome) DO UPDATE SET \
             requests = requests + excluded.requests, total_ms = total_ms + excluded.total_ms",
            vec![
                Value::Text(endpoint),
                Value::Text(outcome),
                Value::Int(requests),
                Value::Int(total_ms),
            ],
        )
        .execute(conn)?;
    }
    for endpoint in touched {
        let cutoff: Option<i64> = inbound_log::table
            .filter(inbound_log::endpoint.eq(endpoint))
            .order(inbound_log::id.desc())
            .offset(keep.max(1))
            .select(inbound_log::id)
            .first(conn)
            .optional()?;
        if let Some(cutoff) = cutoff {
            diesel::delete(
                inbound_log::table
                    .filter(inbound_log::endpoint.eq(endpoint))
                    .filter(inbound_log::id.le(cutoff)),
            )
            .execute(conn)?;
        }
    }
    Ok(())
}

/// Newest first.
pub fn list(
    conn: &mut Conn,
    endpoint: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<InboundLogRow>, StoreError> {
    Ok(inbound_log::table
        .filter(inbound_log::endpoint.eq(endpoint))
        .order(inbound_log::id.desc())
        .limit(limit)
        .offset(offset)
        .select(InboundLogRow::as_select())
        .load(conn)?)
}

/// (outcome, requests, total_ms) per outcome.
pub fn stats(conn: &mut Conn, endpoint: &str) -> Result<Vec<(String, i64, i64)>, StoreError> {
    Ok(inbound_stats::table
        .filter(inbound_stats::endpoint.eq(endpoint))
        .select((
            inbound_stats::outcome,
            inbound_stats::requests,
            inbound_stats::total_ms,
        ))
        .order(inbound_stats::outcome.asc())
        .load(conn)?)
}

/// Removes an endpoint's log and totals (when the endpoint is deleted).
pub fn delete_endpoint(conn: &mut Conn, endpoint: &str) -> Result<(), StoreError> {
    diesel::delete(inbound_log::table.filter(inbound_log::endpoint.eq(endpoint))).execute(conn)?;
    diesel::delete(inbound_stats::table.filter(inbound_stats::endpoint.eq(endpoint)))
        .execute(conn)?;
    Ok(())
}
