//! `GET /api/summary`: the console's overview in one answer. Rates and outcome totals
//! come from the in-memory `Stats`; live queue numbers from the registry; per-status
//! delivery counts and agent health from one database read of the caller's own rows
//! (everyone's for an admin), shared by the callers of that scope for `STORED_MAX_AGE`
//! (delivered rows are never read).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::ts_opt;
use crate::http::{ApiError, AppState, AuthUser};
use crate::ids::SubscriptionId;
use crate::store::agents::AgentRow;
use crate::store::deliveries::{DEAD, PENDING, RETRYING};
use crate::telemetry::stats::Rates;
use crate::telemetry::summary;

const STORED_MAX_AGE: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueTotals {
    pub pending: i64,
    pub in_flight: u64,
    pub queued: u64,
    pub retrying: i64,
    pub dead: i64,
    pub open_circuits: u64,
    pub paused: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentTotals {
    pub total: u64,
    pub disabled: u64,
    pub not_working: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueOut {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub is_active: bool,
    pub paused: bool,
    pub circuit: Circuit,
    /// When the open circuit opened (as stored); null while it is closed.
    #[schema(required)]
    pub circuit_opened_at: Option<String>,
    pub pending: i64,
    pub in_flight: u64,
    pub retrying: i64,
    pub dead: i64,
    /// Deliveries in the last minute.
    pub per_minute: u64,
    /// Since the hub started.
    pub delivered_total: u64,
    pub failed_total: u64,
    /// delivered / (delivered + failed attempts) since the hub started; null before any.
    #[schema(required)]
    pub success_ratio: Option<f64>,
    #[schema(required)]
    pub last_error: Option<String>,
    #[schema(required)]
    pub last_error_at: Option<String>,
}

/// A subscription's circuit breaker.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    /// Deliveries go out.
    Closed,
    /// Deliveries wait until the circuit closes again.
    Open,
}

/// Requests to one webhook agent's URL since the hub started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointOut {
    pub agent_id: i64,
    pub per_minute: u64,
    pub accepted: u64,
    /// Answer status (as text) -> count.
    pub rejected: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SummaryOut {
    pub version: &'static str,
    pub uptime_seconds: u64,
    /// The size of the whole hub's database: for admins only, like the hub-wide rates.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub database_bytes: Option<u64>,
    pub rates: Rates,
    pub queue: QueueTotals,
    pub agents: AgentTotals,
    pub subscriptions: Vec<QueueOut>,
    pub endpoints: Vec<EndpointOut>,
}

/// An agent works when it is enabled and has not failed since it last did its job
/// (the console applies the same rule to `/api/agents`).
pub fn agent_working(a: &AgentRow) -> bool {
    if a.disabled {
        return false;
    }
    let Some(err) = a.last_error_at else {
        return true;
    };
    [a.last_check_at, a.last_receive_at, a.last_event_at]
        .into_iter()
        .flatten()
        .any(|t| t > err)
}

#[utoipa::path(
    get,
    path = "/api/summary",
    operation_id = "summary_summary",
    tag = "summary",
    responses(
        (status = 200, description = "OK", body = SummaryOut)
    )
)]
pub async fn summary(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    // One idea: the console's summary is one snapshot read and one JSON answer; its fields are
    // listed in the order the console shows them.
    let stats = &state.addrs.registry.stats;
    let store = &state.addrs.store;
    let counts = summary::stored_counts(stats, store, user.scope(), STORED_MAX_AGE).await?;
    let mut per_status: HashMap<SubscriptionId, (i64, i64, i64)> = HashMap::new();
    for (id, status, n) in &counts.open {
        let e = per_status.entry(*id).or_default();
        match status.as_str() {
            PENDING => e.0 += n,
            RETRYING => e.1 += n,
            DEAD => e.2 += n,
            _ => {}
        }
    }
    let mut queue = QueueTotals {
        pending: 0,
        in_flight: 0,
        queued: 0,
        retrying: 0,
        dead: 0,
        open_circuits: 0,
        paused: 0,
    };
    let mut subs = Vec::new();
    for row in &counts.subscriptions {
        let live = state.addrs.registry.subscription(row.id);
        let (in_flight, queued, open) = live.map_or((0, 0, false), |e| {
            (
                e.shared.in_flight.load(Ordering::Relaxed) as u64,
                e.shared.queued.load(Ordering::Relaxed) as u64,
                e.shared.circuit_open.load(Ordering::Relaxed),
            )
        });
        let (pending, retrying, dead) = per_status.get(&row.id).copied().unwrap_or_default();
        let (s, per_minute) = stats.subscription(row.id);
        let tries = s.delivered + s.failed;
        queue.pending += pending;
        queue.retrying += retrying;
        queue.dead += dead;
        queue.in_flight += in_flight;
        queue.queued += queued;
        queue.open_circuits += u64::from(open);
        queue.paused += u64::from(row.paused);
        subs.push(QueueOut {
            id: row.id.0,
            name: row.name.clone(),
            url: row.url.clone(),
            is_active: row.is_active,
            paused: row.paused,
            circuit: if open { Circuit::Open } else { Circuit::Closed },
            circuit_opened_at: ts_opt(row.circuit_opened_at.filter(|_| open)),
            pending,
            in_flight,
            retrying,
            dead,
            per_minute,
            delivered_total: s.delivered,
            failed_total: s.failed,
            success_ratio: (tries > 0).then(|| s.delivered as f64 / tries as f64),
            last_error: s.last_error.or_else(|| {
                // Before this run's first failure: what the database last recorded.
                (!row.is_active)
                    .then(|| row.disabled_reason.clone())
                    .flatten()
            }),
            last_error_at: s.last_error_at.or_else(|| ts_opt(row.circuit_opened_at)),
        });
    }
    let mut agents = AgentTotals {
        total: 0,
        disabled: 0,
        not_working: 0,
    };
    for a in &counts.agents {
        agents.total += 1;
        agents.disabled += u64::from(a.disabled);
        agents.not_working += u64::from(!agent_working(a));
    }
    let database_bytes = if user.is_admin {
        let postgres = state.config.postgres_url().is_some();
        let file = state.config.database_path();
        Some(summary::database_bytes(store, postgres, &file).await?)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(SummaryOut {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: stats.uptime_seconds(),
        database_bytes,
        rates: if user.is_admin {
            stats.rates()
        } else {
            stats.user_rates(user.id)
        },
        queue,
        agents,
        subscriptions: subs,
        endpoints: stats
            .endpoints_of(user.scope())
            .into_iter()
            .map(|(agent_id, e, per_minute)| EndpointOut {
                agent_id: agent_id.0,
                per_minute,
                accepted: e.accepted,
                rejected: e
                    .rejected
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
            })
            .collect(),
    }))
}
