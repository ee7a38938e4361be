//! The `subscriptions` table: outgoing webhooks.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{agent_subscriptions, subscriptions};
use super::{Conn, StoreError, now};
use crate::ids::AgentId;
use crate::ids::SubscriptionId;

/// The circuit as stored in `subscriptions.circuit_state` and shown by the API; the
/// text values are the stored ones. An unknown stored value fails the row's read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::FromSqlRow, diesel::AsExpression)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// The state a stored text names, if it names one.
    pub fn parse(s: &str) -> Option<CircuitState> {
        [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

super::text_enum::stored_as_text!(CircuitState, "circuit state", "subscriptions");

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRow {
    pub id: SubscriptionId,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub event_types: String,
    pub agent_id: Option<AgentId>,
    pub filters: Option<String>,
    pub headers: String,
    pub payload_template: Option<String>,
    pub signature_scheme: String,
    pub signature_header: Option<String>,
    pub secrets: String,
    pub retry_count: i32,
    pub retry_delay_ms: i64,
    pub max_retry_delay_ms: i64,
    pub retry_schedule: Option<String>,
    pub timeout_ms: i64,
    pub rate_limit: Option<i32>,
    pub rate_limit_period_ms: i64,
    pub max_in_flight: i32,
    pub ordered: bool,
    pub is_active: bool,
    pub paused: bool,
    pub disabled_reason: Option<String>,
    pub failure_threshold: i32,
    pub circuit_cooldown_ms: i64,
    pub circuit_state: CircuitState,
    pub circuit_opened_at: Option<NaiveDateTime>,
    pub consecutive_failures: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Every column a caller sets; used for both insert and full update.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = subscriptions, treat_none_as_null = true)]
pub struct SubscriptionFields {
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub event_types: String,
    pub agent_id: Option<AgentId>,
    pub filters: Option<String>,
    pub headers: String,
    pub payload_template: Option<String>,
    pub signature_scheme: String,
    pub signature_header: Option<String>,
    pub secrets: String,
    pub retry_count: i32,
    pub retry_delay_ms: i64,
    pub max_retry_delay_ms: i64,
    pub retry_schedule: Option<String>,
    pub timeout_ms: i64,
    pub rate_limit: Option<i32>,
    pub rate_limit_period_ms: i64,
    pub max_in_flight: i32,
    pub ordered: bool,
    pub is_active: bool,
    pub failure_threshold: i32,
    pub circuit_cooldown_ms: i64,
}

impl From<&SubscriptionRow> for SubscriptionFields {
    /// The settable columns of a stored row: the base an update is applied over.
    fn from(r: &SubscriptionRow) -> SubscriptionFields {
        SubscriptionFields {
            name: r.name.clone(),
            description: r.description.clone(),
            url: r.url.clone(),
            event_types: r.event_types.clone(),
            agent_id: r.agent_id,
            filters: r.filters.clone(),
            headers: r.headers.clone(),
            payload_template: r.payload_template.clone(),
            signature_scheme: r.signature_scheme.clone(),
            signature_header: r.signature_header.clone(),
            secrets: r.secrets.clone(),
            retry_count: r.retry_count,
            retry_delay_ms: r.retry_delay_ms,
            max_retry_delay_ms: r.max_retry_delay_ms,
            retry_schedule: r.retry_schedule.clone(),
            timeout_ms: r.timeout_ms,
            rate_limit: r.rate_limit,
            rate_limit_period_ms: r.rate_limit_period_ms,
            max_in_flight: r.max_in_flight,
            ordered: r.ordered,
            is_active: r.is_active,
            failure_threshold: r.failure_threshold,
            circuit_cooldown_ms: r.circuit_cooldown_ms,
        }
    }
}

pub fn insert(
    conn: &mut Conn,
    user_id: i64,
    f: &SubscriptionFields,
) -> Result<SubscriptionRow, StoreError> {
    let at = now();
    Ok(diesel::insert_into(subscriptions::table)
        .values((
            f,
            subscriptions::user_id.eq(user_id),
            subscriptions::created_at.eq(at),
            subscriptions::updated_at.eq(at),
        ))
        .returning(crate::store::backend::columns::<SubscriptionRow>())
        .get_result::<SubscriptionRow>(conn)?)
}

pub fn update(
    conn: &mut Conn,
    id: SubscriptionId,
    f: &SubscriptionFields,
) -> Result<SubscriptionRow, StoreError> {
    Ok(diesel::update(subscriptions::table.find(id))
        .set((f, subscriptions::updated_at.eq(now())))
        .returning(crate::store::backend::columns::<SubscriptionRow>())
        .get_result::<SubscriptionRow>(conn)?)
}

pub fn find(conn: &mut Conn, id: SubscriptionId) -> Result<Option<SubscriptionRow>, StoreError> {
    Ok(subscriptions::table
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?)
}

/// Subscription `id` if it belongs to `scope` (a user id; `None`, an admin, sees all).
/// Another user's subscription is not found, so its id is not revealed.
pub fn find_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    id: SubscriptionId,
) -> Result<Option<SubscriptionRow>, StoreError> {
    let mut q = subscriptions::table
        .filter(subscriptions::id.eq(id))
        .select(SubscriptionRow::as_select())
        .into_boxed();
    if let Some(uid) = scope {
        q = q.filter(subscriptions::user_id.eq(uid));
    }
    Ok(q.first(conn).optional()?)
}

/// The subscriptions users made (not those agents send through).
pub fn list(conn: &mut Conn, user_id: Option<i64>) -> Result<Vec<SubscriptionRow>, StoreError> {
    let mut q = subscriptions::table
        .left_join(
            agent_subscriptions::table
                .on(agent_subscriptions::subscription_id.eq(subscriptions::id)),
        )
        .filter(agent_subscriptions::agent_id.is_null())
        .select(SubscriptionRow::as_select())
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(subscriptions::user_id.eq(uid));
    }
    Ok(q.order(subscriptions::id.asc()).load(conn)?)
}

/// One page of [`list`]: ids above `after`, at most `limit`.
pub fn page(
    conn: &mut Conn,
    user_id: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<SubscriptionRow>, StoreError> {
    let mut q = subscriptions::table
        .left_join(
            agent_subscriptions::table
                .on(agent_subscriptions::subscription_id.eq(subscriptions::id)),
        )
        .filter(agent_subscriptions::agent_id.is_null())
        .filter(subscriptions::id.gt(after))
        .select(SubscriptionRow::as_select())
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(subscriptions::user_id.eq(uid));
    }
    Ok(q.order(subscriptions::id.asc()).limit(limit).load(conn)?)
}

pub fn delete(conn: &mut Conn, id: SubscriptionId) -> Result<(), StoreError> {
    diesel::delete(subscriptions::table.find(id)).execute(conn)?;
    Ok(())
}

pub fn set_paused(
    conn: &mut Conn,
    id: SubscriptionId,
    paused: bool,
) -> Result<SubscriptionRow, StoreError> {
    Ok(diesel::update(subscriptions::table.find(id))
        .set((
            subscriptions::paused.eq(paused),
            subscriptions::updated_at.eq(now()),
        ))
        .returning(crate::store::backend::columns::<SubscriptionRow>())
        .get_result::<SubscriptionRow>(conn)?)
}

/// Turns the subscription off for a reason the operator can read (e.g. 410 Gone).
pub fn disable(conn: &mut Conn, id: SubscriptionId, reason: &str) -> Result<(), StoreError> {
    diesel::update(subscriptions::table.find(id))
        .set((
            subscriptions::is_active.eq(false),
            subscriptions::disabled_reason.eq(reason),
            subscriptions::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_secrets(
    conn: &mut Conn,
    id: SubscriptionId,
    secrets: &str,
) -> Result<SubscriptionRow, StoreError> {
    Ok(diesel::update(subscriptions::table.find(id))
        .set((
            subscriptions::secrets.eq(secrets),
            subscriptions::updated_at.eq(now()),
        ))
        .returning(crate::store::backend::columns::<SubscriptionRow>())
        .get_result::<SubscriptionRow>(conn)?)
}

/// Persists the circuit breaker so a restarted actor resumes in the same state.
pub fn save_circuit(
    conn: &mut Conn,
    id: SubscriptionId,
    state: CircuitState,
    opened_at: Option<NaiveDateTime>,
    consecutive_failures: i32,
) -> Result<(), StoreError> {
    diesel::update(subscriptions::table.find(id))
        .set((
            subscriptions::circuit_state.eq(state),
            subscriptions::circuit_opened_at.eq(opened_at),
            subscriptions::consecutive_failures.eq(consecutive_failures),
        ))
        .execute(conn)?;
    Ok(())
}

/// Closes the circuit by hand where the subscription's actor does not run (another
/// node sends its deliveries, or nothing does): the stored circuit is closed, and the
/// new `updated_at` and the counted reset tell the node that sends it to close its
/// live breaker too (that node's own reset, `ResetCircuit`, uses [`save_circuit`]).
pub fn reset_circuit(conn: &mut Conn, id: SubscriptionId) -> Result<(), StoreError> {
    diesel::update(subscriptions::table.find(id))
        .set((
            subscriptions::circuit_state.eq(CircuitState::Closed),
            subscriptions::circuit_opened_at.eq(None::<NaiveDateTime>),
            subscriptions::consecutive_failures.eq(0),
            subscriptions::updated_at.eq(now()),
        ))
        .execute(conn)?;
    let sql = super::nodes::placeholders(
        conn,
        "INSERT INTO subscription_circuit_resets (subscription_id, resets) VALUES (?, 1) \
         ON CONFLICT (subscription_id) DO UPDATE \
         SET resets = subscription_circuit_resets.resets + 1",
    );
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::BigInt, _>(id)
        .execute(conn)?;
    Ok(())
}

/// What each node compares every heartbeat with what it runs: every subscription's
/// `updated_at` (set by every write that changes it) and its count of circuits closed
/// by hand through [`reset_circuit`] (0 when never), by id.
pub fn revisions(conn: &mut Conn) -> Result<Vec<(SubscriptionId, NaiveDateTime, i64)>, StoreError> {
    #[derive(QueryableByName)]
    struct Resets {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        subscription_id: SubscriptionId,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        resets: i64,
    }
    let resets: std::collections::HashMap<SubscriptionId, i64> =
        diesel::sql_query("SELECT subscription_id, resets FROM subscription_circuit_resets")
            .load::<Resets>(conn)?
            .into_iter()
            .map(|r| (r.subscription_id, r.resets))
            .collect();
    let rows: Vec<(SubscriptionId, NaiveDateTime)> = subscriptions::table
        .select((subscriptions::id, subscriptions::updated_at))
        .order(subscriptions::id.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, at)| (id, at, resets.get(&id).copied().unwrap_or(0)))
        .collect())
}

/// Every subscription, including those agents own (for starting their actors).
pub fn list_all(conn: &mut Conn) -> Result<Vec<SubscriptionRow>, StoreError> {
    Ok(subscriptions::table
        .order(subscriptions::id.asc())
        .select(SubscriptionRow::as_select())
        .load(conn)?)
}

/// The subscription agent `agent_id` sends through, if it has one.
pub fn owned_by(conn: &mut Conn, agent_id: AgentId) -> Result<Option<SubscriptionRow>, StoreError> {
    Ok(agent_subscriptions::table
        .inner_join(
            subscriptions::table.on(subscriptions::id.eq(agent_subscriptions::subscription_id)),
        )
        .filter(agent_subscriptions::agent_id.eq(agent_id))
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?)
}

/// The agent that owns subscription `id`, if an agent does.
pub fn owner_of(conn: &mut Conn, id: SubscriptionId) -> Result<Option<AgentId>, StoreError> {
    Ok(agent_subscriptions::table
        .filter(agent_subscriptions::subscription_id.eq(id))
        .select(agent_subscriptions::agent_id)
        .first(conn)
        .optional()?)
}

/// How an owned subscription retries and times out.
#[derive(Debug, Clone, Copy)]
pub struct OwnedPolicy {
    pub retry_count: i32,
    pub retry_delay_ms: i64,
    pub timeout_ms: i64,
}

/// Creates the subscription an agent sends through: it matches no event type (its
/// deliveries are made by the agent).
pub fn create_owned(
    conn: &mut Conn,
    user_id: i64,
    agent_id: AgentId,
    name: &str,
    url: &str,
    policy: OwnedPolicy,
) -> Result<SubscriptionRow, StoreError> {
    let at = now();
    let row: SubscriptionRow = diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::user_id.eq(user_id),
            subscriptions::name.eq(name),
            subscriptions::url.eq(url),
            subscriptions::event_types.eq("[]"),
            subscriptions::retry_count.eq(policy.retry_count),
            subscriptions::retry_delay_ms.eq(policy.retry_delay_ms),
            subscriptions::timeout_ms.eq(policy.timeout_ms),
            subscriptions::created_at.eq(at),
            subscriptions::updated_at.eq(at),
        ))
        .returning(crate::store::backend::columns::<SubscriptionRow>())
        .get_result::<SubscriptionRow>(conn)?;
    diesel::insert_into(agent_subscriptions::table)
        .values((
            agent_subscriptions::agent_id.eq(agent_id),
            agent_subscriptions::subscription_id.eq(row.id),
        ))
        .execute(conn)?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::text_enum::UnknownStoredValue;
    use crate::store::{test_conn, test_webhook_agent};

    /// A subscription row with `circuit_state` stored as `state` (raw text).
    fn with_circuit_text(conn: &mut Conn, state: &str) -> SubscriptionId {
        let agent = test_webhook_agent(conn).unwrap();
        diesel::insert_into(subscriptions::table)
            .values((
                subscriptions::user_id.eq(agent.user_id),
                subscriptions::name.eq("s"),
                subscriptions::url.eq("http://example.com/"),
                subscriptions::event_types.eq("[]"),
                subscriptions::created_at.eq(now()),
                subscriptions::updated_at.eq(now()),
            ))
            .returning(subscriptions::id)
            .get_result::<SubscriptionId>(conn)
            .and_then(|id| {
                diesel::update(subscriptions::table.find(id))
                    .set(subscriptions::circuit_state.eq(state))
                    .execute(conn)
                    .map(|_| id)
            })
            .unwrap()
    }

    #[test]
    fn a_reset_by_hand_is_counted_and_changes_the_row() {
        let (_dir, mut conn) = test_conn();
        let id = with_circuit_text(&mut conn, "closed");
        let before = find(&mut conn, id).unwrap().unwrap().updated_at;
        assert_eq!(revisions(&mut conn).unwrap(), [(id, before, 0)]);
        // What an attempt records is the sending node's own: nothing changes for others.
        save_circuit(&mut conn, id, CircuitState::Open, Some(now()), 3).unwrap();
        assert_eq!(revisions(&mut conn).unwrap(), [(id, before, 0)]);
        reset_circuit(&mut conn, id).unwrap();
        reset_circuit(&mut conn, id).unwrap();
        let r = find(&mut conn, id).unwrap().unwrap();
        assert_ne!(r.updated_at, before);
        assert_eq!(
            (r.circuit_state, r.consecutive_failures, r.circuit_opened_at),
            (CircuitState::Closed, 0, None)
        );
        assert_eq!(revisions(&mut conn).unwrap(), [(id, r.updated_at, 2)]);
        delete(&mut conn, id).unwrap();
        assert!(revisions(&mut conn).unwrap().is_empty());
    }

    #[test]
    fn the_circuit_is_stored_as_its_text_and_an_unknown_text_fails_the_read() {
        let (_dir, mut conn) = test_conn();
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ] {
            let id = with_circuit_text(&mut conn, "closed");
            save_circuit(&mut conn, id, state, None, 0).unwrap();
            let text: String = subscriptions::table
                .find(id)
                .select(subscriptions::circuit_state)
                .get_result(&mut conn)
                .unwrap();
            assert_eq!(text, state.as_str());
            assert_eq!(find(&mut conn, id).unwrap().unwrap().circuit_state, state);
        }
        let bogus = with_circuit_text(&mut conn, "ajar");
        let e = find(&mut conn, bogus).unwrap_err();
        let cause = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
            .find_map(|e| e.downcast_ref::<UnknownStoredValue>());
        assert_eq!(
            cause.map(ToString::to_string).as_deref(),
            Some("unknown circuit state \"ajar\" in the subscriptions table"),
            "{e}"
        );
    }
}
