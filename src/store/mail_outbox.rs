//! The `mail_outbox` table: mails owed by email agents, written in the same
//! transaction as the agent's handled-up-to mark (so a received event's mail is never
//! lost between the two), sent and retried by `mail::Outbox`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::mail_outbox;
use super::{Conn, StoreError, now};
use crate::ids::{AgentId, EventId};

pub const PENDING: &str = "pending";
pub const DEAD: &str = "dead";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub agent_id: AgentId,
    pub user_id: i64,
    pub event_id: Option<EventId>,
    /// The rendered mail, sealed (see `mail::Outbox`).
    pub message: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
}

/// Queues one sealed mail, due now.
pub fn insert(
    conn: &mut Conn,
    agent_id: AgentId,
    user_id: i64,
    event_id: Option<EventId>,
    sealed: &str,
) -> Result<i64, StoreError> {
    let at = now();
    Ok(diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::agent_id.eq(agent_id),
            mail_outbox::user_id.eq(user_id),
            mail_outbox::event_id.eq(event_id),
            mail_outbox::message.eq(sealed),
            mail_outbox::status.eq(PENDING),
            mail_outbox::next_attempt_at.eq(at),
            mail_outbox::created_at.eq(at),
        ))
        .returning(mail_outbox::id)
        .get_result(conn)?)
}

/// Pending mails due at `at`, oldest first.
pub fn due(conn: &mut Conn, at: NaiveDateTime, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(mail_outbox::table
        .filter(mail_outbox::status.eq(PENDING))
        .filter(mail_outbox::next_attempt_at.le(at))
        .order(mail_outbox::id.asc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// A mail went out: it is no longer owed. False when the row is gone (its agent was
/// deleted meanwhile).
pub fn sent(conn: &mut Conn, id: i64) -> Result<bool, StoreError> {
    Ok(diesel::delete(mail_outbox::table.find(id)).execute(conn)? > 0)
}

/// An attempt failed: try again at `next` (or never, when `next` is None: dead).
pub fn failed(
    conn: &mut Conn,
    id: i64,
    attempts: i32,
    error: &str,
    next: Option<NaiveDateTime>,
) -> Result<bool, StoreError> {
    let status = if next.is_some() { PENDING } else { DEAD };
    let n = diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::attempts.eq(attempts),
            mail_outbox::last_error.eq(error),
            mail_outbox::status.eq(status),
            mail_outbox::next_attempt_at.eq(next.unwrap_or_else(now)),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// An agent's mails, newest first (what the tests and an operator look at).
pub fn of_agent(
    conn: &mut Conn,
    agent_id: AgentId,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(mail_outbox::table
        .filter(mail_outbox::agent_id.eq(agent_id))
        .order(mail_outbox::id.desc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_is_due_then_retried_then_dead() {
        let (_dir, mut c) = crate::store::test_conn();
        let u = crate::store::users::insert(&mut c, "bob", false).unwrap();
        let new = crate::store::agents::NewAgent {
            user_id: u.id,
            agent_type: "email".into(),
            name: "mail".into(),
            options: "{}".into(),
            schedule: None,
            disabled: false,
            keep_events_for: 0,
            propagate_immediately: true,
            guid: None,
        };
        let a = crate::store::agents::insert(&mut c, &new).unwrap();
        let id = insert(&mut c, a.id, u.id, Some(crate::ids::EventId(3)), "sealed").unwrap();
        assert_eq!(due(&mut c, now(), 10).unwrap().len(), 1);
        let later = now() + chrono::Duration::seconds(60);
        failed(&mut c, id, 1, "451 try later", Some(later)).unwrap();
        assert!(due(&mut c, now(), 10).unwrap().is_empty());
        assert_eq!(due(&mut c, later, 10).unwrap()[0].attempts, 1);
        failed(&mut c, id, 2, "550 no", None).unwrap();
        assert!(due(&mut c, later, 10).unwrap().is_empty());
        let row = &of_agent(&mut c, a.id, 10).unwrap()[0];
        assert_eq!(
            (row.status.as_str(), row.last_error.as_deref()),
            (DEAD, Some("550 no"))
        );
    }
}
