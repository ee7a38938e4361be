//! `de_duplication` — Huginn's DeDuplicationAgent: passes on an event only when its
//! `property` (a template; the whole payload when blank) was not among the last
//! `lookback` seen. Long keys are kept as their CRC32, as Huginn does.

use serde_json::Value;

use super::{AgentCtx, Behavior, OptionError, opt_number, opt_str};
use crate::store::events::EventRow;
use crate::template::{TemplateId, Templates};

/// `lookback: 0` means "remember everything" in Huginn; memory is bounded here.
const MAX_REMEMBERED: usize = 100_000;

pub struct DeDuplication {
    templates: Templates,
    property: Option<TemplateId>,
    lookback: usize,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    DeDuplication::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(DeDuplication::new(options)?))
}

impl DeDuplication {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let mut templates = Templates::liquid();
        let property = match opt_str(options, "property")? {
            Some(p) if !p.trim().is_empty() => Some(
                templates
                    .add("property", p)
                    .map_err(OptionError::template)?,
            ),
            _ => None,
        };
        let lookback = match opt_number(options, "lookback")? {
            None => 100,
            Some(0.0) => MAX_REMEMBERED,
            Some(n) => (n as usize).min(MAX_REMEMBERED),
        };
        opt_number(options, "expected_update_period_in_days")?;
        Ok(DeDuplication {
            templates,
            property,
            lookback,
        })
    }
}

/// JSON with object keys sorted, so equal payloads give equal text.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

impl Behavior for DeDuplication {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let property = match &self.property {
            None => canonical(payload),
            Some(id) => match self.templates.render(id, &ctx.event_ctx(event, payload)) {
                Ok(p) => p,
                Err(e) => {
                    ctx.error(format!(
                        "option \"property\" could not be rendered for event {}: {e}",
                        event.id
                    ));
                    return;
                }
            },
        };
        let key = if property.chars().count() > 10 {
            crc32fast::hash(property.as_bytes()).to_string()
        } else {
            property
        };
        let seen = ctx
            .memory
            .get("properties")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(key.as_str())));
        if seen {
            ctx.log("Not propagating as incoming event is a duplicate.");
            return;
        }
        let lookback = self.lookback;
        let memory = ctx.memory_mut();
        if !memory.is_object() {
            *memory = Value::Object(Default::default());
        }
        if let Some(m) = memory.as_object_mut() {
            let list = m
                .entry("properties")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !list.is_array() {
                *list = Value::Array(Vec::new());
            }
            if let Value::Array(a) = list {
                a.push(Value::String(key));
                let excess = a.len().saturating_sub(lookback);
                a.drain(..excess);
            }
        }
        ctx.log(format!(
            "Propagating new event {} as it is not a duplicate",
            event.id
        ));
        ctx.emit(payload.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::event_formatting::tests_support::{event, row};
    use serde_json::json;

    #[test]
    fn passes_new_drops_seen_and_forgets_beyond_lookback() {
        let mut d = DeDuplication::new(&json!({"property": "{{ id }}", "lookback": 2})).unwrap();
        let row = row();
        let mut memory = json!({});
        let mut out = 0;
        for id in ["a", "a", "b", "c", "a"] {
            let p = json!({"id": id});
            let mut ctx = AgentCtx::new(&row, &mut memory);
            d.receive(&mut ctx, &event(&p), &p);
            out += ctx.emitted.len();
        }
        assert_eq!(
            out, 4,
            "the second a is a duplicate; the last a was forgotten"
        );
        assert_eq!(memory["properties"], json!(["c", "a"]));
    }

    #[test]
    fn whole_payload_and_long_keys() {
        let mut d = DeDuplication::new(&json!({})).unwrap();
        let row = row();
        let mut memory = json!({});
        for p in [json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1})] {
            let mut ctx = AgentCtx::new(&row, &mut memory);
            d.receive(&mut ctx, &event(&p), &p);
        }
        assert_eq!(
            memory["properties"].as_array().unwrap().len(),
            1,
            "key order does not matter"
        );
        assert!(
            memory["properties"][0]
                .as_str()
                .unwrap()
                .parse::<u32>()
                .is_ok(),
            "long keys are CRC32"
        );
    }
}
