//! Creating, updating and deleting an agent: validate, write the agent, its links and
//! the `agent.*` event in one transaction, then tell the running hub.

use serde::Deserialize;
use serde_json::{Value, json};

use super::validate::{
    check_common, check_enable, check_files, check_insecure, check_lexicon, check_links,
    check_targets,
};
use super::{AgentServiceError, AgentView, Deps, Running, Scope, cycle_warnings, find_owned, view};
use crate::agents::{KindInfo, kind, kind_names, option_keys};
use crate::event_types::{
    AGENT_CREATED, AGENT_DELETED, AGENT_DISABLED, AGENT_ENABLED, AGENT_UPDATED,
};
use crate::ids::AgentId;
use crate::store::agents::{self, AgentChanges, AgentRow, NewAgent};
use crate::store::system_events::{agent_summary, record};
use crate::store::{control_links, events, links};

/// What a create or an update asks for. On an update every field is optional and an
/// omitted one keeps its value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    /// Required on create.
    #[serde(rename = "type")]
    pub agent_type: Option<String>,
    /// Required on create.
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
    /// `null` clears the schedule.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub schedule: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub keep_events_for: Option<i64>,
    pub propagate_immediately: Option<bool>,
    #[schema(value_type = Option<Vec<i64>>)]
    pub source_ids: Option<Vec<AgentId>>,
    #[schema(value_type = Option<Vec<i64>>)]
    pub receiver_ids: Option<Vec<AgentId>>,
    #[schema(value_type = Option<Vec<i64>>)]
    pub control_target_ids: Option<Vec<AgentId>>,
}

/// Tells "absent" (keep) from `null` (clear).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn kind_of_input(input: &AgentInput) -> Result<&'static KindInfo, AgentServiceError> {
    let type_name = input.agent_type.as_deref().ok_or_else(|| {
        AgentServiceError::invalid(
            "type",
            format!("field \"type\" is required; agent types: {}", kind_names()),
        )
    })?;
    kind(type_name).ok_or_else(|| {
        AgentServiceError::invalid(
            "type",
            format!(
                "unknown agent type \"{type_name}\"; agent types: {}",
                kind_names()
            ),
        )
    })
}

/// Creates an agent of `owner` with its links; `scope` is the caller's, for the view
/// the answer shows.
pub async fn create<R: Running>(
    d: &Deps<'_, R>,
    owner: i64,
    scope: Scope,
    input: AgentInput,
) -> Result<AgentView, AgentServiceError> {
    let k = kind_of_input(&input)?;
    check_insecure(d.insecure, k)?;
    check_lexicon(d.sentiment, k)?;
    if input.name.is_none() {
        return Err(AgentServiceError::invalid(
            "name",
            "field \"name\" is required",
        ));
    }
    let options = input.options.clone().unwrap_or_else(|| json!({}));
    check_common(&input, Some(&options), k)?;
    check_targets(d.allow_private_targets, k, &options).await?;
    check_files(&d.files, k, &options)?;
    check_links(d, owner, k, &input).await?;
    let schedule = if k.can_be_scheduled {
        input
            .schedule
            .clone()
            .flatten()
            .or_else(|| k.default_schedule.map(str::to_string))
    } else {
        None
    };
    let new = NewAgent {
        user_id: owner,
        agent_type: k.name().to_string(),
        name: input.name.clone().unwrap_or_default().trim().to_string(),
        options: options.to_string(),
        schedule,
        disabled: input.disabled.unwrap_or(false),
        keep_events_for: input.keep_events_for.unwrap_or(0),
        propagate_immediately: input.propagate_immediately.unwrap_or(true),
        guid: None,
    };
    let (sources, receivers, targets) = (
        input.source_ids.unwrap_or_default(),
        input.receiver_ids.unwrap_or_default(),
        input.control_target_ids.unwrap_or_default(),
    );
    let row = d
        .store
        .writer()
        .write(move |c, out| {
            let row = agents::insert(c, &new)?;
            links::replace_sources(c, row.id, &sources)?;
            links::replace_receivers(c, row.id, &receivers)?;
            control_links::replace_targets(c, row.id, &targets)?;
            record(c, out, row.user_id, AGENT_CREATED, agent_summary(&row))?;
            Ok(row)
        })
        .await?;
    let (id, owner) = (row.id, row.user_id);
    d.running.agent_saved(row).await?;
    let mut out = view(d.store, scope, id).await?;
    out.warnings = option_keys::warnings(k, &options);
    out.warnings
        .extend(cycle_warnings(d.store, owner, vec![id]).await?);
    Ok(out)
}

/// Refuses what an update may not do to `current`: change its type, break a save rule,
/// or enable it with options a save refuses.
async fn check_update<R>(
    d: &Deps<'_, R>,
    current: &AgentRow,
    input: &AgentInput,
) -> Result<&'static KindInfo, AgentServiceError> {
    let id = current.id;
    let k = kind(&current.agent_type).ok_or_else(|| {
        AgentServiceError::invalid(
            "type",
            format!("agent {id} has an unknown type {}", current.agent_type),
        )
    })?;
    if let Some(t) = &input.agent_type
        && kind(t).map(|k| k.kind) != Some(k.kind)
    {
        return Err(AgentServiceError::invalid(
            "type",
            format!(
                "field \"type\" cannot be changed (agent {id} is a {} agent); create a new agent instead",
                k.name()
            ),
        ));
    }
    // A stored one may still be disabled or deleted while they are off; not changed.
    if input.options.is_some() || input.disabled == Some(false) {
        check_insecure(d.insecure, k)?;
        check_lexicon(d.sentiment, k)?;
    }
    check_common(input, input.options.as_ref(), k)?;
    if let Some(options) = &input.options {
        check_targets(d.allow_private_targets, k, options).await?;
        check_files(&d.files, k, options)?;
    } else if current.disabled && input.disabled == Some(false) {
        check_enable(d.allow_private_targets, k, current).await?;
        if let Ok(options) = current.options_json() {
            check_files(&d.files, k, &options)?;
        }
    }
    check_links(d, current.user_id, k, input).await?;
    Ok(k)
}

/// Updates the agent `id` that `scope` may see; omitted fields keep their value.
pub async fn update<R: Running>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: AgentId,
    input: AgentInput,
) -> Result<AgentView, AgentServiceError> {
    let current = find_owned(d.store, scope, id).await?;
    let k = check_update(d, &current, &input).await?;
    let changes = AgentChanges {
        name: input.name.as_ref().map(|n| n.trim().to_string()),
        options: input.options.as_ref().map(Value::to_string),
        schedule: if k.can_be_scheduled {
            input.schedule.clone()
        } else {
            None
        },
        disabled: input.disabled,
        keep_events_for: input.keep_events_for,
        propagate_immediately: input.propagate_immediately,
    };
    let was_disabled = current.disabled;
    let keep_changed = input
        .keep_events_for
        .is_some_and(|k| k != current.keep_events_for);
    let relinked = input.source_ids.is_some() || input.receiver_ids.is_some();
    let (sources, receivers, targets) = (
        input.source_ids,
        input.receiver_ids,
        input.control_target_ids,
    );
    let row = d
        .store
        .writer()
        .write(move |c, out| {
            let row = agents::update(c, id, &changes)?;
            if let Some(s) = &sources {
                links::replace_sources(c, id, s)?;
            }
            if let Some(r) = &receivers {
                links::replace_receivers(c, id, r)?;
            }
            if let Some(t) = &targets {
                control_links::replace_targets(c, id, t)?;
            }
            if keep_changed {
                events::set_expiry_for_agent(c, id, row.keep_events_for)?;
            }
            record(c, out, row.user_id, AGENT_UPDATED, agent_summary(&row))?;
            if row.disabled != was_disabled {
                let t = if row.disabled {
                    AGENT_DISABLED
                } else {
                    AGENT_ENABLED
                };
                record(c, out, row.user_id, t, agent_summary(&row))?;
            }
            Ok(row)
        })
        .await?;
    let owner = row.user_id;
    d.running.agent_saved(row).await?;
    let mut out = view(d.store, scope, id).await?;
    if let Some(options) = &input.options {
        out.warnings = option_keys::warnings(k, options);
    }
    if relinked {
        out.warnings
            .extend(cycle_warnings(d.store, owner, vec![id]).await?);
    }
    Ok(out)
}

/// Deletes the agent `id` that `scope` may see, and stops its actors (and those of the
/// subscription it owned).
pub async fn delete<R: Running>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: AgentId,
) -> Result<(), AgentServiceError> {
    find_owned(d.store, scope, id).await?;
    let owned = d
        .store
        .read(move |c| crate::store::subscriptions::owned_by(c, id))
        .await?;
    d.store
        .writer()
        .write(move |c, out| {
            let row = agents::delete(c, id)?;
            record(c, out, row.user_id, AGENT_DELETED, agent_summary(&row))?;
            Ok(())
        })
        .await?;
    d.running.agent_removed(id, owned.map(|s| s.id)).await
}
