//! `muninn api events ...`: `/api/events`.

use anyhow::Result;
use clap::Subcommand;

use super::{Call, ListArgs};

#[derive(Subcommand)]
pub enum Action {
    /// List events, oldest first (`--param order=desc` for newest first).
    List {
        /// Only this agent's events.
        #[arg(long)]
        agent: Option<i64>,
        /// Only events of this type.
        #[arg(long = "type")]
        event_type: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one event.
    Get { id: i64 },
}

pub fn call(action: &Action) -> Result<Call> {
    Ok(match action {
        Action::List {
            agent,
            event_type,
            list,
        } => Call::get(list.path(
            "/api/events",
            &[
                ("agent_id", agent.map(|a| a.to_string())),
                ("type", event_type.clone()),
            ],
        )?),
        Action::Get { id } => Call::get(format!("/api/events/{id}")),
    })
}
