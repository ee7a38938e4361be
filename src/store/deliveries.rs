//! The `deliveries` table: the outbox. One row per event owed to a subscription,
//! created in the same transaction as the event; its message id never changes, so
//! retries and replays carry the same id.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::RngCore;

use super::listen;
use super::schema::{deliveries, events, subscriptions};
use super::{Conn, StoreError, Value, now};
use crate::cached;
use crate::ids::{DeliveryId, EventId, SubscriptionId};

pub const PENDING: &str = "pending";
pub const RETRYING: &str = "retrying";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";
pub const STATUSES: &[&str] = &[PENDING, RETRYING, DELIVERED, DEAD];

/// Where a delivery stands, stored as the text above (the values are the API's too,
/// so rows written before this type read back unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::FromSqlRow, diesel::AsExpression)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Retrying,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => PENDING,
            DeliveryStatus::Retrying => RETRYING,
            DeliveryStatus::Delivered => DELIVERED,
            DeliveryStatus::Dead => DEAD,
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Retrying,
            DeliveryStatus::Delivered,
            DeliveryStatus::Dead,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// Still owed: the actor will send it when it is due.
    pub fn is_waiting(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Retrying)
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

super::text_enum::stored_as_text!(DeliveryStatus, "delivery status", "deliveries");

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub message_id: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub failures: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    /// The request to make, when an agent prepared it (post agents); else the envelope.
    pub request: Option<String>,
}

/// `msg_` + milliseconds since the epoch + 80 random bits, hex: sortable by creation
/// time, unique, and free of '.' (Standard Webhooks signs `id.timestamp.body`).
pub fn new_message_id() -> String {
    let ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut r = [0u8; 10];
    rand::rng().fill_bytes(&mut r);
    format!("msg_{ms:012x}{}", hex::encode(r))
}

/// Creates the deliveries one event owes, due now.
pub fn insert_for_event(
    conn: &mut Conn,
    subscription_ids: &[SubscriptionId],
    event_id: EventId,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let at = now();
    let mut out = Vec::with_capacity(subscription_ids.len());
    for &sid in subscription_ids {
        let message_id = new_message_id();
        let row = if conn.is_pg() {
            diesel::insert_into(deliveries::table)
                .values((
                    deliveries::subscription_id.eq(sid),
                    deliveries::event_id.eq(event_id),
                    deliveries::message_id.eq(message_id),
                    deliveries::status.eq(PENDING),
                    deliveries::next_attempt_at.eq(at),
                    deliveries::created_at.eq(at),
                    deliveries::updated_at.eq(at),
                ))
                .returning(crate::store::backend::columns::<DeliveryRow>())
                .get_result::<DeliveryRow>(conn)?
        } else {
            insert_pending_sqlite(conn, sid, event_id, message_id, at)?
        };
        out.push(row);
    }
    Ok(out)
}

diesel::define_sql_function!(fn last_insert_rowid() -> diesel::sql_types::BigInt);

/// One new delivery on SQLite, as a cached statement, its row built from the values
/// written and the id SQLite gave it. Every event a webhook subscribes to comes through
/// here, inside the Writer: the query-built `INSERT ... RETURNING` was prepared again
/// for each one, 15 % of the Writer's time while it also delivered every event (a
/// 15 000 webhooks/s end-to-end run, profiled).
fn insert_pending_sqlite(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
    event_id: EventId,
    message_id: String,
    at: NaiveDateTime,
) -> Result<DeliveryRow, StoreError> {
    cached!(
        "INSERT INTO deliveries (subscription_id, event_id, message_id, status, \
         next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        vec![
            Value::Int(subscription_id.0),
            Value::Int(event_id.0),
            Value::Text(&message_id),
            Value::Text(PENDING),
            Value::Time(at),
            Value::Time(at),
            Value::Time(at),
        ],
    )
    .execute(conn)?;
    let id = match conn {
        super::DbConn::Sqlite(c) => diesel::select(last_insert_rowid()).get_result::<i64>(c)?,
        super::DbConn::Pg(_) => {
            return Err(StoreError::Unsupported(
                "insert_pending_sqlite runs on SQLite only",
            ));
        }
    };
    Ok(DeliveryRow {
        id: DeliveryId(id),
        subscription_id,
        event_id,
        message_id,
        status: DeliveryStatus::Pending,
        attempts: 0,
        failures: 0,
        next_attempt_at: at,
        last_status: None,
        last_error: None,
        created_at: at,
        updated_at: at,
        delivered_at: None,
        request: None,
    })
}

/// Without `LIMIT`: SQLite re-prepares a statement whose `LIMIT ?` is re-bound (the
/// bound value may change the plan), and this runs for every delivery attempt. The
/// primary key already yields at most one row.
pub fn find(conn: &mut Conn, id: DeliveryId) -> Result<Option<DeliveryRow>, StoreError> {
    Ok(deliveries::table
        .find(id)
        .select(DeliveryRow::as_select())
        .get_result(conn)
        .optional()?)
}

/// Delivery `id` if `scope` (a user filter; `None` for everyone's) may see the
/// subscription it belongs to.
pub fn find_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    id: DeliveryId,
) -> Result<Option<DeliveryRow>, StoreError> {
    let mut q = deliveries::table
        .inner_join(subscriptions::table)
        .filter(deliveries::id.eq(id))
        .select(DeliveryRow::as_select())
        .into_boxed();
    if let Some(uid) = scope {
        q = q.filter(subscriptions::user_id.eq(uid));
    }
    Ok(q.first(conn).optional()?)
}

/// Deliveries of a subscription that are due at `at`, with their events: oldest event
/// first when the subscription is ordered (the head decides, due or not: a failing head
/// holds the rest), earliest due otherwise.
pub fn due(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
    at: NaiveDateTime,
    ordered: bool,
    limit: i64,
) -> Result<Vec<(DeliveryRow, super::events::EventRow)>, StoreError> {
    let base = deliveries::table
        .inner_join(events::table.on(events::id.eq(deliveries::event_id)))
        .filter(deliveries::subscription_id.eq(subscription_id))
        .filter(deliveries::status.eq_any([PENDING, RETRYING]))
        .select((
            DeliveryRow::as_select(),
            super::events::EventRow::as_select(),
        ));
    if ordered {
        return Ok(base.order(deliveries::id.asc()).limit(limit).load(conn)?);
    }
    Ok(base
        .filter(deliveries::next_attempt_at.le(at))
        .order((deliveries::next_attempt_at.asc(), deliveries::id.asc()))
        .limit(limit)
        .load(conn)?)
}

/// [`due`] for an unordered subscription whose sender already holds the deliveries in
/// `held`: the same first `limit` due deliveries (answered as `read`, for whether more
/// may be due), but the events only of those not held. Under a backlog about half of
/// each read is already in the sender's window or in flight; decoding their events
/// (payloads and all) again was most of the read pool's work while a hub delivered
/// every webhook (a profiled end-to-end run at 15 000 webhooks/s). The join still
/// leaves out deliveries whose event is gone, as [`due`] does.
pub fn due_unheld(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
    at: NaiveDateTime,
    limit: i64,
    held: &std::collections::HashSet<DeliveryId>,
) -> Result<(Vec<(DeliveryRow, super::events::EventRow)>, usize), StoreError> {
    let due: Vec<DeliveryRow> = deliveries::table
        .inner_join(events::table.on(events::id.eq(deliveries::event_id)))
        .filter(deliveries::subscription_id.eq(subscription_id))
        .filter(deliveries::status.eq_any([PENDING, RETRYING]))
        .filter(deliveries::next_attempt_at.le(at))
        .order((deliveries::next_attempt_at.asc(), deliveries::id.asc()))
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)?;
    let read = due.len();
    let wanted: Vec<DeliveryRow> = due.into_iter().filter(|d| !held.contains(&d.id)).collect();
    if wanted.is_empty() {
        return Ok((Vec::new(), read));
    }
    let ids: Vec<EventId> = wanted.iter().map(|d| d.event_id).collect();
    let mut found: std::collections::HashMap<EventId, super::events::EventRow> = events::table
        .filter(events::id.eq_any(ids))
        .select(super::events::EventRow::as_select())
        .load::<super::events::EventRow>(conn)?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    // A post agent may queue several requests for one event: each of its deliveries
    // but the last gets a copy.
    let mut uses: std::collections::HashMap<EventId, usize> = Default::default();
    for d in &wanted {
        *uses.entry(d.event_id).or_default() += 1;
    }
    let rows = wanted
        .into_iter()
        .filter_map(|d| {
            let left = uses.get_mut(&d.event_id)?;
            *left -= 1;
            let event = if *left == 0 {
                found.remove(&d.event_id)
            } else {
                found.get(&d.event_id).cloned()
            };
            event.map(|e| (d, e))
        })
        .collect();
    Ok((rows, read))
}

/// The deliveries `ids` with their events, in the order [`due`] sends them (next
/// attempt, then id).
pub fn with_events(
    conn: &mut Conn,
    ids: &std::collections::HashSet<DeliveryId>,
) -> Result<Vec<(DeliveryRow, super::events::EventRow)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(deliveries::table
        .inner_join(events::table.on(events::id.eq(deliveries::event_id)))
        .filter(deliveries::id.eq_any(ids.iter().copied().collect::<Vec<_>>()))
        .select((
            DeliveryRow::as_select(),
            super::events::EventRow::as_select(),
        ))
        .order((deliveries::next_attempt_at.asc(), deliveries::id.asc()))
        .load(conn)?)
}

/// When the next delivery of the subscription that is not due at `at` falls due.
pub fn next_due_after(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
    at: NaiveDateTime,
) -> Result<Option<NaiveDateTime>, StoreError> {
    Ok(deliveries::table
        .filter(deliveries::subscription_id.eq(subscription_id))
        .filter(deliveries::status.eq_any([PENDING, RETRYING]))
        .filter(deliveries::next_attempt_at.gt(at))
        .select(diesel::dsl::min(deliveries::next_attempt_at))
        .first(conn)?)
}

/// The new state of a delivery after an attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status: DeliveryStatus,
    pub counted_failure: bool,
    pub next_attempt_at: NaiveDateTime,
    pub response_status: Option<i32>,
    pub error: Option<String>,
}

/// Runs for every delivery attempt, so the update is a cached statement; the row is
/// read back by its key (also cached) rather than with a `RETURNING` diesel would
/// prepare again each time.
pub fn record_result(
    conn: &mut Conn,
    id: DeliveryId,
    r: &AttemptResult,
) -> Result<DeliveryRow, StoreError> {
    let at = now();
    let changed = cached!(
        "UPDATE deliveries SET status = ?, attempts = attempts + 1, failures = failures + ?, \
         next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ?, delivered_at = ? \
         WHERE id = ?",
        vec![
            Value::Text(r.status.as_str()),
            Value::Int(i64::from(r.counted_failure)),
            Value::Time(r.next_attempt_at),
            Value::OptInt(r.response_status.map(i64::from)),
            Value::OptText(r.error.as_deref()),
            Value::Time(at),
            Value::OptTime((r.status == DeliveryStatus::Delivered).then_some(at)),
            Value::Int(id.0),
        ],
    )
    .execute(conn)?;
    if changed == 0 {
        return Err(StoreError::NotFound("delivery"));
    }
    find(conn, id)?.ok_or(StoreError::NotFound("delivery"))
}

/// Puts a delivery back in the queue with a fresh retry budget (manual retry), and
/// announces it to the node that sends its webhook (on PostgreSQL, on commit).
pub fn requeue(conn: &mut Conn, id: DeliveryId) -> Result<DeliveryRow, StoreError> {
    let at = now();
    let row = diesel::update(deliveries::table.find(id))
        .set((
            deliveries::status.eq(PENDING),
            deliveries::failures.eq(0),
            deliveries::next_attempt_at.eq(at),
            deliveries::updated_at.eq(at),
        ))
        .returning(crate::store::backend::columns::<DeliveryRow>())
        .get_result::<DeliveryRow>(conn)?;
    listen::announce(conn, listen::REQUEUED, row.subscription_id.0)?;
    Ok(row)
}

/// Which deliveries a replay takes.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    pub subscription_id: SubscriptionId,
    pub statuses: Vec<String>,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub event_type: Option<String>,
}

fn replay_query(
    f: &ReplayFilter,
) -> deliveries::BoxedQuery<'static, crate::store::backend::MultiBackend> {
    let mut q = deliveries::table
        .filter(deliveries::subscription_id.eq(f.subscription_id))
        .filter(deliveries::status.eq_any(f.statuses.clone()))
        .into_boxed();
    if let Some(s) = f.since {
        q = q.filter(deliveries::created_at.ge(s));
    }
    if let Some(u) = f.until {
        q = q.filter(deliveries::created_at.le(u));
    }
    if let Some(t) = &f.event_type {
        let ids = events::table
            .filter(events::event_type.eq(t.clone()))
            .select(events::id);
        q = q.filter(deliveries::event_id.eq_any(ids));
    }
    q
}

pub fn count_for_replay(conn: &mut Conn, f: &ReplayFilter) -> Result<i64, StoreError> {
    Ok(replay_query(f).count().get_result(conn)?)
}

/// Re-queues up to `batch` matching deliveries with an id above `after`; returns their
/// ids so the caller can go on from the last one.
pub fn requeue_batch(
    conn: &mut Conn,
    f: &ReplayFilter,
    after: i64,
    batch: i64,
) -> Result<Vec<i64>, StoreError> {
    let ids: Vec<i64> = replay_query(f)
        .filter(deliveries::id.gt(after))
        .order(deliveries::id.asc())
        .limit(batch)
        .select(deliveries::id)
        .load(conn)?;
    if !ids.is_empty() {
        let at = now();
        diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
            .set((
                deliveries::status.eq(PENDING),
                deliveries::failures.eq(0),
                deliveries::next_attempt_at.eq(at),
                deliveries::updated_at.eq(at),
            ))
            .execute(conn)?;
        listen::announce(conn, listen::REQUEUED, f.subscription_id.0)?;
    }
    Ok(ids)
}

/// Filters of `GET /api/deliveries`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub subscription_ids: Option<Vec<SubscriptionId>>,
    pub status: Option<String>,
    /// Only ids below this (the cursor of a newest-first page).
    pub before: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

pub fn list(conn: &mut Conn, q: &DeliveryQuery) -> Result<Vec<DeliveryRow>, StoreError> {
    let mut query = deliveries::table
        .select(DeliveryRow::as_select())
        .into_boxed();
    if let Some(ids) = &q.subscription_ids {
        query = query.filter(deliveries::subscription_id.eq_any(ids.clone()));
    }
    if let Some(s) = &q.status {
        query = query.filter(deliveries::status.eq(s.clone()));
    }
    if let Some(b) = q.before {
        query = query.filter(deliveries::id.lt(b));
    }
    Ok(query
        .order(deliveries::id.desc())
        .limit(q.limit)
        .offset(q.offset)
        .load(conn)?)
}

/// How many deliveries of the subscription are in each status.
pub fn count_by_status(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(deliveries::table
        .filter(deliveries::subscription_id.eq(subscription_id))
        .group_by(deliveries::status)
        .select((deliveries::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// (pending, retrying, dead since `dead_since`) over a user's subscriptions, or all.
pub fn totals(
    conn: &mut Conn,
    user_id: Option<i64>,
    dead_since: NaiveDateTime,
) -> Result<(i64, i64, i64), StoreError> {
    use super::schema::subscriptions;
    let scoped = |status: &'static str| {
        let mut q = deliveries::table
            .inner_join(subscriptions::table)
            .filter(deliveries::status.eq(status))
            .into_boxed();
        if let Some(uid) = user_id {
            q = q.filter(subscriptions::user_id.eq(uid));
        }
        q
    };
    let pending = scoped(PENDING).count().get_result(conn)?;
    let retrying = scoped(RETRYING).count().get_result(conn)?;
    let dead = scoped(DEAD)
        .filter(deliveries::updated_at.gt(dead_since))
        .count()
        .get_result(conn)?;
    Ok((pending, retrying, dead))
}

/// (subscription id, status, count) for every status but delivered, over the
/// subscriptions `scope` may see (a user's own, or all for `None`): what the console's
/// queue view needs, read through the `deliveries_status` index without touching
/// delivered rows.
pub fn open_counts(
    conn: &mut Conn,
    scope: Option<i64>,
) -> Result<Vec<(SubscriptionId, String, i64)>, StoreError> {
    let open = [PENDING, RETRYING, DEAD];
    let grouped = (deliveries::subscription_id, deliveries::status);
    let counted = (
        deliveries::subscription_id,
        deliveries::status,
        diesel::dsl::count_star(),
    );
    Ok(match scope {
        None => deliveries::table
            .filter(deliveries::status.eq_any(open))
            .group_by(grouped)
            .select(counted)
            .load(conn)?,
        Some(uid) => deliveries::table
            .inner_join(subscriptions::table)
            .filter(subscriptions::user_id.eq(uid))
            .filter(deliveries::status.eq_any(open))
            .group_by(grouped)
            .select(counted)
            .load(conn)?,
    })
}

/// Queues one prepared request (a post agent's) for `event_id`, due now.
pub fn insert_request(
    conn: &mut Conn,
    subscription_id: SubscriptionId,
    event_id: EventId,
    request: &str,
) -> Result<DeliveryRow, StoreError> {
    let at = now();
    Ok(diesel::insert_into(deliveries::table)
        .values((
            deliveries::subscription_id.eq(subscription_id),
            deliveries::event_id.eq(event_id),
            deliveries::message_id.eq(new_message_id()),
            deliveries::status.eq(PENDING),
            deliveries::next_attempt_at.eq(at),
            deliveries::created_at.eq(at),
            deliveries::updated_at.eq(at),
            deliveries::request.eq(request),
        ))
        .returning(crate::store::backend::columns::<DeliveryRow>())
        .get_result::<DeliveryRow>(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_as_its_stored_text() {
        for s in STATUSES {
            assert_eq!(
                DeliveryStatus::parse(s).map(DeliveryStatus::as_str),
                Some(*s)
            );
        }
        assert_eq!(DeliveryStatus::parse("in_flight"), None);
    }

    /// A store with one agent, `n` subscriptions of its user and `events` events of
    /// the agent (ids from 1).
    fn outbox(
        n: usize,
        events: usize,
    ) -> (tempfile::TempDir, Conn, Vec<SubscriptionId>, Vec<EventId>) {
        use crate::store::events::NewEvent;
        let (dir, mut c) = crate::store::test_conn();
        let agent = crate::store::test_webhook_agent(&mut c).unwrap();
        // The columns without a default; the rest are the table's own defaults.
        let subs: Vec<SubscriptionId> = (0..n)
            .map(|_| {
                diesel::sql_query(
                    "INSERT INTO subscriptions (user_id, name, url, event_types, created_at, \
                     updated_at) VALUES (?, 'sink', 'http://127.0.0.1:9/', '[\"*\"]', \
                     '2026-12-08 00:00:00', '2026-12-08 00:00:00')",
                )
                .bind::<diesel::sql_types::BigInt, _>(agent.user_id)
                .execute(&mut c)
                .unwrap();
                let id = match &mut c {
                    crate::store::DbConn::Sqlite(c) => diesel::select(last_insert_rowid())
                        .get_result::<i64>(c)
                        .unwrap(),
                    crate::store::DbConn::Pg(_) => unreachable!("test_conn is SQLite"),
                };
                SubscriptionId(id)
            })
            .collect();
        let event = NewEvent {
            user_id: agent.user_id,
            agent_id: Some(agent.id),
            event_type: "test".into(),
            payload: "{\"n\":1}".into(),
            keep_for_seconds: 0,
        };
        let lineage = crate::store::events::Lineage {
            root: None,
            depth: 0,
        };
        let inserted =
            crate::store::events::insert_all(&mut c, &vec![event; events], None, lineage, 1)
                .unwrap();
        (dir, c, subs, inserted.iter().map(|e| e.id).collect())
    }

    /// The rows `insert_for_event` answers (built from the values written, on SQLite)
    /// are the rows stored: the sender works from them without reading them back.
    #[test]
    fn new_deliveries_are_answered_as_they_are_stored() {
        let (_dir, mut c, subs, events) = outbox(2, 1);
        let inserted = [events[0]];
        let answered = insert_for_event(&mut c, &subs, inserted[0]).unwrap();
        assert_eq!(answered.len(), 2);
        assert_ne!(answered[0].id, answered[1].id);
        assert_ne!(answered[0].message_id, answered[1].message_id);
        for row in answered {
            let stored = find(&mut c, row.id).unwrap().unwrap();
            assert_eq!(format!("{row:?}"), format!("{stored:?}"));
        }
    }

    /// The sender's refill of an unordered subscription: the same first due deliveries
    /// as `due` (counted in `read`), with events only for those it does not hold; a
    /// delivery whose event is gone is left out, as `due` leaves it out; two requests
    /// a post agent queued for one event each get it.
    #[test]
    fn a_refill_reads_the_events_of_the_deliveries_it_does_not_hold() {
        let (_dir, mut c, subs, events) = outbox(1, 4);
        let sub = subs[0];
        let mut ids = Vec::new();
        for e in &events[..3] {
            ids.push(insert_for_event(&mut c, &[sub], *e).unwrap()[0].id);
        }
        let twice = [
            insert_request(&mut c, sub, events[3], "{}").unwrap().id,
            insert_request(&mut c, sub, events[3], "{}").unwrap().id,
        ];
        crate::store::events::delete(&mut c, events[2]).unwrap();
        let later = now() + chrono::TimeDelta::seconds(1);
        let all = due(&mut c, sub, later, false, 100).unwrap();
        let held: std::collections::HashSet<DeliveryId> = [ids[0]].into();
        let (rows, read) = due_unheld(&mut c, sub, later, 100, &held).unwrap();
        assert_eq!(read, all.len());
        assert_eq!(read, 4, "the delivery of the deleted event is left out");
        let got: Vec<(DeliveryId, EventId)> = rows.iter().map(|(d, e)| (d.id, e.id)).collect();
        assert_eq!(
            got,
            vec![
                (ids[1], events[1]),
                (twice[0], events[3]),
                (twice[1], events[3])
            ]
        );
        assert!(rows.iter().all(|(_, e)| e.payload == "{\"n\":1}"));
        let (_, read) = due_unheld(&mut c, sub, later, 2, &held).unwrap();
        assert_eq!(read, 2);
    }
}
