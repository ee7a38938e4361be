//! `/api/agents`: create, read, update and delete agents; their events. Each handler
//! extracts the request, calls the agents service (`agents::service`), which owns the
//! workflow and its rules, and maps the outcome to the answer.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ts, ts_opt};
use crate::agents::service::dry_run::{DryRunInput, DryRunOutput};
use crate::agents::service::save::AgentInput;
use crate::agents::service::{self, AgentServiceError, AgentView, Deps};
use crate::agents::{health, kind};
use crate::http::{ApiError, AppState, AuthUser, ErrorCode};
use crate::hub::Addrs;
use crate::ids::AgentId;
use crate::store::agents::AgentRow;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentOut {
    pub id: i64,
    pub user_id: i64,
    #[serde(rename = "type")]
    pub agent_type: String,
    pub name: String,
    /// Null when the stored options cannot be read (a damaged row, disabled at start).
    #[schema(value_type = Option<Object>, required)]
    pub options: Value,
    #[schema(value_type = Object)]
    pub memory: Value,
    #[schema(required)]
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
    #[schema(required)]
    pub last_check_at: Option<String>,
    #[schema(required)]
    pub last_receive_at: Option<String>,
    #[schema(required)]
    pub last_event_at: Option<String>,
    #[schema(required)]
    pub last_error_at: Option<String>,
    #[schema(required)]
    pub last_web_request_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
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

/// The agent as the API shows it; `base` is the public URL its web-request URL starts
/// with.
pub fn to_out(v: AgentView, base: &str) -> AgentOut {
    let AgentView {
        row,
        links: l,
        warnings,
    } = v;
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
        })
        .or_else(|| {
            // A liquid_output page answers any extension; Huginn shows `.html`.
            k.filter(|k| k.serves_page())
                .and_then(|_| options.get("secret").and_then(Value::as_str))
                .map(|secret| {
                    format!(
                        "{base}/users/{}/web_requests/{}/{secret}.html",
                        row.user_id, row.id
                    )
                })
        });
    AgentOut {
        memory: row
            .memory_json()
            .unwrap_or_else(|_| Value::Object(Default::default())),
        options,
        id: row.id.0,
        user_id: row.user_id,
        agent_type: row.agent_type,
        name: row.name,
        schedule: row.schedule,
        disabled: row.disabled,
        keep_events_for: row.keep_events_for,
        propagate_immediately: row.propagate_immediately,
        guid: row.guid,
        events_count: row.events_count,
        source_ids: l.sources.into_iter().map(i64::from).collect(),
        receiver_ids: l.receivers.into_iter().map(i64::from).collect(),
        control_target_ids: l.targets.into_iter().map(i64::from).collect(),
        controller_ids: l.controllers.into_iter().map(i64::from).collect(),
        working,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        last_check_at: ts_opt(row.last_check_at),
        last_receive_at: ts_opt(row.last_receive_at),
        last_event_at: ts_opt(row.last_event_at),
        last_error_at: ts_opt(row.last_error_at),
        last_web_request_at: ts_opt(row.last_web_request_at),
        web_request_url,
        warnings,
    }
}

impl From<AgentServiceError> for ApiError {
    fn from(e: AgentServiceError) -> ApiError {
        match e {
            AgentServiceError::NotFound { what, id } => ApiError::not_found(what, id),
            AgentServiceError::Invalid { field, message } => {
                ApiError::field(ErrorCode::ValidationFailed, field, message)
            }
            AgentServiceError::Conflict(m) => ApiError::Conflict(m),
            AgentServiceError::Busy(message) => ApiError::Unavailable {
                message,
                retry_after: 1,
            },
            AgentServiceError::Store(e) => e.into(),
        }
    }
}

/// What the agents service works with, from the app's state.
pub fn deps(state: &AppState) -> Deps<'_, Addrs> {
    Deps {
        store: &state.addrs.store,
        allow_private_targets: state.config.delivery.allow_private_targets,
        files: std::sync::Arc::new(crate::agents::files::FilePolicy::from_config(
            &state.config.files,
            false,
        )),
        insecure: crate::agents::insecure::Limits::from_config(&state.config.insecure_agents),
        sentiment: !state.config.sentiment.lexicon_path.trim().is_empty(),
        running: &state.addrs,
    }
}

/// Loads an agent row the caller may see.
pub async fn visible_agent(
    state: &AppState,
    user: &AuthUser,
    id: AgentId,
) -> Result<AgentRow, ApiError> {
    Ok(service::find_owned(&state.addrs.store, user.scope(), id).await?)
}

#[utoipa::path(
    post,
    path = "/api/agents",
    operation_id = "agents_create",
    tag = "agents",
    request_body = AgentInput,
    responses(
        (status = 201, description = "Created", body = AgentOut)
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<AgentInput>,
) -> Result<HttpResponse, ApiError> {
    let v = service::save::create(&deps(&state), user.id, user.scope(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(to_out(v, &base_url(&state, &req))))
}

#[utoipa::path(
    method(put, patch),
    path = "/api/agents/{id}",
    operation_id = "agents_update",
    tag = "agents",
    params(("id" = i64, Path)),
    request_body = AgentInput,
    responses(
        (status = 200, description = "OK", body = AgentOut)
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<AgentId>,
    body: web::Json<AgentInput>,
) -> Result<HttpResponse, ApiError> {
    let (id, input) = (path.into_inner(), body.into_inner());
    let v = service::save::update(&deps(&state), user.scope(), id, input).await?;
    Ok(HttpResponse::Ok().json(to_out(v, &base_url(&state, &req))))
}

#[utoipa::path(
    get,
    path = "/api/agents/{id}",
    operation_id = "agents_get",
    tag = "agents",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = AgentOut)
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<AgentId>,
) -> Result<HttpResponse, ApiError> {
    let v = service::view(&state.addrs.store, user.scope(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(to_out(v, &base_url(&state, &req))))
}

#[utoipa::path(
    get,
    path = "/api/agents",
    operation_id = "agents_list",
    tag = "agents",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "OK", body = Vec<AgentOut>)
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&state, &req);
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let views = service::page(&state.addrs.store, user.scope(), page.after(), page.fetch()).await?;
    let (views, next) = page.cut(views, |v| v.row.id.0);
    let out: Vec<AgentOut> = views.into_iter().map(|v| to_out(v, &base)).collect();
    Ok(page.respond(&req, &out, next))
}

#[utoipa::path(
    delete,
    path = "/api/agents/{id}",
    operation_id = "agents_delete",
    tag = "agents",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "No content")
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<AgentId>,
) -> Result<HttpResponse, ApiError> {
    service::save::delete(&deps(&state), user.scope(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    delete,
    path = "/api/agents/{id}/events",
    operation_id = "agents_delete_events",
    tag = "agents",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = DeletedEventsOut)
    )
)]
pub async fn delete_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<AgentId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let deleted = service::actions::delete_events(&deps(&state), user.scope(), id).await?;
    Ok(HttpResponse::Ok().json(DeletedEventsOut { deleted }))
}

/// The answer to deleting an agent's events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedEventsOut {
    /// How many events were deleted.
    pub deleted: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogOut {
    pub id: i64,
    pub level: i32,
    pub message: String,
    #[schema(required)]
    pub inbound_event_id: Option<i64>,
    #[schema(required)]
    pub outbound_event_id: Option<i64>,
    pub created_at: String,
}

/// `GET /api/agents/{id}/logs`: newest first.
#[utoipa::path(
    get,
    path = "/api/agents/{id}/logs",
    operation_id = "agents_logs",
    tag = "agents",
    params(("id" = i64, Path), super::page::PageParams),
    responses(
        (status = 200, description = "OK", body = Vec<LogOut>)
    )
)]
pub async fn logs(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<AgentId>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = super::page::Page::from_request(&req, super::page::Order::NewestFirst)?;
    let rows = service::actions::logs(
        &deps(&state),
        user.scope(),
        path.into_inner(),
        page.before(),
        page.fetch(),
    )
    .await?;
    let (rows, next) = page.cut(rows, |l| l.id);
    let out: Vec<LogOut> = rows
        .into_iter()
        .map(|l| LogOut {
            id: l.id,
            level: l.level,
            message: l.message,
            inbound_event_id: l.inbound_event_id.map(i64::from),
            outbound_event_id: l.outbound_event_id.map(i64::from),
            created_at: ts(l.created_at),
        })
        .collect();
    Ok(page.respond(&req, &out, next))
}

/// `POST /api/agents/{id}/run`: runs the agent's check now.
#[utoipa::path(
    post,
    path = "/api/agents/{id}/run",
    operation_id = "agents_run",
    tag = "agents",
    params(("id" = i64, Path)),
    responses(
        (status = 202, description = "Accepted", body = RunOut)
    )
)]
pub async fn run(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<AgentId>,
) -> Result<HttpResponse, ApiError> {
    let row = service::actions::run_now(&deps(&state), user.scope(), path.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(RunOut {
        agent_id: row.id.0,
        message: format!("Agent run queued for '{}'", row.name),
    }))
}

/// The answer to a run request: the run is queued, not done.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunOut {
    pub agent_id: i64,
    pub message: String,
}

/// `DELETE /api/agents/{id}/memory`.
#[utoipa::path(
    delete,
    path = "/api/agents/{id}/memory",
    operation_id = "agents_clear_memory",
    tag = "agents",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = ClearedMemoryOut)
    )
)]
pub async fn clear_memory(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<AgentId>,
) -> Result<HttpResponse, ApiError> {
    let id = service::actions::clear_memory(&deps(&state), user.scope(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ClearedMemoryOut {
        agent_id: id.0,
        memory: serde_json::Map::new(),
    }))
}

/// The answer to clearing an agent's memory: the memory it has now (empty).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClearedMemoryOut {
    pub agent_id: i64,
    #[schema(value_type = Object)]
    pub memory: serde_json::Map<String, Value>,
}

/// `POST /api/agents/{id}/events`: a manual_event agent emits the posted payload.
#[utoipa::path(
    post,
    path = "/api/agents/{id}/events",
    operation_id = "agents_post_events",
    tag = "agents",
    params(("id" = i64, Path)),
    request_body(
        content = Object,
        description = "An event payload (an object), or `{\"payloads\": [objects]}` for several"
    ),
    responses(
        (status = 201, description = "Created", body = PostedEventsOut)
    )
)]
pub async fn post_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<AgentId>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, body) = (path.into_inner(), body.into_inner());
    let ids = service::actions::post_events(&deps(&state), user.scope(), id, body).await?;
    Ok(HttpResponse::Created().json(PostedEventsOut {
        success: true,
        event_ids: ids.into_iter().map(i64::from).collect(),
    }))
}

/// The answer to posting events: the ids of the events the agent emitted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostedEventsOut {
    pub success: bool,
    pub event_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReemitQuery {
    #[serde(default)]
    pub delete_old_events: Option<String>,
}

/// `POST /api/agents/{id}/reemit_events`: re-creates every event of the agent as a new
/// event (new ids, passed on again), optionally deleting the originals.
#[utoipa::path(
    post,
    path = "/api/agents/{id}/reemit_events",
    operation_id = "agents_reemit_events",
    tag = "agents",
    params(("id" = i64, Path), ReemitQuery),
    responses(
        (status = 200, description = "OK", body = ReemitOut)
    )
)]
pub async fn reemit_events(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<AgentId>,
    query: crate::http::Query<ReemitQuery>,
) -> Result<HttpResponse, ApiError> {
    let delete_old = matches!(query.delete_old_events.as_deref(), Some("1" | "true"));
    let id = path.into_inner();
    let count = service::actions::reemit(&deps(&state), user.scope(), id, delete_old).await?;
    Ok(HttpResponse::Ok().json(ReemitOut {
        agent_id: id.0,
        reemitted: count,
        deleted_old_events: delete_old,
    }))
}

/// The answer to re-emitting an agent's events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReemitOut {
    pub agent_id: i64,
    /// How many events were emitted again.
    pub reemitted: usize,
    pub deleted_old_events: bool,
}

/// `POST /api/agents/dry_run`: what an agent with these options would emit and log for
/// `event` (or on a run, without one). Nothing is stored.
#[utoipa::path(
    post,
    path = "/api/agents/dry_run",
    operation_id = "agents_dry_run",
    tag = "agents",
    request_body = DryRunInput,
    responses(
        (status = 200, description = "OK", body = DryRunOutput)
    )
)]
pub async fn dry_run(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<DryRunInput>,
) -> Result<HttpResponse, ApiError> {
    let store = state.addrs.store.clone();
    let insecure = crate::agents::insecure::Limits::from_config(&state.config.insecure_agents);
    // Read (once per process) when `serve` started; a file broken since is a refusal.
    let sentiment = crate::agents::sentiment::lexicon::shared(&state.config.sentiment)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    // Off the HTTP worker: a shell_command dry run waits for its command.
    let answer = web::block(move || {
        service::dry_run::dry_run(&store, user.id, body.into_inner(), insecure, sentiment)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the dry run did not finish: {e}")))??;
    Ok(HttpResponse::Ok().json(answer))
}
