//! `GET /api/webhooks/{id}/logs` and `/statistics`: what an inbound endpoint received.
//! `webhook_type=incoming` (the default) reads an incoming webhook's request log;
//! `webhook_type=agent` the log of webhook agent `{id}`'s Huginn URL; `feed` a
//! data_output agent's feed requests (`feed_logs`); `outgoing` a subscription's
//! delivery attempts (answered by `outgoing_logs`).
//! Log lines never hold the signature secret or the token: only the time, source
//! address, status, rejection reason, processing time and event ids.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::incoming_webhooks::service;
use super::page::{self, Order, Page};
use super::ts;
use crate::endpoints::incoming_service::logs::LogSource;
use crate::http::{ApiError, AppState, AuthUser};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub webhook_type: Option<String>,
    // `limit`, `offset` (as the AGiXT document prints them) and the `before` cursor are
    // read by `page`, which names a bad one.
}

#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/logs",
    operation_id = "webhook_logs_logs",
    tag = "webhook_logs",
    params(("id" = i64, Path), LogQuery, super::page::PageParams),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn logs(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    req: actix_web::HttpRequest,
    q: crate::http::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    if q.webhook_type.as_deref() == Some("outgoing") {
        return super::outgoing_logs::logs(&state, &user, *id, &req).await;
    }
    if q.webhook_type.as_deref() == Some("feed") {
        return super::feed_logs::logs(&state, &user, *id, &req).await;
    }
    let source = LogSource::parse(q.webhook_type.as_deref())?;
    let key = service(&state)
        .log_for_read(user.scope(), source, *id)
        .await?;
    // The inbound log is a ring of the newest lines, kept in chunks: it pages by offset.
    let page = Page::with_default(&req, Order::NewestFirst, 50)?;
    let offset = page::offset(&req)?;
    let (fetch, keep) = (page.fetch(), state.config.inbound.log_retention);
    let rows = service(&state).log_lines(key, fetch, offset, keep).await?;
    let (rows, more) = page.cut(rows, |_| 0);
    let out: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "received_at": ts(r.received_at),
                "source_ip": r.source_ip,
                "method": r.method,
                "status": r.status,
                "accepted": (200..300).contains(&r.status),
                // Stored as "<reason>: <detail>"; shown apart.
                "reason": r.reason.as_deref().map(|x| x.split_once(": ").map_or(x, |(k, _)| k)),
                "detail": r.reason.as_deref().and_then(|x| x.split_once(": ")).map(|(_, d)| d),
                "processing_ms": r.processing_ms,
                "event_ids": r.event_ids,
            })
        })
        .collect();
    Ok(page.respond_offset(&req, &out, more.map(|_| offset + page.limit)))
}

#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/statistics",
    operation_id = "webhook_logs_statistics",
    tag = "webhook_logs",
    params(("id" = i64, Path), LogQuery),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn statistics(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: crate::http::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    if q.webhook_type.as_deref() == Some("outgoing") {
        return super::outgoing_logs::statistics(&state, &user, *id).await;
    }
    if q.webhook_type.as_deref() == Some("feed") {
        return super::feed_logs::statistics(&state, &user, *id).await;
    }
    let source = LogSource::parse(q.webhook_type.as_deref())?;
    let svc = service(&state);
    let key = svc.log_for_read(user.scope(), source, *id).await?;
    let t = svc.log_totals(key).await?;
    let rejected: serde_json::Map<String, Value> = t
        .rejected_by_reason
        .into_iter()
        .map(|(reason, n)| (reason, json!(n)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "webhook_id": *id,
        "webhook_type": q.webhook_type.as_deref().unwrap_or("incoming"),
        "received": t.received,
        "accepted": t.accepted,
        "duplicates": t.duplicates,
        "rejected": t.rejected,
        "rejected_by_reason": rejected,
        "average_processing_ms": t.average_processing_ms,
    })))
}
