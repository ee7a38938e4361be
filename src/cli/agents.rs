//! `muninn api agents ...`: `/api/agents`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{Call, ListArgs, read_body};

#[derive(Subcommand)]
pub enum Action {
    /// List agents.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one agent.
    Get { id: i64 },
    /// Create an agent from a JSON file (or stdin: `-` or no file), e.g.
    /// {"type": "Agents::ManualEventAgent", "name": "by hand", "options": {}}
    Create { file: Option<PathBuf> },
    /// Change an agent: the JSON file (or stdin) holds the fields to change.
    Update { id: i64, file: Option<PathBuf> },
    /// Delete an agent.
    Delete { id: i64 },
    /// Run an agent now (its check, as its schedule would).
    Run { id: i64 },
    /// Enable an agent.
    Enable { id: i64 },
    /// Disable an agent: it stops running and receiving events.
    Disable { id: i64 },
    /// An agent's log.
    Logs { id: i64 },
}

pub fn call(action: &Action) -> Result<Call> {
    let one = |id: &i64| format!("/api/agents/{id}");
    Ok(match action {
        Action::List { list } => Call::get(list.path("/api/agents", &[])?),
        Action::Get { id } => Call::get(one(id)),
        Action::Create { file } => {
            Call::send("POST", "/api/agents".into(), read_body(file.as_ref())?)
        }
        Action::Update { id, file } => Call::send("PATCH", one(id), read_body(file.as_ref())?),
        Action::Delete { id } => Call::delete(one(id)),
        Action::Run { id } => Call::send("POST", format!("{}/run", one(id)), json!({})),
        Action::Enable { id } => Call::send("PATCH", one(id), json!({"disabled": false})),
        Action::Disable { id } => Call::send("PATCH", one(id), json!({"disabled": true})),
        Action::Logs { id } => Call::get(format!("{}/logs", one(id))),
    })
}
