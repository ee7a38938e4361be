//! Telemetry: the one entry point through which the hub records what happened. It feeds
//! both the Prometheus counters (`crate::ops::metrics`, `GET /metrics`) and the
//! console's live statistics ([`stats::Stats`]: `/api/summary`, `/api/stream`, the
//! endpoints screen), so a caller reports an occurrence once, here, and which of the
//! two keeps what is decided in this file.
//!
//! Sits just above the store (the statistics hold its rows' types) and below every
//! subsystem that reports (endpoints, delivery, the Router, the HTTP faces).

pub mod feed_log;
pub mod health;
pub mod stats;
pub mod summary;

use std::net::IpAddr;

pub use crate::ops::metrics::IngestKind;
use crate::ops::metrics::{self, DeliveryOutcome as Outcome};
use crate::store::Committed;
use crate::store::deliveries::{DEAD, DELIVERED};
use stats::{DeliveryOutcome, Stats};

/// The agent endpoint (a webhook or data_output agent) a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub agent_id: crate::ids::AgentId,
    pub user_id: i64,
}

/// One answered inbound request. `endpoint` is set when it reached an agent's endpoint,
/// which the console counts per endpoint; a request for an unknown URL or a CORS
/// preflight counts only in the metrics.
pub fn inbound(stats: &Stats, kind: IngestKind, endpoint: Option<Endpoint>, status: u16) {
    metrics::ingest(kind, status);
    if let Some(e) = endpoint {
        stats.record_inbound(e.agent_id, e.user_id, status);
    }
}

/// One feed request, as the feed answered it (the request itself is counted by
/// [`inbound`] like every web request).
#[derive(Debug, Clone, Copy)]
pub struct FeedRequest<'a> {
    pub agent_id: crate::ids::AgentId,
    pub source_ip: Option<IpAddr>,
    pub method: &'a str,
    pub status: u16,
    pub processing_ms: u64,
}

/// A feed answered: the feed metric (cache hits are counted by the feed actor, which
/// knows) and the feed's request log on the console.
pub fn feed_request(stats: &Stats, r: FeedRequest<'_>) {
    metrics::feed_request(r.status, false);
    stats
        .feeds
        .record(r.agent_id, r.source_ip, r.method, r.status, r.processing_ms);
}

/// One delivery attempt settled: `Some` once its outcome is committed, `None` when it
/// could not be recorded (the delivery stays due and is sent again).
pub fn delivery_settled(stats: &Stats, settled: Option<DeliveryOutcome>) {
    metrics::delivery(match &settled {
        Some(o) if o.status == DELIVERED => Outcome::Delivered,
        Some(o) if o.status == DEAD => Outcome::Dead,
        Some(_) => Outcome::Retrying,
        None => Outcome::Unrecorded,
    });
    if let Some(o) = settled {
        stats.record_delivery(o);
    }
}

/// One committed batch of events (the Router reports it; the writer's own counters
/// already count it in the metrics).
pub fn events_committed(stats: &Stats, batch: &[Committed]) {
    stats.record_events(batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_counts_an_endpoint_on_the_console_only_when_one_was_reached() {
        let s = Stats::default();
        let ep = Endpoint {
            agent_id: crate::ids::AgentId(7),
            user_id: 1,
        };
        inbound(&s, IngestKind::Huginn, Some(ep), 201);
        inbound(&s, IngestKind::Huginn, Some(ep), 429);
        inbound(&s, IngestKind::Huginn, None, 404);
        let eps = s.endpoints();
        assert_eq!(eps.len(), 1);
        let (id, e, _) = &eps[0];
        assert_eq!(
            (id.0, e.accepted, e.rejected.get(&429).copied()),
            (7, 1, Some(1))
        );
    }

    #[test]
    fn a_settled_delivery_reaches_the_console_and_an_unrecorded_one_does_not() {
        let s = Stats::default();
        let o = DeliveryOutcome {
            delivery_id: crate::ids::DeliveryId(1),
            webhook_id: crate::ids::SubscriptionId(3),
            user_id: 1,
            event_id: crate::ids::EventId(9),
            event_type: "x".into(),
            status: DEAD.into(),
            attempts: 5,
            response_status: Some(500),
            error: None,
            duration_ms: 5,
        };
        delivery_settled(&s, Some(o));
        delivery_settled(&s, None);
        let (sub, _) = s.subscription(crate::ids::SubscriptionId(3));
        assert_eq!((sub.failed, sub.dead), (1, 1));
        assert_eq!(s.rates().failed_total, 1);
    }
}
