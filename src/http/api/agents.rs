//! `/api/agents`: create, read, update and delete agents; their events.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ts, ts_opt};
use crate::agents::{KindInfo, kind, kind_names};
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::event_types::{
    self, AGENT_CREATED, AGENT_DELETED, AGENT_DISABLED, AGENT_ENABLED, AGENT_UPDATED,
};
use crate::hub::{AgentRemoved, AgentSaved};
use crate::store::agents::{self, AgentChanges, AgentRow, NewAgent};
use crate::store::{StoreError, events, links};

/// The body of POST and PUT. On PUT every field is optional and omitted ones keep
/// their value.
#[derive(Debug, Deserialize)]
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
    pub created_at: String,
    pub updated_at: String,
    pub last_check_at: Option<String>,
    pub last_receive_at: Option<String>,
    pub last_event_at: Option<String>,
    pub last_error_at: Option<String>,
    pub last_web_request_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_request_url: Option<String>,
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

fn to_out(
    row: AgentRow,
    sources: Vec<i64>,
    receivers: Vec<i64>,
    base: &str,
) -> Result<AgentOut, StoreError> {
    let options = row.options_json()?;
    let k = kind(&row.agent_type);
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
        memory: row.memory_json()?,
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
        source_ids: sources,
        receiver_ids: receivers,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        last_check_at: ts_opt(row.last_check_at),
        last_receive_at: ts_opt(row.last_receive_at),
        last_event_at: ts_opt(row.last_event_at),
        last_error_at: ts_opt(row.last_error_at),
        last_web_request_at: ts_opt(row.last_web_request_at),
        web_request_url,
    })
}

/// Loads an agent the caller may see, with its links, as the API shows it.
async fn load_out(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    base: &str,
) -> Result<AgentOut, ApiError> {
    let (row, sources, receivers) = state
        .addrs
        .store
        .read(move |c| {
            let row = agents::find(c, id)?;
            let sources = links::sources_of(c, id)?;
            let receivers = links::receivers_of(c, id)?;
            Ok((row, sources, receivers))
        })
        .await?;
    let row = row
        .filter(|r| user.can_see(r.user_id))
        .ok_or_else(|| ApiError::not_found("agent", id))?;
    Ok(to_out(row, sources, receivers, base)?)
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
        && keep < 0
    {
        return Err(ApiError::Unprocessable(
            "field \"keep_events_for\" is a number of seconds: 0 keeps events forever, more expires them".into(),
        ));
    }
    if let Some(options) = options {
        k.validate(options)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
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
    Ok(())
}

fn summary(row: &AgentRow) -> Value {
    json!({"agent": {"id": row.id, "name": row.name, "type": row.agent_type}})
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
    check_links(&state, user.id, k, &input).await?;
    let new = NewAgent {
        user_id: user.id,
        agent_type: k.name.to_string(),
        name: input.name.clone().unwrap_or_default().trim().to_string(),
        options: options.to_string(),
        schedule: if k.can_be_scheduled {
            input.schedule.clone().flatten()
        } else {
            None
        },
        disabled: input.disabled.unwrap_or(false),
        keep_events_for: input.keep_events_for.unwrap_or(0),
        propagate_immediately: input.propagate_immediately.unwrap_or(true),
    };
    let (sources, receivers) = (
        input.source_ids.unwrap_or_default(),
        input.receiver_ids.unwrap_or_default(),
    );
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, out| {
            let row = agents::insert(c, &new)?;
            links::replace_sources(c, row.id, &sources)?;
            links::replace_receivers(c, row.id, &receivers)?;
            event_types::record(c, out, row.user_id, AGENT_CREATED, summary(&row))?;
            Ok(row)
        })
        .await?;
    let id = row.id;
    state.addrs.hub.send(AgentSaved(row)).await??;
    let out = load_out(&state, &user, id, &base_url(&state, &req)).await?;
    Ok(HttpResponse::Created().json(out))
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
    let (sources, receivers) = (input.source_ids, input.receiver_ids);
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
            event_types::record(c, out, row.user_id, AGENT_UPDATED, summary(&row))?;
            if row.disabled != was_disabled {
                let t = if row.disabled {
                    AGENT_DISABLED
                } else {
                    AGENT_ENABLED
                };
                event_types::record(c, out, row.user_id, t, summary(&row))?;
            }
            Ok(row)
        })
        .await?;
    state.addrs.hub.send(AgentSaved(row)).await??;
    Ok(HttpResponse::Ok().json(load_out(&state, &user, id, &base_url(&state, &req)).await?))
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
    let (rows, all_links) = state
        .addrs
        .store
        .read(move |c| Ok((agents::list(c, scope)?, links::list(c, scope)?)))
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
        out.push(to_out(row, sources, receivers, &base)?);
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
    state
        .addrs
        .store
        .writer()
        .write(move |c, out| {
            let row = agents::delete(c, id)?;
            event_types::record(c, out, row.user_id, AGENT_DELETED, summary(&row))?;
            Ok(())
        })
        .await?;
    state.addrs.hub.send(AgentRemoved(id)).await??;
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
