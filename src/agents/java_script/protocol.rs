//! What the hub and the `muninn-js` worker program say to each other: one [`Request`]
//! as JSON on the worker's standard input, one [`Answer`] on its standard output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a run needs: the code, which handler to call, and the agent's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub code: String,
    /// `check` or `receive`.
    pub function: String,
    /// The agent's options, interpolated (`this.options()`).
    pub options: Value,
    pub memory: Map<String, Value>,
    /// What `this.incomingEvents()` returns.
    pub incoming_events: Vec<Value>,
    /// The owner's credentials (`this.credential(name)`).
    pub credentials: BTreeMap<String, String>,
    /// The stores of the key_value_store agents that control this agent, each under
    /// its `variable` (`this.kvs`, Huginn's `Agent.kvs`).
    #[serde(default)]
    pub kvs: Map<String, Value>,
    pub timeout_ms: u64,
    pub memory_bytes: u64,
    /// Bytes of events and log lines the script may produce.
    pub max_output_bytes: usize,
}

/// What the script did, in order, for the hub to apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Emit(Value),
    Log(String),
    Error(String),
    SetCredential { name: String, value: String },
}

/// The answer of a run: its actions, the agent's memory after it, and the error that
/// ended it, if one did (what the script did before that still counts, as in Huginn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub actions: Vec<Action>,
    pub memory: Map<String, Value>,
    pub error: Option<String>,
}
