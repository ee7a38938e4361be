//! The `links` table: directed edges source agent -> receiver agent.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{agents, links};
use super::{Conn, StoreError, now};
use crate::ids::{AgentId, LinkId};

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = links)]
pub struct LinkRow {
    pub id: LinkId,
    pub source_id: AgentId,
    pub receiver_id: AgentId,
    pub event_id_at_creation: i64,
    pub created_at: NaiveDateTime,
}

/// Creates the link; it remembers the newest event id so older events are not replayed
/// into the receiver (Huginn). An existing link is a conflict.
pub fn insert(
    conn: &mut Conn,
    source_id: AgentId,
    receiver_id: AgentId,
) -> Result<LinkRow, StoreError> {
    let newest = super::events::max_id(conn)?;
    diesel::insert_into(links::table)
        .values((
            links::source_id.eq(source_id),
            links::receiver_id.eq(receiver_id),
            links::event_id_at_creation.eq(newest),
            links::created_at.eq(now()),
        ))
        .returning(crate::store::backend::columns::<LinkRow>())
        .get_result::<LinkRow>(conn)
        .map_err(|e| {
            let e = StoreError::from(e);
            if e.is_unique_violation() {
                StoreError::Conflict(format!(
                    "agent {source_id} is already linked to agent {receiver_id}"
                ))
            } else {
                e
            }
        })
}

/// Makes the links into `receiver_id` exactly `sources` (keeping existing ones as they are).
pub fn replace_sources(
    conn: &mut Conn,
    receiver_id: AgentId,
    sources: &[AgentId],
) -> Result<(), StoreError> {
    diesel::delete(
        links::table
            .filter(links::receiver_id.eq(receiver_id))
            .filter(links::source_id.ne_all(sources)),
    )
    .execute(conn)?;
    for &s in sources {
        if find_pair(conn, s, receiver_id)?.is_none() {
            insert(conn, s, receiver_id)?;
        }
    }
    Ok(())
}

/// Makes the links out of `source_id` exactly `receivers`.
pub fn replace_receivers(
    conn: &mut Conn,
    source_id: AgentId,
    receivers: &[AgentId],
) -> Result<(), StoreError> {
    diesel::delete(
        links::table
            .filter(links::source_id.eq(source_id))
            .filter(links::receiver_id.ne_all(receivers)),
    )
    .execute(conn)?;
    for &r in receivers {
        if find_pair(conn, source_id, r)?.is_none() {
            insert(conn, source_id, r)?;
        }
    }
    Ok(())
}

fn find_pair(
    conn: &mut Conn,
    source_id: AgentId,
    receiver_id: AgentId,
) -> Result<Option<LinkRow>, StoreError> {
    Ok(links::table
        .filter(links::source_id.eq(source_id))
        .filter(links::receiver_id.eq(receiver_id))
        .select(LinkRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut Conn, id: LinkId) -> Result<Option<LinkRow>, StoreError> {
    Ok(links::table
        .find(id)
        .select(LinkRow::as_select())
        .first(conn)
        .optional()?)
}

/// The link `id` if its source agent belongs to `scope` (`None`: an admin, any link).
pub fn find_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    id: LinkId,
) -> Result<Option<LinkRow>, StoreError> {
    let mut q = links::table
        .inner_join(agents::table.on(agents::id.eq(links::source_id)))
        .filter(links::id.eq(id))
        .select(LinkRow::as_select())
        .into_boxed();
    if let Some(uid) = scope {
        q = q.filter(agents::user_id.eq(uid));
    }
    Ok(q.first(conn).optional()?)
}

pub fn delete(conn: &mut Conn, id: LinkId) -> Result<(), StoreError> {
    diesel::delete(links::table.find(id)).execute(conn)?;
    Ok(())
}

/// Every link, or only those whose source belongs to `user_id`.
pub fn list(conn: &mut Conn, user_id: Option<i64>) -> Result<Vec<LinkRow>, StoreError> {
    let mut q = links::table
        .inner_join(agents::table.on(agents::id.eq(links::source_id)))
        .select(LinkRow::as_select())
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(agents::user_id.eq(uid));
    }
    Ok(q.order(links::id.asc()).load(conn)?)
}

/// One page of [`list`]: ids above `after`, at most `limit`.
pub fn page(
    conn: &mut Conn,
    user_id: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<LinkRow>, StoreError> {
    let mut q = links::table
        .inner_join(agents::table.on(agents::id.eq(links::source_id)))
        .select(LinkRow::as_select())
        .filter(links::id.gt(after))
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(agents::user_id.eq(uid));
    }
    Ok(q.order(links::id.asc()).limit(limit).load(conn)?)
}

pub fn sources_of(conn: &mut Conn, receiver_id: AgentId) -> Result<Vec<AgentId>, StoreError> {
    Ok(links::table
        .filter(links::receiver_id.eq(receiver_id))
        .order(links::source_id.asc())
        .select(links::source_id)
        .load(conn)?)
}

pub fn receivers_of(conn: &mut Conn, source_id: AgentId) -> Result<Vec<AgentId>, StoreError> {
    Ok(links::table
        .filter(links::source_id.eq(source_id))
        .order(links::receiver_id.asc())
        .select(links::receiver_id)
        .load(conn)?)
}

/// The link cycles of `user_id`'s agents that pass through any of `agent_ids`, each as
/// one line naming its agents (`a (#1) -> b (#2) -> a (#1)`). Huginn allows cycles, so
/// they are reported when a link is made, not refused; the propagation budget bounds
/// what one can do.
pub fn cycle_warnings(
    conn: &mut Conn,
    user_id: i64,
    agent_ids: &[AgentId],
) -> Result<Vec<String>, StoreError> {
    let edges = list(conn, Some(user_id))?;
    let mut next: HashMap<AgentId, Vec<AgentId>> = HashMap::new();
    for l in &edges {
        next.entry(l.source_id).or_default().push(l.receiver_id);
    }
    let mut cycles: Vec<Vec<AgentId>> = Vec::new();
    for &start in agent_ids {
        if cycles.iter().any(|c| c.contains(&start)) {
            continue;
        }
        if let Some(cycle) = shortest_cycle(&next, start) {
            cycles.push(cycle);
        }
    }
    if cycles.is_empty() {
        return Ok(Vec::new());
    }
    let members: Vec<AgentId> = cycles.iter().flatten().copied().collect();
    let names: HashMap<AgentId, String> = agents::table
        .filter(agents::id.eq_any(&members))
        .select((agents::id, agents::name))
        .load::<(AgentId, String)>(conn)?
        .into_iter()
        .collect();
    let show = |id: &AgentId| format!("{} (#{id})", names.get(id).map_or("?", String::as_str));
    Ok(cycles
        .iter()
        .map(|c| {
            let path: Vec<String> = c.iter().chain(c.first()).map(show).collect();
            format!(
                "link cycle: {}; events can go round it, each root event's descendants are capped by agents.max_events_per_root",
                path.join(" -> ")
            )
        })
        .collect())
}

/// The shortest path of links from `start` back to itself, by breadth-first search
/// (each agent visited once, so bounded by the user's links).
fn shortest_cycle(next: &HashMap<AgentId, Vec<AgentId>>, start: AgentId) -> Option<Vec<AgentId>> {
    let mut parent: HashMap<AgentId, AgentId> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for &to in next.get(&at).into_iter().flatten() {
            if to == start {
                let mut cycle = vec![at];
                let mut cur = at;
                while cur != start {
                    cur = *parent.get(&cur)?;
                    cycle.push(cur);
                }
                cycle.reverse();
                return Some(cycle);
            }
            if to != start && !parent.contains_key(&to) {
                parent.insert(to, at);
                queue.push_back(to);
            }
        }
    }
    None
}
