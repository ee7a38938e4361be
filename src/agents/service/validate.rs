//! The rules a save checks before it writes: the common fields, the options (the
//! type's own checks and the target guard), the ends of links, and what enabling an
//! agent re-checks. One set of rules for the API, the control handler and imports.

use serde_json::Value;

use super::save::AgentInput;
use super::{AgentServiceError, Deps};
use crate::agents::schedule::Schedule;
use crate::agents::{KindInfo, kind, option_keys};
use crate::delivery::guard::check_target_url;
use crate::ids::AgentId;
use crate::store::agents::{self, AgentRow};
use crate::store::events;

/// The name, `keep_events_for`, the options (with the keys the type takes) and the
/// schedule of a create or an update.
pub fn check_common(
    input: &AgentInput,
    options: Option<&Value>,
    k: &KindInfo,
) -> Result<(), AgentServiceError> {
    if let Some(n) = &input.name
        && n.trim().is_empty()
    {
        return Err(AgentServiceError::invalid(
            "name",
            "field \"name\" must not be empty",
        ));
    }
    if let Some(keep) = input.keep_events_for
        && !(0..=events::MAX_KEEP_EVENTS_FOR).contains(&keep)
    {
        return Err(AgentServiceError::invalid(
            "keep_events_for",
            format!(
                "field \"keep_events_for\" is a number of seconds from 0 (keep events forever) to {} (a hundred years)",
                events::MAX_KEEP_EVENTS_FOR
            ),
        ));
    }
    if let Some(options) = options {
        option_keys::validate_for_save(k, options)
            .map_err(|e| AgentServiceError::invalid("options", e.to_string()))?;
    }
    if let Some(Some(schedule)) = &input.schedule
        && k.can_be_scheduled
    {
        Schedule::parse(schedule, chrono_tz::Tz::UTC).map_err(|e| {
            AgentServiceError::invalid("schedule", format!("field \"schedule\": {e}"))
        })?;
    }
    Ok(())
}

/// Refuses at save time the URLs the target guard would refuse at every send (the send
/// still checks: DNS can change).
pub async fn check_targets(
    allow_private_targets: bool,
    k: &KindInfo,
    options: &Value,
) -> Result<(), AgentServiceError> {
    for (option, url) in crate::agents::target_urls(k, options) {
        check_target_url(&url, allow_private_targets)
            .await
            .map_err(|why| {
                AgentServiceError::invalid("options", format!("option \"{option}\": {why}"))
            })?;
    }
    Ok(())
}

/// Refuses a file agent the operator's `[files]` setting does not allow (the agent
/// checks again at every access: a templated path is known only when rendered).
pub fn check_files(
    files: &crate::agents::files::FilePolicy,
    k: &KindInfo,
    options: &Value,
) -> Result<(), AgentServiceError> {
    match files.save_problem(k.kind, options) {
        None => Ok(()),
        Some((Some(option), why)) => Err(AgentServiceError::invalid(
            "options",
            format!("option \"{option}\": {why}"),
        )),
        Some((None, why)) => Err(AgentServiceError::invalid("options", why)),
    }
}

/// Checks that the agents named in `ids` exist, belong to `owner` and can be linked
/// that way (`want` of their type; `capability` says what they lack).
pub async fn check_link_ends<R>(
    d: &Deps<'_, R>,
    owner: i64,
    field: &'static str,
    ids: &[AgentId],
    want: fn(&KindInfo) -> bool,
    capability: &str,
) -> Result<(), AgentServiceError> {
    for &id in ids {
        // The owner is part of the query: another user's agent reads as missing.
        let row = d
            .store
            .read(move |c| agents::find_owned(c, Some(owner), id))
            .await?;
        let Some(row) = row else {
            return Err(AgentServiceError::invalid(
                field,
                format!("{field}: agent {id} does not exist or belongs to another user"),
            ));
        };
        if !kind(&row.agent_type).is_some_and(want) {
            return Err(AgentServiceError::invalid(
                field,
                format!("{field}: agent {id} ({}) {capability}", row.agent_type),
            ));
        }
    }
    Ok(())
}

/// The links a create or an update names: this agent's type must take them, and every
/// other end must be the owner's and of a type that takes them.
pub async fn check_links<R>(
    d: &Deps<'_, R>,
    owner: i64,
    k: &KindInfo,
    input: &AgentInput,
) -> Result<(), AgentServiceError> {
    if let Some(src) = &input.source_ids {
        if !src.is_empty() && !k.can_receive_events {
            return Err(AgentServiceError::invalid(
                "source_ids",
                format!("source_ids: a {} agent cannot receive events", k.name()),
            ));
        }
        let want = |k: &KindInfo| k.can_create_events;
        check_link_ends(d, owner, "source_ids", src, want, "cannot create events").await?;
    }
    if let Some(rcv) = &input.receiver_ids {
        if !rcv.is_empty() && !k.can_create_events {
            return Err(AgentServiceError::invalid(
                "receiver_ids",
                format!("receiver_ids: a {} agent cannot create events", k.name()),
            ));
        }
        let want = |k: &KindInfo| k.can_receive_events;
        check_link_ends(d, owner, "receiver_ids", rcv, want, "cannot receive events").await?;
    }
    if let Some(targets) = &input.control_target_ids {
        if !targets.is_empty() && !k.can_control_other_agents {
            return Err(AgentServiceError::invalid(
                "control_target_ids",
                format!(
                    "control_target_ids: a {} agent cannot control other agents",
                    k.name()
                ),
            ));
        }
        check_link_ends(d, owner, "control_target_ids", targets, |_| true, "").await?;
    }
    Ok(())
}

/// Refuses an insecure type (shell_command) while the operator has not enabled them.
pub fn check_insecure(
    insecure: Option<crate::agents::insecure::Limits>,
    k: &KindInfo,
) -> Result<(), AgentServiceError> {
    if insecure.is_none() && crate::agents::insecure::is_insecure(k) {
        return Err(AgentServiceError::invalid(
            "type",
            crate::agents::insecure::not_enabled(k.name()),
        ));
    }
    Ok(())
}

/// Refuses a sentiment agent while the operator has configured no lexicon.
pub fn check_lexicon(configured: bool, k: &KindInfo) -> Result<(), AgentServiceError> {
    if !configured && k.kind == crate::agents::Kind::Sentiment {
        return Err(AgentServiceError::invalid(
            "type",
            crate::agents::sentiment::not_configured(),
        ));
    }
    Ok(())
}

/// Why a disabled agent may not run with the options it has.
#[derive(Debug, thiserror::Error)]
pub enum NotRunnable {
    #[error("its stored options cannot be read ({0})")]
    Unreadable(crate::store::StoreError),
    #[error(transparent)]
    Invalid(#[from] crate::agents::OptionError),
}

/// A disabled agent's stored options if they may run: they pass the type's own checks
/// (an import may have disabled it for failing them). Keys the type does not take were
/// kept by an import, as Huginn keeps them, and do not stop it. `Err`: why not.
pub fn runnable_options(k: &KindInfo, row: &AgentRow) -> Result<Value, NotRunnable> {
    let options = row.options_json().map_err(NotRunnable::Unreadable)?;
    k.validate(&options)?;
    Ok(options)
}

/// Enabling an agent by a save re-checks the options it has: the same checks a save
/// makes, so it never runs with options a save refuses.
pub async fn check_enable(
    allow_private_targets: bool,
    k: &KindInfo,
    current: &AgentRow,
) -> Result<(), AgentServiceError> {
    let refuse = |why: String| {
        AgentServiceError::invalid(
            "disabled",
            format!(
                "agent {} cannot be enabled: {why}; fix its options (PUT options) and enable it again",
                current.id
            ),
        )
    };
    let options = runnable_options(k, current).map_err(|e| refuse(e.to_string()))?;
    check_targets(allow_private_targets, k, &options)
        .await
        .map_err(|e| refuse(e.to_string()))
}
