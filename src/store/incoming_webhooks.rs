//! The `incoming_webhooks` table: the AGiXT-style endpoints reached at `/webhook/{token}`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::incoming_webhooks;
use super::{Conn, StoreError, now};
use crate::ids::{AgentId, IncomingWebhookId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = incoming_webhooks)]
pub struct IncomingRow {
    pub id: IncomingWebhookId,
    pub user_id: i64,
    pub agent_id: AgentId,
    pub name: String,
    pub description: Option<String>,
    pub token: String,
    pub previous_token: Option<String>,
    pub previous_expires_at: Option<NaiveDateTime>,
    pub is_active: bool,
    pub transform_template: Option<String>,
    pub rate_limit: Option<i64>,
    pub allowed_ips: Option<String>,
    pub signature: Option<String>,
    pub max_body_bytes: Option<i64>,
    pub response_headers: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The columns a caller sets; on update `None` keeps a column, `Some(None)` clears it.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = incoming_webhooks)]
pub struct IncomingChanges {
    pub agent_id: Option<AgentId>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub is_active: Option<bool>,
    pub transform_template: Option<Option<String>>,
    pub rate_limit: Option<Option<i64>>,
    pub allowed_ips: Option<Option<String>>,
    pub signature: Option<Option<String>>,
    pub max_body_bytes: Option<Option<i64>>,
    pub response_headers: Option<Option<String>>,
}

pub fn insert(
    conn: &mut Conn,
    user_id: i64,
    token: &str,
    c: &IncomingChanges,
) -> Result<IncomingRow, StoreError> {
    let at = now();
    let row: IncomingRow = diesel::insert_into(incoming_webhooks::table)
        .values((
            incoming_webhooks::user_id.eq(user_id),
            incoming_webhooks::agent_id.eq(c.agent_id.unwrap_or_default()),
            incoming_webhooks::name.eq(c.name.clone().unwrap_or_default()),
            incoming_webhooks::token.eq(token),
            incoming_webhooks::is_active.eq(c.is_active.unwrap_or(true)),
            incoming_webhooks::created_at.eq(at),
            incoming_webhooks::updated_at.eq(at),
        ))
        .returning(crate::store::backend::columns::<IncomingRow>())
        .get_result::<IncomingRow>(conn)?;
    update(conn, row.id, c)
}

pub fn update(
    conn: &mut Conn,
    id: IncomingWebhookId,
    c: &IncomingChanges,
) -> Result<IncomingRow, StoreError> {
    Ok(diesel::update(incoming_webhooks::table.find(id))
        .set((c, incoming_webhooks::updated_at.eq(now())))
        .returning(crate::store::backend::columns::<IncomingRow>())
        .get_result::<IncomingRow>(conn)?)
}

/// Issues `token`; the current one keeps working until `grace_until` (if given).
pub fn rotate(
    conn: &mut Conn,
    id: IncomingWebhookId,
    token: &str,
    grace_until: Option<NaiveDateTime>,
) -> Result<IncomingRow, StoreError> {
    let row = find(conn, id)?.ok_or(StoreError::NotFound("incoming webhook"))?;
    let previous = grace_until.map(|_| row.token.clone());
    Ok(diesel::update(incoming_webhooks::table.find(id))
        .set((
            incoming_webhooks::token.eq(token),
            incoming_webhooks::previous_token.eq(previous),
            incoming_webhooks::previous_expires_at.eq(grace_until),
            incoming_webhooks::updated_at.eq(now()),
        ))
        .returning(crate::store::backend::columns::<IncomingRow>())
        .get_result::<IncomingRow>(conn)?)
}

pub fn find(conn: &mut Conn, id: IncomingWebhookId) -> Result<Option<IncomingRow>, StoreError> {
    Ok(incoming_webhooks::table
        .find(id)
        .select(IncomingRow::as_select())
        .first(conn)
        .optional()?)
}

/// Incoming webhook `id` if it belongs to `scope` (a user id; `None`, an admin, sees
/// all). Another user's webhook is not found, so its id is not revealed.
pub fn find_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    id: IncomingWebhookId,
) -> Result<Option<IncomingRow>, StoreError> {
    let mut q = incoming_webhooks::table
        .filter(incoming_webhooks::id.eq(id))
        .select(IncomingRow::as_select())
        .into_boxed();
    if let Some(uid) = scope {
        q = q.filter(incoming_webhooks::user_id.eq(uid));
    }
    Ok(q.first(conn).optional()?)
}

/// All incoming webhooks of `user_id`, or of everyone when `None`.
pub fn list(conn: &mut Conn, user_id: Option<i64>) -> Result<Vec<IncomingRow>, StoreError> {
    let mut q = incoming_webhooks::table
        .select(IncomingRow::as_select())
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(incoming_webhooks::user_id.eq(uid));
    }
    Ok(q.order(incoming_webhooks::id.asc()).load(conn)?)
}

/// One page of [`list`]: ids above `after`, at most `limit`.
pub fn page(
    conn: &mut Conn,
    user_id: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<IncomingRow>, StoreError> {
    let mut q = incoming_webhooks::table
        .select(IncomingRow::as_select())
        .filter(incoming_webhooks::id.gt(after))
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(incoming_webhooks::user_id.eq(uid));
    }
    Ok(q.order(incoming_webhooks::id.asc())
        .limit(limit)
        .load(conn)?)
}

pub fn delete(conn: &mut Conn, id: IncomingWebhookId) -> Result<IncomingRow, StoreError> {
    let row = find(conn, id)?.ok_or(StoreError::NotFound("incoming webhook"))?;
    diesel::delete(incoming_webhooks::table.find(id)).execute(conn)?;
    Ok(row)
}
