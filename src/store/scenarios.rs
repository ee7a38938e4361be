//! The `scenarios` and `scenario_agents` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{scenario_agents, scenarios};
use super::{Conn, StoreError, now};
use crate::ids::{AgentId, ScenarioId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scenarios)]
pub struct ScenarioRow {
    pub id: ScenarioId,
    pub user_id: i64,
    pub guid: String,
    pub name: String,
    pub description: Option<String>,
    pub tag_fg_color: Option<String>,
    pub tag_bg_color: Option<String>,
    pub icon: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What an import or a create sets.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = scenarios, treat_none_as_null = true)]
pub struct ScenarioFields {
    pub name: String,
    pub description: Option<String>,
    pub tag_fg_color: Option<String>,
    pub tag_bg_color: Option<String>,
    pub icon: Option<String>,
}

/// Creates the scenario, or updates the one with this guid (re-import).
pub fn upsert(
    conn: &mut Conn,
    user_id: i64,
    guid: &str,
    f: &ScenarioFields,
) -> Result<(ScenarioRow, bool), StoreError> {
    let existing: Option<ScenarioRow> = scenarios::table
        .filter(scenarios::user_id.eq(user_id))
        .filter(scenarios::guid.eq(guid))
        .select(ScenarioRow::as_select())
        .first(conn)
        .optional()?;
    let at = now();
    Ok(match existing {
        Some(row) => (
            diesel::update(scenarios::table.find(row.id))
                .set((f, scenarios::updated_at.eq(at)))
                .returning(crate::store::backend::columns::<ScenarioRow>())
                .get_result::<ScenarioRow>(conn)?,
            false,
        ),
        None => (
            diesel::insert_into(scenarios::table)
                .values((
                    f,
                    scenarios::user_id.eq(user_id),
                    scenarios::guid.eq(guid),
                    scenarios::created_at.eq(at),
                    scenarios::updated_at.eq(at),
                ))
                .returning(crate::store::backend::columns::<ScenarioRow>())
                .get_result::<ScenarioRow>(conn)?,
            true,
        ),
    })
}

pub fn find(conn: &mut Conn, id: ScenarioId) -> Result<Option<ScenarioRow>, StoreError> {
    Ok(scenarios::table
        .find(id)
        .select(ScenarioRow::as_select())
        .first(conn)
        .optional()?)
}

/// The scenario `id` if it belongs to `scope` (`None`: an admin, any scenario).
pub fn find_owned(
    conn: &mut Conn,
    scope: Option<i64>,
    id: ScenarioId,
) -> Result<Option<ScenarioRow>, StoreError> {
    let mut q = scenarios::table
        .filter(scenarios::id.eq(id))
        .select(ScenarioRow::as_select())
        .into_boxed();
    if let Some(uid) = scope {
        q = q.filter(scenarios::user_id.eq(uid));
    }
    Ok(q.first(conn).optional()?)
}

pub fn list(conn: &mut Conn, user_id: Option<i64>) -> Result<Vec<ScenarioRow>, StoreError> {
    let mut q = scenarios::table
        .select(ScenarioRow::as_select())
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(scenarios::user_id.eq(uid));
    }
    Ok(q.order(scenarios::id.asc()).load(conn)?)
}

/// One page of [`list`]: ids above `after`, at most `limit`.
pub fn page(
    conn: &mut Conn,
    user_id: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<ScenarioRow>, StoreError> {
    let mut q = scenarios::table
        .select(ScenarioRow::as_select())
        .filter(scenarios::id.gt(after))
        .into_boxed();
    if let Some(uid) = user_id {
        q = q.filter(scenarios::user_id.eq(uid));
    }
    Ok(q.order(scenarios::id.asc()).limit(limit).load(conn)?)
}

pub fn add_agents(
    conn: &mut Conn,
    scenario_id: ScenarioId,
    agent_ids: &[AgentId],
) -> Result<(), StoreError> {
    for &a in agent_ids {
        // Upserts are not in the multi-backend's dialect: built once, run on the raw
        // connection of either backend.
        let insert = diesel::insert_into(scenario_agents::table)
            .values((
                scenario_agents::scenario_id.eq(scenario_id),
                scenario_agents::agent_id.eq(a),
            ))
            .on_conflict((scenario_agents::scenario_id, scenario_agents::agent_id))
            .do_nothing();
        crate::per_backend!(conn, |c| insert.execute(c))?;
    }
    Ok(())
}

pub fn agent_ids(conn: &mut Conn, scenario_id: ScenarioId) -> Result<Vec<AgentId>, StoreError> {
    Ok(scenario_agents::table
        .filter(scenario_agents::scenario_id.eq(scenario_id))
        .order(scenario_agents::agent_id.asc())
        .select(scenario_agents::agent_id)
        .load(conn)?)
}

pub fn delete(conn: &mut Conn, id: ScenarioId) -> Result<(), StoreError> {
    diesel::delete(scenarios::table.find(id)).execute(conn)?;
    Ok(())
}
