//! What the hub's API answers, as the console reads it. Only the fields the console
//! shows; unknown fields are ignored so a newer hub still works.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Rates {
    pub events_total: u64,
    pub delivered_total: u64,
    pub failed_total: u64,
    pub dead_total: u64,
    pub bucket_seconds: u64,
    pub events: Vec<u64>,
    pub delivered: Vec<u64>,
    pub failed: Vec<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueueTotals {
    pub pending: i64,
    pub in_flight: u64,
    pub queued: u64,
    pub retrying: i64,
    pub dead: i64,
    pub open_circuits: u64,
    pub paused: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AgentTotals {
    pub total: u64,
    pub disabled: u64,
    pub not_working: u64,
}

/// One subscription (outgoing webhook) as a queue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Queue {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub is_active: bool,
    pub paused: bool,
    pub circuit: String,
    /// When the open circuit opened (hubs before the circuit reset leave it out).
    #[serde(default)]
    pub circuit_opened_at: Option<String>,
    pub pending: i64,
    pub in_flight: u64,
    pub retrying: i64,
    pub dead: i64,
    pub per_minute: u64,
    pub delivered_total: u64,
    pub failed_total: u64,
    pub success_ratio: Option<f64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

impl Queue {
    pub fn circuit_open(&self) -> bool {
        self.circuit == "open"
    }

    /// Larger is worse: what the Queues screen sorts by.
    pub fn badness(&self) -> (bool, bool, i64, i64, i64) {
        (
            self.circuit_open() || !self.is_active,
            self.dead > 0,
            self.dead,
            self.retrying,
            self.pending,
        )
    }
}

/// Requests to one webhook agent's URL since the hub started.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointCounts {
    pub agent_id: i64,
    pub per_minute: u64,
    pub accepted: u64,
    /// Answer status (as text) -> count.
    #[serde(default)]
    pub rejected: std::collections::BTreeMap<String, u64>,
}

impl EndpointCounts {
    pub fn rejected(&self, status: &str) -> u64 {
        self.rejected.get(status).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub version: String,
    pub uptime_seconds: u64,
    /// Sent to admins only.
    #[serde(default)]
    pub database_bytes: Option<u64>,
    pub rates: Rates,
    pub queue: QueueTotals,
    pub agents: AgentTotals,
    pub subscriptions: Vec<Queue>,
    /// Absent from hubs without endpoint counters.
    #[serde(default)]
    pub endpoints: Vec<EndpointCounts>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub id: i64,
    pub attempt_number: i32,
    pub started_at: String,
    pub duration_ms: i64,
    #[serde(default)]
    pub request_headers: Value,
    #[serde(default)]
    pub request_body: String,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub message_id: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub delivered_at: Option<String>,
    #[serde(default)]
    pub attempt_log: Option<Vec<Attempt>>,
}

/// A failed or dead delivery with what the Failures screen shows beside it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub delivery: Delivery,
    pub subscription: String,
    pub event_type: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Agent {
    pub id: i64,
    pub user_id: i64,
    #[serde(rename = "type")]
    pub agent_type: String,
    pub name: String,
    #[serde(default)]
    pub options: Value,
    #[serde(default)]
    pub memory: Value,
    pub schedule: Option<String>,
    pub disabled: bool,
    pub events_count: i64,
    pub created_at: String,
    pub last_check_at: Option<String>,
    pub last_receive_at: Option<String>,
    pub last_event_at: Option<String>,
    pub last_error_at: Option<String>,
    pub last_web_request_at: Option<String>,
    pub web_request_url: Option<String>,
    /// The agents its events go to (links).
    #[serde(default)]
    pub receiver_ids: Vec<i64>,
}

impl Agent {
    /// The hub's rule (`summary::agent_working`): enabled, and no error since it last
    /// did its job.
    pub fn working(&self) -> bool {
        if self.disabled {
            return false;
        }
        let Some(err) = self.last_error_at.as_deref() else {
            return true;
        };
        // RFC 3339 in UTC with fixed precision sorts as text.
        [
            &self.last_check_at,
            &self.last_receive_at,
            &self.last_event_at,
        ]
        .into_iter()
        .flatten()
        .any(|t| t.as_str() > err)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AgentLog {
    pub id: i64,
    pub level: i32,
    pub message: String,
    pub created_at: String,
}

/// A credential's name and kind (`/api/credentials`): the hub never sends a value in
/// its lists, and the console would not keep one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Credential {
    pub id: i64,
    pub credential_name: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EventRef {
    pub id: i64,
    pub event_type: String,
}

/// One item of `GET /api/stream`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamItem {
    Event {
        id: i64,
        user_id: i64,
        agent_id: Option<i64>,
        event_type: String,
        created_at: String,
        #[serde(default)]
        payload: Value,
    },
    Delivery {
        delivery_id: i64,
        webhook_id: i64,
        user_id: i64,
        event_id: i64,
        event_type: String,
        status: String,
        attempts: i32,
        response_status: Option<i32>,
        error: Option<String>,
        at: String,
    },
    /// The hub skipped items because the console read too slowly.
    Lagged { skipped: u64 },
}

/// A scenario: a named set of agents (`/api/scenarios`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Scenario {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub agent_ids: Vec<i64>,
}

/// An incoming webhook (`/api/webhooks/incoming`). Its URL holds the token, a
/// secret: the console does not keep it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IncomingWebhook {
    pub id: i64,
    pub name: String,
    pub agent_id: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
    pub is_active: bool,
    #[serde(default)]
    pub created_at: String,
}

/// A subscription's settings (`GET /api/webhooks/outgoing/{id}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Subscription {
    pub id: i64,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    pub retry_count: i32,
    pub retry_delay: f64,
    pub max_retry_delay: f64,
    #[serde(default)]
    pub retry_schedule: Option<Vec<f64>>,
    pub timeout: f64,
    pub rate_limit: Option<i32>,
    #[serde(default)]
    pub rate_limit_period: String,
    pub max_in_flight: i32,
    pub ordered: bool,
    pub is_active: bool,
    pub paused: bool,
    pub disabled_reason: Option<String>,
    pub failure_threshold: i32,
    pub circuit_cooldown: f64,
    pub circuit_state: String,
    /// When the circuit opened and when it lets a probe through; absent from older
    /// hubs, null while closed.
    #[serde(default)]
    pub circuit_opened_at: Option<String>,
    #[serde(default)]
    pub circuit_half_opens_at: Option<String>,
    #[serde(default)]
    pub consecutive_failures: i32,
    /// The subscription's filters as the hub stores them (what the edit form shows).
    #[serde(default)]
    pub filters: Option<Value>,
}

/// One delivery attempt of a subscription (`/api/webhooks/{id}/logs?webhook_type=outgoing`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OutgoingLog {
    pub id: i64,
    pub delivery_id: i64,
    #[serde(default)]
    pub event_type: Option<String>,
    pub response_status: Option<i32>,
    pub error_message: Option<String>,
    #[serde(default)]
    pub retry_count: i32,
    #[serde(default)]
    pub processing_time_ms: i64,
    pub created_at: String,
}

/// One request an endpoint received (`/api/webhooks/{id}/logs`). Never holds the
/// token or a signature secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InboundLog {
    pub id: i64,
    pub received_at: String,
    pub source_ip: Option<String>,
    pub method: String,
    pub status: i32,
    pub accepted: bool,
    pub reason: Option<String>,
    pub detail: Option<String>,
    #[serde(default)]
    pub processing_ms: i64,
    #[serde(default)]
    pub event_ids: Vec<i64>,
}

/// `/api/webhooks/{id}/statistics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InboundStats {
    pub received: i64,
    pub accepted: i64,
    pub duplicates: i64,
    pub rejected: i64,
    #[serde(default)]
    pub rejected_by_reason: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    pub average_processing_ms: f64,
}

/// What the Queues detail shows: settings, the retrying deliveries (the next retry)
/// and the latest attempts (the last errors in full).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueDetail {
    pub sub: Subscription,
    pub retrying: Vec<Delivery>,
    pub attempts: Vec<OutgoingLog>,
}

/// What the Endpoints detail shows: the request log and its counts, or why there is
/// none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointDetail {
    pub logs: Vec<InboundLog>,
    pub stats: Option<InboundStats>,
    pub note: Option<String>,
}

impl Queue {
    /// The name, or for an unnamed subscription its host and port (and path), which
    /// is what tells two unnamed ones apart; the scheme is left out.
    pub fn label(&self) -> String {
        if !self.name.trim().is_empty() && self.name != self.url {
            return self.name.clone();
        }
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        // Say the port even when the URL leaves it to the scheme.
        let host = if host.contains(':') || host.starts_with('[') && host.ends_with(']') {
            host.to_string()
        } else if self.url.starts_with("https://") {
            format!("{host}:443")
        } else {
            format!("{host}:80")
        };
        if path.is_empty() {
            host
        } else {
            format!("{host}/{path}")
        }
    }
}

/// `GET /worker_status`: the console reads only `node`, the node that answered and
/// (for admins) the cluster it is part of. Hubs from before several nodes leave it out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerStatus {
    #[serde(default)]
    pub node: Option<NodeStatus>,
}

/// The node the console talks to: what runs on it, and every node sharing the
/// database (admins only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeStatus {
    pub node_id: String,
    /// Agents whose actor runs on this node.
    pub owned_agents: i64,
    /// Outgoing webhooks whose deliveries this node sends.
    pub owned_subscriptions: i64,
    /// Deliveries this node has claimed and not settled (0 on SQLite).
    pub claimed_deliveries: i64,
    /// Nodes whose heartbeat is younger than one lease, this one included.
    pub live_nodes: i64,
    /// Why this node's last lease round failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
    /// Every node of the cluster, by id; empty for anyone but an admin.
    #[serde(default)]
    pub nodes: Vec<ClusterNode>,
    #[serde(default)]
    pub heartbeat_seconds: Option<u64>,
    #[serde(default)]
    pub lease_seconds: Option<u64>,
}

/// One node of the cluster view. The counts and the state are left out by hubs from
/// before they were sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterNode {
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub started_at: String,
    pub heartbeat_at: String,
    #[serde(default)]
    pub owned_agents: Option<i64>,
    #[serde(default)]
    pub owned_subscriptions: Option<i64>,
    #[serde(default)]
    pub claimed_deliveries: Option<i64>,
    /// As of the hub's answer, on the database's clock (not the console's).
    #[serde(default)]
    pub heartbeat_age_seconds: Option<f64>,
    #[serde(default)]
    pub state: Option<NodeState>,
}

/// A node's heartbeat as the hub judges it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// It beat within two heartbeats.
    Live,
    /// It missed a heartbeat; its leases still hold.
    Late,
    /// Silent for longer than a lease: live nodes take its work.
    Expired,
    /// A state this console does not know (a newer hub).
    #[default]
    #[serde(other)]
    Unknown,
}
