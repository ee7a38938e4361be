//! `/api/scenarios`: named sets of agents; import and export in Huginn's format.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ts;
use crate::agents::scenario::{self, ExportAgent, Planned, Problem, ScenarioFile};
use crate::agents::scenario_problems;
use crate::event_types::{AGENT_CREATED, AGENT_UPDATED};
use crate::http::api::agents::visible_agent;
use crate::http::{ApiError, AppState, AuthUser};
use crate::hub::{AgentSaved, LinksChanged};
use crate::store::agents::{self, AgentChanges, AgentRow, NewAgent};
use crate::store::scenarios::{self, ScenarioFields, ScenarioRow};
use crate::store::system_events::{self, agent_summary};
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

/// What happened to one agent of the file.
#[derive(Debug, Serialize)]
pub struct ImportedAgent {
    pub index: usize,
    pub name: String,
    pub id: Option<i64>,
    #[serde(rename = "type")]
    pub agent_type: Option<String>,
    pub action: &'static str,
    pub disabled: bool,
    /// Why the agent was not created (`action` "skipped").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How many pieces of the file came over, and how many did not.
#[derive(Debug, Default, Serialize)]
pub struct ImportCounts {
    pub agents_created: usize,
    pub agents_updated: usize,
    pub agents_not_created: usize,
    pub links_made: usize,
    pub links_not_made: usize,
    pub control_links_made: usize,
    pub control_links_not_made: usize,
}

const NOT_A_SCENARIO: &str =
    "The provided data does not appear to be a valid Scenario: it needs name, guid and agents.";

/// A guid taken by another user's agent gets a per-user variant (guids are global).
fn own_guid(
    c: &mut Conn,
    user_id: i64,
    guid: &str,
) -> Result<(String, Option<AgentRow>), StoreError> {
    match agents::find_by_guid(c, guid)? {
        Some(a) if a.user_id == user_id => Ok((guid.to_string(), Some(a))),
        Some(_) => {
            let mine = format!("{guid}-u{user_id}");
            let existing = agents::find_by_guid(c, &mine)?.filter(|a| a.user_id == user_id);
            Ok((mine, existing))
        }
        None => Ok((guid.to_string(), None)),
    }
}

/// `POST /api/scenarios/import`: a Huginn scenario file (or `{"data": <file or its text>}`).
pub async fn import(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let mut v = body.into_inner();
    if let Some(data) = v.get("data").cloned() {
        v = match data {
            Value::String(s) => serde_json::from_str(&s)
                .map_err(|e| ApiError::Unprocessable(format!("{NOT_A_SCENARIO} ({e})")))?,
            other => other,
        };
    }
    let file: ScenarioFile = serde_json::from_value(v)
        .map_err(|e| ApiError::Unprocessable(format!("{NOT_A_SCENARIO} ({e})")))?;
    let (mut planned, mut problems) = scenario::plan(&file);
    let option_notes: Vec<String> = planned
        .iter()
        .flatten()
        .flat_map(|p| p.notes.clone())
        .collect();
    refuse_guarded_targets(&state, &mut planned, &mut problems).await;
    let uid = user.id;
    let fields = ScenarioFields {
        name: file.name.clone(),
        description: file.description.clone(),
        tag_fg_color: file.tag_fg_color.clone(),
        tag_bg_color: file.tag_bg_color.clone(),
        icon: file
            .icon
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let guid = file.guid.clone();
    let (links_by_index, link_problems) = scenario_problems::plan_links(&file, &planned);
    let (controls_by_index, control_problems) =
        scenario_problems::plan_control_links(&file, &planned);
    let mut counts = ImportCounts {
        links_made: links_by_index.len(),
        links_not_made: link_problems.len(),
        control_links_made: controls_by_index.len(),
        control_links_not_made: control_problems.len(),
        ..ImportCounts::default()
    };
    problems.extend(link_problems);
    problems.extend(control_problems);
    let skipped: Vec<(String, String)> = file
        .agents
        .iter()
        .map(|a| (a.name.clone(), a.agent_type.clone()))
        .collect();
    let (row, created, saved, report) = state
        .addrs
        .store
        .writer()
        .write(move |c, out| {
            let (srow, created) = scenarios::upsert(c, uid, &guid, &fields)?;
            let mut ids: Vec<Option<i64>> = Vec::with_capacity(planned.len());
            let mut saved: Vec<AgentRow> = Vec::new();
            let mut report = Vec::new();
            for (i, p) in planned.iter().enumerate() {
                let Some(p) = p else {
                    ids.push(None);
                    let (name, agent_type) = skipped[i].clone();
                    report.push(ImportedAgent {
                        index: i,
                        name,
                        id: None,
                        reason: Some(format!(
                            "unknown type {agent_type} (not available in muninn)"
                        )),
                        agent_type: Some(agent_type),
                        action: "skipped",
                        disabled: true,
                    });
                    continue;
                };
                let (row, action) = save_planned(c, uid, p)?;
                let t = if action == "created" {
                    AGENT_CREATED
                } else {
                    AGENT_UPDATED
                };
                system_events::record(c, out, uid, t, agent_summary(&row))?;
                ids.push(Some(row.id));
                report.push(ImportedAgent {
                    index: i,
                    name: row.name.clone(),
                    id: Some(row.id),
                    agent_type: Some(row.agent_type.clone()),
                    action,
                    disabled: row.disabled,
                    reason: None,
                });
                saved.push(row);
            }
            // Huginn's rule: a link that is already there is not made twice.
            for (s, r) in &links_by_index {
                if let (Some(Some(s)), Some(Some(r))) = (ids.get(*s), ids.get(*r))
                    && !links::receivers_of(c, *s)?.contains(r)
                {
                    links::insert(c, *s, *r)?;
                }
            }
            for (ctl, t) in &controls_by_index {
                if let (Some(Some(ctl)), Some(Some(t))) = (ids.get(*ctl), ids.get(*t)) {
                    let mut targets = control_links::targets_of(c, *ctl)?;
                    if !targets.contains(t) {
                        targets.push(*t);
                        control_links::replace_targets(c, *ctl, &targets)?;
                    }
                }
            }
            let member_ids: Vec<i64> = ids.iter().flatten().copied().collect();
            scenarios::add_agents(c, srow.id, &member_ids)?;
            Ok((srow, created, saved, report))
        })
        .await?;
    for r in saved {
        state.addrs.hub.send(AgentSaved(r)).await??;
    }
    state.addrs.hub.send(LinksChanged).await??;
    let id = row.id;
    let agent_ids = state
        .addrs
        .store
        .read(move |c| scenarios::agent_ids(c, id))
        .await?;
    let status = if created {
        actix_web::http::StatusCode::CREATED
    } else {
        actix_web::http::StatusCode::OK
    };
    let mut warnings =
        super::agents::cycle_warnings(&state, row.user_id, agent_ids.clone()).await?;
    warnings.extend(option_notes);
    for a in &report {
        match a.action {
            "created" => counts.agents_created += 1,
            "updated" => counts.agents_updated += 1,
            _ => counts.agents_not_created += 1,
        }
    }
    let mut body = json!({
        "scenario": out(row, agent_ids),
        "created": created,
        "agents": report,
        "problems": problems,
        "counts": counts,
        "complete": problems.is_empty(),
    });
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    Ok(HttpResponse::build(status).json(body))
}

/// Creates the planned agent, or updates the user's agent with the same guid.
fn save_planned(
    c: &mut Conn,
    uid: i64,
    p: &Planned,
) -> Result<(AgentRow, &'static str), StoreError> {
    let wanted = p
        .guid
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let (guid, existing) = own_guid(c, uid, &wanted)?;
    match existing.filter(|a| a.agent_type == p.kind.name) {
        Some(a) => {
            let row = agents::update(
                c,
                a.id,
                &AgentChanges {
                    name: Some(p.name.clone()),
                    options: Some(p.options.to_string()),
                    schedule: Some(p.schedule.clone()),
                    disabled: Some(p.disabled),
                    keep_events_for: Some(p.keep_events_for),
                    propagate_immediately: Some(p.propagate_immediately),
                },
            )?;
            Ok((row, "updated"))
        }
        None => {
            let guid = if agents::find_by_guid(c, &guid)?.is_some() {
                uuid::Uuid::new_v4().simple().to_string()
            } else {
                guid
            };
            let row = agents::insert(
                c,
                &NewAgent {
                    user_id: uid,
                    agent_type: p.kind.name.to_string(),
                    name: p.name.clone(),
                    options: p.options.to_string(),
                    schedule: p.schedule.clone(),
                    disabled: p.disabled,
                    keep_events_for: p.keep_events_for,
                    propagate_immediately: p.propagate_immediately,
                    guid: Some(guid),
                },
            )?;
            Ok((row, "created"))
        }
    }
}

/// An agent whose URL the target guard would refuse at every send is imported disabled,
/// with the reason among the problems, as agents with other invalid options are.
async fn refuse_guarded_targets(
    state: &AppState,
    planned: &mut [Option<Planned>],
    problems: &mut Vec<Problem>,
) {
    let allow = state.config.delivery.allow_private_targets;
    for p in planned.iter_mut().flatten() {
        for (option, url) in crate::agents::target_urls(p.kind, &p.options) {
            if let Err(why) = crate::delivery::guard::check_target_url(&url, allow).await {
                problems.push(Problem::option(
                    p.index,
                    &p.name,
                    Some(option.to_string()),
                    why,
                ));
                p.disabled = true;
            }
        }
    }
}
