//! `GET /api/webhooks/{id}/logs` and `/statistics`: what an inbound endpoint received.
//! `webhook_type=incoming` (the default) reads an incoming webhook's request log;
//! `webhook_type=agent` the log of webhook agent `{id}`'s Huginn URL; `feed` a
//! data_output agent's feed requests (`feed_logs`); `outgoing` a subscription's
//! delivery attempts (answered by `outgoing_logs`).
//! Log lines never hold the signature secret or the token: only the time, source
//! address, status, rejection reason, processing time and event ids.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::incoming_webhooks::service;
use super::outgoing_logs::{OutgoingLogLineOut, OutgoingStatisticsOut};
use super::page::{self, Order, Page};
use super::ts;
use crate::endpoints::incoming_service::logs::LogSource;
use crate::http::{ApiError, AppState, AuthUser};
use crate::ids::{AgentId, SubscriptionId};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    pub webhook_type: Option<String>,
    // `limit`, `offset` (as the AGiXT document prints them) and the `before` cursor are
    // read by `page`, which names a bad one.
}

/// One request an inbound endpoint answered: an incoming webhook (`webhook_type`
/// `incoming`), a webhook agent's Huginn URL (`agent`) or a data_output agent's feed
/// (`feed`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundLogLineOut {
    /// Newest is largest (a feed's numbers count the requests since the hub started).
    pub id: i64,
    pub received_at: String,
    #[schema(required)]
    pub source_ip: Option<String>,
    pub method: String,
    /// The status answered.
    pub status: i32,
    /// A 2xx answer (for a feed, any answer below 400: a 304 is served too).
    pub accepted: bool,
    /// Why the request was refused (`rate_limited`, `bad_signature`, …;
    /// `not_authorized` for a feed's 401); null when accepted.
    #[schema(required)]
    pub reason: Option<String>,
    /// The detail of the reason; always null for a feed.
    #[schema(required)]
    pub detail: Option<String>,
    pub processing_ms: i64,
    /// The events the request made (always empty for a feed).
    pub event_ids: Vec<i64>,
}

/// A line of `/api/webhooks/{id}/logs`: a request an inbound endpoint answered
/// (`webhook_type` `incoming`, `agent`, `feed`) or a delivery attempt of a
/// subscription (`outgoing`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LogLineOut {
    Inbound(InboundLogLineOut),
    Outgoing(OutgoingLogLineOut),
}

/// An inbound endpoint's request totals (a feed's since the hub started).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundStatisticsOut {
    pub webhook_id: i64,
    /// `incoming`, `agent` or `feed`: the `webhook_type` asked for.
    pub webhook_type: String,
    pub received: i64,
    pub accepted: i64,
    /// Requests answered again from an earlier one with the same idempotency key
    /// (always 0 for a feed).
    pub duplicates: i64,
    pub rejected: i64,
    /// The refusal reason (for a feed: the status answered, as text) -> count.
    pub rejected_by_reason: BTreeMap<String, i64>,
    pub average_processing_ms: f64,
}

/// `/api/webhooks/{id}/statistics`: an inbound endpoint's totals, or a subscription's
/// (`webhook_type=outgoing`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StatisticsOut {
    Inbound(InboundStatisticsOut),
    Outgoing(OutgoingStatisticsOut),
}

#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/logs",
    operation_id = "webhook_logs_logs",
    tag = "webhook_logs",
    params(("id" = i64, Path), LogQuery, super::page::PageParams),
    responses(
        (status = 200, description = "The newest lines first, of the kind `webhook_type` \
            names; `Link: <…>; rel=\"next\"` when more follow", body = Vec<LogLineOut>)
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
        return super::outgoing_logs::logs(&state, &user, SubscriptionId(*id), &req).await;
    }
    if q.webhook_type.as_deref() == Some("feed") {
        return super::feed_logs::logs(&state, &user, AgentId(*id), &req).await;
    }
    let source = LogSource::parse(q.webhook_type.as_deref())?;
    let key = service(&state)
        .log_for_read(user.scope(), source, *id)
        .await
        .map_err(|e| type_hint(e.into(), q.webhook_type.as_deref()))?;
    // The inbound log is a ring of the newest lines, kept in chunks: it pages by offset.
    let page = Page::with_default(&req, Order::NewestFirst, 50)?;
    let offset = page::offset(&req)?;
    let (fetch, keep) = (page.fetch(), state.config.inbound.log_retention);
    let rows = service(&state).log_lines(key, fetch, offset, keep).await?;
    let (rows, more) = page.cut(rows, |_| 0);
    let out: Vec<LogLineOut> = rows
        .into_iter()
        .map(|r| {
            // Stored as "<reason>: <detail>"; shown apart.
            let (reason, detail) = match r.reason {
                Some(x) => match x.split_once(": ") {
                    Some((k, d)) => (Some(k.to_owned()), Some(d.to_owned())),
                    None => (Some(x), None),
                },
                None => (None, None),
            };
            LogLineOut::Inbound(InboundLogLineOut {
                id: r.id,
                received_at: ts(r.received_at),
                source_ip: r.source_ip,
                method: r.method,
                status: r.status,
                accepted: (200..300).contains(&r.status),
                reason,
                detail,
                processing_ms: r.processing_ms,
                event_ids: r.event_ids,
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
        (status = 200, description = "The totals of the kind `webhook_type` names", body = StatisticsOut)
    )
)]
pub async fn statistics(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    q: crate::http::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    if q.webhook_type.as_deref() == Some("outgoing") {
        return super::outgoing_logs::statistics(&state, &user, SubscriptionId(*id)).await;
    }
    if q.webhook_type.as_deref() == Some("feed") {
        return super::feed_logs::statistics(&state, &user, AgentId(*id)).await;
    }
    let source = LogSource::parse(q.webhook_type.as_deref())?;
    let svc = service(&state);
    let key = svc
        .log_for_read(user.scope(), source, *id)
        .await
        .map_err(|e| type_hint(e.into(), q.webhook_type.as_deref()))?;
    let t = svc.log_totals(key).await?;
    Ok(
        HttpResponse::Ok().json(StatisticsOut::Inbound(InboundStatisticsOut {
            webhook_id: *id,
            webhook_type: q.webhook_type.as_deref().unwrap_or("incoming").to_owned(),
            received: t.received,
            accepted: t.accepted,
            duplicates: t.duplicates,
            rejected: t.rejected,
            rejected_by_reason: t.rejected_by_reason.into_iter().collect(),
            average_processing_ms: t.average_processing_ms,
        })),
    )
}

/// The AGiXT document makes `webhook_type` required; muninn reads an absent one as
/// `incoming`, so a caller who left it out while asking about another kind is told
/// what to add instead of only that no incoming webhook has the id.
fn type_hint(e: ApiError, asked: Option<&str>) -> ApiError {
    match (e, asked) {
        (ApiError::NotFound(m), None) => ApiError::NotFound(format!(
            "{m} (webhook_type was not given, so it is incoming: add ?webhook_type=outgoing for an outgoing webhook, agent for a webhook agent's URL, feed for a data_output agent's feed)"
        )),
        (e, _) => e,
    }
}
