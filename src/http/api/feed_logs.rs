//! `GET /api/webhooks/{id}/logs?webhook_type=feed` and `/statistics?webhook_type=feed`:
//! the requests a `data_output` agent's feed answered since the hub started, from
//! memory (see `telemetry::feed_log`), in the shape of the inbound endpoints' logs.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use serde::Serialize;

use super::page::{self, Order, Page};
use crate::http::{ApiError, AppState, AuthUser};

/// The data_output agent `id` the caller may see.
async fn visible_feed(state: &AppState, user: &AuthUser, id: i64) -> Result<(), ApiError> {
    if crate::feeds::is_owned_feed(&state.addrs.store, user.scope(), id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("data_output agent", id))
    }
}

/// One request a feed answered, in the fields of an inbound log line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedLogOut {
    /// Numbers the requests since the hub started (newest is largest).
    pub id: u64,
    pub received_at: String,
    #[schema(required)]
    pub source_ip: Option<String>,
    pub method: String,
    pub status: u16,
    /// A 304 (the reader's copy is current) is served too.
    pub accepted: bool,
    /// `not_authorized` for a 401; null otherwise.
    #[schema(required)]
    pub reason: Option<&'static str>,
    /// Always null for a feed (an inbound line's detail of the reason).
    #[schema(required)]
    pub detail: Option<String>,
    pub processing_ms: u64,
    /// Always empty: a feed request makes no event.
    pub event_ids: Vec<i64>,
}

/// A feed's request totals since the hub started, in the fields of an inbound
/// endpoint's statistics.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedStatisticsOut {
    pub webhook_id: i64,
    /// Always `feed`.
    pub webhook_type: &'static str,
    pub received: u64,
    pub accepted: u64,
    /// Always 0 for a feed.
    pub duplicates: u64,
    pub rejected: u64,
    /// Answer status (as text) -> count.
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub average_processing_ms: f64,
}

pub async fn logs(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    req: &actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    visible_feed(state, user, id).await?;
    // A ring of recent requests in memory: it pages by offset.
    let page = Page::with_default(req, Order::NewestFirst, 50)?;
    let offset = page::offset(req)?;
    let fetch = usize::try_from(page.fetch()).unwrap_or(usize::MAX);
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    let out: Vec<FeedLogOut> = state
        .addrs
        .registry
        .stats
        .feeds
        .newest_first(id, fetch, skip)
        .into_iter()
        .map(|r| FeedLogOut {
            id: r.seq,
            received_at: r.received_at,
            source_ip: r.source_ip.map(|ip| ip.to_string()),
            method: r.method,
            status: r.status,
            // 304 is a reader whose copy is current: served.
            accepted: r.status < 400,
            reason: (r.status == 401).then_some("not_authorized"),
            detail: None,
            processing_ms: r.processing_ms,
            event_ids: Vec::new(),
        })
        .collect();
    let (out, more) = page.cut(out, |_| 0);
    Ok(page.respond_offset(req, &out, more.map(|_| offset + page.limit)))
}

pub async fn statistics(
    state: &AppState,
    user: &AuthUser,
    id: i64,
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
    Ok(HttpResponse::Ok().json(FeedStatisticsOut {
        webhook_id: id,
        webhook_type: "feed",
        received: accepted + rejected_total,
        accepted,
        duplicates: 0,
        rejected: rejected_total,
        rejected_by_reason: rejected
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect(),
        average_processing_ms: avg,
    }))
}
