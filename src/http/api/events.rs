//! `/api/events`: the event log, polled by cursor (`after` = the last id seen).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{clamp_limit, ts, ts_opt};
use crate::http::api::agents::visible_agent;
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::StoreError;
use crate::store::events::{self, EventQuery, EventRow};

#[derive(Debug, Serialize)]
pub struct EventOut {
    pub id: i64,
    pub user_id: i64,
    pub agent_id: Option<i64>,
    pub event_type: String,
    pub payload: Value,
    pub created_at: String,
    pub expires_at: Option<String>,
}

impl TryFrom<EventRow> for EventOut {
    type Error = StoreError;

    fn try_from(e: EventRow) -> Result<Self, StoreError> {
        Ok(EventOut {
            payload: e.payload_json()?,
            id: e.id,
            user_id: e.user_id,
            agent_id: e.agent_id,
            event_type: e.event_type,
            created_at: ts(e.created_at),
            expires_at: ts_opt(e.expires_at),
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub limit: Option<i64>,
    pub agent_id: Option<i64>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// `desc` for newest first; ascending ids by default.
    pub order: Option<String>,
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

fn newest_first(order: Option<&str>) -> Result<bool, ApiError> {
    match order.map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "order must be \"asc\" or \"desc\" (got {other:?})"
        ))),
    }
}

async fn run_query(state: &AppState, q: EventQuery) -> Result<HttpResponse, ApiError> {
    let rows = state.addrs.store.read(move |c| events::list(c, &q)).await?;
    let out = rows
        .into_iter()
        .map(EventOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(
    get,
    path = "/api/events",
    operation_id = "events_list",
    tag = "events",
    params(ListQuery),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    query: crate::http::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    run_query(
        &state,
        EventQuery {
            user_id: user.scope(),
            agent_id: q.agent_id,
            event_type: q.event_type.filter(|t| !t.is_empty()),
            after: q.after,
            before: q.before,
            limit: clamp_limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT),
            newest_first: newest_first(q.order.as_deref())?,
        },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/api/agents/{id}/events",
    operation_id = "events_for_agent",
    tag = "events",
    params(("id" = i64, Path), ListQuery),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn for_agent(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    query: crate::http::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let agent = visible_agent(&state, &user, path.into_inner()).await?;
    let q = query.into_inner();
    run_query(
        &state,
        EventQuery {
            user_id: None,
            agent_id: Some(agent.id),
            event_type: q.event_type.filter(|t| !t.is_empty()),
            after: q.after,
            before: q.before,
            limit: clamp_limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT),
            newest_first: newest_first(q.order.as_deref())?,
        },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/api/events/{id}",
    operation_id = "events_get",
    tag = "events",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let row = state
        .addrs
        .store
        .read(move |c| events::find(c, id))
        .await?
        .filter(|e| user.can_see(e.user_id))
        .ok_or_else(|| ApiError::not_found("event", id))?;
    Ok(HttpResponse::Ok().json(EventOut::try_from(row)?))
}
