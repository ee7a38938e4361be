//! `/api/deliveries`: the outbox as a user sees it — pending, retrying, delivered and
//! dead (the dead-letter queue), each with its attempts; manual retry.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ts, ts_opt};
use crate::delivery::actor::Wake;
use crate::http::api::subscriptions::visible;
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::deliveries::{self, DeliveryQuery, DeliveryRow, DeliveryStatus, STATUSES};
use crate::store::delivery_attempts::{self, AttemptRow};
use crate::store::subscriptions;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub message_id: String,
    /// Always one of [`DeliveryStatus`]'s names (`DeliveryStatus::as_str`).
    #[schema(value_type = DeliveryStatus)]
    pub status: String,
    pub attempts: i32,
    #[schema(required = true)]
    pub next_attempt_at: Option<String>,
    #[schema(required = true)]
    pub last_status: Option<i32>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[schema(required = true)]
    pub delivered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptOut>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub id: i64,
    pub attempt_number: i32,
    pub started_at: String,
    pub duration_ms: i64,
    pub request_headers: Value,
    pub request_body: String,
    #[schema(required = true)]
    pub response_status: Option<i32>,
    #[schema(required = true)]
    pub response_body: Option<String>,
    #[schema(required = true)]
    pub error: Option<String>,
}

pub fn attempt_out(a: AttemptRow) -> AttemptOut {
    AttemptOut {
        id: a.id,
        attempt_number: a.attempt_number,
        started_at: ts(a.started_at),
        duration_ms: a.duration_ms,
        request_headers: serde_json::from_str(&a.request_headers).unwrap_or(Value::Null),
        request_body: a.request_body,
        response_status: a.response_status,
        response_body: a.response_excerpt,
        error: a.error,
    }
}

fn out(d: DeliveryRow, attempts: Option<Vec<AttemptRow>>) -> DeliveryOut {
    let waiting = d.status.is_waiting();
    DeliveryOut {
        id: d.id,
        webhook_id: d.subscription_id,
        event_id: d.event_id,
        message_id: d.message_id,
        status: d.status.as_str().to_string(),
        attempts: d.attempts,
        next_attempt_at: waiting.then(|| ts(d.next_attempt_at)),
        last_status: d.last_status,
        last_error: d.last_error,
        created_at: ts(d.created_at),
        updated_at: ts(d.updated_at),
        delivered_at: ts_opt(d.delivered_at),
        attempt_log: attempts.map(|a| a.into_iter().map(attempt_out).collect()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Checked against `STATUSES` (a 400 names the others).
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    pub webhook_id: Option<i64>,
    // `limit` and the `before` cursor are read by `Page`, which names a bad one.
    pub offset: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/deliveries",
    operation_id = "deliveries_list",
    tag = "deliveries",
    params(ListQuery, super::page::PageParams),
    responses(
        (status = 200, description = "Deliveries, newest first (without `attempt_log`); `Link: <...>; rel=\"next\"` when there are more", body = [DeliveryOut])
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: actix_web::HttpRequest,
    query: crate::http::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = super::page::Page::from_request(&req, super::page::Order::NewestFirst)?;
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "status {s:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    let subscription_ids = match q.webhook_id {
        Some(id) => Some(vec![visible(&state, &user, id).await?.id]),
        None if user.is_admin => None,
        None => {
            let uid = user.id;
            let subs = state
                .addrs
                .store
                .read(move |c| subscriptions::list(c, Some(uid)))
                .await?;
            Some(subs.into_iter().map(|s| s.id).collect())
        }
    };
    let query = DeliveryQuery {
        subscription_ids,
        status: q.status,
        before: page.cursor,
        limit: page.fetch(),
        offset: q.offset.unwrap_or(0).max(0),
    };
    let rows = state
        .addrs
        .store
        .read(move |c| deliveries::list(c, &query))
        .await?;
    let (rows, next) = page.cut(rows, |d| d.id);
    let outs: Vec<_> = rows.into_iter().map(|d| out(d, None)).collect();
    Ok(page.respond(&req, &outs, next))
}

async fn visible_delivery(
    state: &AppState,
    user: &AuthUser,
    id: i64,
) -> Result<DeliveryRow, ApiError> {
    let d = state
        .addrs
        .store
        .read(move |c| deliveries::find(c, id))
        .await?
        .ok_or_else(|| ApiError::not_found("delivery", id))?;
    visible(state, user, d.subscription_id)
        .await
        .map_err(|_| ApiError::not_found("delivery", id))?;
    Ok(d)
}

#[utoipa::path(
    get,
    path = "/api/deliveries/{id}",
    operation_id = "deliveries_get",
    tag = "deliveries",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The delivery with its `attempt_log`", body = DeliveryOut)
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let d = visible_delivery(&state, &user, path.into_inner()).await?;
    let id = d.id;
    let attempts = state
        .addrs
        .store
        .read(move |c| delivery_attempts::for_delivery(c, id))
        .await?;
    Ok(HttpResponse::Ok().json(out(d, Some(attempts))))
}

/// Sends a delivery again with a fresh retry budget and the same message id.
#[utoipa::path(
    post,
    path = "/api/deliveries/{id}/retry",
    operation_id = "deliveries_retry",
    tag = "deliveries",
    params(("id" = i64, Path)),
    responses(
        (status = 202, description = "Queued again", body = DeliveryOut)
    )
)]
pub async fn retry(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let d = visible_delivery(&state, &user, path.into_inner()).await?;
    if d.status.is_waiting() {
        return Err(ApiError::Conflict(format!(
            "delivery {} is already {}; it will be sent at {}",
            d.id,
            d.status,
            ts(d.next_attempt_at)
        )));
    }
    let id = d.id;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| deliveries::requeue(c, id))
        .await?;
    if let Some(e) = state.addrs.registry.subscription(row.subscription_id) {
        e.addr.do_send(Wake);
    }
    Ok(HttpResponse::Accepted().json(out(row, None)))
}
