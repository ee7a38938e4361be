//! `muninn api deliveries ...`: `/api/deliveries`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{Call, ListArgs};

#[derive(Subcommand)]
pub enum Action {
    /// List deliveries, newest first.
    List {
        /// Only those in this status: pending, in_flight, delivered, retrying, dead.
        #[arg(long)]
        status: Option<String>,
        /// Only those of this outgoing webhook.
        #[arg(long)]
        subscription: Option<i64>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one delivery with its attempts.
    Get { id: i64 },
    /// Send a delivery again now (a dead one comes back to life).
    Retry { id: i64 },
}

pub fn call(action: &Action) -> Result<Call> {
    Ok(match action {
        Action::List {
            status,
            subscription,
            list,
        } => Call::get(list.path(
            "/api/deliveries",
            &[
                ("status", status.clone()),
                ("webhook_id", subscription.map(|s| s.to_string())),
            ],
        )?),
        Action::Get { id } => Call::get(format!("/api/deliveries/{id}")),
        Action::Retry { id } => {
            Call::send("POST", format!("/api/deliveries/{id}/retry"), json!({}))
        }
    })
}
