//! The `agents` table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{agent_logs, agents, events, links};
use super::{Conn, StoreError, Value, from_json_text, now};
use crate::cached;
use crate::ids::AgentId;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = agents)]
pub struct AgentRow {
    pub id: AgentId,
    pub user_id: i64,
    pub agent_type: String,
    pub name: String,
    pub options: String,
    pub memory: String,
    pub schedule: Option<String>,
    pub disabled: bool,
    pub keep_events_for: i64,
    pub propagate_immediately: bool,
    pub guid: String,
    pub events_count: i64,
    pub last_checked_event_id: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_check_at: Option<NaiveDateTime>,
    pub last_receive_at: Option<NaiveDateTime>,
    pub last_event_at: Option<NaiveDateTime>,
    pub last_error_at: Option<NaiveDateTime>,
    pub last_web_request_at: Option<NaiveDateTime>,
}

impl AgentRow {
    pub fn options_json(&self) -> Result<serde_json::Value, StoreError> {
        from_json_text(&self.options, "agents.options")
    }

    pub fn memory_json(&self) -> Result<serde_json::Value, StoreError> {
        from_json_text(&self.memory, "agents.memory")
    }
}

/// The columns a caller chooses when creating an agent.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub user_id: i64,
    pub agent_type: String,
    pub name: String,
    pub options: String,
    pub schedule: Option<String>,
    pub disabled: bool,
    pub keep_events_for: i64,
    pub propagate_immediately: bool,
    /// Kept when given (scenario imports); a new one otherwise.
    pub guid: Option<String>,
}

/// The columns a caller may change; `None` leaves a column as it is.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = agents)]
pub struct AgentChanges {
    pub name: Option<String>,
    pub options: Option<String>,
    pub schedule: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub keep_events_for: Option<i64>,
    pub propagate_immediately: Option<bool>,
}

pub fn insert(conn: &mut Conn, new: &NewAgent) -> Result<AgentRow, StoreError> {
    let at = now();
    let newest_event = super::events::max_id(conn)?;
    Ok(diesel::insert_into(agents::table)
        .values((
            agents::user_id.eq(new.user_id),
            agents::agent_type.eq(&new.agent_type),
            agents::name.eq(&new.name),
            agents::options.eq(&new.options),
            agents::memory.eq("{}"),
            agents::schedule.eq(&new.schedule),
            agents::disabled.eq(new.disabled),
            agents::keep_events_for.eq(new.keep_events_for),
            agents::propagate_immediately.eq(new.propagate_immediately),
            agents::guid.eq(new
                .guid
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())),
            // A new agent does not receive events older than itself (Huginn).
            agents::last_checked_event_id.eq(newest_event),
            agents::created_at.eq(at),
            agents::updated_at.eq(at),
        ))
        .returning(crate::store::backend::columns::<AgentRow>())
        .get_result::<AgentRow>(conn)?)
}

/// The agent with `guid` if `scope` may see it (its owner's id, or `None` for an
/// admin). Ownership is part of the query, as in [`find_owned`].
pub fn find_by_guid_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    guid: &str,
) -> Result<Option<AgentRow>, StoreError> {
    one_snapshot(conn, |c| {
        let mut q = agents::table
            .filter(agents::guid.eq(guid))
            .select(AgentRow::as_select())
            .into_boxed();
        if let Some(uid) = scope {
            q = q.filter(agents::user_id.eq(uid));
        }
        let row = q.first(c).optional()?;
        row.map(|r| counted(c, r)).transpose()
    })
}

/// Whether any agent, of any user, has `guid` (guids are unique across users); the
/// answer names no row.
pub fn guid_taken(conn: &mut Conn, guid: &str) -> Result<bool, StoreError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(agents::table.filter(agents::guid.eq(guid)))).get_result(conn)?)
}

pub fn update(
    conn: &mut Conn,
    id: AgentId,
    changes: &AgentChanges,
) -> Result<AgentRow, StoreError> {
    let row = diesel::update(agents::table.find(id))
        .set((changes, agents::updated_at.eq(now())))
        .returning(crate::store::backend::columns::<AgentRow>())
        .get_result::<AgentRow>(conn)?;
    counted(conn, row)
}

pub fn find(conn: &mut Conn, id: AgentId) -> Result<Option<AgentRow>, StoreError> {
    one_snapshot(conn, |c| {
        let row = agents::table
            .find(id)
            .select(AgentRow::as_select())
            .first(c)
            .optional()?;
        row.map(|r| counted(c, r)).transpose()
    })
}

/// The agent `id` if `scope` may see it: its owner's id, or `None` for an admin who
/// sees every agent. Ownership is part of the query, so a caller never holds a row it
/// may not see.
pub fn find_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    id: AgentId,
) -> Result<Option<AgentRow>, StoreError> {
    one_snapshot(conn, |c| {
        let mut q = agents::table
            .filter(agents::id.eq(id))
            .select(AgentRow::as_select())
            .into_boxed();
        if let Some(uid) = scope {
            q = q.filter(agents::user_id.eq(uid));
        }
        let row = q.first(c).optional()?;
        row.map(|r| counted(c, r)).transpose()
    })
}

/// All agents of `user_id`, or of everyone when `None`.
pub fn list(conn: &mut Conn, user_id: Option<i64>) -> Result<Vec<AgentRow>, StoreError> {
    let mut q = agents::table.select(AgentRow::as_select()).into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(agents::user_id.eq(uid));
    }
    one_snapshot(conn, |c| {
        let mut rows: Vec<AgentRow> = q.order(agents::id.asc()).load(c)?;
        let uncounted = super::writer_marks::uncounted(c, None)?;
        if !uncounted.is_empty() {
            let index: std::collections::HashMap<AgentId, usize> =
                rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
            for u in uncounted {
                if let Some(&i) = index.get(&u.agent_id) {
                    add_uncounted(&mut rows[i], &u);
                }
            }
        }
        Ok(rows)
    })
}

/// One page of [`list`]: ids above `after`, at most `limit`, with the same uncounted
/// work added.
pub fn page(
    conn: &mut Conn,
    user_id: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<AgentRow>, StoreError> {
    let mut q = agents::table
        .select(AgentRow::as_select())
        .filter(agents::id.gt(after))
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(agents::user_id.eq(uid));
    }
    one_snapshot(conn, |c| {
        let mut rows: Vec<AgentRow> = q.order(agents::id.asc()).limit(limit).load(c)?;
        for u in super::writer_marks::uncounted(c, None)? {
            if let Some(row) = rows.iter_mut().find(|r| r.id == u.agent_id) {
                add_uncounted(row, &u);
            }
        }
        Ok(rows)
    })
}

/// Runs `f`'s reads in one transaction. A reader outside one gets a snapshot per
/// statement, and an agent's row and the events above the counted mark must come from
/// the same one: a count committed between them would be missed by both.
fn one_snapshot<T>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.transaction(f)
}

/// `row` with the events the Writer has not yet counted into it (see
/// [`super::writer_marks`]): every read of an agent shows exact figures.
fn counted(conn: &mut Conn, mut row: AgentRow) -> Result<AgentRow, StoreError> {
    for u in super::writer_marks::uncounted(conn, Some(row.id))? {
        add_uncounted(&mut row, &u);
    }
    Ok(row)
}

fn add_uncounted(row: &mut AgentRow, u: &super::writer_marks::Uncounted) {
    row.events_count += u.n;
    row.last_event_at = row.last_event_at.max(u.newest);
}

/// Deletes the agent with its links, logs and events; returns the deleted row.
pub fn delete(conn: &mut Conn, id: AgentId) -> Result<AgentRow, StoreError> {
    let row = find(conn, id)?.ok_or(StoreError::NotFound("agent"))?;
    diesel::delete(events::table.filter(events::agent_id.eq(id))).execute(conn)?;
    diesel::delete(agent_logs::table.filter(agent_logs::agent_id.eq(id))).execute(conn)?;
    super::inbound_log::delete_endpoint(conn, &super::inbound_log::agent_endpoint(id))?;
    diesel::delete(links::table.filter(links::source_id.eq(id).or(links::receiver_id.eq(id))))
        .execute(conn)?;
    super::control_links::delete_for_agent(conn, id)?;
    if let Some(sub) = super::subscriptions::owned_by(conn, id)? {
        super::subscriptions::delete(conn, sub.id)?;
    }
    diesel::delete(agents::table.find(id)).execute(conn)?;
    Ok(row)
}

/// Records that the agent has handled every event up to `event_id` it was sent.
/// Runs for every batch an agent handles, so it is a cached statement.
pub fn note_received(conn: &mut Conn, id: AgentId, event_id: i64) -> Result<(), StoreError> {
    cached!(
        "UPDATE agents SET last_checked_event_id = ?, last_receive_at = ? \
         WHERE id = ? AND last_checked_event_id < ?",
        vec![
            Value::Int(event_id),
            Value::Time(now()),
            Value::Int(id.0),
            Value::Int(event_id),
        ],
    )
    .execute(conn)?;
    Ok(())
}

pub fn note_checked(conn: &mut Conn, id: AgentId) -> Result<(), StoreError> {
    diesel::update(agents::table.find(id))
        .set(agents::last_check_at.eq(now()))
        .execute(conn)?;
    Ok(())
}

pub fn note_web_request(conn: &mut Conn, id: AgentId, at: NaiveDateTime) -> Result<(), StoreError> {
    diesel::update(agents::table.find(id))
        .set(agents::last_web_request_at.eq(at))
        .execute(conn)?;
    Ok(())
}

pub fn note_error(conn: &mut Conn, id: AgentId, at: NaiveDateTime) -> Result<(), StoreError> {
    diesel::update(agents::table.find(id))
        .set(agents::last_error_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Enables or disables; enabling with `drop_pending` skips what arrived meanwhile.
pub fn set_disabled(
    conn: &mut Conn,
    id: AgentId,
    disabled: bool,
    drop_pending: bool,
) -> Result<AgentRow, StoreError> {
    if drop_pending {
        let newest = super::events::max_id(conn)?;
        diesel::update(agents::table.find(id))
            .set(agents::last_checked_event_id.eq(newest))
            .execute(conn)?;
    }
    let row = diesel::update(agents::table.find(id))
        .set((agents::disabled.eq(disabled), agents::updated_at.eq(now())))
        .returning(crate::store::backend::columns::<AgentRow>())
        .get_result::<AgentRow>(conn)?;
    counted(conn, row)
}

pub fn set_memory(conn: &mut Conn, id: AgentId, memory: &str) -> Result<(), StoreError> {
    diesel::update(agents::table.find(id))
        .set(agents::memory.eq(memory))
        .execute(conn)?;
    Ok(())
}

/// Takes `n` deleted events, all counted in the row (at or below the Writer's counted
/// mark), off `events_count`.
pub fn take_off_events(conn: &mut Conn, id: AgentId, n: i64) -> Result<(), StoreError> {
    diesel::update(agents::table.find(id))
        .set(agents::events_count.eq(agents::events_count - n))
        .execute(conn)?;
    Ok(())
}

/// Recounts `events_count` after events were deleted in bulk: the events up to the
/// Writer's counted mark, as the row counts only those.
pub fn recount_events(conn: &mut Conn, id: AgentId) -> Result<(), StoreError> {
    let n = super::writer_marks::counted_events_of(conn, id)?;
    diesel::update(agents::table.find(id))
        .set(agents::events_count.eq(n))
        .execute(conn)?;
    Ok(())
}
