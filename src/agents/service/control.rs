//! What a controlling agent does to its control targets (Huginn's `control!`): run,
//! enable, disable. Enabling re-checks the target's options as a save's enable does.

use super::actions::ActorAsk;
use super::validate::runnable_options;
use super::{AgentServiceError, Deps, Running};
use crate::agents::ControlAction;
use crate::event_types::{AGENT_DISABLED, AGENT_ENABLED};
use crate::ids::AgentId;
use crate::store::agent_logs;
use crate::store::agents::{self, AgentRow};
use crate::store::control_links;
use crate::store::system_events::{agent_summary, record};

/// Lines at most kept in the controller's log when noting what was not done.
const CONTROLLER_LOG_LENGTH: i64 = 200;

/// Enables (optionally skipping the events that arrived meanwhile) or disables the
/// agent `id`, records `agent.enabled`/`agent.disabled` with the change, and tells the
/// running hub.
pub async fn set_disabled<R: Running>(
    d: &Deps<'_, R>,
    id: AgentId,
    disabled: bool,
    drop_pending_events: bool,
) -> Result<AgentRow, AgentServiceError> {
    let row = d
        .store
        .writer()
        .write(move |c, out| {
            let r = agents::set_disabled(c, id, disabled, drop_pending_events)?;
            let t = if disabled {
                AGENT_DISABLED
            } else {
                AGENT_ENABLED
            };
            record(c, out, r.user_id, t, agent_summary(&r))?;
            Ok(r)
        })
        .await?;
    d.running.agent_saved(row.clone()).await?;
    Ok(row)
}

/// Carries out `actions` of the agent `controller` on each of its control targets;
/// what was ignored or refused is noted in the controller's log.
pub async fn carry_out<R: Running>(
    d: &Deps<'_, R>,
    controller: AgentId,
    actions: Vec<ControlAction>,
) -> Result<(), AgentServiceError> {
    let targets = d
        .store
        .read(move |c| {
            let mut rows = Vec::new();
            for id in control_links::targets_of(c, controller)? {
                rows.extend(agents::find(c, id)?);
            }
            Ok(rows)
        })
        .await?;
    let mut notes = Vec::new();
    for action in actions {
        for t in &targets {
            if let Some(note) = act(d, action, t).await? {
                notes.push(note);
            }
        }
    }
    if !notes.is_empty() {
        let lines: Vec<agent_logs::NewLog> = notes
            .into_iter()
            .map(|message| agent_logs::NewLog {
                level: agent_logs::LEVEL_INFO,
                message,
                inbound_event_id: None,
            })
            .collect();
        d.store
            .writer()
            .write(move |c, _| agent_logs::append(c, controller, &lines, CONTROLLER_LOG_LENGTH))
            .await?;
    }
    Ok(())
}

/// One action on one target (as the targets were when the controller asked); the note
/// for the controller's log when it was not done.
async fn act<R: Running>(
    d: &Deps<'_, R>,
    action: ControlAction,
    t: &AgentRow,
) -> Result<Option<String>, AgentServiceError> {
    match action {
        ControlAction::Run if t.disabled => Ok(Some(format!(
            "Agent run ignored for disabled Agent '{}'",
            t.name
        ))),
        // Here, or on the node that runs the target (several nodes).
        ControlAction::Run => match super::actions::ask_actor(d, t.id, ActorAsk::Run).await {
            Ok(_) => Ok(None),
            Err(e) => Ok(Some(format!("Agent run failed for '{}': {e}", t.name))),
        },
        ControlAction::Enable {
            drop_pending_events,
        } if t.disabled => {
            // An unknown type is left to the Hub's start-up checks, as before.
            if let Some(k) = crate::agents::kind(&t.agent_type)
                && let Err(why) = super::validate::check_insecure(d.insecure, k)
                    .and_then(|()| super::validate::check_lexicon(d.sentiment, k))
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        runnable_options(k, t)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    })
            {
                return Ok(Some(format!(
                    "Agent enable refused for '{}': {why}",
                    t.name
                )));
            }
            set_disabled(d, t.id, false, drop_pending_events).await?;
            Ok(None)
        }
        ControlAction::Disable if !t.disabled => {
            set_disabled(d, t.id, true, false).await?;
            Ok(None)
        }
        ControlAction::Enable { .. } | ControlAction::Disable => Ok(None),
    }
}
