//! `/api/events`: the event log, polled by cursor (`after` = the last id seen). A page
//! that is not the last names the next one in a `Link: <…>; rel="next"` header: `after`
//! moves on ascending lists, `before` on `order=desc` ones.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::page::{self, Order, Page};
use super::{ts, ts_opt};
use crate::agents::service::events as service;
use crate::http::api::agents::visible_agent;
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::StoreError;
use crate::store::events::{EventQuery, EventRow};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    pub id: i64,
    pub user_id: i64,
    /// Null for an event no agent emitted.
    #[schema(required)]
    pub agent_id: Option<i64>,
    pub event_type: String,
    pub payload: Value,
    pub created_at: String,
    #[schema(required)]
    pub expires_at: Option<String>,
}

impl TryFrom<EventRow> for EventOut {
    type Error = StoreError;

    fn try_from(e: EventRow) -> Result<Self, StoreError> {
        Ok(EventOut {
            payload: e.payload_json()?,
            id: e.id.0,
            user_id: e.user_id,
            agent_id: e.agent_id.map(i64::from),
            event_type: e.event_type,
            created_at: ts(e.created_at),
            expires_at: ts_opt(e.expires_at),
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    // `after`, `before` and `limit` are read by `Cursor::read`, which names a bad one.
    pub agent_id: Option<i64>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// `desc` for newest first; ascending ids by default.
    pub order: Option<String>,
}

fn newest_first(order: Option<&str>) -> Result<bool, ApiError> {
    match order.map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "order must be \"asc\" or \"desc\" (got {other:?})"
        ))),
    }
}

/// `after`, `before` and `limit`, read as every list reads them.
struct Cursor {
    after: Option<i64>,
    before: Option<i64>,
    page: Page,
}

impl Cursor {
    fn read(req: &HttpRequest) -> Result<Cursor, ApiError> {
        Ok(Cursor {
            after: page::param(req, "after")?,
            before: page::param(req, "before")?,
            page: Page::from_request(req, Order::OldestFirst)?,
        })
    }
}

/// Runs the query with one row more than the page, so the answer knows whether a next
/// page exists: the next one continues past the last id in the query's own order.
async fn run_query(
    state: &AppState,
    req: &HttpRequest,
    mut q: EventQuery,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit;
    q.limit = limit + 1;
    let newest_first = q.newest_first;
    let mut rows = service::list(&state.addrs.store, q).await?;
    let next = if rows.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        rows.last().map(|r| r.id)
    } else {
        None
    };
    let out = rows
        .into_iter()
        .map(EventOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let mut resp = HttpResponse::Ok();
    if let Some(n) = next {
        let cursor = if newest_first { "before" } else { "after" };
        resp.insert_header((
            actix_web::http::header::LINK,
            page::next_link(req, cursor, &n.to_string()),
        ));
    }
    Ok(resp.json(out))
}

#[utoipa::path(
    get,
    path = "/api/events",
    operation_id = "events_list",
    tag = "events",
    params(ListQuery, super::page::PageParams),
    responses(
        (status = 200, description = "OK", body = Vec<EventOut>)
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    query: crate::http::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let cur = Cursor::read(&req)?;
    run_query(
        &state,
        &req,
        EventQuery {
            user_id: user.scope(),
            agent_id: q.agent_id.map(crate::ids::AgentId),
            event_type: q.event_type.filter(|t| !t.is_empty()),
            after: cur.after,
            before: cur.before,
            limit: cur.page.limit,
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
    params(("id" = i64, Path), ListQuery, super::page::PageParams),
    responses(
        (status = 200, description = "OK", body = Vec<EventOut>)
    )
)]
pub async fn for_agent(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<crate::ids::AgentId>,
    req: HttpRequest,
    query: crate::http::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let agent = visible_agent(&state, &user, path.into_inner()).await?;
    let q = query.into_inner();
    let cur = Cursor::read(&req)?;
    run_query(
        &state,
        &req,
        EventQuery {
            user_id: None,
            agent_id: Some(agent.id),
            event_type: q.event_type.filter(|t| !t.is_empty()),
            after: cur.after,
            before: cur.before,
            limit: cur.page.limit,
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
        (status = 200, description = "OK", body = EventOut)
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<crate::ids::EventId>,
) -> Result<HttpResponse, ApiError> {
    let row = service::find_owned(&state.addrs.store, user.scope(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(EventOut::try_from(row)?))
}
