//! A request prepared by an agent (Huginn's PostAgent) for the delivery engine to send:
//! stored with its delivery row, so it survives restarts and retries. Delivery owns the
//! type; the post agent builds it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a post agent wants sent, stored with its delivery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreparedRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Set when the agent emits the response as an event.
    pub emit: Option<EmitResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmitResponse {
    pub agent_id: i64,
    pub user_id: i64,
    pub event_type: String,
    pub keep_events_for: i64,
    pub parse_body: bool,
    /// With `output_mode: merge`, the incoming payload the response is merged into.
    pub merge_into: Option<Value>,
}
