//! `GET /api/webhooks/{id}/logs?webhook_type=feed` and `/statistics?webhook_type=feed`:
//! the requests a `data_output` agent's feed answered since the hub started, from
//! memory (see `telemetry::feed_log`), in the shape of the inbound endpoints' logs.

use actix_web::HttpResponse;

use super::page::{self, Order, Page};
use super::webhook_logs::{InboundLogLineOut, InboundStatisticsOut, LogLineOut, StatisticsOut};
use crate::http::{ApiError, AppState, AuthUser};
use crate::ids::AgentId;

/// The data_output agent `id` the caller may see.
async fn visible_feed(state: &AppState, user: &AuthUser, id: AgentId) -> Result<(), ApiError> {
    if crate::feeds::is_owned_feed(&state.addrs.store, user.scope(), id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("data_output agent", id))
    }
}

/// A count kept in memory, as the logs' other counts are typed.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub async fn logs(
    state: &AppState,
    user: &AuthUser,
    id: AgentId,
    req: &actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    visible_feed(state, user, id).await?;
    // A ring of recent requests in memory: it pages by offset.
    let page = Page::with_default(req, Order::NewestFirst, 50)?;
    let offset = page::offset(req)?;
    let fetch = usize::try_from(page.fetch()).unwrap_or(usize::MAX);
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    let out: Vec<LogLineOut> = state
        .addrs
        .registry
        .stats
        .feeds
        .newest_first(id, fetch, skip)
        .into_iter()
        .map(|r| {
            LogLineOut::Inbound(InboundLogLineOut {
                id: count(r.seq),
                received_at: r.received_at,
                source_ip: r.source_ip.map(|ip| ip.to_string()),
                method: r.method,
                status: i32::from(r.status),
                // 304 is a reader whose copy is current: served.
                accepted: r.status < 400,
                reason: (r.status == 401).then(|| "not_authorized".to_owned()),
                detail: None,
                processing_ms: count(r.processing_ms),
                event_ids: Vec::new(),
            })
        })
        .collect();
    let (out, more) = page.cut(out, |_| 0);
    Ok(page.respond_offset(req, &out, more.map(|_| offset + page.limit)))
}

pub async fn statistics(
    state: &AppState,
    user: &AuthUser,
    id: AgentId,
) -> Result<HttpResponse, ApiError> {
    visible_feed(state, user, id).await?;
    let stats = &state.addrs.registry.stats;
    let (accepted, rejected) = stats
        .endpoints()
        .into_iter()
        .find(|(agent, ..)| *agent == id)
        .map_or((0, Default::default()), |(_, e, _)| {
            (e.accepted, e.rejected)
        });
    let rejected_total: u64 = rejected.values().sum();
    let kept = stats.feeds.newest_first(id, usize::MAX, 0);
    let avg = if kept.is_empty() {
        0.0
    } else {
        kept.iter().map(|r| r.processing_ms as f64).sum::<f64>() / kept.len() as f64
    };
    Ok(
        HttpResponse::Ok().json(StatisticsOut::Inbound(InboundStatisticsOut {
            webhook_id: id.0,
            webhook_type: "feed".to_owned(),
            received: count(accepted + rejected_total),
            accepted: count(accepted),
            duplicates: 0,
            rejected: count(rejected_total),
            rejected_by_reason: rejected
                .iter()
                .map(|(status, n)| (status.to_string(), count(*n)))
                .collect(),
            average_processing_ms: avg,
        })),
    )
}
