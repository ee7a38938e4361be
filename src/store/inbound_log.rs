//! The `inbound_log` and `inbound_stats` tables: one line per request to an endpoint
//! (bounded per endpoint) and running totals per outcome. Written in batches.

use std::sync::LazyLock;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{inbound_log, inbound_stats};
use super::{Cached, Conn, Statement, StoreError, Value};
use crate::cached;

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

/// Rows per multi-row `INSERT`, largest first: a batch of lines is written as a few
/// statements instead of one per line. Under webhook load SQLite's cost per statement
/// (starting it, opening the table and index cursors, the AUTOINCREMENT bookkeeping,
/// ending it) was larger than its cost per row. A fixed set of sizes keeps every
/// statement's text constant, so each is prepared once.
const CHUNK_ROWS: [usize; 3] = [64, 8, 1];

/// The `INSERT` text for each size in [`CHUNK_ROWS`].
static INSERT_SQL: LazyLock<[String; 3]> = LazyLock::new(|| {
    CHUNK_ROWS.map(|rows| {
        let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
        format!(
            "INSERT INTO inbound_log (endpoint, received_at, source_ip, method, status, reason, \
             processing_ms, event_ids) VALUES {}",
            vec![row; rows].join(", ")
        )
    })
});

/// The statement that inserts `CHUNK_ROWS[N]` lines.
struct InsertLines<const N: usize>;

impl<const N: usize> Statement for InsertLines<N> {
    fn sql() -> &'static str {
        &INSERT_SQL[N]
    }
}

/// Inserts `chunk`, whose length is `CHUNK_ROWS[N]`.
fn insert_chunk<const N: usize>(
    conn: &mut Conn,
    chunk: &[(&NewInboundLog, &(Option<String>, String))],
) -> Result<(), StoreError> {
    let mut values = Vec::with_capacity(chunk.len() * 8);
    for (l, (reason, event_ids)) in chunk {
        values.extend([
            Value::Text(&l.endpoint),
            Value::Time(l.received_at),
            Value::OptText(l.source_ip.as_deref()),
            Value::Text(&l.method),
            Value::Int(i64::from(l.status)),
            Value::OptText(reason.as_deref()),
            Value::Int(l.processing_ms),
            Value::Text(event_ids),
        ]);
    }
    Cached::<InsertLines<N>>::new(values).execute(conn)?;
    Ok(())
}

/// Writes a batch, updates the totals and trims each touched endpoint to `keep` lines.
/// The totals are summed per (endpoint, outcome) first: one upsert per outcome, not one
/// per line.
pub fn append(conn: &mut Conn, lines: &[NewInboundLog], keep: i64) -> Result<(), StoreError> {
    let mut touched: Vec<&str> = Vec::new();
    let mut totals: Vec<(&str, &str, i64, i64)> = Vec::new();
    // What each line stores beyond its fields, built first so the rows can borrow it.
    let extra: Vec<(Option<String>, String)> = lines
        .iter()
        .map(|l| {
            let reason = match (&l.reason, &l.detail) {
                (Some(r), Some(d)) => {
                    Some(format!("{r}: {}", d.chars().take(500).collect::<String>()))
                }
                (Some(r), None) => Some(r.clone()),
                _ => None,
            };
            (reason, serde_json::json!(l.event_ids).to_string())
        })
        .collect();
    let rows: Vec<_> = lines.iter().zip(&extra).collect();
    let mut rest = &rows[..];
    // The largest size that fits what is left, until nothing is.
    while let Some(size) = CHUNK_ROWS.iter().position(|&n| rest.len() >= n) {
        let (chunk, after) = rest.split_at(CHUNK_ROWS[size]);
        match size {
            0 => insert_chunk::<0>(conn, chunk)?,
            1 => insert_chunk::<1>(conn, chunk)?,
            _ => insert_chunk::<2>(conn, chunk)?,
        }
        rest = after;
    }
    for l in lines {
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
        cached!(
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::test_conn as conn;

    fn line(endpoint: &str, n: i64) -> NewInboundLog {
        let rejected = n % 3 == 0;
        NewInboundLog {
            endpoint: endpoint.into(),
            received_at: crate::store::now(),
            source_ip: (n % 2 == 0).then(|| format!("10.0.0.{n}")),
            method: "POST".into(),
            status: if rejected { 401 } else { 201 },
            reason: rejected.then(|| "bad_signature".into()),
            detail: rejected.then(|| format!("detail {n}")),
            processing_ms: n,
            event_ids: if rejected { vec![] } else { vec![n, n + 1000] },
        }
    }

    /// 75 lines go out as chunks of 64, 8, 1, 1 and 1 rows; each row keeps its own
    /// values, in order, and the totals count every line once.
    #[test]
    fn a_batch_is_stored_line_by_line_in_order_whatever_its_chunking() {
        let (_dir, mut conn) = conn();
        let lines: Vec<NewInboundLog> = (1..=75).map(|n| line("agent:1", n)).collect();
        append(&mut conn, &lines, 1000).unwrap();
        let mut rows = list(&mut conn, "agent:1", 1000, 0).unwrap();
        rows.reverse();
        assert_eq!(rows.len(), 75);
        for (row, n) in rows.iter().zip(1..=75i64) {
            assert_eq!(row.processing_ms, n);
            assert_eq!(row.source_ip, (n % 2 == 0).then(|| format!("10.0.0.{n}")));
            if n % 3 == 0 {
                assert_eq!(row.status, 401);
                assert_eq!(
                    row.reason.as_deref(),
                    Some(&*format!("bad_signature: detail {n}"))
                );
                assert_eq!(row.event_ids, "[]");
            } else {
                assert_eq!(row.status, 201);
                assert_eq!(row.reason, None);
                assert_eq!(row.event_ids, format!("[{n},{}]", n + 1000));
            }
        }
        let stats = stats(&mut conn, "agent:1").unwrap();
        let rejected: i64 = (1..=75).filter(|n| n % 3 == 0).sum();
        assert_eq!(
            stats,
            [
                ("accepted".to_string(), 50, (1..=75).sum::<i64>() - rejected),
                ("bad_signature".to_string(), 25, rejected),
            ]
        );
    }

    #[test]
    fn each_endpoint_keeps_only_its_newest_lines() {
        let (_dir, mut conn) = conn();
        let lines: Vec<NewInboundLog> = (1..=30)
            .map(|n| line(if n % 2 == 0 { "agent:1" } else { "agent:2" }, n))
            .collect();
        append(&mut conn, &lines, 4).unwrap();
        let kept: Vec<i64> = list(&mut conn, "agent:1", 100, 0)
            .unwrap()
            .iter()
            .map(|r| r.processing_ms)
            .collect();
        assert_eq!(kept, [30, 28, 26, 24]);
        assert_eq!(list(&mut conn, "agent:2", 100, 0).unwrap().len(), 4);
    }
}
