//! `jq` — Huginn's JqAgent: runs a jq `filter` on each received event's payload, with
//! `variables` (Liquid-interpolated per event) bound as `$name`, and emits one event per
//! object result; a result that is an array is spread into its elements first, as
//! Huginn reads jq's output. Non-object results are logged as errors and dropped.
//!
//! Huginn shells out to the `jq` program; here jaq (a jq engine in Rust) runs in a
//! worker process (`sandbox`), because a filter is user code that cannot otherwise be
//! bounded. A filter without Liquid markup is compiled when the agent is saved, so a
//! syntax error is a validation error with jaq's message and place.

pub mod engine;
pub mod sandbox;

use serde_json::Value;

use super::{AgentCtx, Behavior, OptionError, type_name};
use crate::store::events::EventRow;
use crate::template::{TemplateError, TemplateId, TemplateTree, Templates};

/// The most events one received event can make (Huginn has no bound).
pub const MAX_RESULTS: usize = 1000;

enum FilterText {
    Literal(String),
    Template(TemplateId),
}

pub struct Jq {
    templates: Templates,
    filter: FilterText,
    variables: Option<TemplateTree>,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Jq::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Jq::new(options)?))
}

impl Jq {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let Some(Value::String(filter)) = options.get("filter") else {
            return Err(OptionError::new("filter", "needs to be present."));
        };
        let mut templates = Templates::liquid();
        let (variables, names) = match options.get("variables") {
            None => (None, Vec::new()),
            Some(v @ Value::Object(m)) => (
                Some(
                    templates
                        .add_tree("variables", v)
                        .map_err(OptionError::template)?,
                ),
                m.keys().cloned().collect(),
            ),
            Some(other) => {
                return Err(OptionError::new(
                    "variables",
                    format!("must be a hash if present (got {}).", type_name(other)),
                ));
            }
        };
        let filter = if crate::template::liquid::has_markup(filter) {
            FilterText::Template(
                templates
                    .add("filter", filter)
                    .map_err(OptionError::template)?,
            )
        } else {
            engine::check(filter, &names).map_err(|e| {
                OptionError::new("filter", format!("is not a valid jq filter: {e}"))
            })?;
            FilterText::Literal(filter.clone())
        };
        Ok(Jq {
            templates,
            filter,
            variables,
        })
    }

    fn interpolate(
        &self,
        ctx: &AgentCtx<'_>,
        event: &EventRow,
        payload: &Value,
    ) -> Result<(String, Vec<(String, Value)>), TemplateError> {
        let render_ctx = ctx.event_ctx(event, payload);
        let filter = match &self.filter {
            FilterText::Literal(f) => f.clone(),
            FilterText::Template(id) => self.templates.render(id, &render_ctx)?,
        };
        let vars = match &self.variables {
            None => Vec::new(),
            Some(tree) => match self.templates.render_tree(tree, &render_ctx)? {
                Value::Object(m) => m.into_iter().collect(),
                _ => Vec::new(),
            },
        };
        Ok((filter, vars))
    }
}

/// Huginn reads jq's output line by line and spreads a line that is an array.
fn spread(values: Vec<Value>) -> Vec<Value> {
    values
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items,
            other => vec![other],
        })
        .collect()
}

impl Behavior for Jq {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let (filter, vars) = match self.interpolate(ctx, event, payload) {
            Ok(x) => x,
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let mut log = format!("Running jq with filter: {filter}");
        for (name, value) in &vars {
            log.push_str(&format!("\nvariable: {name} = {value}"));
        }
        ctx.log(log);
        let out = match sandbox::run(&filter, vars, payload, MAX_RESULTS) {
            Ok(out) => out,
            Err(e) => {
                ctx.error(format!("Error output from jq:\n{e}"));
                return;
            }
        };
        let mut results = Vec::new();
        for value in spread(out.values) {
            if value.is_object() {
                results.push(value);
            } else {
                ctx.error(format!("Ignoring a non-object result: {value}"));
            }
        }
        if out.more || results.len() > MAX_RESULTS {
            results.truncate(MAX_RESULTS);
            ctx.error(format!(
                "jq produced more than {MAX_RESULTS} results; only the first {MAX_RESULTS} become events"
            ));
        }
        ctx.log(format!("Creating {} events", results.len()));
        for r in results {
            ctx.emit(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invalid(options: Value) -> String {
        Jq::new(&options)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn validates_as_huginn() {
        assert_eq!(invalid(json!({})), "option \"filter\" needs to be present.");
        assert_eq!(
            invalid(json!({"filter": [1]})),
            "option \"filter\" needs to be present."
        );
        assert!(Jq::new(&json!({"filter": ""})).is_ok());
        assert!(invalid(json!({"filter": ".", "variables": []})).contains("must be a hash"));
        assert!(invalid(json!({"filter": ".", "variables": ""})).contains("must be a hash"));
        assert!(Jq::new(&json!({"filter": "$x", "variables": {"x": [1, 2, 3]}})).is_ok());
        assert!(
            invalid(json!({"filter": ". |"}))
                .starts_with("option \"filter\" is not a valid jq filter: expected term")
        );
        assert!(
            Jq::new(&json!({"filter": ".{{ k }}"})).is_ok(),
            "templated filters compile when rendered"
        );
    }

    #[test]
    fn arrays_are_spread_as_huginn_reads_jq_lines() {
        assert_eq!(
            spread(vec![json!([{"a": 1}, 2]), json!({"b": 1})]),
            vec![json!({"a": 1}), json!(2), json!({"b": 1})]
        );
    }
}
