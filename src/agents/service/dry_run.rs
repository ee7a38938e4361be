//! A dry run: what an agent with these options would emit and log for an event (or on
//! a run, without one). Nothing is stored.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AgentServiceError;
use crate::agents::{AgentCtx, Behavior, KindInfo, kind, kind_names};
use crate::ids::AgentId;
use crate::store::Store;
use crate::store::agents::AgentRow;
use crate::store::events::EventRow;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunInput {
    #[serde(rename = "type")]
    pub agent_type: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
    /// The payload of the event the agent receives; without one, the agent runs.
    pub event: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub memory: Option<Value>,
}

/// What the dry run did, with the owner's credentials masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRunOutput {
    /// The payloads the agent emitted.
    pub events: Vec<Value>,
    pub log: Vec<DryRunLog>,
    /// The agent's memory after the run.
    pub memory: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRunLog {
    pub level: DryRunLevel,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DryRunLevel {
    Info,
    Error,
}

/// An agent row that exists only for the dry run.
fn scratch_row(user_id: i64, agent_type: &str, options: &Value) -> AgentRow {
    let now = crate::store::now();
    AgentRow {
        id: AgentId(0),
        user_id,
        agent_type: agent_type.to_string(),
        name: "dry run".into(),
        options: options.to_string(),
        memory: "{}".into(),
        schedule: None,
        disabled: false,
        keep_events_for: 0,
        propagate_immediately: true,
        guid: String::new(),
        events_count: 0,
        last_checked_event_id: 0,
        created_at: now,
        updated_at: now,
        last_check_at: None,
        last_receive_at: None,
        last_event_at: None,
        last_error_at: None,
        last_web_request_at: None,
    }
}

/// The type, checked as a save would check it (insecure types, the lexicon, the
/// options), and the behaviour built from the options.
fn checked_behavior(
    agent_type: &str,
    options: &Value,
    insecure: Option<crate::agents::insecure::Limits>,
    sentiment: bool,
) -> Result<(&'static KindInfo, Box<dyn Behavior>), AgentServiceError> {
    let k = kind(agent_type).ok_or_else(|| {
        AgentServiceError::invalid(
            "type",
            format!(
                "unknown agent type \"{}\"; agent types: {}",
                agent_type,
                kind_names()
            ),
        )
    })?;
    super::validate::check_insecure(insecure, k)?;
    super::validate::check_lexicon(sentiment, k)?;
    k.validate(options)
        .map_err(|e| AgentServiceError::invalid("options", e.to_string()))?;
    let behavior = k
        .build(options)
        .map_err(|e| AgentServiceError::invalid("options", e.to_string()))?;
    Ok((k, behavior))
}

/// Runs the agent's behaviour once for `user_id`; the answer has the user's credentials
/// masked.
pub fn dry_run(
    store: &Store,
    user_id: i64,
    input: DryRunInput,
    insecure: Option<crate::agents::insecure::Limits>,
    sentiment: Option<std::sync::Arc<crate::agents::sentiment::lexicon::Lexicon>>,
) -> Result<DryRunOutput, AgentServiceError> {
    let options = input.options.unwrap_or_else(|| json!({}));
    let (k, mut behavior) =
        checked_behavior(&input.agent_type, &options, insecure, sentiment.is_some())?;
    let row = scratch_row(user_id, k.name(), &options);
    let mut memory = input.memory.unwrap_or_else(|| json!({}));
    let mut ctx = AgentCtx::new(&row, &mut memory);
    // The owner's credentials render as they will when the agent runs, and are masked
    // in the answer: a dry run's output is shown and pasted around.
    let creds = crate::store::credential_cache::user_credentials(store, user_id);
    ctx.credentials = creds.clone();
    ctx.insecure = insecure;
    ctx.sentiment = sentiment;
    match input.event {
        Some(payload) => {
            let event = EventRow {
                id: crate::ids::EventId(0),
                user_id,
                agent_id: None,
                event_type: "event.created".into(),
                payload: payload.to_string(),
                created_at: row.created_at,
                expires_at: None,
                target_agent_id: None,
            };
            behavior.receive(&mut ctx, &event, &payload);
        }
        None => behavior.check(&mut ctx),
    }
    // A session with a server (imap_folder) is not opened for a dry run: say so rather
    // than show an empty run as if the mailbox had nothing.
    if !ctx.tasks.is_empty() {
        ctx.log(
            "A dry run does not connect to the server: the agent connects only when it really runs",
        );
    }
    let log: Vec<DryRunLog> = ctx
        .logs
        .iter()
        .map(|l| DryRunLog {
            level: if l.level >= 4 {
                DryRunLevel::Error
            } else {
                DryRunLevel::Info
            },
            message: creds.redact_all(&l.message),
        })
        .collect();
    let mut events = std::mem::take(&mut ctx.emitted);
    drop(ctx);
    for e in &mut events {
        creds.redact_json(e);
    }
    creds.redact_json(&mut memory);
    Ok(DryRunOutput {
        events,
        log,
        memory,
    })
}
