//! `json_parse` — Huginn's JsonParseAgent: parses the JSON text `data` (a Liquid
//! template, default `{{ data }}`) of each received event and emits it under
//! `data_key`, alone (`mode: clean`) or merged into the received payload (`merge`).

use serde_json::{Map, Value};

use super::{AgentCtx, Behavior, OptionError};
use crate::store::events::EventRow;
use crate::template::{TemplateId, Templates};

pub struct JsonParse {
    templates: Templates,
    data: TemplateId,
    data_key: TemplateId,
    mode: TemplateId,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    JsonParse::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(JsonParse::new(options)?))
}

/// Huginn's `present?`: not null, not blank text, not an empty list or object.
pub fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    }
}

/// An option as text (a number is written as JSON), for interpolation.
pub fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl JsonParse {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("data")) {
            return Err(OptionError::new("data", "needs to be present"));
        }
        if !present(options.get("data_key")) {
            return Err(OptionError::new("data_key", "needs to be present"));
        }
        let mode = text_of(options.get("mode"));
        if !mode.trim().is_empty() && !mode.contains("{{") && mode != "clean" && mode != "merge" {
            return Err(OptionError::new("mode", "must be 'clean' or 'merge'"));
        }
        let mut templates = Templates::liquid();
        let mut add =
            |name: &str, text: String| templates.add(name, &text).map_err(OptionError::template);
        let data = add("data", text_of(options.get("data")))?;
        let data_key = add("data_key", text_of(options.get("data_key")))?;
        let mode = add("mode", mode)?;
        Ok(JsonParse {
            templates,
            data,
            data_key,
            mode,
        })
    }
}

impl Behavior for JsonParse {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        let render = |id| self.templates.render(id, &rctx);
        let (data, key, mode) = match (
            render(&self.data),
            render(&self.data_key),
            render(&self.mode),
        ) {
            (Ok(d), Ok(k), Ok(m)) => (d, k, m),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let parsed: Value = match serde_json::from_str(&data) {
            Ok(v) => v,
            Err(e) => {
                ctx.error(format!("Could not parse JSON: JSON::ParserError '{e}'"));
                return;
            }
        };
        let mut out = match (mode.as_str(), payload) {
            ("merge", Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        out.insert(key, parsed);
        ctx.emit(Value::Object(out));
    }
}
