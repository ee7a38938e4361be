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

use super::page::{self, Order, Page};
use super::ts;
use crate::endpoints::FlushIncomingLog;
use crate::endpoints::incoming::endpoint_key;
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::{agents, inbound_log};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub webhook_type: Option<String>,
    // `limit`, `offset` (as the AGiXT document prints them) and the `before` cursor are
    // read by `page`, which names a bad one.
}

/// Lines wait in the endpoint's memory up to a second before they are written; a read
/// first has them written, so it shows every request answered before it. The Writer
/// commits in the order jobs were queued: once an empty job queued after the lines
/// commits, so have they.
async fn flush_before_read(
    state: &AppState,
    webhook_type: Option<&str>,
    id: i64,
) -> Result<(), ApiError> {
    let registry = &state.addrs.registry;
    if webhook_type == Some("agent") {
        if let Some(core) = registry.web_target(id).and_then(|t| t.core) {
            core.flush_log_for_read();
        }
    } else if let Some(addr) = registry.incoming_endpoint(id) {
        // A stopped endpoint flushed its lines when it stopped.
        let _ = addr.send(FlushIncomingLog).await;
    }
    state
        .addrs
        .store
        .writer()
        .write_repeatable(|_, _| Ok(()))
        .await?;
    Ok(())
}

/// The endpoint key of the incoming webhook `id` the caller may see.
async fn incoming_key(
    state: &AppState,
    user: &AuthUser,
    webhook_type: Option<&str>,
    id: i64,
) -> Result<String, ApiError> {
    match webhook_type.unwrap_or("incoming") {
        "incoming" => {}
        "agent" => {
            state
                .addrs
                .store
                .read(move |c| agents::find(c, id))
                .await?
                .filter(|r| user.can_see(r.user_id) && r.agent_type == "webhook")
                .ok_or_else(|| ApiError::not_found("webhook agent", id))?;
            return Ok(crate::endpoints::actor::endpoint_key(id));
        }
        other => {
            return Err(ApiError::Unprocessable(format!(
                "webhook_type must be \"incoming\", \"agent\", \"feed\" or \"outgoing\" (got {other:?})"
            )));
        }
    }
    super::incoming_webhooks::service(state)
        .get(user.scope(), id)
        .await?;
    Ok(endpoint_key(id))
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
    let key = incoming_key(&state, &user, q.webhook_type.as_deref(), *id).await?;
    flush_before_read(&state, q.webhook_type.as_deref(), *id).await?;
    // The inbound log is a ring of the newest lines, kept in chunks: it pages by offset.
    let page = Page::with_default(&req, Order::NewestFirst, 50)?;
    let offset = page::offset(&req)?;
    let (fetch, keep) = (page.fetch(), state.config.inbound.log_retention);
    let rows = state
        .addrs
        .store
        .read(move |c| inbound_log::list(c, &key, fetch, offset, keep))
        .await?;
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
    let key = incoming_key(&state, &user, q.webhook_type.as_deref(), *id).await?;
    flush_before_read(&state, q.webhook_type.as_deref(), *id).await?;
    let rows = state
        .addrs
        .store
        .read(move |c| inbound_log::stats(c, &key))
        .await?;
    let (mut received, mut accepted, mut duplicates, mut total_ms) = (0i64, 0i64, 0i64, 0i64);
    let mut rejected = serde_json::Map::new();
    let mut rejected_total = 0i64;
    for (outcome, n, ms) in rows {
        received += n;
        total_ms += ms;
        match outcome.as_str() {
            "accepted" => accepted += n,
            // Answered with the first response; no new event.
            "duplicate" => duplicates += n,
            _ => {
                rejected_total += n;
                rejected.insert(outcome, json!(n));
            }
        }
    }
    let avg = if received > 0 {
        total_ms as f64 / received as f64
    } else {
        0.0
    };
    Ok(HttpResponse::Ok().json(json!({
        "webhook_id": *id,
        "webhook_type": q.webhook_type.as_deref().unwrap_or("incoming"),
        "received": received,
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected_total,
        "rejected_by_reason": rejected,
        "average_processing_ms": avg,
    })))
}
