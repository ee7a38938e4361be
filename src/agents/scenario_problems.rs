//! What an import could not bring over whole, one entry per piece of the file: an agent
//! that was not created, an option that is wrong or not implemented, a link or control
//! link that was not made. Each entry is machine-readable (`kind`, indexes, names) and
//! carries a readable `message`; the link plan that decides which links can be made
//! lives here too, so an import accounts for every link of the file.

use serde::Serialize;

use super::KindInfo;
use super::scenario::{ControlLinkFile, LinkFile, Planned, ScenarioFile};

/// Which piece of the file a problem is about.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The agent was not created (`agent_type` says which type was missing).
    Agent,
    /// One option of an agent (the agent was created; `disabled` on the agent says
    /// whether the problem kept it from running).
    Option,
    Link,
    ControlLink,
}

/// One end of a link as the file names it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct End {
    pub index: usize,
    pub name: String,
}

/// Something that did not come over cleanly. `index`, `agent`, `option` and `problem`
/// are the fields earlier versions answered; for a link they name its source.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Problem {
    pub kind: ProblemKind,
    pub index: usize,
    pub agent: String,
    #[schema(required)]
    pub option: Option<String>,
    /// The reason, without the piece's name.
    pub problem: String,
    /// The whole story in one readable line.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub agent_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub source: Option<End>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub receiver: Option<End>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub controller: Option<End>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub control_target: Option<End>,
}

impl Problem {
    fn base(
        kind: ProblemKind,
        index: usize,
        agent: &str,
        problem: String,
        message: String,
    ) -> Self {
        Problem {
            kind,
            index,
            agent: agent.to_string(),
            option: None,
            problem,
            message,
            agent_type: None,
            source: None,
            receiver: None,
            controller: None,
            control_target: None,
        }
    }

    /// An agent of a type muninn does not have.
    pub fn unknown_type(index: usize, agent: &str, agent_type: &str) -> Self {
        let mut p = Problem::base(
            ProblemKind::Agent,
            index,
            agent,
            format!("type {agent_type} is not available in muninn; the agent was not imported"),
            format!(
                "agent '{agent}' was not created: unknown type {agent_type} (not available in muninn)"
            ),
        );
        p.agent_type = Some(agent_type.to_string());
        p
    }

    /// An agent of a type muninn has, left out because its options name a third-party
    /// API that is gone (see `agents::retired`).
    pub fn retired(index: usize, agent: &str, agent_type: &str, why: &str) -> Self {
        let mut p = Problem::base(
            ProblemKind::Agent,
            index,
            agent,
            format!("{agent_type}: {why}; the agent was not imported"),
            format!("agent '{agent}' was not created: {agent_type}: {why}"),
        );
        p.agent_type = Some(agent_type.to_string());
        p
    }

    /// An option (or `schedule`) of an agent that was created.
    pub fn option(index: usize, agent: &str, option: Option<String>, problem: String) -> Self {
        let message = match &option {
            Some(o) => format!("option '{o}' of agent '{agent}': {problem}"),
            None => format!("agent '{agent}': {problem}"),
        };
        let mut p = Problem::base(ProblemKind::Option, index, agent, problem, message);
        p.option = option;
        p
    }

    /// An option the agent's type knows from Huginn but muninn does not implement.
    pub fn not_implemented(index: usize, agent: &str, option: &str) -> Self {
        let mut p = Problem::option(
            index,
            agent,
            Some(option.to_string()),
            "is not implemented by muninn; it is kept in the options and has no effect".to_string(),
        );
        p.message = format!(
            "option '{option}' of agent '{agent}' is not implemented; it is kept and has no effect"
        );
        p
    }
}

/// Why an agent of this type and options is not created by an import.
pub fn not_created_reason(agent_type: &str, options: &serde_json::Value) -> String {
    match crate::agents::kind(agent_type).and_then(|k| crate::agents::retired(k, options)) {
        Some(why) => format!("{agent_type}: {why}"),
        None => format!("unknown type {agent_type}"),
    }
}

/// Why agent `index` of the file is not there to link to, or `None` when it is.
fn missing(file: &ScenarioFile, planned: &[Option<Planned>], index: usize) -> Option<String> {
    match (file.agents.get(index), planned.get(index)) {
        (None, _) => Some(format!(
            "the file has no agent at index {index} (it has {})",
            file.agents.len()
        )),
        (Some(a), Some(None) | None) => Some(format!(
            "'{}' was not created: {}",
            a.name,
            not_created_reason(&a.agent_type, &a.options)
        )),
        (Some(_), Some(Some(_))) => None,
    }
}

fn end(file: &ScenarioFile, index: usize) -> End {
    End {
        index,
        name: file
            .agents
            .get(index)
            .map_or_else(String::new, |a| a.name.clone()),
    }
}

fn kind_at(planned: &[Option<Planned>], index: usize) -> Option<&'static KindInfo> {
    planned.get(index).and_then(|p| p.as_ref()).map(|p| p.kind)
}

/// The links of the file that can be made (by index, duplicates once), and a problem
/// for each one that cannot, naming both agents and the reason.
pub fn plan_links(
    file: &ScenarioFile,
    planned: &[Option<Planned>],
) -> (Vec<(usize, usize)>, Vec<Problem>) {
    let mut ok = Vec::new();
    let mut problems = Vec::new();
    for LinkFile { source, receiver } in &file.links {
        let (s, r) = (end(file, *source), end(file, *receiver));
        let why = missing(file, planned, *source)
            .map(|w| format!("source {w}"))
            .or_else(|| missing(file, planned, *receiver).map(|w| format!("receiver {w}")))
            .or_else(|| {
                let k = kind_at(planned, *source)?;
                (!k.can_create_events).then(|| {
                    format!(
                        "source '{}' is a {} agent, which cannot create events",
                        s.name,
                        k.name()
                    )
                })
            })
            .or_else(|| {
                let k = kind_at(planned, *receiver)?;
                (!k.can_receive_events).then(|| {
                    format!(
                        "receiver '{}' is a {} agent, which cannot receive events",
                        r.name,
                        k.name()
                    )
                })
            });
        match why {
            None => {
                if !ok.contains(&(*source, *receiver)) {
                    ok.push((*source, *receiver));
                }
            }
            Some(why) => {
                let mut p = Problem::base(
                    ProblemKind::Link,
                    *source,
                    &s.name,
                    why.clone(),
                    format!("link '{}' -> '{}' was not made: {why}", s.name, r.name),
                );
                p.source = Some(s);
                p.receiver = Some(r);
                problems.push(p);
            }
        }
    }
    (ok, problems)
}

/// The control links of the file that can be made, and a problem for each one that
/// cannot, naming the controller and its target.
pub fn plan_control_links(
    file: &ScenarioFile,
    planned: &[Option<Planned>],
) -> (Vec<(usize, usize)>, Vec<Problem>) {
    let mut ok = Vec::new();
    let mut problems = Vec::new();
    for ControlLinkFile {
        controller,
        control_target,
    } in &file.control_links
    {
        let (c, t) = (end(file, *controller), end(file, *control_target));
        let why = missing(file, planned, *controller)
            .map(|w| format!("controller {w}"))
            .or_else(|| {
                missing(file, planned, *control_target).map(|w| format!("control target {w}"))
            })
            .or_else(|| {
                let k = kind_at(planned, *controller)?;
                (!k.can_control_other_agents).then(|| {
                    format!(
                        "controller '{}' is a {} agent, which cannot control other agents",
                        c.name,
                        k.name()
                    )
                })
            });
        match why {
            None => {
                if !ok.contains(&(*controller, *control_target)) {
                    ok.push((*controller, *control_target));
                }
            }
            Some(why) => {
                let mut p = Problem::base(
                    ProblemKind::ControlLink,
                    *controller,
                    &c.name,
                    why.clone(),
                    format!(
                        "control link '{}' -> '{}' was not made: {why}",
                        c.name, t.name
                    ),
                );
                p.controller = Some(c);
                p.control_target = Some(t);
                problems.push(p);
            }
        }
    }
    (ok, problems)
}
