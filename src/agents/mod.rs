//! Agents: the catalog of agent types, their options, and the behaviour each type
//! gives an `AgentActor`. One file per type; this module holds what they share.

pub mod actor;
pub mod data_output;
pub mod event_formatting;
pub mod webhook;

use serde_json::Value;

use crate::store::agent_logs::{LEVEL_ERROR, LEVEL_INFO, NewLog};
use crate::store::agents::AgentRow;
use crate::store::events::EventRow;

/// What is wrong with an agent's options, naming the option.
#[derive(Debug, Clone, thiserror::Error)]
#[error("option \"{option}\" {problem}")]
pub struct OptionError {
    pub option: String,
    pub problem: String,
}

impl OptionError {
    pub fn new(option: impl Into<String>, problem: impl Into<String>) -> Self {
        OptionError {
            option: option.into(),
            problem: problem.into(),
        }
    }
}

/// What the hub knows about an agent type before it has an agent of it.
#[derive(Debug)]
pub struct KindInfo {
    /// muninn's name, used in the API (`webhook`).
    pub name: &'static str,
    /// Huginn's class name (`Agents::WebhookAgent`), accepted as an alias.
    pub huginn: &'static str,
    pub description: &'static str,
    pub can_receive_events: bool,
    pub can_create_events: bool,
    pub can_be_scheduled: bool,
    pub takes_web_requests: bool,
    validate: fn(&Value) -> Result<(), OptionError>,
    build: fn(&Value) -> Result<Box<dyn Behavior>, OptionError>,
}

impl KindInfo {
    pub fn validate(&self, options: &Value) -> Result<(), OptionError> {
        if !options.is_object() {
            return Err(OptionError::new("options", "must be a JSON object"));
        }
        (self.validate)(options)
    }

    pub fn build(&self, options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
        (self.build)(options)
    }

    /// Serves a feed (RSS/JSON) at its web-request URL: gets a `FeedActor`.
    pub fn serves_feed(&self) -> bool {
        self.name == data_output::NAME
    }
}

pub static KINDS: &[KindInfo] = &[
    KindInfo {
        name: "webhook",
        huginn: "Agents::WebhookAgent",
        description: "Creates events from HTTP requests to its web-request URL.",
        can_receive_events: false,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: true,
        validate: webhook::validate,
        build: webhook::build,
    },
    KindInfo {
        name: "event_formatting",
        huginn: "Agents::EventFormattingAgent",
        description: "Reshapes each received event with templates.",
        can_receive_events: true,
        can_create_events: true,
        can_be_scheduled: false,
        takes_web_requests: false,
        validate: event_formatting::validate,
        build: event_formatting::build,
    },
    KindInfo {
        name: data_output::NAME,
        huginn: "Agents::DataOutputAgent",
        description: "Publishes the events it receives as an RSS 2.0 and a JSON feed.",
        can_receive_events: true,
        can_create_events: false,
        can_be_scheduled: false,
        takes_web_requests: false,
        validate: data_output::validate,
        build: data_output::build,
    },
];

/// Finds a type by muninn's name or Huginn's (`Agents::WebhookAgent`, `WebhookAgent`).
pub fn kind(name: &str) -> Option<&'static KindInfo> {
    let short = name.rsplit("::").next().unwrap_or(name);
    KINDS
        .iter()
        .find(|k| k.name == name || k.huginn == name || k.huginn.rsplit("::").next() == Some(short))
}

pub fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The event type of events an agent emits: its `event_type` option, or `event.created`.
pub fn emitted_event_type(options: &Value) -> String {
    options
        .get("event_type")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("event.created")
        .to_string()
}

/// Everything an agent's behaviour may touch while it handles one event or one check.
pub struct AgentCtx<'a> {
    pub agent: &'a AgentRow,
    pub memory: &'a mut Value,
    pub(crate) emitted: Vec<Value>,
    pub(crate) logs: Vec<NewLog>,
    pub(crate) inbound: Option<i64>,
    pub(crate) memory_changed: bool,
}

impl<'a> AgentCtx<'a> {
    pub fn new(agent: &'a AgentRow, memory: &'a mut Value) -> Self {
        AgentCtx {
            agent,
            memory,
            emitted: Vec::new(),
            logs: Vec::new(),
            inbound: None,
            memory_changed: false,
        }
    }

    pub fn emit(&mut self, payload: Value) {
        self.emitted.push(payload);
    }

    pub fn log(&mut self, message: impl Into<String>) {
        self.logs.push(NewLog {
            level: LEVEL_INFO,
            message: message.into(),
            inbound_event_id: self.inbound,
        });
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.logs.push(NewLog {
            level: LEVEL_ERROR,
            message: message.into(),
            inbound_event_id: self.inbound,
        });
    }

    /// Marks memory as changed so it is saved with the agent's next write.
    pub fn memory_mut(&mut self) -> &mut Value {
        self.memory_changed = true;
        self.memory
    }
}

/// The behaviour of one agent type. Handlers are synchronous and CPU-only: anything
/// slow (network) is sent to another actor, so one agent never holds up the others.
pub trait Behavior: Send {
    /// Handles one event received over a link.
    fn receive(&mut self, _ctx: &mut AgentCtx<'_>, _event: &EventRow, _payload: &Value) {}

    /// Runs on the agent's schedule or when asked to run now.
    fn check(&mut self, _ctx: &mut AgentCtx<'_>) {}
}

/// Reads an optional string option.
pub fn opt_str<'v>(options: &'v Value, key: &str) -> Result<Option<&'v str>, OptionError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(OptionError::new(
            key,
            format!("must be a string (got {})", type_name(other)),
        )),
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_by_either_name() {
        assert_eq!(kind("webhook").map(|k| k.name), Some("webhook"));
        assert_eq!(
            kind("Agents::WebhookAgent").map(|k| k.name),
            Some("webhook")
        );
        assert_eq!(
            kind("EventFormattingAgent").map(|k| k.name),
            Some("event_formatting")
        );
        assert!(kind("nope").is_none());
    }
}
