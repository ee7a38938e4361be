//! The `writer_marks` row: how far the Writer has reserved event ids, and up to which
//! event the agents' `events_count` and `last_event_at` are counted.
//!
//! Both used to be kept by every commit (an AUTOINCREMENT sequence and an update of
//! the emitting agent's row). Under webhook load those were two of a commit's eight
//! WAL pages; now the reservation is written once per [`ID_BLOCK`] ids and the counts
//! about once a second (see the Writer).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamp};

use super::schema::writer_marks;
use super::{Conn, StoreError, Value};
use crate::cached;
use crate::ids::AgentId;

/// How many event ids one reservation covers: one page write per this many events.
pub const ID_BLOCK: i64 = 1000;

#[derive(Debug, Clone, Copy, Queryable, Selectable)]
#[diesel(table_name = writer_marks)]
pub struct Marks {
    /// No event id at or below this may be handed out by a Writer that has not read it.
    pub event_ids_reserved: i64,
    /// Agents' counts include exactly the events with ids up to this.
    pub events_counted_upto: i64,
}

pub fn load(conn: &mut Conn) -> Result<Marks, StoreError> {
    Ok(writer_marks::table
        .find(1)
        .select(Marks::as_select())
        .first(conn)?)
}

/// Rewrites the row as it is: a write that reaches the disk (SQLite writes a page for
/// an UPDATE even when nothing changes), so `/healthz` can learn whether writes work
/// again after they failed.
pub fn touch(conn: &mut Conn) -> Result<(), StoreError> {
    cached!(
        "UPDATE writer_marks SET event_ids_reserved = event_ids_reserved WHERE id = 1",
        Vec::new(),
    )
    .execute(conn)?;
    Ok(())
}

/// Records that ids up to `upto` may have been handed out.
pub fn reserve_event_ids(conn: &mut Conn, upto: i64) -> Result<(), StoreError> {
    cached!(
        "UPDATE writer_marks SET event_ids_reserved = ? WHERE id = 1 AND event_ids_reserved < ?",
        vec![Value::Int(upto), Value::Int(upto)],
    )
    .execute(conn)?;
    Ok(())
}

/// Adds the events above the counted mark and up to `upto` to their agents'
/// `events_count` and `last_event_at`, and moves the mark to `upto`. Counted from the
/// table rather than from memory, so events deleted meanwhile are not counted and a
/// restart after a crash loses no count.
pub fn count_events(conn: &mut Conn, upto: i64) -> Result<(), StoreError> {
    if conn.is_pg() {
        // GREATEST skips a NULL; SQLite's two-argument max() does not, hence its
        // coalesce to '' (which sorts below every time).
        cached!(
            "UPDATE agents SET events_count = events_count + uncounted.n, \
             last_event_at = GREATEST(last_event_at, uncounted.newest) \
             FROM (SELECT agent_id, count(*) AS n, max(created_at) AS newest FROM events \
                   WHERE id > (SELECT events_counted_upto FROM writer_marks WHERE id = 1) \
                   AND id <= ? AND agent_id IS NOT NULL GROUP BY agent_id) AS uncounted \
             WHERE agents.id = uncounted.agent_id",
            vec![Value::Int(upto)],
        )
        .execute(conn)?;
    } else {
        cached!(
            "UPDATE agents SET events_count = events_count + uncounted.n, \
             last_event_at = max(coalesce(last_event_at, ''), uncounted.newest) \
             FROM (SELECT agent_id, count(*) AS n, max(created_at) AS newest FROM events \
                   WHERE id > (SELECT events_counted_upto FROM writer_marks WHERE id = 1) \
                   AND id <= ? AND agent_id IS NOT NULL GROUP BY agent_id) AS uncounted \
             WHERE agents.id = uncounted.agent_id",
            vec![Value::Int(upto)],
        )
        .execute(conn)?;
    }
    move_counted_mark(conn, upto)
}

fn move_counted_mark(conn: &mut Conn, upto: i64) -> Result<(), StoreError> {
    cached!(
        "UPDATE writer_marks SET events_counted_upto = ? WHERE id = 1 AND events_counted_upto < ?",
        vec![Value::Int(upto), Value::Int(upto)],
    )
    .execute(conn)?;
    Ok(())
}

/// [`count_events`] for the agents in `agents` only, on SQLite: the Writer knows
/// which agents its commits gave events since the last count, so each agent's events
/// are counted on `events_agent_id` (ids and agent ids, no row) rather than by
/// walking the events themselves. The walk read every uncounted event's row, payload
/// and all: about a second of them, 25 000 events of 2 KB, 50-65 ms inside a batch,
/// and every webhook of that batch and behind it waited (the 2 KB ingest's p99.9 of
/// 40-60 ms). Counted from the table all the same, so events deleted meanwhile are
/// not counted. An agent's newest time is its newest event's.
pub fn count_events_of(conn: &mut Conn, upto: i64, agents: &[AgentId]) -> Result<(), StoreError> {
    // The ids as a JSON array, which `json_each` reads: one cached statement for any
    // number of agents.
    let ids: Vec<String> = agents.iter().map(|a| i64::from(*a).to_string()).collect();
    let ids = format!("[{}]", ids.join(","));
    cached!(
        "UPDATE agents SET events_count = events_count + uncounted.n, \
         last_event_at = max(coalesce(last_event_at, ''), uncounted.newest) \
         FROM (SELECT listed.value AS agent_id, \
                 (SELECT count(*) FROM events WHERE agent_id = listed.value \
                  AND id > mark.at AND id <= ?) AS n, \
                 (SELECT created_at FROM events WHERE agent_id = listed.value \
                  AND id > mark.at AND id <= ? ORDER BY id DESC LIMIT 1) AS newest \
               FROM json_each(?) AS listed, \
                 (SELECT events_counted_upto AS at FROM writer_marks WHERE id = 1) AS mark) \
              AS uncounted \
         WHERE agents.id = uncounted.agent_id AND uncounted.n > 0",
        vec![Value::Int(upto), Value::Int(upto), Value::Text(&ids)],
    )
    .execute(conn)?;
    move_counted_mark(conn, upto)
}

/// Events an agent emitted that its row does not count yet.
#[derive(Debug, QueryableByName)]
pub struct Uncounted {
    #[diesel(sql_type = BigInt)]
    pub agent_id: AgentId,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub newest: Option<NaiveDateTime>,
}

/// The events above the counted mark, per agent: of `agent` alone (an index range), or
/// of every agent (at most about a second of events, when the Writer is busy).
pub fn uncounted(conn: &mut Conn, agent: Option<AgentId>) -> Result<Vec<Uncounted>, StoreError> {
    const COUNTED: &str = "(SELECT events_counted_upto FROM writer_marks WHERE id = 1)";
    let rows = match agent {
        Some(id) => {
            // The placeholder is the backend's own: raw SQL is passed as written.
            let param = if conn.is_pg() { "$1" } else { "?" };
            diesel::sql_query(format!(
                "SELECT agent_id, count(*) AS n, max(created_at) AS newest FROM events \
                 WHERE agent_id = {param} AND id > {COUNTED} GROUP BY agent_id"
            ))
            .bind::<BigInt, _>(id)
            .load(conn)?
        }
        // On SQLite the `+` keeps `events_agent_id` out of the plan: without it the
        // planner walked that index from end to end (every event with an agent, a
        // third of a second at a million events, on each agent listing) to save
        // sorting the few rows above the mark; with it, it reads the ids above the
        // mark. PostgreSQL weighs the two by its statistics, and would not take
        // `agent_id` for `+agent_id` in the GROUP BY.
        None if conn.is_pg() => diesel::sql_query(format!(
            "SELECT agent_id, count(*) AS n, max(created_at) AS newest FROM events \
             WHERE id > {COUNTED} AND agent_id IS NOT NULL GROUP BY agent_id"
        ))
        .load(conn)?,
        None => diesel::sql_query(format!(
            "SELECT agent_id, count(*) AS n, max(created_at) AS newest FROM events \
             WHERE id > {COUNTED} AND +agent_id IS NOT NULL GROUP BY +agent_id"
        ))
        .load(conn)?,
    };
    Ok(rows)
}

/// The number of `agent`'s events that its row counts (those up to the mark).
pub fn counted_events_of(conn: &mut Conn, agent: AgentId) -> Result<i64, StoreError> {
    let sql = if conn.is_pg() {
        "SELECT count(*) AS n FROM events WHERE agent_id = $1 \
         AND id <= (SELECT events_counted_upto FROM writer_marks WHERE id = 1)"
    } else {
        "SELECT count(*) AS n FROM events WHERE agent_id = ? \
         AND id <= (SELECT events_counted_upto FROM writer_marks WHERE id = 1)"
    };
    Ok(diesel::sql_query(sql)
        .bind::<BigInt, _>(agent)
        .get_result::<Count>(conn)?
        .n)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}
