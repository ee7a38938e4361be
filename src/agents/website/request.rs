//! The request headers a website agent sends: `user_agent` (as `User-Agent`) and
//! `headers` (which win, as in Huginn's Faraday setup), Liquid templates rendered per
//! request, then `basic_auth` (`crate::agents::request_headers` renders them). The
//! fetch itself is the AgentActor's (the rss agent's path: target guard, timeout, size
//! cap).

use serde_json::{Map, Value};

use crate::agents::OptionError;
use crate::template::{TemplateTree, Templates};

pub fn headers(templates: &mut Templates, options: &Value) -> Result<TemplateTree, OptionError> {
    let mut all = Map::new();
    match options.get("user_agent") {
        Some(Value::String(ua)) if !ua.trim().is_empty() => {
            all.insert("User-Agent".into(), Value::String(ua.clone()));
        }
        _ => {}
    }
    match options.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => all.extend(m.clone()),
        Some(_) => {
            return Err(OptionError::new(
                "headers",
                "if provided, headers must be a hash",
            ));
        }
    }
    templates
        .add_tree("headers", &Value::Object(all))
        .map_err(OptionError::template)
}

/// `_response_.headers`: each header under its name as sent, lower-case, Title-Case,
/// and with `_` for `-` (Huginn's HeaderDrop is insensitive to case and to -/_).
pub fn response_headers(headers: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in headers {
        let lower = k.to_ascii_lowercase();
        let title: String = lower
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-");
        for name in [
            k.clone(),
            lower.clone(),
            title.clone(),
            lower.replace('-', "_"),
            title.replace('-', "_"),
        ] {
            m.entry(name).or_insert_with(|| Value::String(v.clone()));
        }
    }
    Value::Object(m)
}
