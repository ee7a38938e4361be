//! `GET /metrics`: the Prometheus text exposition. Counters come from
//! `ops::metrics`; gauges are read here from the live hub (no database read, so a
//! scrape costs microseconds even under load).

use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::{ApiError, AppState};
use crate::ops::metrics::{self, Gauges};
use crate::secrets::constant_time_eq;

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics_metrics",
    tag = "metrics",
    responses(
        (status = 200, description = "The Prometheus text exposition", content_type = "text/plain", body = String)
    )
)]
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let cfg = &state.config.metrics;
    // Errors in the API's shape, as the document says every route's are.
    if !cfg.enabled {
        return ApiError::NotFound("metrics are disabled ([metrics] enabled = false)".into())
            .error_response();
    }
    if !cfg.token.is_empty() {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given.trim().as_bytes(), cfg.token.as_bytes()) {
            return ApiError::Unauthorized(
                "send the metrics token ([metrics] token) as Authorization: Bearer <token>".into(),
            )
            .error_response();
        }
    }
    let addrs = &state.addrs;
    let mut g = Gauges {
        writer_queue: addrs.store.writer().queue_depth(),
        agent_backlog: addrs.registry.backlog(),
        agents: addrs.registry.agent_count(),
        uptime_seconds: state.started_at.elapsed().as_secs_f64(),
        ..Gauges::default()
    };
    for s in addrs.registry.subscriptions() {
        g.subscriptions += 1;
        g.deliveries_queued += s.shared.queued.load(Ordering::Relaxed);
        g.deliveries_in_flight += s.shared.in_flight.load(Ordering::Relaxed);
        g.circuits_open += usize::from(s.shared.circuit_open.load(Ordering::Relaxed));
    }
    let mut body = metrics::render(&g);
    per_subscription(&mut body, &addrs.registry.stats.subscription_counts());
    cluster(&mut body, &addrs.cluster);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

/// This node and the cluster as of its last heartbeat: what it owns and claims, and
/// each node's heartbeat age (a node whose age passes the lease has lost its work).
fn cluster(out: &mut String, cluster: &crate::cluster::Cluster) {
    use std::fmt::Write as _;
    let view = cluster.view();
    let label = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let me = label(cluster.id());
    let gauges = [
        ("muninn_node_info", "This node (always 1), by node id.", 1),
        (
            "muninn_node_owned_agents",
            "Agents whose actor runs on this node.",
            view.owned_agents.len() as i64,
        ),
        (
            "muninn_node_owned_subscriptions",
            "Outgoing webhooks this node sends.",
            view.owned_subscriptions.len() as i64,
        ),
        (
            "muninn_node_claimed_deliveries",
            "Deliveries this node has claimed and not settled.",
            view.claimed_deliveries,
        ),
        (
            "muninn_cluster_live_nodes",
            "Nodes whose heartbeat is younger than one lease.",
            view.live_nodes as i64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        let _ = writeln!(out, "{name}{{node=\"{me}\"}} {value}");
    }
    let name = "muninn_cluster_node_heartbeat_age_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Seconds since each node's last heartbeat, as of this node's last one.\n# TYPE {name} gauge"
    );
    let newest = view.nodes.iter().map(|n| n.heartbeat_at).max();
    for n in &view.nodes {
        let age = newest.map_or(0.0, |t| (t - n.heartbeat_at).as_seconds_f64());
        let _ = writeln!(out, "{name}{{node=\"{}\"}} {age}", label(&n.id));
    }
}

/// Subscriptions with their own series; the rest are summed into `subscription="other"`,
/// so a hub with many subscriptions cannot grow a scrape (or a Prometheus) without
/// bound: at most 5 * (cap + 1) series.
pub const SUBSCRIPTION_SERIES_CAP: usize = 500;

/// `muninn_subscription_deliveries_total{subscription, outcome}`: attempts settled per
/// subscription since the hub started, `delivered` or `failed` (`dead` counts the
/// failed ones that ended the delivery). The lowest ids get their own series, so a
/// subscription keeps its series while the hub runs.
fn per_subscription(out: &mut String, counts: &[(crate::ids::SubscriptionId, u64, u64, u64, u64)]) {
    use std::fmt::Write as _;
    let name = "muninn_subscription_deliveries_total";
    let _ = writeln!(
        out,
        "# HELP {name} Delivery attempts settled per subscription, by outcome \
         (at most {SUBSCRIPTION_SERIES_CAP} subscriptions; the rest as subscription=\"other\").\n\
         # TYPE {name} counter"
    );
    let (own, rest) = counts.split_at(counts.len().min(SUBSCRIPTION_SERIES_CAP));
    let other = rest.iter().fold((0, 0, 0, 0), |(d, f, x, l), c| {
        (d + c.1, f + c.2, x + c.3, l + c.4)
    });
    let rows: Vec<_> = own
        .iter()
        .map(|c| (c.0.to_string(), (c.1, c.2, c.3, c.4)))
        .chain((!rest.is_empty()).then(|| ("other".to_string(), other)))
        .collect();
    for (label, (delivered, failed, dead, _)) in &rows {
        for (outcome, n) in [("delivered", delivered), ("failed", failed), ("dead", dead)] {
            let _ = writeln!(
                out,
                "{name}{{subscription=\"{label}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    // Latency as a sum and a count (a mean per scrape interval), not a histogram: a
    // histogram per subscription would multiply the series by its buckets.
    let lat = "muninn_subscription_attempt_seconds";
    let _ = writeln!(
        out,
        "# HELP {lat} Time of the settled delivery attempts per subscription.\n# TYPE {lat} summary"
    );
    for (label, (delivered, failed, _, ms)) in &rows {
        let secs = *ms as f64 / 1000.0;
        let _ = writeln!(out, "{lat}_sum{{subscription=\"{label}\"}} {secs}");
        let _ = writeln!(
            out,
            "{lat}_count{{subscription=\"{label}\"}} {}",
            delivered + failed
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_past_the_cap_are_summed_as_other() {
        let counts: Vec<_> = (1..=SUBSCRIPTION_SERIES_CAP as i64 + 2)
            .map(|id| (crate::ids::SubscriptionId(id), 2, 1, 1, 1500))
            .collect();
        let mut out = String::new();
        per_subscription(&mut out, &counts);
        let series = out.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(series, 5 * (SUBSCRIPTION_SERIES_CAP + 1));
        assert!(out.contains("muninn_subscription_attempt_seconds_sum{subscription=\"other\"} 3"));
        assert!(out.contains("muninn_subscription_attempt_seconds_count{subscription=\"1\"} 3"));
        assert!(out.contains(
            "muninn_subscription_deliveries_total{subscription=\"other\",outcome=\"delivered\"} 4"
        ));
        assert!(out.contains(
            "muninn_subscription_deliveries_total{subscription=\"1\",outcome=\"dead\"} 1"
        ));
    }
}
