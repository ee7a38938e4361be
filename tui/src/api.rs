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
