//! `/api/deliveries`: the outbox as a user sees it — pending, retrying, delivered and
//! dead (the dead-letter queue), each with its attempts; manual retry.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::subscriptions::{caller, service};
use super::{ts, ts_opt};
use crate::delivery::subscription::DeliveryFilter;
use crate::http::{ApiError, AppState, AuthUser};
use crate::ids::{DeliveryId, SubscriptionId};
use crate::store::deliveries::DeliveryRow;
use crate::store::deliveries::DeliveryStatus;
use crate::store::delivery_attempts::AttemptRow;

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
        id: d.id.0,
        webhook_id: d.subscription_id.0,
        event_id: d.event_id.0,
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
    let filter = DeliveryFilter {
        status: q.status,
        subscription_id: q.webhook_id.map(SubscriptionId),
        before: page.cursor,
        limit: page.fetch(),
        offset: q.offset.unwrap_or(0),
    };
    let rows = service(&state).deliveries(caller(&user), filter).await?;
    let (rows, next) = page.cut(rows, |d| d.id.0);
    let outs: Vec<_> = rows.into_iter().map(|d| out(d, None)).collect();
    Ok(page.respond(&req, &outs, next))
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
    path: web::Path<DeliveryId>,
) -> Result<HttpResponse, ApiError> {
    let (d, attempts) = service(&state)
        .delivery(caller(&user), path.into_inner())
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
    path: web::Path<DeliveryId>,
) -> Result<HttpResponse, ApiError> {
    let row = service(&state)
        .retry_delivery(caller(&user), path.into_inner())
        .await?;
    Ok(HttpResponse::Accepted().json(out(row, None)))
}
