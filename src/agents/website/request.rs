//! The request headers a website agent sends: `user_agent` (as `User-Agent`) and
//! `headers` (which win, as in Huginn's Faraday setup), Liquid templates rendered per
//! request, then `basic_auth`. The fetch itself is the AgentActor's (the rss agent's
//! path: target guard, timeout, size cap).

use serde_json::{Map, Value};

use crate::agents::OptionError;
use crate::template::{RenderCtx, TemplateTree, Templates};

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

/// The rendered headers, each checked as HTTP, with basic auth last.
pub fn render(
    templates: &Templates,
    tree: &TemplateTree,
    basic_auth: Option<&TemplateTree>,
    vars: &RenderCtx<'_>,
) -> Result<Vec<(String, String)>, String> {
    let rendered = templates.render_tree(tree, vars).map_err(|e| e.0)?;
    let mut headers: Vec<(String, String)> = match rendered {
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect(),
        _ => Vec::new(),
    };
    for (k, v) in &headers {
        if actix_web::http::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || actix_web::http::header::HeaderValue::from_str(v).is_err()
        {
            return Err(format!("header {k:?}: {v:?} is not a valid HTTP header"));
        }
    }
    if let Some(auth) = crate::agents::basic_auth::render(templates, basic_auth, vars)? {
        headers.push(crate::agents::basic_auth::header(&auth));
    }
    Ok(headers)
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
