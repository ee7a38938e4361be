//! The request log of each endpoint (bounded per endpoint) and running totals per
//! outcome (`inbound_log_chunks`, `inbound_stats`). Written in batches.
//!
//! The log is stored in chunks: one row per flush of an endpoint's buffered lines, the
//! lines a JSON array, oldest first. A row per line cost the single writer a table
//! insert, an index entry and a later delete for every request, about a sixth of its
//! time under webhook load (16 to 20 % more webhooks per second without it); a chunk
//! costs one of each per flush, and it is serialised before it reaches the writer.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::{inbound_log_chunks, inbound_stats};
use super::{Conn, StoreError, Value};
use crate::cached;
use crate::ids::AgentId;

/// Lines per chunk at most. A flush holds a few hundred lines, up to 5 000 when the
/// Writer lagged; it is split, so a chunk stays small enough to read back for one page
/// of the log.
pub const CHUNK_LINES: usize = 1000;
/// Line ids are `chunk id * LINE_ID_STRIDE + place in the chunk`: unique, and
/// increasing with time within an endpoint.
const LINE_ID_STRIDE: i64 = 10_000;

/// One logged request, as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundLogRow {
    pub id: i64,
    pub received_at: NaiveDateTime,
    pub source_ip: Option<String>,
    pub method: String,
    pub status: i32,
    /// `"<reason>: <detail>"`, `"<reason>"`, or `None` when accepted.
    pub reason: Option<String>,
    pub processing_ms: i64,
    pub event_ids: Vec<i64>,
}

/// A log line waiting for the next batch.
#[derive(Debug, Clone)]
pub struct NewInboundLog {
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

/// A line as stored in a chunk's JSON array: written as an array of its fields in
/// this order, read as that or as an object (lines written before the array form).
/// Every webhook writes one, and as an object a line was longer than the event the
/// webhook made; as an array it is half the bytes, to build and to commit.
#[derive(Debug, Deserialize)]
struct StoredLine {
    received_at: NaiveDateTime,
    source_ip: Option<String>,
    method: String,
    status: i32,
    reason: Option<String>,
    processing_ms: i64,
    event_ids: Vec<i64>,
}

impl Serialize for StoredLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (
            &self.received_at,
            &self.source_ip,
            &self.method,
            self.status,
            &self.reason,
            self.processing_ms,
            &self.event_ids,
        )
            .serialize(s)
    }
}

impl From<&NewInboundLog> for StoredLine {
    fn from(l: &NewInboundLog) -> StoredLine {
        let reason = match (&l.reason, &l.detail) {
            (Some(r), Some(d)) => Some(format!("{r}: {}", d.chars().take(500).collect::<String>())),
            (Some(r), None) => Some(r.clone()),
            _ => None,
        };
        StoredLine {
            received_at: l.received_at,
            source_ip: l.source_ip.clone(),
            method: l.method.clone(),
            status: i32::from(l.status),
            reason,
            processing_ms: l.processing_ms,
            event_ids: l.event_ids.clone(),
        }
    }
}

/// One flush of an endpoint's lines, ready for the writer: the chunks' JSON and the
/// totals per outcome, all built before the write so the writer only stores them.
#[derive(Debug, Clone)]
pub struct LogBatch {
    endpoint: String,
    /// (lines, JSON array) per chunk, oldest first.
    chunks: Vec<(i64, String)>,
    /// (outcome, requests, total_ms).
    totals: Vec<(String, i64, i64)>,
}

impl LogBatch {
    pub fn new(endpoint: &str, lines: &[NewInboundLog]) -> LogBatch {
        let chunks = lines
            .chunks(CHUNK_LINES)
            .map(|part| {
                let stored: Vec<StoredLine> = part.iter().map(StoredLine::from).collect();
                // A Vec of plain structs always serialises.
                let body = serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into());
                (part.len() as i64, body)
            })
            .collect();
        let mut totals: Vec<(String, i64, i64)> = Vec::new();
        for l in lines {
            let outcome = l.reason.as_deref().unwrap_or("accepted");
            match totals.iter_mut().find(|t| t.0 == outcome) {
                Some(t) => {
                    t.1 += 1;
                    t.2 += l.processing_ms;
                }
                None => totals.push((outcome.to_string(), 1, l.processing_ms)),
            }
        }
        LogBatch {
            endpoint: endpoint.to_string(),
            chunks,
            totals,
        }
    }
}

/// Stores a batch and adds its totals (one upsert per outcome); with `keep`, trims the
/// endpoint's log to the chunks that hold its newest `keep` lines.
pub fn append(conn: &mut Conn, batch: &LogBatch, keep: Option<i64>) -> Result<(), StoreError> {
    let endpoint = batch.endpoint.as_str();
    // An endpoint flushes its last lines as it stops, which can be after the request
    // that deleted it removed its log: those lines would never be read or trimmed.
    if !owner_exists(conn, endpoint)? {
        return Ok(());
    }
    for (lines, body) in &batch.chunks {
        cached!(
            "INSERT INTO inbound_log_chunks (endpoint, lines, body) VALUES (?, ?, ?)",
            vec![Value::Text(endpoint), Value::Int(*lines), Value::Text(body)],
        )
        .execute(conn)?;
    }
    for (outcome, requests, total_ms) in &batch.totals {
        cached!(
            "INSERT INTO inbound_stats (endpoint, outcome, requests, total_ms) VALUES (?, ?, ?, ?) \
             ON CONFLICT (endpoint, outcome) DO UPDATE SET \
             requests = inbound_stats.requests + excluded.requests, \
             total_ms = inbound_stats.total_ms + excluded.total_ms",
            vec![
                Value::Text(endpoint),
                Value::Text(outcome),
                Value::Int(*requests),
                Value::Int(*total_ms),
            ],
        )
        .execute(conn)?;
    }
    match keep {
        Some(keep) => trim(conn, endpoint, keep),
        None => Ok(()),
    }
}

/// Deletes the chunks older than those that hold the newest `keep` lines. The oldest
/// kept chunk may hold more; [`list`] shows `keep` lines at most.
fn trim(conn: &mut Conn, endpoint: &str, keep: i64) -> Result<(), StoreError> {
    let newest: Vec<(i64, i32)> = inbound_log_chunks::table
        .filter(inbound_log_chunks::endpoint.eq(endpoint))
        .order(inbound_log_chunks::id.desc())
        .select((inbound_log_chunks::id, inbound_log_chunks::lines))
        .load_iter::<(i64, i32), diesel::connection::DefaultLoadingMode>(conn)?
        .scan(0i64, |held, row| {
            let done = *held >= keep.max(1);
            if let Ok((_, lines)) = &row {
                *held += i64::from(*lines);
            }
            (!done).then_some(row)
        })
        .collect::<Result<_, _>>()?;
    if let Some((oldest_kept, _)) = newest.last() {
        diesel::delete(
            inbound_log_chunks::table
                .filter(inbound_log_chunks::endpoint.eq(endpoint))
                .filter(inbound_log_chunks::id.lt(oldest_kept)),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// The endpoint's newest lines first, skipping `offset`, at most `limit`, never past
/// the newest `keep` (the retention).
pub fn list(
    conn: &mut Conn,
    endpoint: &str,
    limit: i64,
    offset: i64,
    keep: i64,
) -> Result<Vec<InboundLogRow>, StoreError> {
    let offset = offset.max(0);
    let wanted = offset.saturating_add(limit.max(0)).min(keep.max(1));
    let mut seen = 0i64;
    let mut out = Vec::new();
    let chunks = inbound_log_chunks::table
        .filter(inbound_log_chunks::endpoint.eq(endpoint))
        .order(inbound_log_chunks::id.desc())
        .select((inbound_log_chunks::id, inbound_log_chunks::body))
        .load_iter::<(i64, String), diesel::connection::DefaultLoadingMode>(conn)?;
    for chunk in chunks {
        if seen >= wanted {
            break;
        }
        let (id, body) = chunk?;
        // One damaged chunk (edited by hand, say) must not hide the rest of the log.
        let lines: Vec<StoredLine> = match serde_json::from_str(&body) {
            Ok(lines) => lines,
            Err(e) => {
                tracing::warn!(chunk = id, endpoint, error = %e, "skipping an inbound log chunk that does not parse");
                continue;
            }
        };
        for (place, l) in lines.into_iter().enumerate().rev() {
            if seen >= wanted {
                break;
            }
            if seen >= offset {
                out.push(InboundLogRow {
                    id: id * LINE_ID_STRIDE + place as i64,
                    received_at: l.received_at,
                    source_ip: l.source_ip,
                    method: l.method,
                    status: l.status,
                    reason: l.reason,
                    processing_ms: l.processing_ms,
                    event_ids: l.event_ids,
                });
            }
            seen += 1;
        }
    }
    Ok(out)
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

/// Whether the agent or incoming webhook an endpoint key names still exists (keys of
/// another shape are kept).
fn owner_exists(conn: &mut Conn, endpoint: &str) -> Result<bool, StoreError> {
    use super::schema::{agents, incoming_webhooks};
    let id = |prefix: &str| {
        endpoint
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<i64>().ok())
    };
    Ok(if let Some(id) = id("agent:") {
        diesel::select(diesel::dsl::exists(agents::table.find(id))).get_result(conn)?
    } else if let Some(id) = id("incoming:") {
        diesel::select(diesel::dsl::exists(incoming_webhooks::table.find(id))).get_result(conn)?
    } else {
        true
    })
}

/// The log's key for webhook agent `id`'s Huginn URL.
pub fn agent_endpoint(id: AgentId) -> String {
    format!("agent:{id}")
}

/// The log's key for incoming webhook `id`.
pub fn incoming_endpoint(id: crate::ids::IncomingWebhookId) -> String {
    format!("incoming:{id}")
}

/// Removes an endpoint's log and totals (when the endpoint is deleted).
pub fn delete_endpoint(conn: &mut Conn, endpoint: &str) -> Result<(), StoreError> {
    diesel::delete(inbound_log_chunks::table.filter(inbound_log_chunks::endpoint.eq(endpoint)))
        .execute(conn)?;
    diesel::delete(inbound_stats::table.filter(inbound_stats::endpoint.eq(endpoint)))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::test_conn as conn;

    fn line(n: i64) -> NewInboundLog {
        let rejected = n % 3 == 0;
        NewInboundLog {
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

    /// A webhook agent to log for: its endpoint key.
    fn endpoint(conn: &mut Conn) -> String {
        agent_endpoint(crate::store::test_webhook_agent(conn).unwrap().id)
    }

    fn store(conn: &mut Conn, endpoint: &str, lines: impl Iterator<Item = i64>, keep: i64) {
        let lines: Vec<NewInboundLog> = lines.map(line).collect();
        append(conn, &LogBatch::new(endpoint, &lines), Some(keep)).unwrap();
    }

    /// The chunk rows stored for `endpoint`.
    fn chunks(conn: &mut Conn, endpoint: &str) -> i64 {
        inbound_log_chunks::table
            .filter(inbound_log_chunks::endpoint.eq(endpoint))
            .count()
            .get_result(conn)
            .unwrap()
    }

    fn processing_ms(rows: &[InboundLogRow]) -> Vec<i64> {
        rows.iter().map(|r| r.processing_ms).collect()
    }

    /// Each line keeps its own values, newest first, and the totals count every line once.
    #[test]
    fn a_batch_is_stored_line_by_line() {
        let (_dir, mut conn) = conn();
        let hook = endpoint(&mut conn);
        store(&mut conn, &hook, 1..=75, 1000);
        let mut rows = list(&mut conn, &hook, 1000, 0, 1000).unwrap();
        rows.reverse();
        assert_eq!(rows.len(), 75);
        for (row, n) in rows.iter().zip(1..=75i64) {
            assert_eq!(row.processing_ms, n);
            assert_eq!(row.method, "POST");
            assert_eq!(row.source_ip, (n % 2 == 0).then(|| format!("10.0.0.{n}")));
            if n % 3 == 0 {
                assert_eq!(row.status, 401);
                assert_eq!(
                    row.reason.as_deref(),
                    Some(&*format!("bad_signature: detail {n}"))
                );
                assert!(row.event_ids.is_empty());
            } else {
                assert_eq!(row.status, 201);
                assert_eq!(row.reason, None);
                assert_eq!(row.event_ids, [n, n + 1000]);
            }
        }
        let stats = stats(&mut conn, &hook).unwrap();
        let rejected: i64 = (1..=75).filter(|n| n % 3 == 0).sum();
        assert_eq!(
            stats,
            [
                ("accepted".to_string(), 50, (1..=75).sum::<i64>() - rejected),
                ("bad_signature".to_string(), 25, rejected),
            ]
        );
    }

    /// Lines are written as arrays; chunks written before, with lines as objects, are
    /// read as they were, in the same listing.
    #[test]
    fn lines_written_as_objects_are_still_read() {
        let (_dir, mut conn) = conn();
        let hook = endpoint(&mut conn);
        let old = r#"[{"received_at":"2026-11-22T10:00:00.5","source_ip":"10.0.0.9","method":"POST","status":401,"reason":"bad_signature","processing_ms":3,"event_ids":[]}]"#;
        diesel::insert_into(inbound_log_chunks::table)
            .values((
                inbound_log_chunks::endpoint.eq(&hook),
                inbound_log_chunks::lines.eq(1),
                inbound_log_chunks::body.eq(old),
            ))
            .execute(&mut conn)
            .unwrap();
        store(&mut conn, &hook, 1..=2, 1000);
        let newest: String = inbound_log_chunks::table
            .order(inbound_log_chunks::id.desc())
            .select(inbound_log_chunks::body)
            .first(&mut conn)
            .unwrap();
        assert!(newest.starts_with("[[\""), "{newest}");
        let rows = list(&mut conn, &hook, 10, 0, 1000).unwrap();
        assert_eq!(processing_ms(&rows), [2, 1, 3]);
        let oldest = &rows[2];
        assert_eq!(oldest.received_at.to_string(), "2026-11-22 10:00:00.500");
        assert_eq!(oldest.source_ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(
            (oldest.status, oldest.reason.as_deref()),
            (401, Some("bad_signature"))
        );
        assert_eq!(rows[1].event_ids, [1, 1001]);
    }

    /// A large flush is split into chunks; paging runs across them, newest first, and
    /// ids keep decreasing down the pages.
    #[test]
    fn pages_run_across_chunks_and_batches() {
        let (_dir, mut conn) = conn();
        let hook = endpoint(&mut conn);
        store(&mut conn, &hook, 1..=2500, 5000);
        store(&mut conn, &hook, 2501..=2510, 5000);
        assert_eq!(
            chunks(&mut conn, &hook),
            4,
            "1000 + 1000 + 500 lines, then 10"
        );
        let first = list(&mut conn, &hook, 20, 0, 5000).unwrap();
        assert_eq!(
            processing_ms(&first),
            (2491..=2510).rev().collect::<Vec<_>>()
        );
        let across = list(&mut conn, &hook, 5, 1508, 5000).unwrap();
        assert_eq!(processing_ms(&across), [1002, 1001, 1000, 999, 998]);
        let all = list(&mut conn, &hook, 5000, 0, 5000).unwrap();
        assert_eq!(all.len(), 2510);
        assert!(
            all.windows(2).all(|w| w[0].id > w[1].id),
            "ids fall with age"
        );
        assert!(list(&mut conn, &hook, 10, 2510, 5000).unwrap().is_empty());
    }

    /// Retention: an endpoint shows its newest `keep` lines, old chunks are deleted, and
    /// other endpoints are untouched.
    #[test]
    fn each_endpoint_keeps_only_its_newest_lines() {
        let (_dir, mut conn) = conn();
        let (one, two) = (endpoint(&mut conn), endpoint(&mut conn));
        for round in 0..5 {
            store(&mut conn, &one, (1..=6).map(|n| round * 6 + n), 4);
            store(&mut conn, &two, (1..=3).map(|n| round * 3 + n), 4);
        }
        let kept = list(&mut conn, &one, 100, 0, 4).unwrap();
        assert_eq!(processing_ms(&kept), [30, 29, 28, 27]);
        let kept = list(&mut conn, &two, 100, 0, 4).unwrap();
        assert_eq!(processing_ms(&kept), [15, 14, 13, 12]);
        assert_eq!(chunks(&mut conn, &one), 1, "6 lines hold the newest 4");
        assert_eq!(chunks(&mut conn, &two), 2, "3 + 3 lines hold the newest 4");
        delete_endpoint(&mut conn, &one).unwrap();
        assert!(list(&mut conn, &one, 100, 0, 4).unwrap().is_empty());
        assert_eq!(list(&mut conn, &two, 100, 0, 4).unwrap().len(), 4);
    }

    /// Between trims the stored chunks may hold more than the retention; a read still
    /// shows only the newest `keep` lines.
    #[test]
    fn reads_stop_at_the_retention_between_trims() {
        let (_dir, mut conn) = conn();
        let hook = endpoint(&mut conn);
        for round in 0..3 {
            let lines: Vec<NewInboundLog> = (1..=3).map(|n| line(round * 3 + n)).collect();
            append(&mut conn, &LogBatch::new(&hook, &lines), None).unwrap();
        }
        assert_eq!(chunks(&mut conn, &hook), 3, "nothing trimmed yet");
        let shown = list(&mut conn, &hook, 100, 0, 4).unwrap();
        assert_eq!(processing_ms(&shown), [9, 8, 7, 6]);
        assert_eq!(
            processing_ms(&list(&mut conn, &hook, 100, 3, 4).unwrap()),
            [6]
        );
    }

    /// A chunk that does not parse is skipped, and an offset at the end of the range
    /// of i64 is simply past the log.
    #[test]
    fn a_damaged_chunk_or_a_huge_offset_does_not_break_the_log() {
        let (_dir, mut conn) = conn();
        let hook = endpoint(&mut conn);
        store(&mut conn, &hook, 1..=2, 100);
        diesel::insert_into(inbound_log_chunks::table)
            .values((
                inbound_log_chunks::endpoint.eq(&hook),
                inbound_log_chunks::lines.eq(1),
                inbound_log_chunks::body.eq("oops"),
            ))
            .execute(&mut conn)
            .unwrap();
        store(&mut conn, &hook, 3..=3, 100);
        let shown = list(&mut conn, &hook, 10, 0, 100).unwrap();
        assert_eq!(processing_ms(&shown), [3, 2, 1]);
        assert!(
            list(&mut conn, &hook, 10, i64::MAX, 100)
                .unwrap()
                .is_empty()
        );
    }

    /// Lines an endpoint flushes after its agent was deleted (it flushes as it stops)
    /// are not stored: nothing would ever read or trim them.
    #[test]
    fn lines_of_a_deleted_endpoint_are_not_stored() {
        let (_dir, mut conn) = conn();
        let hook = endpoint(&mut conn);
        store(&mut conn, &hook, 1..=2, 100);
        let id: AgentId = hook.trim_start_matches("agent:").parse().unwrap();
        crate::store::agents::delete(&mut conn, id).unwrap();
        store(&mut conn, &hook, 3..=4, 100);
        assert_eq!(
            chunks(&mut conn, &hook),
            0,
            "the delete took the log, and nothing came after it"
        );
    }

    /// Lines logged one row each before the chunked log move into chunks, in order,
    /// with their fields.
    #[test]
    fn the_migration_moves_old_lines_into_chunks() {
        use diesel_migrations::MigrationHarness;
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let mut conn = crate::store::establish(&config.store_options()).unwrap();
        // The five migrations before the chunked log.
        for _ in 0..5 {
            conn.run_next_migration(crate::store::connection::MIGRATIONS)
                .unwrap();
        }
        diesel::sql_query(
            "INSERT INTO inbound_log (endpoint, received_at, source_ip, method, status, reason, \
             processing_ms, event_ids) VALUES \
             ('agent:3', '2026-11-20 10:00:00.250', '10.0.0.1', 'POST', 201, NULL, 4, '[7,8]'), \
             ('agent:3', '2026-11-20 10:00:01', NULL, 'GET', 401, 'bad_secret: wrong', 1, '[]'), \
             ('incoming:1', '2026-11-20 10:00:02', NULL, 'POST', 202, NULL, 2, '[9]')",
        )
        .execute(&mut conn)
        .unwrap();
        crate::store::migrate(&mut conn).unwrap();
        let rows = list(&mut conn, "agent:3", 10, 0, 1000).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].status, 401);
        assert_eq!(rows[0].reason.as_deref(), Some("bad_secret: wrong"));
        assert_eq!(rows[0].method, "GET");
        assert_eq!(rows[1].source_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(rows[1].event_ids, [7, 8]);
        assert_eq!(
            rows[1].received_at.to_string(),
            "2026-11-20 10:00:00.250",
            "the time survives the move"
        );
        assert_eq!(
            list(&mut conn, "incoming:1", 10, 0, 1000).unwrap()[0].event_ids,
            [9]
        );
    }
}
