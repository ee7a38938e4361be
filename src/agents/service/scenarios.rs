//! Scenarios as named sets of agents: list, read, create with members, delete, and
//! the export document. A member must be an agent the caller may see.

use serde_json::Value;

use super::{AgentServiceError, Deps, Scope, find_owned};
use crate::agents::scenario::{self, ExportAgent};
use crate::ids::{AgentId, ScenarioId};
use crate::store::agents::{self, AgentRow};
use crate::store::scenarios::{self, ScenarioFields, ScenarioRow};
use crate::store::{Conn, StoreError, control_links, links};

/// A scenario with the ids of its agents.
pub type Scenario = (ScenarioRow, Vec<AgentId>);

/// Every scenario `scope` may see, with its members, in one snapshot.
pub async fn list<R>(d: &Deps<'_, R>, scope: Scope) -> Result<Vec<Scenario>, AgentServiceError> {
    Ok(d.store
        .read(move |c| {
            scenarios::list(c, scope)?
                .into_iter()
                .map(|r| {
                    let ids = scenarios::agent_ids(c, r.id)?;
                    Ok((r, ids))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?)
}

/// One page of [`list`]: ids above `after`, at most `limit`.
pub async fn page<R>(
    d: &Deps<'_, R>,
    scope: Scope,
    after: i64,
    limit: i64,
) -> Result<Vec<Scenario>, AgentServiceError> {
    Ok(d.store
        .read(move |c| {
            scenarios::page(c, scope, after, limit)?
                .into_iter()
                .map(|r| {
                    let ids = scenarios::agent_ids(c, r.id)?;
                    Ok((r, ids))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?)
}

/// The scenario `id` with its members, if `scope` may see it.
pub async fn get<R>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: ScenarioId,
) -> Result<Scenario, AgentServiceError> {
    let found = d
        .store
        .read(move |c| {
            let Some(s) = scenarios::find_owned(c, scope, id)? else {
                return Ok(None);
            };
            let ids = scenarios::agent_ids(c, s.id)?;
            Ok(Some((s, ids)))
        })
        .await?;
    found.ok_or(AgentServiceError::NotFound {
        what: "scenario",
        id: id.0,
    })
}

/// Creates a scenario of `owner` named `name` with the agents `agent_ids` (each one
/// `scope` may see).
pub async fn create<R>(
    d: &Deps<'_, R>,
    owner: i64,
    scope: Scope,
    name: &str,
    description: Option<String>,
    agent_ids: Vec<AgentId>,
) -> Result<Scenario, AgentServiceError> {
    if name.trim().is_empty() {
        return Err(AgentServiceError::invalid(
            "name",
            "field \"name\" is required",
        ));
    }
    for &a in &agent_ids {
        find_owned(d.store, scope, a).await.map_err(|_| {
            AgentServiceError::invalid("agent_ids", format!("agent_ids: agent {a} does not exist"))
        })?;
    }
    let guid = uuid::Uuid::new_v4().simple().to_string();
    let fields = ScenarioFields {
        name: name.trim().to_string(),
        description,
        tag_fg_color: None,
        tag_bg_color: None,
        icon: None,
    };
    let row = d
        .store
        .writer()
        .write(move |c, _| {
            let (row, _) = scenarios::upsert(c, owner, &guid, &fields)?;
            scenarios::add_agents(c, row.id, &agent_ids)?;
            Ok(row)
        })
        .await?;
    let id = row.id;
    let ids = d.store.read(move |c| scenarios::agent_ids(c, id)).await?;
    Ok((row, ids))
}

/// Deletes the scenario `id` `scope` may see (its agents stay).
pub async fn delete<R>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: ScenarioId,
) -> Result<(), AgentServiceError> {
    let id = get(d, scope, id).await?.0.id;
    d.store
        .writer()
        .write(move |c, _| scenarios::delete(c, id))
        .await?;
    Ok(())
}

/// The scenario `id` in Huginn's export format, with the slug of its name for the file.
pub async fn export<R>(
    d: &Deps<'_, R>,
    scope: Scope,
    id: ScenarioId,
) -> Result<(String, Value), AgentServiceError> {
    let s = get(d, scope, id).await?.0;
    let name = scenario::slug(&s.name);
    let doc = d.store.read(move |c| export_of(c, &s)).await?;
    Ok((name, doc))
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
