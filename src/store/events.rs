//! The `events` table: immutable, id-ordered, the cursor of every poller.

use chrono::NaiveDateTime;
use diesel::dsl::max;
use diesel::prelude::*;

use super::schema::{events, links};
use super::{Conn, StoreError, Value, from_json_text, now};
use crate::cached;
use crate::ids::{AgentId, EventId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: EventId,
    pub user_id: i64,
    pub agent_id: Option<AgentId>,
    pub event_type: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    /// Set for an event addressed to one agent (an incoming webhook's), not sent along links.
    pub target_agent_id: Option<AgentId>,
}

impl EventRow {
    pub fn payload_json(&self) -> Result<serde_json::Value, StoreError> {
        from_json_text(&self.payload, "events.payload")
    }
}

/// One event to insert.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub user_id: i64,
    pub agent_id: Option<AgentId>,
    pub event_type: String,
    /// The payload as JSON text ([`NewEvent::payload_text`]): serialised by whoever
    /// makes the event, so the Writer, which every event waits for, only stores it.
    pub payload: String,
    /// Seconds to keep the event; 0 keeps it forever.
    pub keep_for_seconds: i64,
}

impl NewEvent {
    /// A payload's JSON text, as [`NewEvent::payload`] holds it.
    pub fn payload_text(payload: &serde_json::Value) -> String {
        // Straight into a byte buffer: `Display` goes through the formatting machinery
        // one small `write_str` at a time, and this serialisation was 6.3 % of the
        // hub's CPU at 2 KB bodies (perf, session 31). A `Value` always serialises.
        serde_json::to_string(payload).unwrap_or_else(|_| payload.to_string())
    }
}

/// Where an event comes from: the root event it descends from (`None` for a root) and
/// the links it passed on the way. Stored with the event so a restart keeps both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lineage {
    pub root: Option<EventId>,
    pub depth: u32,
}

impl Lineage {
    /// The lineage of an event made from `parent` (itself of lineage `self`).
    pub fn child_of(self, parent: EventId) -> Lineage {
        Lineage {
            root: Some(self.root.unwrap_or(parent)),
            depth: self.depth.saturating_add(1),
        }
    }
}

/// The lineage of each of `ids` that has one (others are roots at depth 0).
pub fn lineages(
    conn: &mut Conn,
    ids: &[EventId],
) -> Result<std::collections::HashMap<EventId, Lineage>, StoreError> {
    let rows: Vec<(EventId, Option<EventId>, i32)> = events::table
        .filter(events::id.eq_any(ids))
        .filter(events::root_id.is_not_null())
        .select((events::id, events::root_id, events::depth))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, root, depth)| {
            let depth = u32::try_from(depth).unwrap_or(0);
            (id, Lineage { root, depth })
        })
        .collect())
}

/// How many stored events descend from `root` (what its propagation budget has spent).
pub fn descendants_of(conn: &mut Conn, root: EventId) -> Result<i64, StoreError> {
    Ok(events::table
        .filter(events::root_id.eq(root))
        .count()
        .get_result(conn)?)
}

/// The longest `keep_events_for` accepted: a hundred years. Longer is "forever" in
/// practice and would overflow date arithmetic.
pub const MAX_KEEP_EVENTS_FOR: i64 = 100 * 365 * 86_400;

/// When an event created `at` and kept `keep_for_seconds` expires (never for 0).
fn expiry(at: NaiveDateTime, keep_for_seconds: i64) -> Option<NaiveDateTime> {
    if keep_for_seconds <= 0 {
        return None;
    }
    let keep = chrono::TimeDelta::try_seconds(keep_for_seconds.min(MAX_KEEP_EVENTS_FOR))?;
    at.checked_add_signed(keep)
}

/// Inserts the events in order with the ids `first_id`, `first_id + 1`, ..., each
/// addressed to `target` when given (delivered to that agent directly, as if over a
/// link, and read back by its catch-up), and returns their rows. Only the Writer's
/// `Emitted` calls it: the Writer hands out the ids (see `writer_marks`), and every
/// event is written with its outbox rows.
pub(super) fn insert_all(
    conn: &mut Conn,
    new: &[NewEvent],
    target: Option<AgentId>,
    lineage: Lineage,
    first_id: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let at = now();
    let mut rows = Vec::with_capacity(new.len());
    // Every webhook comes through here, so it is a cached statement, and the row is
    // built from the values written rather than parsed back from a `RETURNING`.
    for (id, e) in (first_id..).zip(new) {
        let expires = expiry(at, e.keep_for_seconds);
        let payload = e.payload.clone();
        cached!(
            "INSERT INTO events (id, user_id, agent_id, event_type, payload, created_at, \
             expires_at, target_agent_id, root_id, depth) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                Value::Int(id),
                Value::Int(e.user_id),
                Value::OptInt(e.agent_id.map(i64::from)),
                Value::Text(&e.event_type),
                Value::Text(&payload),
                Value::Time(at),
                Value::OptTime(expires),
                Value::OptInt(target.map(i64::from)),
                Value::OptInt(lineage.root.map(i64::from)),
                Value::Int(i64::from(lineage.depth)),
            ],
        )
        .execute(conn)?;
        rows.push(EventRow {
            id: EventId(id),
            user_id: e.user_id,
            agent_id: e.agent_id,
            event_type: e.event_type.clone(),
            payload,
            created_at: at,
            expires_at: expires,
            target_agent_id: target,
        });
    }
    Ok(rows)
}

pub fn max_id(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(events::table
        .select(max(events::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// Event `id` if `scope` may see it: the user's id, or `None` for an admin (everyone's).
/// Another user's event is not loaded, so it answers like one that does not exist.
pub fn find_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    id: EventId,
) -> Result<Option<EventRow>, StoreError> {
    let mut q = events::table
        .filter(events::id.eq(id))
        .select(EventRow::as_select())
        .into_boxed();
    if let Some(uid) = scope {
        q = q.filter(events::user_id.eq(uid));
    }
    Ok(q.first(conn).optional()?)
}

/// Filters of `GET /api/events`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub user_id: Option<i64>,
    pub agent_id: Option<AgentId>,
    pub event_type: Option<String>,
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
    pub newest_first: bool,
}

pub fn list(conn: &mut Conn, q: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
    let mut query = events::table.select(EventRow::as_select()).into_boxed();
    if let Some(uid) = q.user_id {
        query = query.filter(events::user_id.eq(uid));
    }
    if let Some(aid) = q.agent_id {
        query = query.filter(events::agent_id.eq(aid));
    }
    if let Some(t) = &q.event_type {
        query = query.filter(events::event_type.eq(t.clone()));
    }
    if let Some(after) = q.after {
        query = query.filter(events::id.gt(after));
    }
    if let Some(before) = q.before {
        query = query.filter(events::id.lt(before));
    }
    query = if q.newest_first {
        query.order(events::id.desc())
    } else {
        query.order(events::id.asc())
    };
    Ok(query.limit(q.limit).load(conn)?)
}

pub fn delete(conn: &mut Conn, id: EventId) -> Result<(), StoreError> {
    diesel::delete(events::table.find(id)).execute(conn)?;
    Ok(())
}

pub fn delete_for_agent(conn: &mut Conn, agent_id: AgentId) -> Result<usize, StoreError> {
    Ok(diesel::delete(events::table.filter(events::agent_id.eq(agent_id))).execute(conn)?)
}

/// Events an agent has not handled yet, oldest first: from its current sources, newer
/// than the link (links never replay older events), and those addressed to it
/// (`target_agent_id`); all newer than `after`.
pub fn pending_for_receiver(
    conn: &mut Conn,
    receiver_id: AgentId,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let linked = linked_pending(conn, receiver_id, after, limit)?;
    let targeted: Vec<EventRow> = events::table
        .filter(events::target_agent_id.eq(receiver_id))
        .filter(events::id.gt(after))
        .order(events::id.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?;
    if targeted.is_empty() {
        return Ok(linked);
    }
    // Each list holds the oldest `limit` of its kind, so the oldest `limit` of the
    // merge are exact.
    let mut all: Vec<EventRow> = linked.into_iter().chain(targeted).collect();
    all.sort_by_key(|e| e.id);
    all.dedup_by_key(|e| e.id);
    all.truncate(limit.max(0) as usize);
    Ok(all)
}

fn linked_pending(
    conn: &mut Conn,
    receiver_id: AgentId,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(events::table
        .inner_join(links::table.on(links::source_id.nullable().eq(events::agent_id)))
        .filter(links::receiver_id.eq(receiver_id))
        .filter(events::id.gt(links::event_id_at_creation))
        .filter(events::id.gt(after))
        .order(events::id.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?)
}

/// Deletes up to `batch` expired events, oldest expiry first, and takes them off their
/// agents' `events_count` (as Huginn's cleanup keeps its counter); returns how many went.
///
/// The batch's cost is its own rows: the counts are lowered by what was deleted, not
/// recounted (a recount walked each agent's remaining events, a million of them, in
/// every batch, inside the Writer, and every webhook waited behind it). A row counts
/// the agent's events up to the Writer's counted mark only, so only deleted events at
/// or below the mark are taken off; those above it were never added. The mark is read
/// in this transaction, the one the Writer moves it in.
pub fn delete_expired(conn: &mut Conn, batch: i64) -> Result<usize, StoreError> {
    let expired: Vec<(i64, Option<AgentId>)> = events::table
        .filter(events::expires_at.lt(now()))
        .order(events::expires_at.asc())
        .select((events::id, events::agent_id))
        .limit(batch)
        .load(conn)?;
    if expired.is_empty() {
        return Ok(0);
    }
    let counted_upto = super::writer_marks::load(conn)?.events_counted_upto;
    let mut counted: std::collections::BTreeMap<AgentId, i64> = Default::default();
    for (id, agent) in &expired {
        if let Some(agent) = agent
            && *id <= counted_upto
        {
            *counted.entry(*agent).or_default() += 1;
        }
    }
    let ids: Vec<i64> = expired.iter().map(|(id, _)| *id).collect();
    let deleted = diesel::delete(events::table.filter(events::id.eq_any(&ids))).execute(conn)?;
    for (agent, n) in counted {
        super::agents::take_off_events(conn, agent, n)?;
    }
    Ok(deleted)
}

/// What a feed shows: the newest `per_source` unexpired events of each current source
/// of `receiver_id` (whenever the link was made, as Huginn's feeds do), oldest first.
/// One indexed query per source, on `events_agent_id`.
pub fn latest_of_sources(
    conn: &mut Conn,
    receiver_id: AgentId,
    per_source: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let sources: Vec<i64> = links::table
        .filter(links::receiver_id.eq(receiver_id))
        .select(links::source_id)
        .load(conn)?;
    let at = now();
    let mut rows = Vec::new();
    for source in sources {
        let mut newest: Vec<EventRow> = events::table
            .filter(events::agent_id.eq(source))
            .filter(events::expires_at.is_null().or(events::expires_at.gt(at)))
            .order(events::id.desc())
            .limit(per_source)
            .select(EventRow::as_select())
            .load(conn)?;
        rows.append(&mut newest);
    }
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Gives an agent's existing events the expiry `keep_for_seconds` implies
/// (`created_at` + it, or none for 0), as Huginn does when the setting changes.
pub fn set_expiry_for_agent(
    conn: &mut Conn,
    agent_id: AgentId,
    keep_for_seconds: i64,
) -> Result<usize, StoreError> {
    use diesel::sql_types::{BigInt, Text};
    if keep_for_seconds <= 0 {
        return Ok(
            diesel::update(events::table.filter(events::agent_id.eq(agent_id)))
                .set(events::expires_at.eq(None::<NaiveDateTime>))
                .execute(conn)?,
        );
    }
    let keep = keep_for_seconds.min(MAX_KEEP_EVENTS_FOR);
    if conn.is_pg() {
        return Ok(diesel::sql_query(
            "UPDATE events SET expires_at = created_at + make_interval(secs => $1) \
             WHERE agent_id = $2",
        )
        .bind::<diesel::sql_types::Double, _>(keep as f64)
        .bind::<BigInt, _>(agent_id)
        .execute(conn)?);
    }
    // SQLite's date arithmetic, written as diesel writes a `Timestamp`.
    Ok(diesel::sql_query(
        "UPDATE events SET expires_at = strftime('%Y-%m-%d %H:%M:%f', created_at, ?) WHERE agent_id = ?",
    )
    .bind::<Text, _>(format!("+{keep} seconds"))
    .bind::<BigInt, _>(agent_id)
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::{EventQuery, Lineage, NewEvent, descendants_of, insert_all, lineages, list};
    use crate::ids::EventId;
    use crate::store::event_totals::{EventTotals, of_user};
    use crate::store::{test_conn, test_webhook_agent};

    /// What a restart reads back: each derived event's root and depth, and how many
    /// events descend from a root (the budget it has spent).
    #[test]
    fn lineage_is_stored_with_the_event() {
        let (_dir, mut conn) = test_conn();
        let c = &mut conn;
        let agent = test_webhook_agent(c).unwrap();
        let event = NewEvent {
            user_id: agent.user_id,
            agent_id: Some(agent.id),
            event_type: "test".into(),
            payload: "{}".into(),
            keep_for_seconds: 0,
        };
        insert_all(
            c,
            std::slice::from_ref(&event),
            None,
            Lineage::default(),
            10,
        )
        .unwrap();
        let child = Lineage::default().child_of(EventId(10));
        assert_eq!(
            child,
            Lineage {
                root: Some(EventId(10)),
                depth: 1
            }
        );
        let grandchild = child.child_of(EventId(11));
        assert_eq!(
            grandchild,
            Lineage {
                root: Some(EventId(10)),
                depth: 2
            }
        );
        insert_all(c, std::slice::from_ref(&event), None, child, 11).unwrap();
        insert_all(c, &[event.clone(), event], None, grandchild, 12).unwrap();
        let read = lineages(c, &[EventId(10), EventId(11), EventId(12), EventId(13)]).unwrap();
        assert_eq!(read.get(&EventId(10)), None, "a root has no lineage");
        assert_eq!(read.get(&EventId(11)), Some(&child));
        assert_eq!(read.get(&EventId(13)), Some(&grandchild));
        assert_eq!(descendants_of(c, EventId(10)).unwrap(), 3);
        assert_eq!(descendants_of(c, EventId(11)).unwrap(), 0);
    }

    /// A user's events are those of the user's agents and the user's events without
    /// an agent: counted through two indexes, listed by walking the ids, both the same.
    #[test]
    fn a_users_events_are_counted_and_listed_alike() {
        let (_dir, mut conn) = test_conn();
        let c = &mut conn;
        let mine = test_webhook_agent(c).unwrap();
        let theirs = test_webhook_agent(c).unwrap();
        let event = |user_id, agent_id| NewEvent {
            user_id,
            agent_id,
            event_type: "test".into(),
            payload: "{}".into(),
            keep_for_seconds: 0,
        };
        let new = [
            event(mine.user_id, Some(mine.id)),
            event(theirs.user_id, Some(theirs.id)),
            event(mine.user_id, None),
            event(theirs.user_id, None),
            event(mine.user_id, Some(mine.id)),
        ];
        let ids: Vec<i64> = insert_all(c, &new, None, Lineage::default(), 100)
            .unwrap()
            .iter()
            .map(|e| e.id.0)
            .collect();
        assert_eq!(ids, [100, 101, 102, 103, 104]);

        let totals = |count, min_id, max_id| EventTotals {
            count,
            min_id,
            max_id,
        };
        assert_eq!(
            of_user(c, mine.user_id, None).unwrap(),
            totals(3, Some(100), Some(104))
        );
        assert_eq!(
            of_user(c, mine.user_id, Some(100)).unwrap(),
            totals(2, Some(102), Some(104))
        );
        assert_eq!(
            of_user(c, theirs.user_id, Some(103)).unwrap(),
            totals(0, None, None)
        );
        let listed = |c: &mut crate::store::Conn, newest_first| -> Vec<i64> {
            let q = EventQuery {
                user_id: Some(mine.user_id),
                limit: 10,
                newest_first,
                ..Default::default()
            };
            list(c, &q).unwrap().iter().map(|e| e.id.0).collect()
        };
        assert_eq!(listed(c, false), [100, 102, 104]);
        assert_eq!(listed(c, true), [104, 102, 100]);
    }
}
