//! The shapes of a subscription body that come from the contract documents: the AI
//! Agent API's `payload_format`, TagoRUN's `retry_policy` and object
//! `payload_template`. Each turns into the stored subscription fields, and back into
//! the view the API answers with.

use serde_json::{Value, json};

use super::error::{SubscriptionError, bad};
use super::input::RetryPolicyIn;
use crate::store::subscriptions::SubscriptionFields;

/// The AI Agent API's `{event, data, timestamp}`, as a payload template over the
/// envelope (so it needs no column of its own and shows as such in the full API).
pub const EVENT_FORMAT_TEMPLATE: &str = r#"{"event": {{ event_type | json_encode() }}, "data": {{ data | json_encode() }}, "timestamp": {{ timestamp | json_encode() }}}"#;

pub fn payload_format_of(template: Option<&str>) -> &'static str {
    match template {
        None => "muninn",
        Some(EVENT_FORMAT_TEMPLATE) => "event",
        Some(_) => "template",
    }
}

pub fn format_template(format: Option<&str>) -> Result<Option<String>, SubscriptionError> {
    match format.map(str::trim) {
        None | Some("muninn") => Ok(None),
        Some("event") => Ok(Some(EVENT_FORMAT_TEMPLATE.to_string())),
        Some(other) => Err(SubscriptionError::Invalid(format!(
            "payload_format {other:?} is not \"muninn\" (the full envelope) or \"event\" ({{event, data, timestamp}})"
        ))),
    }
}

/// TagoRUN's base delay between attempts.
const TAGORUN_BASE_DELAY_MS: i64 = 1000;

pub fn retry_policy_of(retry_count: i32, schedule: Option<&str>) -> Value {
    let schedule = schedule.and_then(|s| serde_json::from_str::<Vec<i64>>(s).ok());
    let (attempts, backoff) = match &schedule {
        None => (i64::from(retry_count) + 1, "exponential"),
        Some(s) => {
            let first = s.first().copied().unwrap_or(0);
            let kind = if s.iter().all(|d| *d == first) {
                "fixed"
            } else if s.iter().zip(1..).all(|(d, i)| *d == first * i) {
                "linear"
            } else {
                "schedule"
            };
            (s.len() as i64 + 1, kind)
        }
    };
    json!({"max_attempts": attempts, "backoff": backoff})
}

/// Checks a payload template and gives its stored text.
pub fn payload_template(t: Option<&Value>) -> Result<Option<String>, SubscriptionError> {
    let compile_error = |e: crate::template::TemplateError| {
        bad("payload_template", format!("does not compile: {e}"))
    };
    match t {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            crate::template::Templates::new()
                .add("payload_template", s)
                .map_err(compile_error)?;
            Ok(Some(s.clone()))
        }
        Some(o @ Value::Object(_)) => {
            crate::template::object::ObjectTemplate::new("payload_template", o)
                .map_err(compile_error)?;
            Ok(Some(crate::template::object::store(o)))
        }
        Some(_) => Err(bad(
            "payload_template",
            "must be a template string that renders JSON, or an object of templates",
        )),
    }
}

pub fn apply_retry_policy(
    f: &mut SubscriptionFields,
    p: &RetryPolicyIn,
    delay_given: bool,
) -> Result<(), SubscriptionError> {
    if !(1..=101).contains(&p.max_attempts) {
        return Err(bad(
            "retry_policy.max_attempts",
            "must be from 1 to 101 (the first attempt and up to 100 retries)",
        ));
    }
    let retries = p.max_attempts - 1;
    if !delay_given {
        f.retry_delay_ms = TAGORUN_BASE_DELAY_MS;
    }
    let base = f.retry_delay_ms;
    f.retry_count = retries as i32;
    f.retry_schedule = match p.backoff.as_deref().unwrap_or("exponential") {
        "exponential" => None,
        "fixed" | "constant" => Some(Value::from(vec![base; retries as usize]).to_string()),
        "linear" => {
            Some(Value::from((1..=retries).map(|i| base * i).collect::<Vec<_>>()).to_string())
        }
        other => {
            return Err(bad(
                "retry_policy.backoff",
                format!("{other:?} is not exponential, fixed or linear"),
            ));
        }
    };
    Ok(())
}
