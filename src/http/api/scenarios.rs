//! `/api/scenarios`: named sets of agents; import and export in Huginn's format. The
//! workflows are the agents service's (`agents::service::{scenarios, import}`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ts;
use crate::agents::scenario::Problem;
use crate::agents::service::import::{self, ImportCounts, ImportedAgent};
use crate::agents::service::scenarios as service;
use crate::http::api::agents::deps;
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::scenarios::ScenarioRow;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScenarioOut {
    pub id: i64,
    pub user_id: i64,
    pub guid: String,
    pub name: String,
    #[schema(required)]
    pub description: Option<String>,
    #[schema(required)]
    pub tag_fg_color: Option<String>,
    #[schema(required)]
    pub tag_bg_color: Option<String>,
    #[schema(required)]
    pub icon: Option<String>,
    pub agent_ids: Vec<i64>,
    pub created_at: String,
    pub updated_at: String,
}

fn out(r: ScenarioRow, agent_ids: Vec<crate::ids::AgentId>) -> ScenarioOut {
    ScenarioOut {
        id: r.id.0,
        user_id: r.user_id,
        guid: r.guid,
        name: r.name,
        description: r.description,
        tag_fg_color: r.tag_fg_color,
        tag_bg_color: r.tag_bg_color,
        icon: r.icon,
        agent_ids: agent_ids.into_iter().map(i64::from).collect(),
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
    }
}

#[utoipa::path(
    get,
    path = "/api/scenarios",
    operation_id = "scenarios_list",
    tag = "scenarios",
    params(super::page::PageParams),
    responses(
        (status = 200, description = "OK", body = Vec<ScenarioOut>)
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let page = super::page::Page::from_request(&req, super::page::Order::OldestFirst)?;
    let rows = service::page(&deps(&state), user.scope(), page.after(), page.fetch()).await?;
    let (rows, next) = page.cut(rows, |(r, _)| r.id.0);
    let body: Vec<ScenarioOut> = rows.into_iter().map(|(r, ids)| out(r, ids)).collect();
    Ok(page.respond(&req, &body, next))
}

#[utoipa::path(
    get,
    path = "/api/scenarios/{id}",
    operation_id = "scenarios_get",
    tag = "scenarios",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = ScenarioOut)
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<crate::ids::ScenarioId>,
) -> Result<HttpResponse, ApiError> {
    let (s, ids) = service::get(&deps(&state), user.scope(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(out(s, ids)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioIn {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub agent_ids: Vec<i64>,
}

#[utoipa::path(
    post,
    path = "/api/scenarios",
    operation_id = "scenarios_create",
    tag = "scenarios",
    request_body = ScenarioIn,
    responses(
        (status = 201, description = "Created", body = ScenarioOut)
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<ScenarioIn>,
) -> Result<HttpResponse, ApiError> {
    let ScenarioIn {
        name,
        description,
        agent_ids,
    } = body.into_inner();
    let d = deps(&state);
    let (row, ids) = service::create(
        &d,
        user.id,
        user.scope(),
        &name,
        description,
        agent_ids.into_iter().map(crate::ids::AgentId).collect(),
    )
    .await?;
    Ok(HttpResponse::Created().json(out(row, ids)))
}

#[utoipa::path(
    delete,
    path = "/api/scenarios/{id}",
    operation_id = "scenarios_delete",
    tag = "scenarios",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "No content")
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<crate::ids::ScenarioId>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&deps(&state), user.scope(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/scenarios/{id}/export",
    operation_id = "scenarios_export",
    tag = "scenarios",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The scenario as a Huginn scenario file, as an attachment", body = Object)
    )
)]
pub async fn export(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<crate::ids::ScenarioId>,
) -> Result<HttpResponse, ApiError> {
    let (name, doc) = service::export(&deps(&state), user.scope(), path.into_inner()).await?;
    let body = serde_json::to_string_pretty(&doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.json\""),
        ))
        .body(body))
}

/// `POST /api/scenarios/import`: a Huginn scenario file (or `{"data": <file or its text>}`).
#[utoipa::path(
    post,
    path = "/api/scenarios/import",
    operation_id = "scenarios_import",
    tag = "scenarios",
    request_body(
        content = Object,
        description = "A Huginn scenario file, or `{\"data\": <the file, or its text>}`"
    ),
    responses(
        (status = 200, description = "A scenario with the file's guid was updated", body = ImportOut),
        (status = 201, description = "Created", body = ImportOut)
    )
)]
pub async fn import(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let file = import::parse(body.into_inner())?;
    let done = import::import(&deps(&state), user.id, file).await?;
    let status = if done.created {
        actix_web::http::StatusCode::CREATED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(ImportOut {
        scenario: out(done.scenario, done.agent_ids),
        created: done.created,
        agents: done.agents,
        complete: done.problems.is_empty(),
        problems: done.problems,
        counts: done.counts,
        warnings: done.warnings,
    }))
}

/// What an import did: the scenario, each agent of the file, and what did not come over.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportOut {
    pub scenario: ScenarioOut,
    /// The scenario is new (not an update of one with the same guid).
    pub created: bool,
    pub agents: Vec<ImportedAgent>,
    pub problems: Vec<Problem>,
    pub counts: ImportCounts,
    /// Everything came over: no problems.
    pub complete: bool,
    /// Link cycles and option notes: worth knowing, not refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
