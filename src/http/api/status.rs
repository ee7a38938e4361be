//! `/healthz` and `/worker_status` (Huginn's fields).

use std::time::Instant;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::http::{ApiError, AppState, AuthUser};
use crate::telemetry::health::{self, Health};

/// 200 when a read works and writes commit; 503 with the reason otherwise: the database
/// file was deleted or replaced, or the latest writes failed (a full disk, a read-only
/// file). While writes fail, each call tries a small write of its own, so the answer
/// turns to 200 once the cause is fixed even if nothing else writes.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "status_healthz",
    tag = "status",
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let safe_mode = state.config.safe_mode;
    match health::check(&state.addrs.store).await {
        Health::NoAnswer(e) => unavailable(format!("the database does not answer: {e}"), safe_mode),
        Health::WritesFailing { problem, writes } => {
            let mut body = json!({
                "status": "unavailable",
                "error": problem,
                "failed_write_batches": writes.failures_in_a_row,
                "failing_since": writes.failing_since.map(|t| t.to_rfc3339()),
            });
            if safe_mode {
                body["mode"] = json!("safe");
            }
            HttpResponse::ServiceUnavailable().json(body)
        }
        Health::Ok if safe_mode => HttpResponse::Ok().json(json!({
            "status": "ok",
            "mode": "safe",
            "note": "started with --safe: no agents, subscriptions or incoming webhooks run",
        })),
        Health::Ok => HttpResponse::Ok().json(json!({"status": "ok"})),
    }
}

fn unavailable(error: String, safe_mode: bool) -> HttpResponse {
    let mut body = json!({"status": "unavailable", "error": error});
    if safe_mode {
        body["mode"] = json!("safe");
    }
    HttpResponse::ServiceUnavailable().json(body)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    pub since_id: Option<i64>,
}

/// Huginn's `/worker_status`. `pending` counts work accepted and not finished yet (writes
/// waiting to commit, events waiting for their agents, deliveries not yet sent);
/// `awaiting_retry` the deliveries waiting for a retry; `recent_failures` agent errors
/// and dead deliveries of the last 5 days.
///
/// Per user for everyone, admins included, as Huginn's is (it reads
/// `current_user.events`): the events, deliveries and failures are the caller's own, so
/// no user learns another's error rate. Only the two queue depths inside `pending`
/// (writes waiting to commit, events waiting for an agent) are the hub's, since they
/// are not kept per user and say nothing about whose work it is.
#[utoipa::path(
    get,
    path = "/worker_status",
    operation_id = "status_worker_status",
    tag = "status",
    params(StatusQuery),
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn worker_status(
    state: web::Data<AppState>,
    user: AuthUser,
    query: crate::http::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let backlog = state.addrs.registry.backlog();
    let w = health::worker_status(&state.addrs.store, user.id, query.since_id, backlog).await?;
    // Where a client reads these events: the cursor just before the first of them.
    let events_url = w
        .min_id
        .map(|first| format!("/api/events?after={}", first - 1));
    Ok(HttpResponse::Ok().json(json!({
        "pending": w.pending,
        "awaiting_retry": w.awaiting_retry,
        "recent_failures": w.recent_failures,
        "event_count": w.event_count,
        "max_id": w.max_id.unwrap_or(0),
        "events_url": events_url,
        "compute_time": started.elapsed().as_secs_f64(),
    })))
}
