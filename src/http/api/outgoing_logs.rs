//! The outgoing side of `/api/webhooks/{id}/logs` and `/statistics`
//! (`webhook_type=outgoing`): a subscription's attempts and delivery counts.

use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::Value;

use super::page::{self, Order, Page};
use super::ts;
use super::webhook_logs::{LogLineOut, StatisticsOut};
use crate::delivery::subscription::{AttemptLine, AttemptPage};
use crate::http::api::subscriptions::{caller, service};
use crate::http::{ApiError, AppState, AuthUser};
use crate::ids::SubscriptionId;
use crate::store::deliveries;

/// One delivery attempt of a subscription, as the AGiXT document prints a log line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutgoingLogLineOut {
    pub id: i64,
    pub webhook_id: i64,
    /// Always `outgoing`.
    pub webhook_type: &'static str,
    pub delivery_id: i64,
    pub message_id: String,
    pub event_type: String,
    /// The body sent, as JSON; a body that is not JSON (or was cut short when stored)
    /// is a string.
    pub request_payload: Value,
    /// Every header sent, secrets masked (null if the stored list is unreadable).
    pub request_headers: Value,
    #[schema(required)]
    pub response_status: Option<i32>,
    /// The start of the receiver's answer.
    #[schema(required)]
    pub response_body: Option<String>,
    #[schema(required)]
    pub error_message: Option<String>,
    /// 0 for the first attempt.
    pub retry_count: i32,
    pub processing_time_ms: i64,
    pub created_at: String,
}

/// A subscription's attempt totals and its deliveries by status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutgoingStatisticsOut {
    pub webhook_id: i64,
    /// Always `outgoing`.
    pub webhook_type: &'static str,
    pub total_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
    pub average_processing_time_ms: f64,
    pub pending: i64,
    pub retrying: i64,
    pub delivered: i64,
    pub dead: i64,
    /// Requests being sent right now.
    pub in_flight: usize,
    /// `closed`, `open` or `half_open`.
    pub circuit_state: String,
    pub paused: bool,
    pub is_active: bool,
}

pub async fn logs(
    state: &AppState,
    user: &AuthUser,
    id: SubscriptionId,
    req: &actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // Newest first by the `before` cursor; `offset` as the AGiXT document prints it.
    let asked =
        Page::from_request(req, Order::NewestFirst).and_then(|page| Ok((page, page::offset(req)?)));
    let (page, offset) = match asked {
        Ok(asked) => asked,
        // Ownership first: another user's webhook is a 404 whatever the query says.
        Err(e) => {
            service(state).get(caller(user), id).await?;
            return Err(e);
        }
    };
    let wanted = AttemptPage {
        before: page.before(),
        limit: page.fetch(),
        offset,
    };
    let rows = service(state).attempt_log(caller(user), id, wanted).await?;
    let (rows, next) = page.cut(rows, |l| l.attempt.id);
    let out: Vec<LogLineOut> = rows
        .into_iter()
        .map(|line| {
            let AttemptLine {
                attempt: a,
                message_id,
                event_type,
            } = line;
            LogLineOut::Outgoing(OutgoingLogLineOut {
                id: a.id,
                webhook_id: a.subscription_id.0,
                webhook_type: "outgoing",
                delivery_id: a.delivery_id.0,
                message_id,
                event_type,
                request_payload: serde_json::from_str::<Value>(&a.request_body)
                    .unwrap_or(Value::String(a.request_body)),
                request_headers: serde_json::from_str::<Value>(&a.request_headers)
                    .unwrap_or(Value::Null),
                response_status: a.response_status,
                response_body: a.response_excerpt,
                error_message: a.error,
                retry_count: a.attempt_number - 1,
                processing_time_ms: a.duration_ms,
                created_at: ts(a.started_at),
            })
        })
        .collect();
    Ok(page.respond(req, &out, next))
}

pub async fn statistics(
    state: &AppState,
    user: &AuthUser,
    id: SubscriptionId,
) -> Result<HttpResponse, ApiError> {
    let t = service(state).attempt_totals(caller(user), id).await?;
    let sub = &t.subscription;
    let id = sub.id;
    let live = state.addrs.registry.subscription(id);
    let in_flight = live.as_ref().map_or(0, |e| {
        e.shared
            .in_flight
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    Ok(
        HttpResponse::Ok().json(StatisticsOut::Outgoing(OutgoingStatisticsOut {
            webhook_id: id.0,
            webhook_type: "outgoing",
            total_requests: t.attempts,
            successful_requests: t.successful,
            failed_requests: t.attempts - t.successful,
            average_processing_time_ms: t.average_ms,
            pending: t.count(deliveries::PENDING),
            retrying: t.count(deliveries::RETRYING),
            delivered: t.count(deliveries::DELIVERED),
            dead: t.count(deliveries::DEAD),
            in_flight,
            circuit_state: sub.circuit_state.as_str().to_string(),
            paused: sub.paused,
            is_active: sub.is_active,
        })),
    )
}
