//! `muninn api subscriptions ...`: outgoing webhooks, `/api/webhooks/outgoing`, and
//! the replay of their deliveries.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::{Call, ListArgs, read_body};

#[derive(Subcommand)]
pub enum Action {
    /// List outgoing webhooks.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one outgoing webhook.
    Get { id: i64 },
    /// Create an outgoing webhook from a JSON file (or stdin: `-` or no file), e.g.
    /// {"url": "https://example.com/hook", "event_types": ["agent.*"]}
    Create { file: Option<PathBuf> },
    /// Change an outgoing webhook: the JSON file (or stdin) holds the fields to change.
    Update { id: i64, file: Option<PathBuf> },
    /// Delete an outgoing webhook.
    Delete { id: i64 },
    /// Stop sending (deliveries wait).
    Pause { id: i64 },
    /// Send again.
    Resume { id: i64 },
    /// Queue its deliveries again (by default the dead ones) and print how many.
    Replay {
        id: i64,
        /// Only deliveries created at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only deliveries created before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Only deliveries in this status (repeatable) [default: dead]
        #[arg(long)]
        status: Vec<String>,
        /// Only deliveries of this event type.
        #[arg(long)]
        event_type: Option<String>,
        /// Count what would be queued, queue nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn call(action: &Action) -> Result<Call> {
    let one = |id: &i64| format!("/api/webhooks/outgoing/{id}");
    Ok(match action {
        Action::List { list } => Call::get(list.path("/api/webhooks/outgoing", &[])?),
        Action::Get { id } => Call::get(one(id)),
        Action::Create { file } => Call::send(
            "POST",
            "/api/webhooks/outgoing".into(),
            read_body(file.as_ref())?,
        ),
        Action::Update { id, file } => Call::send("PATCH", one(id), read_body(file.as_ref())?),
        Action::Delete { id } => Call::delete(one(id)),
        Action::Pause { id } => Call::send("POST", format!("{}/pause", one(id)), json!({})),
        Action::Resume { id } => Call::send("POST", format!("{}/resume", one(id)), json!({})),
        Action::Replay {
            id,
            since,
            until,
            status,
            event_type,
            dry_run,
        } => {
            let mut body = Map::new();
            let mut put = |k: &str, v: Option<&String>| {
                if let Some(v) = v {
                    body.insert(k.into(), json!(v));
                }
            };
            put("since", since.as_ref());
            put("until", until.as_ref());
            put("event_type", event_type.as_ref());
            match status.as_slice() {
                [] => {}
                [one] => {
                    body.insert("status".into(), json!(one));
                }
                many => {
                    body.insert("status".into(), json!(many));
                }
            }
            if *dry_run {
                body.insert("dry_run".into(), json!(true));
            }
            Call::send("POST", format!("{}/replay", one(id)), Value::Object(body))
        }
    })
}
