//! `manual_event` — Huginn's ManualEventAgent: emits what is posted to
//! `POST /api/agents/{id}/events`. A body `{"payloads": [...]}` (and nothing else) makes
//! one event per element; any other JSON object is one event.

use serde_json::Value;

use super::{Behavior, OptionError, type_name};

struct ManualEvent;
impl Behavior for ManualEvent {}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    match options.get("payload") {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(OptionError::new(
            "payload",
            format!("must be a JSON object (got {})", type_name(other)),
        )),
    }
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    validate(options)?;
    Ok(Box::new(ManualEvent))
}

/// What is wrong with a posted body (Huginn's messages where it has them).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error(
        "If you provide the 'payloads' key, please do not provide any other keys at the top level."
    )]
    PayloadsAndOtherKeys,
    #[error("'payloads' must be a list of JSON objects")]
    PayloadsNotObjects,
    #[error("You must provide a JSON payload: an object, or {{\"payloads\": [objects]}}")]
    NotAnObject,
}

/// The payloads a posted body makes, or what is wrong with it.
pub fn payloads(body: Value) -> Result<Vec<Value>, BodyError> {
    match body {
        Value::Object(mut m) if m.contains_key("payloads") => {
            if m.len() > 1 {
                return Err(BodyError::PayloadsAndOtherKeys);
            }
            match m.remove("payloads") {
                Some(Value::Array(items)) if items.iter().all(Value::is_object) => Ok(items),
                _ => Err(BodyError::PayloadsNotObjects),
            }
        }
        Value::Object(m) => Ok(vec![Value::Object(m)]),
        _ => Err(BodyError::NotAnObject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies() {
        assert_eq!(payloads(json!({"a": 1})).unwrap(), vec![json!({"a": 1})]);
        assert_eq!(
            payloads(json!({"payloads": [{"a": 1}, {"b": 2}]}))
                .unwrap()
                .len(),
            2
        );
        assert!(
            payloads(json!({"payloads": [], "x": 1}))
                .unwrap_err()
                .to_string()
                .contains("other keys")
        );
        assert!(payloads(json!([1])).is_err());
    }
}
