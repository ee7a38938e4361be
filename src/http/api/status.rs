//! `/healthz` and `/worker_status` (Huginn's fields).

use std::time::Instant;

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;
use serde::Deserialize;
use serde_json::json;

use crate::http::{ApiError, AppState, AuthUser};
use crate::store::{agent_logs, deliveries, events};

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let probe = state
        .addrs
        .store
        .read(|c| Ok(diesel::sql_query("SELECT 1").execute(c)?))
        .await;
    match probe {
        Ok(_) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(e) => HttpResponse::ServiceUnavailable().json(
            json!({"status": "unavailable", "error": format!("the database does not answer: {e}")}),
        ),
    }
}

#[derive(Debug, Deserialize)]
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
pub async fn worker_status(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let scope = Some(user.id);
    let user_id = user.id;
    let since = query.since_id;
    let five_days_ago = crate::store::now() - chrono::Duration::days(5);
    let (count, min_id, max_id, failures, (pending_deliveries, retrying, dead)) = state
        .addrs
        .store
        .read(move |c| {
            let (count, min, max) = events::count_and_bounds(c, scope, since)?;
            let failures = agent_logs::count_errors_since(c, user_id, five_days_ago)?;
            let outbox = deliveries::totals(c, scope, five_days_ago)?;
            Ok((count, min, max, failures, outbox))
        })
        .await?;
    let pending = (state.addrs.store.writer().queue_depth() + state.addrs.registry.backlog())
        as i64
        + pending_deliveries;
    // Where a client reads these events: the cursor just before the first of them.
    let events_url = min_id.map(|first| format!("/api/events?after={}", first - 1));
    Ok(HttpResponse::Ok().json(json!({
        "pending": pending,
        "awaiting_retry": retrying,
        "recent_failures": failures + dead,
        "event_count": count,
        "max_id": max_id.unwrap_or(0),
        "events_url": events_url,
        "compute_time": started.elapsed().as_secs_f64(),
    })))
}
