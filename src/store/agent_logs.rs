//! The `agent_logs` table: what an agent did and what went wrong, newest kept.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::agent_logs;
use super::{Conn, StoreError, now};
use crate::ids::{AgentId, EventId};

/// Huginn's levels: 3 is an ordinary log line, 4 an error.
pub const LEVEL_INFO: i32 = 3;
pub const LEVEL_ERROR: i32 = 4;

/// Longest message kept; longer ones are cut (Huginn keeps 10,000 characters).
const MAX_MESSAGE_CHARS: usize = 10_000;

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = agent_logs)]
pub struct AgentLogRow {
    pub id: i64,
    pub agent_id: AgentId,
    pub level: i32,
    pub message: String,
    pub inbound_event_id: Option<EventId>,
    pub outbound_event_id: Option<EventId>,
    pub created_at: NaiveDateTime,
}

/// A log line waiting to be written.
#[derive(Debug, Clone)]
pub struct NewLog {
    pub level: i32,
    pub message: String,
    pub inbound_event_id: Option<EventId>,
}

/// Appends lines for `agent_id`, then trims the agent's log to its newest `keep` lines.
/// An error line also sets the agent's `last_error_at`.
pub fn append(
    conn: &mut Conn,
    agent_id: AgentId,
    lines: &[NewLog],
    keep: i64,
) -> Result<(), StoreError> {
    if lines.is_empty() {
        return Ok(());
    }
    let at = now();
    for line in lines {
        let message: String = line.message.chars().take(MAX_MESSAGE_CHARS).collect();
        diesel::insert_into(agent_logs::table)
            .values((
                agent_logs::agent_id.eq(agent_id),
                agent_logs::level.eq(line.level),
                agent_logs::message.eq(message),
                agent_logs::inbound_event_id.eq(line.inbound_event_id),
                agent_logs::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    if lines.iter().any(|l| l.level >= LEVEL_ERROR) {
        super::agents::note_error(conn, agent_id, at)?;
    }
    let cutoff: Option<i64> = agent_logs::table
        .filter(agent_logs::agent_id.eq(agent_id))
        .order(agent_logs::id.desc())
        .offset(keep)
        .select(agent_logs::id)
        .first(conn)
        .optional()?;
    if let Some(cutoff) = cutoff {
        diesel::delete(
            agent_logs::table
                .filter(agent_logs::agent_id.eq(agent_id))
                .filter(agent_logs::id.le(cutoff)),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// The newest `limit` lines of an agent, newest first.
pub fn recent(
    conn: &mut Conn,
    agent_id: AgentId,
    limit: i64,
) -> Result<Vec<AgentLogRow>, StoreError> {
    Ok(agent_logs::table
        .filter(agent_logs::agent_id.eq(agent_id))
        .order(agent_logs::id.desc())
        .limit(limit)
        .select(AgentLogRow::as_select())
        .load(conn)?)
}

/// A page of an agent's lines, newest first: ids below `before`, at most `limit`.
pub fn page(
    conn: &mut Conn,
    agent_id: AgentId,
    before: i64,
    limit: i64,
) -> Result<Vec<AgentLogRow>, StoreError> {
    Ok(agent_logs::table
        .filter(agent_logs::agent_id.eq(agent_id))
        .filter(agent_logs::id.lt(before))
        .order(agent_logs::id.desc())
        .limit(limit)
        .select(AgentLogRow::as_select())
        .load(conn)?)
}

/// Error lines written since `since` by `user_id`'s agents (for /worker_status, which
/// shows a user only their own work).
pub fn count_errors_since(
    conn: &mut Conn,
    user_id: i64,
    since: NaiveDateTime,
) -> Result<i64, StoreError> {
    use super::schema::agents;
    Ok(agent_logs::table
        .inner_join(agents::table)
        .filter(agents::user_id.eq(user_id))
        .filter(agent_logs::level.ge(LEVEL_ERROR))
        .filter(agent_logs::created_at.gt(since))
        .count()
        .get_result(conn)?)
}
