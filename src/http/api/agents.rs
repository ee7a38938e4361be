//! `/api/agents`: create, read, update and delete agents; their events.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ts, ts_opt};
use crate::agents::actor::{ClearMemory, EmitPayloads, RunCheck};
use crate::agents::schedule::Schedule;
use crate::agents::{AgentCtx, KindInfo, health, kind, kind_names, manual_event};
use crate::delivery::guard::check_target_url;
use crate::event_types::{
    AGENT_CREATED, AGENT_DELETED, AGENT_DISABLED, AGENT_ENABLED, AGENT_UPDATED,
};
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::{AgentRemoved, AgentSaved};
use crate::store::agents::{self, AgentChanges, AgentRow, NewAgent};
use crate::store::system_events::{self, agent_summary};
use crate::store::{StoreError, control_links, events, links};

/// The body of POST and PUT. On PUT every field is optional and omitted ones keep
/// their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentIn {
    #[serde(rename = "type")]
    pub agent_type: Option<String>,
    pub name: Option<String>,
    pub options: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    pub schedule: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub keep_events_for: Option<i64>,
    pub propagate_immediately: Option<bool>,
    pub source_ids: Option<Vec<i64>>,
    pub receiver_ids: Option<Vec<i64>>,
    pub control_target_ids: Option<Vec<i64>>,
}

/// Tells "absent" (keep) from `null` (clear).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize)]
pub struct AgentOut {
    pub id: i64,
    pub user_id: i64,
    #[serde(rename = "type")]
    pub agent_type: String,
    pub name: String,
    pub options: Value,
    pub memory: Value,
    pub schedule: Option<String>,
    pub disabled: bool,
    pub keep_events_for: i64,
    pub propagate_immediately: bool,
    pub guid: String,
    pub events_count: i64,
    pub source_ids: Vec<i64>,
    pub receiver_ids: Vec<i64>,
    pub control_target_ids: Vec<i64>,
    pub controller_ids: Vec<i64>,
    /// Huginn's health: recent errors, expected receive/update periods, disabled.
    pub working: bool,
    pub created_at: String,
    pub updated_at: String,
    pub last_check_at: Option<String>,
    pub last_receive_at: Option<String>,
    pub last_event_at: Option<String>,
    pub last_error_at: Option<String>,
    pub last_web_request_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_request_url: Option<String>,
    /// What saving found worth knowing but not refusing: link cycles through the agent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The public base URL: configured, or taken from the request.
pub fn base_url(state: &AppState, req: &HttpRequest) -> String {
    let configured = state.config.server.public_url.trim().trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_string();
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// The agents an agent is linked to, both ways, and controls or is controlled by.
#[derive(Debug, Default)]
pub struct AgentLinks {
    pub sources: Vec<i64>,
    pub receivers: Vec<i64>,
    pub targets: Vec<i64>,
    pub controllers: Vec<i64>,
}

impl AgentLinks {
    pub fn load(c: &mut crate::store::Conn, id: i64) -> Result<AgentLinks, StoreError> {
        Ok(AgentLinks {
            sources: links::sources_of(c, id)?,
            receivers: links::receivers_of(c, id)?,
            targets: control_links::targets_of(c, id)?,
            controllers: control_links::controllers_of(c, id)?,
        })
    }
}

fn to_out(row: AgentRow, l: AgentLinks, base: &str) -> Result<AgentOut, StoreError> {
    // Unreadable stored options (a damaged row) show as null rather than failing the
    // read: the agent was disabled at start with the reason in its log, and the API
    // must still show it so it can be fixed or deleted.
    let options = row.options_json().unwrap_or(Value::Null);
    let k = kind(&row.agent_type);
    let working = k.is_some_and(|k| health::working(k.health, &row, &options, crate::store::now()));
    let web_request_url = k
        .filter(|k| k.takes_web_requests)
        .and_then(|_| options.get("secret").and_then(Value::as_str))
        .map(|secret| {
            format!(
                "{base}/users/{}/web_requests/{}/{secret}",
                row.user_id, row.id
            )
        })
        .or_else(|| {
            // A feed's URL, with its first secret, as RSS (`.json` for JSON).
            k.filter(|k| k.serves_feed())
                .and_then(|_| options.pointer("/secrets/0").and_then(Value::as_str))
                .map(|secret| {
                    format!(
                        "{base}/users/{}/web_requests/{}/{secret}.xml",
                        row.user_id, row.id
                    )
                })
        });
    Ok(AgentOut {
        memory: row
            .memory_json()
            .unwrap_or_else(|_| Value::Object(Default::default())),
        options,
        id: row.id,
        user_id: row.user_id,
        agent_type: row.agent_type,
        name: row.name,
        schedule: row.schedule,
        disabled: row.disabled,
        keep_events_for: row.keep_events_for,
        propagate_immediately: row.propagate_immediately,
        guid: row.guid,
        events_count: row.events_count,
        source_ids: l.sources,
        receiver_ids: l.receivers,
        control_target_ids: l.targets,
        controller_ids: l.controllers,
        working,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        last_check_at: ts_opt(row.last_check_at),
        last_receive_at: ts_opt(row.last_receive_at),
        last_event_at: ts_opt(row.last_event_at),
        last_error_at: ts_opt(row.last_error_at),
        last_web_request_at: ts_opt(row.last_web_request_at),
        web_request_url,
        warnings: Vec::new(),
    })
}

/// Loads an agent the caller may see, with its links, as the API shows it.
async fn load_out(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    base: &str,
) -> Result<AgentOut, ApiError> {
    let (row, links) = state
        .addrs
        .store
        .read(move |c| Ok((agents::find(c, id)?, AgentLinks::load(c, id)?)))
        .await?;
    let row = row
        .filter(|r| user.can_see(r.user_id))
        .ok_or_else(|| ApiError::not_found("agent", id))?;
    Ok(to_out(row, links, base)?)
}

/// Loads an agent row the caller may see.
pub async fn visible_agent(
    state: &AppState,
    user: &AuthUser,
    id: i64,
) -> Result<AgentRow, ApiError> {
    state
        .addrs
        .store
        .read(move |c| agents::find(c, id))
        .await?
        .filter(|r| user.can_see(r.user_id))
        .ok_or_else(|| ApiError::not_found("agent", id))
}

/// Checks that the agents named in `source_ids`/`receiver_ids` exist, belong to
/// `owner` and can be linked that way.
pub async fn check_link_ends(
    state: &AppState,
    owner: i64,
    field: &str,
    ids: &[i64],
    want: fn(&KindInfo) -> bool,
    capability: &str,
) -> Result<(), ApiError> {
    for &id in ids {
        let row = state.addrs.store.read(move |c| agents::find(c, id)).await?;
        let Some(row) = row.filter(|r| r.user_id == owner) else {
            return Err(ApiError::Unprocessable(format!(
                "{field}: agent {id} does not exist or belongs to another user"
            )));
        };
        if !kind(&row.agent_type).is_some_and(want) {
            return Err(ApiError::Unprocessable(format!(
                "{field}: agent {id} ({}) {capability}",
                row.agent_type
            )));
        }
    }
    Ok(())
}

fn check_common(input: &AgentIn, options: Option<&Value>, k: &KindInfo) -> Result<(), ApiError> {
    if let Some(n) = &input.name
        && n.trim().is_empty()
    {
        return Err(ApiError::Unprocessable(
            "field \"name\" must not be empty".into(),
        ));
    }
    if let Some(keep) = input.keep_events_for
        && !(0..=events::MAX_KEEP_EVENTS_FOR).contains(&keep)
    {
        return Err(ApiError::Unprocessable(format!(
            "field \"keep_events_for\" is a number of seconds from 0 (keep events forever) to {} (a hundred years)",
            events::MAX_KEEP_EVENTS_FOR
        )));
    }
    if let Some(options) = options {
        crate::agents::option_keys::validate_for_save(k, options)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    }
    if let Some(Some(schedule)) = &input.schedule
        && k.can_be_scheduled
    {
        Schedule::parse(schedule, chrono_tz::Tz::UTC)
            .map_err(|e| ApiError::Unprocessable(format!("field \"schedule\": {e}")))?;
    }
    Ok(())
}

/// Refuses at save time the URLs the target guard would refuse at every send (the send
/// still checks: DNS can change).
pub async fn check_targets(
    state: &AppState,
    k: &KindInfo,
    options: &Value,
) -> Result<(), ApiError> {
    let allow = state.config.delivery.allow_private_targets;
    for (option, url) in crate::agents::target_urls(k, options) {
        check_target_url(&url, allow)
            .await
            .map_err(|why| ApiError::Unprocessable(format!("option \"{option}\": {why}")))?;
    }
    Ok(())
}

async fn check_links(
    state: &AppState,
    owner: i64,
    k: &KindInfo,
    input: &AgentIn,
) -> Result<(), ApiError> {
    if let Some(src) = &input.source_ids {
        if !src.is_empty() && !k.can_receive_events {
            return Err(ApiError::Unprocessable(format!(
                "source_ids: a {} agent cannot receive events",
                k.name
            )));
        }
        check_link_ends(
            state,
            owner,
            "source_ids",
            src,
            |k| k.can_create_events,
            "cannot create events",
        )
        .await?;
    }
    if let Some(rcv) = &input.receiver_ids {
        if !rcv.is_empty() && !k.can_create_events {
            return Err(ApiError::Unprocessable(format!(
                "receiver_ids: a {} agent cannot create events",
                k.name
            )));
        }
        check_link_ends(
            state,
            owner,
            "receiver_ids",
            rcv,
            |k| k.can_receive_events,
            "cannot receive events",
        )
        .await?;
    }
    if let Some(targets) = &input.control_target_ids {
        if !targets.is_empty() && !k.can_control_other_agents {
            return Err(ApiError::Unprocessable(format!(
                "control_target_ids: a {} agent cannot control other agents",
                k.name
            )));
        }
        check_link_ends(state, owner, "control_target_ids", targets, |_| true, "").await?;
    }
    Ok(())
}

pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<AgentIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let type_name = input.agent_type.as_deref().ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "field \"type\" is required; agent types: {}",
            kind_names()
        ))
    })?;
    let k = kind(type_name).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "unknown agent type \"{type_name}\"; agent types: {}",
            kind_names()
        ))
    })?;
    if input.name.is_none() {
        return Err(ApiError::Unprocessable("field \"name\" is required".into()));
    }
    let options = input.options.clone().unwrap_or_else(|| json!({}));
    check_common(&input, Some(&options), k)?;
    check_targets(&state, k, &options).await?;
    check_links(&state, user.id, k, &input).await?;
    let new = NewAgent {
        user_id: user.id,
        agent_type: k.name.to_string(),
        name: input.name.clone().unwrap_or_default().trim().to_string(),
        options: options.to_string(),
        schedule: if k.can_be_scheduled {
            input
                .schedule
                .clone()
                .flatten()
                .or_else(|| k.default_schedule.map(str::to_string))
        } else {
            None
        },
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
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, out| {
            let row = agents::insert(c, &new)?;
            links::replace_sources(c, row.id, &sources)?;
            links::replace_receivers(c, row.id, &receivers)?;
            control_links::replace_targets(c, row.id, &targets)?;
            system_events::record(c, out, row.user_id, AGENT_CREATED, agent_summary(&row))?;
            Ok(row)
        })
        .await?;
    let (id, owner) = (row.id, row.user_id);
    state.addrs.hub.send(AgentSaved(row)).await??;
    let mut out = load_out(&state, &user, id, &base_url(&state, &req)).await?;
    out.warnings = crate::agents::option_keys::warnings(k, &options);
    out.warnings
        .extend(cycle_warnings(&state, owner, vec![id]).await?);
    Ok(HttpResponse::Created().json(out))
}

/// Link cycles through `agent_ids`, as warnings for the response that made a link.
pub async fn cycle_warnings(
    state: &AppState,
    user_id: i64,
    agent_ids: Vec<i64>,
) -> Result<Vec<String>, ApiError> {
    Ok(state
        .addrs
        .store
        .read(move |c| links::cycle_warnings(c, user_id, &agent_ids))
        .await?)
}

/// Enabling an agent re-checks the options it has (an import may have disabled it for
/// them): the same checks a save makes, so it never runs with options a save refuses.
async fn check_enable(state: &AppState, k: &KindInfo, current: &AgentRow) -> Result<(), ApiError> {
    let refuse = |why: String| {
        ApiError::Unprocessable(format!(
            "agent {} cannot be enabled: {why}; fix its options (PUT options) and enable it again",
            current.id
        ))
    };
    let options = current
        .options_json()
        .map_err(|e| refuse(format!("its stored options cannot be read ({e})")))?;
    // The type's own checks: keys it does not take were kept by an import, as Huginn
    // keeps them, and do not stop the agent from running.
    k.validate(&options).map_err(|e| refuse(e.to_string()))?;
    check_targets(state, k, &options)
        .await
        .map_err(|e| refuse(e.to_string()))
}

pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Json<AgentIn>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let input = body.into_inner();
    let current = visible_agent(&state, &user, id).await?;
    let k = kind(&current.agent_type).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "agent {id} has an unknown type {}",
            current.agent_type
        ))
    })?;
    if let Some(t) = &input.agent_type
        && kind(t).map(|k| k.name) != Some(k.name)
    {
        return Err(ApiError::Unprocessable(format!(
            "field \"type\" cannot be changed (agent {id} is a {} agent); create a new agent instead",
            k.name
        )));
    }
    check_common(&input, input.options.as_ref(), k)?;
    if let Some(options) = &input.options {
        check_targets(&state, k, options).await?;
    } else if current.disabled && input.disabled == Some(false) {
        check_enable(&state, k, &current).await?;
    }
    check_links(&state, current.user_id, k, &input).await?;
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
    let input_options = input.options;
    let (sources, receivers, targets) = (
        input.source_ids,
        input.receiver_ids,
        input.control_target_ids,
    );
    let row = state
        .addrs
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
            system_events::record(c, out, row.user_id, AGENT_UPDATED, agent_summary(&row))?;
            if row.disabled != was_disabled {
                let t = if row.disabled {
                    AGENT_DISABLED
                } else {
                    AGENT_ENABLED
                };
                system_events::record(c, out, row.user_id, t, agent_summary(&row))?;
            }
            Ok(row)
        })
        .await?;
    let owner = row.user_id;
    state.addrs.hub.send(AgentSaved(row)).await??;
    let mut out = load_out(&state, &user, id, &base_url(&state, &req)).await?;
    if let Some(options) = &input_options {
        out.warnings = crate::agents::option_keys::warnings(k, options);
    }
    if relinked {
        out.warnings
            .extend(cycle_warnings(&state, owner, vec![id]).await?);
    }
    Ok(HttpResponse::Ok().json(out))
}

pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let out = load_out(&state, &user, path.into_inner(), &base_url(&state, &req)).await?;
    Ok(HttpResponse::Ok().json(out))
}

pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scope = user.scope();
    let (rows, all_links, all_controls) = state
        .addrs
        .store
        .read(move |c| {
            Ok((
                agents::list(c, scope)?,
                links::list(c, scope)?,
                control_links::list(c, scope)?,
            ))
        })
        .await?;
    let base = base_url(&state, &req);
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id;
        let sources = all_links
            .iter()
            .filter(|l| l.receiver_id == id)
            .map(|l| l.source_id)
            .collect();
        let receivers = all_links
            .iter()
            .filter(|l| l.source_id == id)
            .map(|l| l.receiver_id)
            .collect();
        let targets = all_controls
            .iter()
            .filter(|(c, _)| *c == id)
            .map(|(_, t)| *t)
            .collect();
        let controllers = all_controls
            .iter()
            .filter(|(_, t)| *t == id)
            .map(|(c, _)| *c)
            .collect();
        let l = AgentLinks {
            sources,
            receivers,
            targets,
            controllers,
        };
        out.push(to_out(row, l, &base)?);
    }
    Ok(HttpResponse::Ok().json(out))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    visible_agent(&state, &user, id).await?;
    let owned = state
        .addrs
        .store
        .read(move |c| crate::store::subscriptions::owned_by(c, id))
        .await?;
    state
        .addrs
        .store
        .writer()
        .write(move |c, out| {
            let row = agents::delete(c, id)?;
            system_events::record(c, out, row.user_id, AGENT_DELETED, agent_summary(&row))?;
            Ok(())
        })
        .await?;
    state.addrs.hub.send(AgentRemoved(id)).await??;
    if let Some(sub) = owned {
        state
            .addrs
            .hub
            .send(crate::hub::SubscriptionRemoved(sub.id))
            .await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let row = visible_agent(&state, &user, id).await?;
    let deleted = state
        .addrs
        .store
        .writer()
        .write(move |c, _| {
            let n = events::delete_for_agent(c, id)?;
            agents::recount_events(c, id)?;
            Ok(n)
        })
        .await?;
    // Feeds reading this agent's events show them no more.
    crate::hub::feeds_changed(&state.addrs.registry, Some(row.user_id));
    Ok(HttpResponse::Ok().json(json!({ "deleted": deleted })))
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct LogOut {
    pub id: i64,
    pub level: i32,
    pub message: String,
    pub inbound_event_id: Option<i64>,
    pub outbound_event_id: Option<i64>,
    pub created_at: String,
}

/// `GET /api/agents/{id}/logs`: newest first.
pub async fn logs(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    query: web::Query<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = visible_agent(&state, &user, path.into_inner()).await?.id;
    let limit = super::clamp_limit(query.limit, 100, 1000);
    let rows = state
        .addrs
        .store
        .read(move |c| crate::store::agent_logs::recent(c, id, limit))
        .await?;
    let out: Vec<LogOut> = rows
        .into_iter()
        .map(|l| LogOut {
            id: l.id,
            level: l.level,
            message: l.message,
            inbound_event_id: l.inbound_event_id,
            outbound_event_id: l.outbound_event_id,
            created_at: ts(l.created_at),
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

fn live_agent(state: &AppState, id: i64) -> Result<crate::hub::AgentEntry, ApiError> {
    state
        .addrs
        .registry
        .agent(id)
        .ok_or_else(|| ApiError::Unavailable {
            message: format!("agent {id} is restarting; retry shortly"),
            retry_after: 1,
        })
}

/// `POST /api/agents/{id}/run`: runs the agent's check now.
pub async fn run(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = visible_agent(&state, &user, path.into_inner()).await?;
    if row.disabled {
        return Err(ApiError::Conflict(format!(
            "agent {} is disabled; enable it to run it",
            row.id
        )));
    }
    live_agent(&state, row.id)?.addr.send(RunCheck).await?;
    Ok(HttpResponse::Accepted().json(
        json!({"agent_id": row.id, "message": format!("Agent run queued for '{}'", row.name)}),
    ))
}

/// `DELETE /api/agents/{id}/memory`.
pub async fn clear_memory(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = visible_agent(&state, &user, path.into_inner()).await?;
    live_agent(&state, row.id)?.addr.send(ClearMemory).await??;
    Ok(HttpResponse::Ok().json(json!({"agent_id": row.id, "memory": {}})))
}

/// `POST /api/agents/{id}/events`: a manual_event agent emits the posted payload.
pub async fn post_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let row = visible_agent(&state, &user, path.into_inner()).await?;
    if row.agent_type != "manual_event" {
        return Err(ApiError::Unprocessable(format!(
            "agent {} is a {} agent; only manual_event agents take posted events",
            row.id, row.agent_type
        )));
    }
    let payloads = manual_event::payloads(body.into_inner()).map_err(ApiError::Unprocessable)?;
    let ids = live_agent(&state, row.id)?
        .addr
        .send(EmitPayloads(payloads))
        .await??;
    Ok(HttpResponse::Created().json(json!({"success": true, "event_ids": ids})))
}

#[derive(Debug, Deserialize)]
pub struct ReemitQuery {
    #[serde(default)]
    pub delete_old_events: Option<String>,
}

/// Events copied per transaction when re-emitting.
const REEMIT_BATCH: i64 = 500;

/// `POST /api/agents/{id}/reemit_events`: re-creates every event of the agent as a new
/// event (new ids, passed on again), optionally deleting the originals.
pub async fn reemit_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
    query: web::Query<ReemitQuery>,
) -> Result<HttpResponse, ApiError> {
    let row = visible_agent(&state, &user, path.into_inner()).await?;
    let delete_old = matches!(query.delete_old_events.as_deref(), Some("1" | "true"));
    let id = row.id;
    let up_to = state.addrs.store.read(events::max_id).await?;
    let mut after = 0;
    let mut count = 0usize;
    loop {
        let batch = state
            .addrs
            .store
            .writer()
            .write(move |c, out| {
                let old = events::list(
                    c,
                    &events::EventQuery {
                        agent_id: Some(id),
                        after: Some(after),
                        before: Some(up_to + 1),
                        limit: REEMIT_BATCH,
                        ..Default::default()
                    },
                )?;
                let last = old.last().map(|e| e.id);
                let new: Vec<events::NewEvent> = old
                    .iter()
                    .map(|e| events::NewEvent {
                        user_id: e.user_id,
                        agent_id: e.agent_id,
                        event_type: e.event_type.clone(),
                        // Stored payloads are the JSON text the event was made with.
                        payload: e.payload.clone(),
                        keep_for_seconds: e
                            .expires_at
                            .map_or(0, |x| (x - e.created_at).num_seconds().max(1)),
                    })
                    .collect();
                out.insert(c, &new, 0)?;
                if delete_old {
                    for e in &old {
                        events::delete(c, e.id)?;
                    }
                }
                Ok((last, new.len()))
            })
            .await?;
        count += batch.1;
        match batch.0 {
            Some(last) => after = last,
            None => break,
        }
    }
    if delete_old {
        state
            .addrs
            .store
            .writer()
            .write(move |c, _| agents::recount_events(c, id))
            .await?;
    }
    Ok(HttpResponse::Ok()
        .json(json!({"agent_id": id, "reemitted": count, "deleted_old_events": delete_old})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunIn {
    #[serde(rename = "type")]
    pub agent_type: String,
    #[serde(default)]
    pub options: Option<Value>,
    pub event: Option<Value>,
    pub memory: Option<Value>,
}

/// `POST /api/agents/dry_run`: what an agent with these options would emit and log for
/// `event` (or on a run, without one). Nothing is stored.
pub async fn dry_run(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<DryRunIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let k = kind(&input.agent_type).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "unknown agent type \"{}\"; agent types: {}",
            input.agent_type,
            kind_names()
        ))
    })?;
    let options = input.options.unwrap_or_else(|| json!({}));
    k.validate(&options)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let mut behavior = k
        .build(&options)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let now = crate::store::now();
    let row = AgentRow {
        id: 0,
        user_id: user.id,
        agent_type: k.name.to_string(),
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
    };
    let mut memory = input.memory.unwrap_or_else(|| json!({}));
    let mut ctx = AgentCtx::new(&row, &mut memory);
    // The owner's credentials render as they will when the agent runs, and are masked
    // in the answer: a dry run's output is shown and pasted around.
    let creds = crate::store::credential_cache::user_credentials(&state.addrs.store, user.id);
    ctx.credentials = creds.clone();
    match input.event {
        Some(payload) => {
            let event = events::EventRow {
                id: 0,
                user_id: user.id,
                agent_id: None,
                event_type: "event.created".into(),
                payload: payload.to_string(),
                created_at: now,
                expires_at: None,
                target_agent_id: None,
            };
            behavior.receive(&mut ctx, &event, &payload);
        }
        None => behavior.check(&mut ctx),
    }
    let log: Vec<Value> = ctx
        .logs
        .iter()
        .map(|l| {
            let level = if l.level >= 4 { "ERROR" } else { "INFO" };
            json!({"level": level, "message": creds.redact_all(&l.message)})
        })
        .collect();
    let emitted = std::mem::take(&mut ctx.emitted);
    drop(ctx);
    let mut answer = json!({"events": emitted, "log": log, "memory": memory});
    creds.redact_json(&mut answer);
    Ok(HttpResponse::Ok().json(answer))
}
