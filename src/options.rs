//! Agent option vocabulary shared by every subsystem that reads an agent's `options`
//! (agent types, the webhook endpoint, the feed renderer): the error that names the
//! option, and the readers with Huginn's semantics (`boolify`, strings, numbers).
//!
//! A leaf: it imports only the template error it wraps.

use serde_json::Value;

use crate::template::TemplateError;

/// What is wrong with an agent's options, naming the option.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct OptionError {
    pub option: String,
    pub problem: String,
    /// A template that does not compile: shown as `options.message: <why>`.
    template: bool,
}

impl OptionError {
    pub fn new(option: impl Into<String>, problem: impl Into<String>) -> Self {
        OptionError {
            option: option.into(),
            problem: problem.into(),
            template: false,
        }
    }

    /// A template error (`label: why`, the label naming the option's place).
    pub fn template(e: TemplateError) -> Self {
        let (option, problem) = e.0.split_once(": ").unwrap_or(("", &e.0));
        OptionError {
            option: option.to_string(),
            problem: problem.to_string(),
            template: true,
        }
    }

    fn describe(&self) -> String {
        match (self.template, self.option.is_empty()) {
            (true, false) => format!("options.{}: {}", self.option, self.problem),
            (true, true) => format!("options: {}", self.problem),
            (false, _) => format!("option \"{}\" {}", self.option, self.problem),
        }
    }
}

/// The event type of events an agent emits: its `event_type` option, or `event.created`.
pub fn emitted_event_type(options: &Value) -> String {
    options
        .get("event_type")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("event.created")
        .to_string()
}

/// Reads an optional string option.
pub fn opt_str<'v>(options: &'v Value, key: &str) -> Result<Option<&'v str>, OptionError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(OptionError::new(
            key,
            format!("must be a string (got {})", type_name(other)),
        )),
    }
}

/// Huginn's `boolify`, exactly: `true` and `"true"` are true, `false` and `"false"` are
/// false, anything else (missing, null, `"TRUE"`, `1`) is unset. Where an option is only
/// read (not validated), unset reads as false, as Ruby's `nil` does.
pub fn boolify(v: Option<&Value>) -> Option<bool> {
    match v {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s == "true" => Some(true),
        Some(Value::String(s)) if s == "false" => Some(false),
        _ => None,
    }
}

/// Reads an optional boolean option through [`boolify`]. Missing, null and `""` are
/// unset; any other value that `boolify` leaves unset is refused at save, so a typo
/// (`"ture"`, `"TRUE"`) is named instead of silently reading as false.
pub fn opt_bool(options: &Value, key: &str) -> Result<Option<bool>, OptionError> {
    let v = options.get(key);
    if let Some(b) = boolify(v) {
        return Ok(Some(b));
    }
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(other) => Err(OptionError::new(
            key,
            format!("must be true or false (got {})", type_name(other)),
        )),
    }
}

/// Reads an optional non-negative number option, given as a number or a numeric string.
pub fn opt_number(options: &Value, key: &str) -> Result<Option<f64>, OptionError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)
            .map(Some)
            .ok_or_else(|| {
                OptionError::new(key, format!("must be a number of 0 or more (got {v})"))
            }),
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn boolify_is_huginns() {
        assert_eq!(boolify(Some(&json!(true))), Some(true));
        assert_eq!(boolify(Some(&json!("true"))), Some(true));
        assert_eq!(boolify(Some(&json!(false))), Some(false));
        assert_eq!(boolify(Some(&json!("false"))), Some(false));
        for unset in [
            json!("TRUE"),
            json!(" true"),
            json!(1),
            json!(null),
            json!(""),
        ] {
            assert_eq!(boolify(Some(&unset)), None, "{unset}");
        }
        assert_eq!(boolify(None), None);
    }

    #[test]
    fn opt_bool_refuses_what_boolify_leaves_unset() {
        let o = json!({"a": "true", "b": "", "c": "TRUE", "d": 1});
        assert_eq!(opt_bool(&o, "a").ok(), Some(Some(true)));
        assert_eq!(opt_bool(&o, "b").ok(), Some(None));
        assert_eq!(opt_bool(&o, "missing").ok(), Some(None));
        let e = opt_bool(&o, "c").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("option \"c\" must be true or false (got a string)")
        );
        assert!(opt_bool(&o, "d").is_err());
    }
}
