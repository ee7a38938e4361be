//! `attribute_difference` — Huginn's AttributeDifferenceAgent: for each received event,
//! reads the value at `path` (JSONPath), and emits the event with `output` set to its
//! difference from the value of the previous event (`memory.last_value`):
//! `integer_difference`, `decimal_difference` or `percentage_change`, rounded to
//! `decimal_precision` (default 3). Every option is Liquid-interpolated per event.

use serde_json::{Value, json};

use super::json_parse::present;
use super::{AgentCtx, Behavior, OptionError};
use crate::jsonpath::BoundedPath;
use crate::store::events::EventRow;
use crate::template::{TemplateTree, Templates};

pub struct AttributeDifference {
    templates: Templates,
    options: TemplateTree,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    AttributeDifference::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(AttributeDifference::new(options)?))
}

impl AttributeDifference {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let required = ["path", "method", "output", "expected_update_period_in_days"];
        if let Some(missing) = required.iter().find(|k| !present(options.get(**k))) {
            return Err(OptionError::new(
                *missing,
                "is required (The attribute, method and expected_update_period_in_days fields are all required.)",
            ));
        }
        let mut templates = Templates::liquid();
        let options = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(AttributeDifference { templates, options })
    }
}

/// Ruby's `to_f` / `to_i` of a JSON value: numbers as they are, numeric text parsed
/// from its leading number, anything else 0.
fn to_f(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => {
            let t = s.trim_start();
            let end = t
                .char_indices()
                .take_while(|(i, c)| {
                    c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))
                })
                .map(|(i, c)| i + c.len_utf8())
                .last()
                .unwrap_or(0);
            t[..end].parse().unwrap_or(0.0)
        }
        _ => 0.0,
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits.clamp(0, 15));
    (x * f).round() / f
}

fn difference(method: &str, new: &Value, last: Option<&Value>, precision: i32) -> Option<Value> {
    let last = last.filter(|v| !v.is_null());
    Some(match method {
        "integer_difference" => match last {
            None => json!(0),
            Some(l) => json!(to_f(new).trunc() as i64 - to_f(l).trunc() as i64),
        },
        "decimal_difference" => match last {
            None => json!(0.0),
            Some(l) => json!(round(to_f(new) - to_f(l), precision)),
        },
        "percentage_change" => match last {
            None => json!(0.0),
            Some(l) => {
                let change = (to_f(new) / to_f(l)) * 100.0 - 100.0;
                // Ruby writes a division by zero as Infinity/NaN, which JSON cannot hold.
                if change.is_finite() {
                    json!(round(change, precision))
                } else {
                    Value::Null
                }
            }
        },
        _ => return None,
    })
}

impl Behavior for AttributeDifference {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        let opts = match self.templates.render_tree(&self.options, &rctx) {
            Ok(o) => o,
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let text = |k: &str| match opts.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => String::new(),
        };
        let value = match BoundedPath::parse_huginn(&text("path")) {
            Ok(p) => p.first(payload).ok().flatten().cloned(),
            Err(e) => {
                ctx.error(format!("option \"path\" is not a valid JSONPath: {e}"));
                return;
            }
        }
        .filter(|v| !v.is_null())
        .unwrap_or(json!(0));
        let precision = opts
            .get("decimal_precision")
            .filter(|v| present(Some(v)))
            .map_or(3, |v| to_f(v) as i32);
        let mut out = payload.clone();
        let diff = difference(
            &text("method"),
            &value,
            ctx.memory.get("last_value"),
            precision,
        );
        if let (Some(diff), Value::Object(m)) = (diff, &mut out) {
            m.insert(text("output"), diff);
        }
        ctx.emit(out);
        ctx.log("Propagating new event");
        let memory = ctx.memory_mut();
        if !memory.is_object() {
            *memory = Value::Object(Default::default());
        }
        if let Some(m) = memory.as_object_mut() {
            m.insert("last_value".into(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_as_huginn() {
        assert_eq!(
            difference("integer_difference", &json!(40), Some(&json!(50)), 3),
            Some(json!(-10))
        );
        assert_eq!(
            difference("decimal_difference", &json!("15.2"), Some(&json!(5.5)), 3),
            Some(json!(9.7))
        );
        assert_eq!(
            difference("percentage_change", &json!(116), Some(&json!(160)), 3),
            Some(json!(-27.5))
        );
        assert_eq!(
            difference("percentage_change", &json!(116), None, 3),
            Some(json!(0.0))
        );
        assert_eq!(difference("nope", &json!(1), None, 3), None);
    }
}
