//! `GET /metrics`: the Prometheus text exposition. Counters come from
//! `ops::metrics`; gauges are read here from the live hub (no database read, so a
//! scrape costs microseconds even under load).

use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::ops::metrics::{self, Gauges};
use crate::secrets::constant_time_eq;

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics_metrics",
    tag = "metrics",
    responses(
        (status = 200, description = "OK")
    )
)]
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let cfg = &state.config.metrics;
    if !cfg.enabled {
        return HttpResponse::NotFound().json(
            serde_json::json!({"error": "metrics are disabled ([metrics] enabled = false)"}),
        );
    }
    if !cfg.token.is_empty() {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given.trim().as_bytes(), cfg.token.as_bytes()) {
            return HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer"))
                .json(serde_json::json!({"error": "send the metrics token ([metrics] token) as Authorization: Bearer <token>"}));
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
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics::render(&g))
}
