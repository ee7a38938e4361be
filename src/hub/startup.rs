//! Start-up checks that keep one stored row from crash-looping the hub.
//!
//! Before anything is started, each enabled agent, active subscription and active
//! incoming webhook has its configuration built once, with a panic caught. One that
//! fails is disabled in the database with the reason (in the agent's log and as a
//! system event), and the hub comes up without it: it used to be retried, or to take
//! the process down, at every start, and the operator had to edit the SQLite file by
//! hand. Fixing it through the API and enabling it again starts it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::json;

use crate::agents::actor::build_behavior;
use crate::delivery::Spec;
use crate::event_types::{AGENT_DISABLED, SUBSCRIPTION_DISABLED};
use crate::store::agent_logs::{self, LEVEL_ERROR, NewLog};
use crate::store::agents::{self, AgentRow};
use crate::store::incoming_webhooks::{self, IncomingChanges, IncomingRow};
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::system_events;
use crate::store::{Store, StoreError};

/// Log lines kept for an agent when a start-up check writes to its log.
const LOG_LENGTH: i64 = 200;

/// Why a stored configuration cannot be loaded at start.
#[derive(Debug, thiserror::Error)]
enum LoadProblem {
    /// Building it failed: the builder's own message.
    #[error("{0}")]
    Failed(String),
    #[error("building it panicked: {0}")]
    Panicked(String),
}

/// Runs `build`, turning a panic into an error that says so.
fn checked<T, E: std::fmt::Display>(
    build: impl FnOnce() -> Result<T, E>,
) -> Result<T, LoadProblem> {
    match catch_unwind(AssertUnwindSafe(build)) {
        Ok(built) => built.map_err(|e| LoadProblem::Failed(e.to_string())),
        Err(p) => {
            let text = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(LoadProblem::Panicked(text))
        }
    }
}

/// Why the agent's configuration cannot be loaded, if it cannot.
pub fn agent_problem(row: &AgentRow) -> Option<String> {
    if row.disabled {
        return None;
    }
    checked(|| build_behavior(row)).err().map(|e| e.to_string())
}

/// Why an enabled insecure agent (shell_command, saved while they were enabled) may
/// not run on a hub where they are off.
fn insecure_problem(row: &AgentRow, insecure_enabled: bool) -> Option<String> {
    let k = crate::agents::kind(&row.agent_type)?;
    (!row.disabled && !insecure_enabled && crate::agents::insecure::is_insecure(k)).then(|| {
        format!(
            "Disabled at start: {}.",
            crate::agents::insecure::not_enabled(k.name())
        )
    })
}

/// Disables every agent in `rows` whose configuration cannot be loaded, or that is an
/// insecure type while `insecure_enabled` is false; returns the rows as they are now.
pub async fn agents(
    store: &Store,
    rows: Vec<AgentRow>,
    insecure_enabled: bool,
) -> Result<Vec<AgentRow>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let message = if let Some(m) = insecure_problem(&row, insecure_enabled) {
            tracing::warn!(agent_id = row.id.0, "{m}");
            m
        } else if let Some(problem) = agent_problem(&row) {
            tracing::error!(agent_id = row.id.0, error = %problem, "agent disabled at start: its configuration cannot be loaded; fix it through the API and enable it again");
            format!(
                "Disabled at start: the configuration cannot be loaded ({problem}). Fix the \
                 options (PUT /api/agents/{}) and enable the agent again.",
                row.id
            )
        } else {
            out.push(row);
            continue;
        };
        let id = row.id;
        let disabled = store
            .writer()
            .write(move |c, out| {
                let r = agents::set_disabled(c, id, true, false)?;
                let line = NewLog {
                    level: LEVEL_ERROR,
                    message: message.clone(),
                    inbound_event_id: None,
                };
                agent_logs::append(c, id, &[line], LOG_LENGTH)?;
                let mut payload = system_events::agent_summary(&r);
                payload["reason"] = json!(message);
                system_events::record(c, out, r.user_id, AGENT_DISABLED, payload)?;
                Ok(r)
            })
            .await?;
        out.push(disabled);
    }
    Ok(out)
}

/// Disables every active subscription in `rows` whose configuration cannot be loaded;
/// returns the rows as they are now.
pub async fn subscriptions(
    store: &Store,
    rows: Vec<SubscriptionRow>,
) -> Result<Vec<SubscriptionRow>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for mut row in rows {
        let problem = if row.is_active {
            checked(|| Spec::from_row(&row, store.keys()).map(|_| ())).err()
        } else {
            None
        };
        if let Some(problem) = problem {
            tracing::error!(subscription_id = row.id.0, error = %problem, "subscription disabled at start: its configuration cannot be loaded; fix it through the API and enable it again");
            let reason =
                format!("disabled at start: the configuration cannot be loaded ({problem})");
            let (id, user_id, url, stored) = (row.id, row.user_id, row.url.clone(), reason.clone());
            store
                .writer()
                .write(move |c, out| {
                    subscriptions::disable(c, id, &stored)?;
                    system_events::record(
                        c,
                        out,
                        user_id,
                        SUBSCRIPTION_DISABLED,
                        json!({"webhook_id": id, "url": url, "reason": stored}),
                    )
                })
                .await?;
            row.is_active = false;
            row.disabled_reason = Some(reason);
        }
        out.push(row);
    }
    Ok(out)
}

/// Deactivates every active incoming webhook in `rows` whose configuration cannot be
/// loaded (the reason goes to its agent's log); returns the rows as they are now.
pub async fn incoming(
    store: &Store,
    rows: Vec<IncomingRow>,
) -> Result<Vec<IncomingRow>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for mut row in rows {
        // A signature secret that the key cannot open is the operator's to fix (restore
        // the key), not the row's: such an endpoint stays active and answers 503.
        let sealed_ok = row.signature.as_deref().is_none_or(|s| {
            store
                .keys()
                .open(crate::secrets::purpose::INCOMING_SIGNATURE, s)
                .is_ok()
        });
        let problem = if row.is_active && sealed_ok {
            checked(|| crate::endpoints::incoming::compile(&row, store.keys()).map(|_| ())).err()
        } else {
            None
        };
        if let Some(problem) = problem {
            tracing::error!(incoming_webhook = row.id.0, error = %problem, "incoming webhook deactivated at start: its configuration cannot be loaded; fix it through the API and activate it again");
            let (id, agent_id) = (row.id, row.agent_id);
            let message = format!(
                "Incoming webhook {id} ({}) deactivated at start: the configuration cannot be \
                 loaded ({problem}). Fix it (PATCH /api/webhooks/incoming/{id}) and set is_active again.",
                row.name
            );
            store
                .writer()
                .write(move |c, _| {
                    let changes = IncomingChanges {
                        is_active: Some(false),
                        ..IncomingChanges::default()
                    };
                    incoming_webhooks::update(c, id, &changes)?;
                    let line = NewLog {
                        level: LEVEL_ERROR,
                        message,
                        inbound_event_id: None,
                    };
                    agent_logs::append(c, agent_id, &[line], LOG_LENGTH)
                })
                .await?;
            row.is_active = false;
        }
        out.push(row);
    }
    Ok(out)
}
