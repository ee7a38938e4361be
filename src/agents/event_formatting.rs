//! `event_formatting` — Huginn's EventFormattingAgent: each received event is reshaped
//! by `instructions`, a map of keys to templates rendered against the event's payload.

use serde_json::{Map, Value};

use super::{AgentCtx, Behavior, OptionError, opt_str, type_name};
use crate::store::events::EventRow;
use crate::template::{TemplateTree, Templates};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The output is the rendered instructions only.
    Clean,
    /// The output is the incoming payload updated with the rendered instructions.
    Merge,
}

struct Matcher {
    path: TemplateTree,
    regexp: regex::Regex,
    to: Option<String>,
}

pub struct EventFormatting {
    templates: Templates,
    instructions: TemplateTree,
    mode: Mode,
    matchers: Vec<Matcher>,
    /// Leave `created_at` out of the template variables.
    skip_created_at: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    EventFormatting::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(EventFormatting::new(options)?))
}

impl EventFormatting {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let mut templates = Templates::liquid();
        let instructions = match options.get("instructions") {
            Some(v @ Value::Object(_)) => templates
                .add_tree("instructions", v)
                .map_err(OptionError::template)?,
            None | Some(Value::Null) => {
                return Err(OptionError::new(
                    "instructions",
                    "is required: an object of output keys to templates, e.g. {\"message\": \"{{ title }}\"}",
                ));
            }
            Some(other) => {
                return Err(OptionError::new(
                    "instructions",
                    format!(
                        "must be an object of output keys to templates (got {})",
                        type_name(other)
                    ),
                ));
            }
        };
        let mode = match opt_str(options, "mode")?.map(str::trim) {
            None | Some("") | Some("clean") => Mode::Clean,
            Some("merge") => Mode::Merge,
            Some(other) => {
                return Err(OptionError::new(
                    "mode",
                    format!("must be \"clean\" or \"merge\" (got {other:?})"),
                ));
            }
        };
        let matchers = match options.get("matchers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, m)| parse_matcher(&mut templates, i, m))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(OptionError::new(
                    "matchers",
                    format!(
                        "must be an array of {{path, regexp, to}} objects (got {})",
                        type_name(other)
                    ),
                ));
            }
        };
        Ok(EventFormatting {
            templates,
            instructions,
            mode,
            matchers,
            skip_created_at: super::opt_bool(options, "skip_created_at")?.unwrap_or(false),
        })
    }
}

fn parse_matcher(templates: &mut Templates, i: usize, m: &Value) -> Result<Matcher, OptionError> {
    let label = format!("matchers[{i}]");
    let Value::Object(map) = m else {
        return Err(OptionError::new(
            label,
            "must be an object with path and regexp",
        ));
    };
    let regexp = map.get("regexp").and_then(Value::as_str).ok_or_else(|| {
        OptionError::new(
            format!("{label}.regexp"),
            "is required and must be a string",
        )
    })?;
    let regexp = regex::Regex::new(regexp).map_err(|e| {
        OptionError::new(
            format!("{label}.regexp"),
            format!("is not a valid regular expression: {e}"),
        )
    })?;
    let path = map.get("path").filter(|v| v.is_string()).ok_or_else(|| {
        OptionError::new(
            format!("{label}.path"),
            "is required and must be a template string",
        )
    })?;
    let path = templates
        .add_tree(&format!("{label}.path"), path)
        .map_err(OptionError::template)?;
    let to = map.get("to").and_then(Value::as_str).map(str::to_string);
    Ok(Matcher { path, regexp, to })
}

impl Behavior for EventFormatting {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let mut vars = ctx.event_ctx(event, payload);
        if self.skip_created_at && payload.get("created_at").is_none() {
            vars.remove("created_at");
        }
        for m in &self.matchers {
            let subject = match self.templates.render_tree(&m.path, &vars) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => {
                    ctx.error(format!("matcher path failed to render: {e}"));
                    continue;
                }
            };
            let Some(caps) = m.regexp.captures(&subject) else {
                continue;
            };
            let mut found = Map::new();
            for (i, c) in caps.iter().enumerate() {
                found.insert(
                    i.to_string(),
                    c.map_or(Value::Null, |c| Value::String(c.as_str().into())),
                );
            }
            for name in m.regexp.capture_names().flatten() {
                if let Some(c) = caps.name(name) {
                    found.insert(name.to_string(), Value::String(c.as_str().into()));
                }
            }
            match &m.to {
                Some(to) => vars.set(to.clone(), Value::Object(found)),
                None => {
                    for (k, v) in found {
                        vars.set(k, v);
                    }
                }
            }
        }
        let rendered = match self.templates.render_tree(&self.instructions, &vars) {
            Ok(Value::Object(map)) => map,
            Ok(_) => Map::new(),
            Err(e) => {
                ctx.error(format!("could not format event {}: {e}", event.id));
                return;
            }
        };
        let out = match (self.mode, payload) {
            (Mode::Merge, Value::Object(p)) => {
                let mut merged = p.clone();
                merged.extend(rendered);
                merged
            }
            _ => rendered,
        };
        ctx.emit(Value::Object(out));
    }
}

/// Rows for the unit tests of agent behaviours.
#[cfg(test)]
pub mod tests_support {
    use serde_json::Value;

    use crate::store::agents::AgentRow;
    use crate::store::events::EventRow;

    pub fn row() -> AgentRow {
        AgentRow {
            id: crate::ids::AgentId(1),
            user_id: 1,
            agent_type: "test".into(),
            name: "a".into(),
            options: "{}".into(),
            memory: "{}".into(),
            schedule: None,
            disabled: false,
            keep_events_for: 0,
            propagate_immediately: true,
            guid: "g".into(),
            events_count: 0,
            last_checked_event_id: 0,
            created_at: crate::store::now(),
            updated_at: crate::store::now(),
            last_check_at: None,
            last_receive_at: None,
            last_event_at: None,
            last_error_at: None,
            last_web_request_at: None,
        }
    }

    pub fn event(payload: &Value) -> EventRow {
        EventRow {
            id: crate::ids::EventId(7),
            user_id: 1,
            agent_id: Some(crate::ids::AgentId(2)),
            event_type: "event.created".into(),
            payload: payload.to_string(),
            created_at: crate::store::now(),
            expires_at: None,
            target_agent_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(options: Value, payload: Value) -> (Vec<Value>, Vec<String>) {
        let mut agent = EventFormatting::new(&options).unwrap();
        let row = crate::store::agents::AgentRow {
            id: crate::ids::AgentId(1),
            user_id: 1,
            agent_type: "event_formatting".into(),
            name: "f".into(),
            options: options.to_string(),
            memory: "{}".into(),
            schedule: None,
            disabled: false,
            keep_events_for: 0,
            propagate_immediately: true,
            guid: "g".into(),
            events_count: 0,
            last_checked_event_id: 0,
            created_at: crate::store::now(),
            updated_at: crate::store::now(),
            last_check_at: None,
            last_receive_at: None,
            last_event_at: None,
            last_error_at: None,
            last_web_request_at: None,
        };
        let event = EventRow {
            id: crate::ids::EventId(7),
            user_id: 1,
            agent_id: Some(crate::ids::AgentId(2)),
            event_type: "event.created".into(),
            payload: payload.to_string(),
            created_at: crate::store::now(),
            expires_at: None,
            target_agent_id: None,
        };
        let mut memory = json!({});
        let mut ctx = AgentCtx::new(&row, &mut memory);
        agent.receive(&mut ctx, &event, &payload);
        (
            ctx.emitted,
            ctx.logs.into_iter().map(|l| l.message).collect(),
        )
    }

    #[test]
    fn clean_and_merge() {
        let (out, _) = run(
            json!({"instructions": {"m": "{{ a }}!"}}),
            json!({"a": "x", "b": 1}),
        );
        assert_eq!(out, vec![json!({"m": "x!"})]);
        let (out, _) = run(
            json!({"instructions": {"m": "{{ a }}!"}, "mode": "merge"}),
            json!({"a": "x", "b": 1}),
        );
        assert_eq!(out, vec![json!({"a": "x", "b": 1, "m": "x!"})]);
    }

    #[test]
    fn matchers_expose_captures() {
        let (out, _) = run(
            json!({"instructions": {"d": "{{ m['1'] }}-{{ m.year }}"}, "matchers": [{"path": "{{ date }}", "regexp": "(\\d+)/(?P<year>\\d+)", "to": "m"}]}),
            json!({"date": "11/2026"}),
        );
        assert_eq!(out, vec![json!({"d": "11-2026"})]);
    }

    #[test]
    fn created_at_is_a_variable_unless_skipped() {
        let (out, _) = run(
            json!({"instructions": {"t": "{{ created_at | default: 'none' }}"}}),
            json!({}),
        );
        assert_ne!(out[0]["t"], "none");
        let (out, _) = run(
            json!({"instructions": {"t": "{{ created_at | default: 'none' }}"}, "skip_created_at": true}),
            json!({}),
        );
        assert_eq!(out[0]["t"], "none");
    }

    #[test]
    fn render_errors_are_logged_not_emitted() {
        let (out, logs) = run(
            json!({"instructions": {"m": "{{ 1 | divided_by: 0 }}"}}),
            json!({}),
        );
        assert!(out.is_empty());
        assert!(logs[0].contains("instructions.m"), "{logs:?}");
    }

    #[test]
    fn bad_options_name_the_option() {
        assert_eq!(
            EventFormatting::new(&json!({})).err().unwrap().option,
            "instructions"
        );
        assert_eq!(
            EventFormatting::new(&json!({"instructions": {}, "mode": "x"}))
                .err()
                .unwrap()
                .option,
            "mode"
        );
        assert_eq!(
            EventFormatting::new(
                &json!({"instructions": {}, "matchers": [{"path": "x", "regexp": "("}]})
            )
            .err()
            .unwrap()
            .option,
            "matchers[0].regexp"
        );
    }
}
