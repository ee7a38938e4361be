//! Huginn's scenario files (schema_version 1): what an import brings in and what an
//! export writes. Importing maps Huginn's types (`Agents::TriggerAgent`), keeps template
//! strings verbatim (agents speak Liquid, as Huginn's do), and checks the options;
//! whatever cannot come over cleanly is reported per agent and option, and such agents
//! arrive disabled — never silently wrong. An export by an earlier muninn says its
//! templates are tera: those are restored to Liquid where that is exact (see
//! `template::upgrade`) and reported where it is not.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::schedule::Schedule;
use super::{KindInfo, kind};
use crate::ids::AgentId;
use crate::template::upgrade::upgrade_tree;

/// Says which template language an export's options are in: "liquid" now; "tera" in
/// exports of earlier versions (their templates are restored to Liquid on import).
pub const MUNINN_MARK: &str = "muninn_template_syntax";

#[derive(Debug, Deserialize)]
pub struct ScenarioFile {
    pub schema_version: Option<i64>,
    pub name: String,
    pub guid: String,
    pub description: Option<String>,
    pub tag_fg_color: Option<String>,
    pub tag_bg_color: Option<String>,
    pub icon: Option<Value>,
    pub agents: Vec<AgentFile>,
    #[serde(default)]
    pub links: Vec<LinkFile>,
    #[serde(default)]
    pub control_links: Vec<ControlLinkFile>,
    #[serde(rename = "muninn_template_syntax")]
    pub template_syntax: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AgentFile {
    #[serde(rename = "type")]
    pub agent_type: String,
    pub name: String,
    #[serde(default)]
    pub disabled: bool,
    pub guid: Option<String>,
    #[serde(default)]
    pub options: Value,
    pub schedule: Option<String>,
    pub keep_events_for: Option<i64>,
    pub propagate_immediately: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct LinkFile {
    pub source: usize,
    pub receiver: usize,
}

#[derive(Debug, Deserialize)]
pub struct ControlLinkFile {
    pub controller: usize,
    pub control_target: usize,
}

pub use super::scenario_problems::Problem;

/// An agent ready to be created or updated.
#[derive(Debug, Clone)]
pub struct Planned {
    pub index: usize,
    pub kind: &'static KindInfo,
    pub name: String,
    pub guid: Option<String>,
    pub options: Value,
    pub schedule: Option<String>,
    pub keep_events_for: i64,
    pub propagate_immediately: bool,
    pub disabled: bool,
    /// Keys the type does not take, kept as Huginn keeps them (see
    /// `option_keys::unknown_notes`): said in the import's `warnings`.
    pub notes: Vec<String>,
}

/// Works out what each agent of the file becomes, and what went wrong.
pub fn plan(file: &ScenarioFile) -> (Vec<Option<Planned>>, Vec<Problem>) {
    let tera_export = file.template_syntax.as_deref() == Some("tera");
    let days = file.schema_version.unwrap_or(1) < 1;
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(file.agents.len());
    for (index, a) in file.agents.iter().enumerate() {
        let Some(k) = kind(&a.agent_type) else {
            problems.push(Problem::unknown_type(index, &a.name, &a.agent_type));
            out.push(None);
            continue;
        };
        if let Some(why) = super::retired(k, &a.options) {
            problems.push(Problem::retired(index, &a.name, &a.agent_type, &why));
            out.push(None);
            continue;
        }
        let mut mine: Vec<(Option<String>, String)> = Vec::new();
        let options = imported_options(a, tera_export, &mut mine);
        if mine.is_empty()
            && let Err(e) = k.validate(&options)
        {
            mine.push((Some(e.option.clone()), e.problem.clone()));
        }
        let schedule = imported_schedule(k, a, &mut mine);
        let keep = a.keep_events_for.unwrap_or(0).max(0);
        let disabled = a.disabled || !mine.is_empty();
        problems.extend(
            mine.into_iter()
                .map(|(option, problem)| Problem::option(index, &a.name, option, problem)),
        );
        problems.extend(
            super::option_keys::not_implemented(k, &options)
                .iter()
                .map(|o| Problem::not_implemented(index, &a.name, o)),
        );
        let notes = super::option_keys::unknown_notes(k, &a.name, &options);
        out.push(Some(Planned {
            notes,
            index,
            kind: k,
            name: a.name.clone(),
            guid: a.guid.clone().filter(|g| !g.trim().is_empty()),
            options,
            schedule,
            keep_events_for: if days {
                keep.saturating_mul(86_400)
            } else {
                keep
            }
            .min(crate::store::events::MAX_KEEP_EVENTS_FOR),
            propagate_immediately: a.propagate_immediately.unwrap_or(false),
            disabled,
        }));
    }
    (out, problems)
}

/// An imported agent's options (an object): tera templates of an earlier muninn's
/// export turned back into Liquid, each that has no exact form a problem in `mine`.
fn imported_options(
    a: &AgentFile,
    tera_export: bool,
    mine: &mut Vec<(Option<String>, String)>,
) -> Value {
    let options = if tera_export && a.options.is_object() {
        let mut p = Vec::new();
        let restored = upgrade_tree(&a.options, "", &mut p);
        mine.extend(p.into_iter().map(|(o, e)| {
            (
                Some(o),
                format!("this tera template (from an earlier muninn's export) has no exact Liquid form: {e}"),
            )
        }));
        restored
    } else {
        a.options.clone()
    };
    if options.is_object() {
        options
    } else {
        Value::Object(Map::new())
    }
}

/// An imported agent's schedule (its type's default when it gives none); one that
/// does not parse is a problem in `mine` and no schedule.
fn imported_schedule(
    k: &KindInfo,
    a: &AgentFile,
    mine: &mut Vec<(Option<String>, String)>,
) -> Option<String> {
    if !k.can_be_scheduled {
        return None;
    }
    let s = a
        .schedule
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or(k.default_schedule.map(str::to_string));
    match s.as_deref().map(|s| Schedule::parse(s, chrono_tz::Tz::UTC)) {
        Some(Err(e)) => {
            mine.push((Some("schedule".into()), e.to_string()));
            None
        }
        _ => s,
    }
}

/// One agent as an export shows it.
pub struct ExportAgent<'a> {
    pub row: &'a crate::store::agents::AgentRow,
    pub options: Value,
}

/// Huginn's export format (plus the template-language marker), agents sorted by guid and links by
/// index, as Huginn writes them.
pub fn export(
    scenario: &crate::store::scenarios::ScenarioRow,
    agents: &[ExportAgent<'_>],
    links: &[(AgentId, AgentId)],
    control_links: &[(AgentId, AgentId)],
) -> Value {
    let mut sorted: Vec<&ExportAgent<'_>> = agents.iter().collect();
    sorted.sort_by(|a, b| a.row.guid.cmp(&b.row.guid));
    let index_of = |id: AgentId| sorted.iter().position(|a| a.row.id == id);
    let agents_json: Vec<Value> = sorted
        .iter()
        .map(|a| {
            let k = kind(&a.row.agent_type);
            let mut m = Map::new();
            m.insert(
                "type".into(),
                json!(k.map_or(a.row.agent_type.as_str(), |k| k.huginn)),
            );
            m.insert("name".into(), json!(a.row.name));
            m.insert("disabled".into(), json!(a.row.disabled));
            m.insert("guid".into(), json!(a.row.guid));
            m.insert("options".into(), a.options.clone());
            if k.is_some_and(|k| k.can_be_scheduled) {
                m.insert("schedule".into(), json!(a.row.schedule));
            }
            if k.is_some_and(|k| k.can_create_events) {
                m.insert("keep_events_for".into(), json!(a.row.keep_events_for));
            }
            if k.is_some_and(|k| k.can_receive_events) {
                m.insert(
                    "propagate_immediately".into(),
                    json!(a.row.propagate_immediately),
                );
            }
            Value::Object(m)
        })
        .collect();
    let mut link_json: Vec<(usize, usize)> = links
        .iter()
        .filter_map(|(s, r)| Some((index_of(*s)?, index_of(*r)?)))
        .collect();
    link_json.sort();
    let mut control_json: Vec<(usize, usize)> = control_links
        .iter()
        .filter_map(|(c, t)| Some((index_of(*c)?, index_of(*t)?)))
        .collect();
    control_json.sort();
    json!({
        "schema_version": 1,
        "name": scenario.name,
        "description": scenario.description.clone().unwrap_or_else(|| "No description provided".into()),
        "source_url": false,
        "guid": scenario.guid,
        "tag_fg_color": scenario.tag_fg_color.clone().unwrap_or_else(|| "#ffffff".into()),
        "tag_bg_color": scenario.tag_bg_color.clone().unwrap_or_else(|| "#5bc0de".into()),
        "icon": scenario.icon,
        "exported_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "agents": agents_json,
        "links": link_json.iter().map(|(s, r)| json!({"source": s, "receiver": r})).collect::<Vec<_>>(),
        "control_links": control_json.iter().map(|(c, t)| json!({"controller": c, "control_target": t})).collect::<Vec<_>>(),
        MUNINN_MARK: "liquid",
    })
}

/// The file name of an export: the name lowercased, other characters as '-'.
pub fn slug(name: &str) -> String {
    let mut s: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "exported-agents".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(v: Value) -> ScenarioFile {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn plans_types_liquid_and_problems() {
        let f = file(json!({
            "schema_version": 1, "name": "s", "guid": "g",
            "agents": [
                {"type": "Agents::TriggerAgent", "name": "t", "guid": "a1",
                 "options": {"rules": [{"type": "regex", "path": "x", "value": "y"}], "message": "{{ x | upcase }}", "expected_receive_period_in_days": 2},
                 "keep_events_for": 0, "propagate_immediately": true},
                {"type": "Agents::TwitterStreamAgent", "name": "w", "options": {}},
                {"type": "Agents::EventFormattingAgent", "name": "f", "options": {"instructions": {"m": "{% if x %}never closed"}, "mode": "clean"}}
            ],
            "links": [{"source": 0, "receiver": 2}]
        }));
        let (planned, problems) = plan(&f);
        let t = planned[0].as_ref().unwrap();
        assert_eq!(t.kind.kind, crate::agents::Kind::Trigger);
        assert_eq!(t.options["message"], "{{ x | upcase }}", "kept verbatim");
        assert!(!t.disabled);
        assert!(planned[1].is_none());
        assert!(planned[2].as_ref().unwrap().disabled);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].agent, "w");
        assert_eq!(problems[1].option.as_deref(), Some("instructions.m"));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("My  Alerts: v2!"), "my-alerts-v2");
        assert_eq!(slug("***"), "exported-agents");
    }
}
