//! `/healthz` and `/worker_status` (Huginn's fields).

use std::time::Instant;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, AppState, AuthUser};
use crate::store::node_load::ClusterLoad;
use crate::telemetry::health;

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
        (status = 200, description = "OK", body = Health),
        (status = 503, description = "The database does not answer or writes fail", body = Health)
    )
)]
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let safe_mode = state.config.safe_mode;
    match health::check(&state.addrs.store).await {
        health::Health::NoAnswer(e) => {
            unavailable(format!("the database does not answer: {e}"), safe_mode)
        }
        health::Health::WritesFailing { problem, writes } => HttpResponse::ServiceUnavailable()
            .json(Health {
                failed_write_batches: Some(writes.failures_in_a_row),
                failing_since: Some(writes.failing_since.map(|t| t.to_rfc3339())),
                ..Health::unavailable(problem, safe_mode)
            }),
        health::Health::Ok => HttpResponse::Ok().json(Health {
            status: HealthStatus::Ok,
            mode: safe_mode.then_some(Mode::Safe),
            note: safe_mode.then_some(
                "started with --safe: no agents, subscriptions or incoming webhooks run",
            ),
            error: None,
            failed_write_batches: None,
            failing_since: None,
        }),
    }
}

/// The answer of `/healthz`, 200 or 503.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    /// `safe` when the hub was started with `--safe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub note: Option<&'static str>,
    /// Why the hub is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// Write batches that failed in a row (when writes fail).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub failed_write_batches: Option<usize>,
    /// Since when writes fail (when they do; null if unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub failing_since: Option<Option<String>>,
}

impl Health {
    fn unavailable(error: String, safe_mode: bool) -> Health {
        Health {
            status: HealthStatus::Unavailable,
            mode: safe_mode.then_some(Mode::Safe),
            note: None,
            error: Some(error),
            failed_write_batches: None,
            failing_since: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Started with `--safe`: no agents, subscriptions or incoming webhooks run.
    Safe,
}

fn unavailable(error: String, safe_mode: bool) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(Health::unavailable(error, safe_mode))
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
        (status = 200, description = "OK", body = WorkerStatus)
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
    // The cluster view is the whole hub's: admins only, read fresh (the database's
    // clock, every node's holdings) rather than as of this node's last heartbeat.
    let cluster = if user.is_admin {
        Some(health::cluster_load(&state.addrs.store).await?)
    } else {
        None
    };
    // Where a client reads these events: the cursor just before the first of them.
    let events_url = w
        .min_id
        .map(|first| format!("/api/events?after={}", first - 1));
    Ok(HttpResponse::Ok().json(WorkerStatus {
        pending: w.pending,
        awaiting_retry: w.awaiting_retry,
        recent_failures: w.recent_failures,
        event_count: w.event_count,
        max_id: w.max_id.unwrap_or(0),
        events_url,
        compute_time: started.elapsed().as_secs_f64(),
        node: NodeStatus::of(&state.addrs.cluster, cluster),
    }))
}

/// Huginn's `/worker_status` fields.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerStatus {
    pub pending: i64,
    pub awaiting_retry: i64,
    pub recent_failures: i64,
    pub event_count: i64,
    /// The newest event's id; 0 when there is none.
    pub max_id: i64,
    /// Where the events counted here are read; null when there are none.
    #[schema(required)]
    pub events_url: Option<String>,
    /// Seconds this answer took.
    pub compute_time: f64,
    /// The node that answered and, for admins, the cluster it is part of.
    pub node: NodeStatus,
}

/// One node of the hub (with SQLite, the only one) as of its last heartbeat.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeStatus {
    /// `[cluster] node_id` (by default the host name).
    pub node_id: String,
    /// Agents whose actor (schedule, received events, memory) runs on this node.
    pub owned_agents: usize,
    /// Outgoing webhooks whose deliveries this node sends.
    pub owned_subscriptions: usize,
    /// Deliveries this node has claimed and not settled (PostgreSQL; 0 on SQLite).
    pub claimed_deliveries: i64,
    /// Nodes whose heartbeat is younger than one lease, this one included.
    pub live_nodes: usize,
    /// Why this node's last lease round failed, if it did.
    #[schema(required)]
    pub error: Option<String>,
    /// Every node that shares the database (admins only; empty for others), with what
    /// it holds now and whether its heartbeat is late.
    pub nodes: Vec<ClusterNode>,
    /// How often nodes beat (`[cluster] heartbeat_seconds`): later than two is `late`.
    pub heartbeat_seconds: u64,
    /// How long a lease holds (`[cluster] lease_seconds`): later than this is `expired`.
    pub lease_seconds: u64,
}

/// A node in the cluster view.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterNode {
    pub id: String,
    pub version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC: when it last renewed its leases.
    pub heartbeat_at: String,
    /// Agents whose lease is in its name (a dead node's until a live node takes them).
    pub owned_agents: i64,
    /// Outgoing webhooks whose lease is in its name.
    pub owned_subscriptions: i64,
    /// Deliveries it has claimed and not settled.
    pub claimed_deliveries: i64,
    /// Seconds since its last heartbeat, on the database's clock, as of this answer.
    pub heartbeat_age_seconds: f64,
    pub state: NodeState,
}

/// A node's heartbeat, against this node's `heartbeat_seconds` and `lease_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// It beat within two heartbeats.
    Live,
    /// It missed a heartbeat but its leases still hold: overloaded, or dying.
    Late,
    /// Silent for longer than a lease: it counts as gone, and live nodes take its
    /// agents, webhooks and (once their claims end) deliveries.
    Expired,
}

impl NodeState {
    fn of(age: f64, settings: &crate::cluster::NodeSettings) -> NodeState {
        if age > settings.lease.as_secs_f64() {
            NodeState::Expired
        } else if age > 2.0 * settings.heartbeat.as_secs_f64() {
            NodeState::Late
        } else {
            NodeState::Live
        }
    }
}

impl NodeStatus {
    fn of(cluster: &crate::cluster::Cluster, load: Option<ClusterLoad>) -> NodeStatus {
        let view = cluster.view();
        let time = |t: chrono::NaiveDateTime| t.and_utc().to_rfc3339();
        let nodes = load.map_or_else(Vec::new, |load| {
            load.nodes
                .into_iter()
                .map(|n| {
                    let age = (load.now - n.node.heartbeat_at).as_seconds_f64().max(0.0);
                    ClusterNode {
                        id: n.node.id,
                        version: n.node.version,
                        started_at: time(n.node.started_at),
                        heartbeat_at: time(n.node.heartbeat_at),
                        owned_agents: n.agents,
                        owned_subscriptions: n.subscriptions,
                        claimed_deliveries: n.claimed,
                        heartbeat_age_seconds: age,
                        state: NodeState::of(age, &cluster.settings),
                    }
                })
                .collect()
        });
        NodeStatus {
            node_id: cluster.id().to_string(),
            owned_agents: view.owned_agents.len(),
            owned_subscriptions: view.owned_subscriptions.len(),
            claimed_deliveries: view.claimed_deliveries,
            live_nodes: view.live_nodes,
            error: view.error,
            nodes,
            heartbeat_seconds: cluster.settings.heartbeat.as_secs(),
            lease_seconds: cluster.settings.lease.as_secs(),
        }
    }
}
