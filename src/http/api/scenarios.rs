//! `/api/scenarios`: named sets of agents; import and export in Huginn's format.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ts;
use crate::agents::scenario::{self, ExportAgent};
use crate::agents::service::import;
use crate::http::api::agents::{deps, visible_agent};
use crate::http::{ApiError, AppState, AuthUser};
use crate::store::agents::{self, AgentRow};
use crate::store::scenarios::{self, ScenarioFields, ScenarioRow};
use crate::store::{Conn, StoreError, control_links, links};

#[derive(Debug, Serialize)]
pub struct ScenarioOut {
    pub id: i64,
    pub user_id: i64,
    pub guid: String,
    pub name: String,
    pub description: Option<String>,
    pub tag_fg_color: Option<String>,
    pub tag_bg_color: Option<String>,
    pub icon: Option<String>,
    pub agent_ids: Vec<i64>,
    pub created_at: String,
    pub updated_at: String,
}

fn out(r: ScenarioRow, agent_ids: Vec<i64>) -> ScenarioOut {
    ScenarioOut {
        id: r.id,
        user_id: r.user_id,
        guid: r.guid,
        name: r.name,
        description: r.description,
        tag_fg_color: r.tag_fg_color,
        tag_bg_color: r.tag_bg_color,
        icon: r.icon,
        agent_ids,
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
    }
}

async fn visible(state: &AppState, user: &AuthUser, id: i64) -> Result<ScenarioRow, ApiError> {
    state
        .addrs
        .store
        .read(move |c| scenarios::find(c, id))
        .await?
        .filter(|s| user.can_see(s.user_id))
        .ok_or_else(|| ApiError::not_found("scenario", id))
}

pub async fn list(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let scope = user.scope();
    let rows = state
        .addrs
        .store
        .read(move |c| {
            let rows = scenarios::list(c, scope)?;
            rows.into_iter()
                .map(|r| {
                    let ids = scenarios::agent_ids(c, r.id)?;
                    Ok(out(r, ids))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let s = visible(&state, &user, path.into_inner()).await?;
    let id = s.id;
    let ids = state
        .addrs
        .store
        .read(move |c| scenarios::agent_ids(c, id))
        .await?;
    Ok(HttpResponse::Ok().json(out(s, ids)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioIn {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub agent_ids: Vec<i64>,
}

pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<ScenarioIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    if input.name.trim().is_empty() {
        return Err(ApiError::Unprocessable("field \"name\" is required".into()));
    }
    for &a in &input.agent_ids {
        visible_agent(&state, &user, a)
            .await
            .map_err(|_| ApiError::Unprocessable(format!("agent_ids: agent {a} does not exist")))?;
    }
    let uid = user.id;
    let guid = uuid::Uuid::new_v4().simple().to_string();
    let fields = ScenarioFields {
        name: input.name.trim().to_string(),
        description: input.description,
        tag_fg_color: None,
        tag_bg_color: None,
        icon: None,
    };
    let ids = input.agent_ids;
    let row = state
        .addrs
        .store
        .writer()
        .write(move |c, _| {
            let (row, _) = scenarios::upsert(c, uid, &guid, &fields)?;
            scenarios::add_agents(c, row.id, &ids)?;
            Ok(row)
        })
        .await?;
    let id = row.id;
    let ids = state
        .addrs
        .store
        .read(move |c| scenarios::agent_ids(c, id))
        .await?;
    Ok(HttpResponse::Created().json(out(row, ids)))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = visible(&state, &user, path.into_inner()).await?.id;
    state
        .addrs
        .store
        .writer()
        .write(move |c, _| scenarios::delete(c, id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The agents of a scenario with what an export needs.
fn export_of(c: &mut Conn, s: &ScenarioRow) -> Result<Value, StoreError> {
    let ids = scenarios::agent_ids(c, s.id)?;
    let mut rows: Vec<AgentRow> = Vec::new();
    for id in &ids {
        rows.extend(agents::find(c, *id)?);
    }
    let mut l = Vec::new();
    let mut cl = Vec::new();
    for r in &rows {
        for recv in links::receivers_of(c, r.id)? {
            l.push((r.id, recv));
        }
        for t in control_links::targets_of(c, r.id)? {
            cl.push((r.id, t));
        }
    }
    let exported: Vec<ExportAgent<'_>> = rows
        .iter()
        .map(|row| {
            Ok(ExportAgent {
                row,
                options: row.options_json()?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(scenario::export(s, &exported, &l, &cl))
}

pub async fn export(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let s = visible(&state, &user, path.into_inner()).await?;
    let name = scenario::slug(&s.name);
    let doc = state.addrs.store.read(move |c| export_of(c, &s)).await?;
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
    let mut body = json!({
        "scenario": out(done.scenario, done.agent_ids),
        "created": done.created,
        "agents": done.agents,
        "problems": done.problems,
        "counts": done.counts,
        "complete": done.problems.is_empty(),
    });
    if !done.warnings.is_empty() {
        body["warnings"] = json!(done.warnings);
    }
    Ok(HttpResponse::build(status).json(body))
}
