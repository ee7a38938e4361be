//! Importing a Huginn scenario file: its agents are created, or updated by guid, with
//! the links and control links between them, all in one transaction; what could not
//! come over is reported, never silently dropped. The plan (what each agent of the
//! file becomes) is `agents::scenario`'s; saving it is here.

use serde::Serialize;
use serde_json::Value;

use super::{AgentServiceError, Deps, Running, cycle_warnings};
use crate::agents::scenario::{self, Planned, Problem, ScenarioFile};
use crate::agents::{kind, scenario_problems};
use crate::event_types::{AGENT_CREATED, AGENT_UPDATED};
use crate::ids::AgentId;
use crate::store::agents::{self, AgentChanges, AgentRow, NewAgent};
use crate::store::scenarios::{self, ScenarioFields, ScenarioRow};
use crate::store::system_events::{agent_summary, record};
use crate::store::{Conn, Emitted, StoreError, control_links, links};

/// What happened to one agent of the file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportedAgent {
    pub index: usize,
    pub name: String,
    /// Null for a skipped agent.
    #[schema(required)]
    pub id: Option<i64>,
    #[serde(rename = "type")]
    #[schema(required)]
    pub agent_type: Option<String>,
    pub action: ImportAction,
    pub disabled: bool,
    /// Why the agent was not created (`action` "skipped").
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

/// What the import did with one agent of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportAction {
    Created,
    /// An agent with the same guid was there: it was updated.
    Updated,
    /// The agent was not created (`reason` says why).
    Skipped,
}

/// How many pieces of the file came over, and how many did not.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportCounts {
    pub agents_created: usize,
    pub agents_updated: usize,
    pub agents_not_created: usize,
    pub links_made: usize,
    pub links_not_made: usize,
    pub control_links_made: usize,
    pub control_links_not_made: usize,
}

/// What an import did.
#[derive(Debug)]
pub struct ImportOutcome {
    pub scenario: ScenarioRow,
    pub agent_ids: Vec<AgentId>,
    /// The scenario is new (not an update of one with the same guid).
    pub created: bool,
    pub agents: Vec<ImportedAgent>,
    pub problems: Vec<Problem>,
    pub counts: ImportCounts,
    /// Link cycles and option notes: worth knowing, not refused.
    pub warnings: Vec<String>,
}

const NOT_A_SCENARIO: &str =
    "The provided data does not appear to be a valid Scenario: it needs name, guid and agents.";

/// Reads a scenario file from a request body: the file itself, or `{"data": <the file
/// or its text>}`.
pub fn parse(mut v: Value) -> Result<ScenarioFile, AgentServiceError> {
    let refuse = |e: serde_json::Error| {
        AgentServiceError::invalid("data", format!("{NOT_A_SCENARIO} ({e})"))
    };
    if let Some(data) = v.get("data").cloned() {
        v = match data {
            Value::String(s) => serde_json::from_str(&s).map_err(refuse)?,
            other => other,
        };
    }
    serde_json::from_value(v).map_err(refuse)
}

/// Everything the import's one transaction writes, worked out before it.
struct ImportWrite {
    uid: i64,
    guid: String,
    fields: ScenarioFields,
    planned: Vec<Option<Planned>>,
    /// The (name, type) of every agent of the file, for the report of skipped ones.
    names: Vec<(String, String, String)>,
    links: Vec<(usize, usize)>,
    controls: Vec<(usize, usize)>,
}

impl ImportWrite {
    fn new(
        uid: i64,
        file: &ScenarioFile,
        planned: Vec<Option<Planned>>,
        links: Vec<(usize, usize)>,
        controls: Vec<(usize, usize)>,
    ) -> ImportWrite {
        ImportWrite {
            uid,
            guid: file.guid.clone(),
            fields: ScenarioFields {
                name: file.name.clone(),
                description: file.description.clone(),
                tag_fg_color: file.tag_fg_color.clone(),
                tag_bg_color: file.tag_bg_color.clone(),
                icon: file
                    .icon
                    .as_ref()
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            planned,
            names: file
                .agents
                .iter()
                .map(|a| {
                    let why = crate::agents::scenario_problems::not_created_reason(
                        &a.agent_type,
                        &a.options,
                    );
                    (a.name.clone(), a.agent_type.clone(), why)
                })
                .collect(),
            links,
            controls,
        }
    }
}

/// Imports `file` for the user `uid`.
pub async fn import<R: Running>(
    d: &Deps<'_, R>,
    uid: i64,
    file: ScenarioFile,
) -> Result<ImportOutcome, AgentServiceError> {
    let (mut planned, mut problems) = scenario::plan(&file);
    let option_notes: Vec<String> = planned
        .iter()
        .flatten()
        .flat_map(|p| p.notes.clone())
        .collect();
    refuse_guarded_targets(d.allow_private_targets, &mut planned, &mut problems).await;
    refuse_unallowed_files(&d.files, &mut planned, &mut problems);
    if d.insecure.is_none() {
        keep_insecure_disabled(&mut planned, &mut problems);
    }
    if !d.sentiment {
        keep_without_lexicon_disabled(&mut planned, &mut problems);
    }
    let (links, link_problems) = scenario_problems::plan_links(&file, &planned);
    let (controls, control_problems) = scenario_problems::plan_control_links(&file, &planned);
    let mut counts = ImportCounts {
        links_made: links.len(),
        links_not_made: link_problems.len(),
        control_links_made: controls.len(),
        control_links_not_made: control_problems.len(),
        ..ImportCounts::default()
    };
    problems.extend(link_problems);
    problems.extend(control_problems);
    let job = ImportWrite::new(uid, &file, planned, links, controls);
    let (scenario, created, saved, agents) = d
        .store
        .writer()
        .write(move |c, out| write_import(c, out, &job))
        .await?;
    for r in saved {
        d.running.agent_saved(r).await?;
    }
    d.running.links_changed().await?;
    let id = scenario.id;
    let agent_ids = d.store.read(move |c| scenarios::agent_ids(c, id)).await?;
    let mut warnings = cycle_warnings(d.store, scenario.user_id, agent_ids.clone()).await?;
    warnings.extend(option_notes);
    for a in &agents {
        match a.action {
            ImportAction::Created => counts.agents_created += 1,
            ImportAction::Updated => counts.agents_updated += 1,
            ImportAction::Skipped => counts.agents_not_created += 1,
        }
    }
    Ok(ImportOutcome {
        scenario,
        agent_ids,
        created,
        agents,
        problems,
        counts,
        warnings,
    })
}

type Written = (ScenarioRow, bool, Vec<AgentRow>, Vec<ImportedAgent>);

/// The import's transaction: the scenario, its agents (with their `agent.*` events),
/// the links and control links between them.
fn write_import(
    c: &mut Conn,
    out: &mut Emitted<'_>,
    job: &ImportWrite,
) -> Result<Written, StoreError> {
    let (srow, created) = scenarios::upsert(c, job.uid, &job.guid, &job.fields)?;
    let mut ids: Vec<Option<AgentId>> = Vec::with_capacity(job.planned.len());
    let mut saved: Vec<AgentRow> = Vec::new();
    let mut report = Vec::new();
    for (i, p) in job.planned.iter().enumerate() {
        let Some(p) = p else {
            ids.push(None);
            let (name, agent_type, why) = job.names.get(i).cloned().unwrap_or_default();
            report.push(ImportedAgent {
                index: i,
                name,
                id: None,
                // "unknown type X (not available in muninn)", or why a type muninn
                // has was left out.
                reason: Some(if why.starts_with("unknown type") {
                    format!("{why} (not available in muninn)")
                } else {
                    why
                }),
                agent_type: Some(agent_type),
                action: ImportAction::Skipped,
                disabled: true,
            });
            continue;
        };
        let (row, action) = save_planned(c, job.uid, p)?;
        let t = if action == ImportAction::Created {
            AGENT_CREATED
        } else {
            AGENT_UPDATED
        };
        record(c, out, job.uid, t, agent_summary(&row))?;
        ids.push(Some(row.id));
        report.push(ImportedAgent {
            index: i,
            name: row.name.clone(),
            id: Some(row.id.0),
            agent_type: Some(row.agent_type.clone()),
            action,
            disabled: row.disabled,
            reason: None,
        });
        saved.push(row);
    }
    link_imported(c, &ids, &job.links, &job.controls)?;
    let member_ids: Vec<AgentId> = ids.iter().flatten().copied().collect();
    scenarios::add_agents(c, srow.id, &member_ids)?;
    Ok((srow, created, saved, report))
}

/// Makes the file's links and control links between the saved agents (`ids` by the
/// file's index). Huginn's rule: a link that is already there is not made twice.
fn link_imported(
    c: &mut Conn,
    ids: &[Option<AgentId>],
    link_pairs: &[(usize, usize)],
    control_pairs: &[(usize, usize)],
) -> Result<(), StoreError> {
    for (s, r) in link_pairs {
        if let (Some(Some(s)), Some(Some(r))) = (ids.get(*s), ids.get(*r))
            && !links::receivers_of(c, *s)?.contains(r)
        {
            links::insert(c, *s, *r)?;
        }
    }
    for (ctl, t) in control_pairs {
        if let (Some(Some(ctl)), Some(Some(t))) = (ids.get(*ctl), ids.get(*t)) {
            let mut targets = control_links::targets_of(c, *ctl)?;
            if !targets.contains(t) {
                targets.push(*t);
                control_links::replace_targets(c, *ctl, &targets)?;
            }
        }
    }
    Ok(())
}

/// The guid the user's agent for `guid` has or gets, and that agent if the user has
/// one. Guids are unique across users, so an agent imported while another user's agent
/// held `guid` got a per-user variant; both are looked for among the user's own agents
/// (the owner is part of the query), whether or not the other user's agent is still
/// there.
fn own_guid(
    c: &mut Conn,
    user_id: i64,
    guid: &str,
) -> Result<(String, Option<AgentRow>), StoreError> {
    let mine = format!("{guid}-u{user_id}");
    for candidate in [guid, mine.as_str()] {
        if let Some(a) = agents::find_by_guid_owned(c, Some(user_id), candidate)? {
            return Ok((candidate.to_string(), Some(a)));
        }
    }
    if agents::guid_taken(c, guid)? {
        Ok((mine, None))
    } else {
        Ok((guid.to_string(), None))
    }
}

/// Creates the planned agent, or updates the user's agent with the same guid (and type).
pub fn save_planned(
    c: &mut Conn,
    uid: i64,
    p: &Planned,
) -> Result<(AgentRow, ImportAction), StoreError> {
    let wanted = p
        .guid
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let (guid, existing) = own_guid(c, uid, &wanted)?;
    if let Some(a) = existing.filter(|a| kind(&a.agent_type).is_some_and(|k| k.kind == p.kind.kind))
    {
        let changes = AgentChanges {
            name: Some(p.name.clone()),
            options: Some(p.options.to_string()),
            schedule: Some(p.schedule.clone()),
            disabled: Some(p.disabled),
            keep_events_for: Some(p.keep_events_for),
            propagate_immediately: Some(p.propagate_immediately),
        };
        return Ok((agents::update(c, a.id, &changes)?, ImportAction::Updated));
    }
    let guid = if agents::guid_taken(c, &guid)? {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        guid
    };
    let new = NewAgent {
        user_id: uid,
        agent_type: p.kind.name().to_string(),
        name: p.name.clone(),
        options: p.options.to_string(),
        schedule: p.schedule.clone(),
        disabled: p.disabled,
        keep_events_for: p.keep_events_for,
        propagate_immediately: p.propagate_immediately,
        guid: Some(guid),
    };
    Ok((agents::insert(c, &new)?, ImportAction::Created))
}

/// A file agent the operator's `[files]` setting does not allow is imported disabled,
/// with a problem naming the setting: enabling it is refused until the operator allows
/// its directory (Huginn imports it and refuses to run it until insecure agents are on).
fn refuse_unallowed_files(
    files: &crate::agents::files::FilePolicy,
    planned: &mut [Option<Planned>],
    problems: &mut Vec<Problem>,
) {
    for p in planned.iter_mut().flatten() {
        if let Some((option, why)) = files.save_problem(p.kind.kind, &p.options) {
            problems.push(Problem::option(
                p.index,
                &p.name,
                option.map(str::to_string),
                why,
            ));
            p.disabled = true;
        }
    }
}

/// An insecure agent (shell_command) comes over disabled while the operator has not
/// enabled them, with the problem saying how to.
fn keep_insecure_disabled(planned: &mut [Option<Planned>], problems: &mut Vec<Problem>) {
    for p in planned.iter_mut().flatten() {
        if crate::agents::insecure::is_insecure(p.kind) {
            let why = crate::agents::insecure::not_enabled(p.kind.name());
            problems.push(Problem::option(p.index, &p.name, None, why));
            p.disabled = true;
        }
    }
}

/// A sentiment agent comes over disabled while no lexicon is configured, with the
/// problem saying how to configure one.
fn keep_without_lexicon_disabled(planned: &mut [Option<Planned>], problems: &mut Vec<Problem>) {
    for p in planned.iter_mut().flatten() {
        if p.kind.kind == crate::agents::Kind::Sentiment {
            let why = crate::agents::sentiment::not_configured();
            problems.push(Problem::option(p.index, &p.name, None, why));
            p.disabled = true;
        }
    }
}

/// An agent whose URL the target guard would refuse at every send is imported disabled,
/// with the reason among the problems, as agents with other invalid options are.
async fn refuse_guarded_targets(
    allow_private_targets: bool,
    planned: &mut [Option<Planned>],
    problems: &mut Vec<Problem>,
) {
    for p in planned.iter_mut().flatten() {
        for (option, url) in crate::agents::target_urls(p.kind, &p.options) {
            if let Err(why) =
                crate::delivery::guard::check_target_url(&url, allow_private_targets).await
            {
                problems.push(Problem::option(
                    p.index,
                    &p.name,
                    Some(option.to_string()),
                    why.to_string(),
                ));
                p.disabled = true;
            }
        }
    }
}
