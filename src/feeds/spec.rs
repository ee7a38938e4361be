//! The options of Huginn's DataOutputAgent (a feed): parsing, defaults and validation,
//! compiled once into a [`FeedSpec`]. The feed owns them; the agent type in
//! `crate::agents::data_output` validates through them.

use serde_json::Value;

use super::order::{self, SortKey};
use crate::options::{OptionError, opt_bool, opt_str, type_name};
use crate::template::{TemplateId, TemplateTree, Templates};

/// muninn's name of the type.
pub const NAME: &str = crate::agent_kind::Kind::DataOutput.name();

pub const DEFAULT_EVENTS_TO_SHOW: usize = 40;
pub const MAX_EVENTS_TO_SHOW: usize = 1000;
pub const DEFAULT_TTL_MINUTES: u64 = 60;
/// A year: a longer `ttl` is surely a mistake.
pub const MAX_TTL_MINUTES: u64 = 525_600;
pub const DEFAULT_RSS_CONTENT_TYPE: &str = "application/rss+xml";

/// Headers a feed controls itself; `response_headers` may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "etag",
    "last-modified",
];

/// The compiled options of one data_output agent.
pub struct FeedSpec {
    pub templates: Templates,
    pub secrets: Vec<String>,
    pub title: Option<TemplateId>,
    pub description: Option<TemplateId>,
    pub link: Option<TemplateId>,
    pub icon: Option<TemplateId>,
    pub self_url: Option<TemplateId>,
    pub item: TemplateTree,
    /// True when an item template mentions `events`, so the (costly) list is only put
    /// into each item's context when it is used.
    pub item_uses_events: bool,
    pub events_to_show: usize,
    pub ttl_minutes: u64,
    pub events_order: Vec<SortKey>,
    pub events_list_order: Vec<SortKey>,
    pub ns_dc: bool,
    pub ns_media: bool,
    pub ns_itunes: bool,
    pub rss_content_type: String,
    pub response_headers: Vec<(String, String)>,
}

impl std::fmt::Debug for FeedSpec {
    // Secrets stay out of logs and debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSpec")
            .field("secrets", &format_args!("[{} hidden]", self.secrets.len()))
            .field("events_to_show", &self.events_to_show)
            .field("ttl_minutes", &self.ttl_minutes)
            .finish_non_exhaustive()
    }
}

/// A whole number option given as a number or a numeric string, within `min..=max`.
fn opt_count(
    options: &Value,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, OptionError> {
    let n = match options.get(key) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(OptionError::new(
            key,
            format!(
                "must be a whole number from {min} to {max} (got {})",
                options.get(key).map_or(Value::Null, Clone::clone)
            ),
        )),
    }
}

fn parse_secrets(options: &Value) -> Result<Vec<String>, OptionError> {
    const HOW: &str = "is required: a non-empty list of secret strings, e.g. [\"a-secret-key\"]; any one of them grants access to the feed";
    let list = match options.get("secrets") {
        None | Some(Value::Null) => return Err(OptionError::new("secrets", HOW)),
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => return Err(OptionError::new("secrets", HOW)),
        Some(other) => {
            return Err(OptionError::new(
                "secrets",
                format!("must be a list of strings (got {})", type_name(other)),
            ));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, s)| match s {
            Value::String(s) if s.is_empty() => Err(OptionError::new(
                format!("secrets[{i}]"),
                "must not be empty",
            )),
            Value::String(s) if s.contains(['/', '.']) || s.chars().any(char::is_whitespace) => {
                Err(OptionError::new(
                    format!("secrets[{i}]"),
                    "must not contain '/', '.' or spaces: it is the last segment of the feed URL, before the .xml/.json format",
                ))
            }
            Value::String(s) => Ok(s.clone()),
            other => Err(OptionError::new(
                format!("secrets[{i}]"),
                format!("must be a string (got {})", type_name(other)),
            )),
        })
        .collect()
}

fn parse_headers(options: &Value) -> Result<Vec<(String, String)>, OptionError> {
    let map = match options.get("response_headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(OptionError::new(
                "response_headers",
                format!(
                    "must be an object of header names to values (got {})",
                    type_name(other)
                ),
            ));
        }
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(OptionError::new(
                    "response_headers",
                    format!("value of {name:?} must be a string"),
                ));
            }
        };
        if actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || actix_web::http::header::HeaderValue::from_str(&value).is_err()
        {
            return Err(OptionError::new(
                "response_headers",
                format!("{name:?}: {value:?} is not a valid HTTP header"),
            ));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(OptionError::new(
                "response_headers",
                format!("{name:?} is set by the feed itself and cannot be overridden"),
            ));
        }
        out.push((name.clone(), value));
    }
    Ok(out)
}

impl FeedSpec {
    // One idea: the data_output agent's options, each read and checked in Huginn's order with
    // its own message; the schema of the feed, one field after another.
    pub fn new(options: &Value) -> Result<FeedSpec, OptionError> {
        if !options.is_object() {
            return Err(OptionError::new("options", "must be a JSON object"));
        }
        let secrets = parse_secrets(options)?;
        opt_count(options, "expected_receive_period_in_days", 2, 1, 36_500)?;
        let template = match options.get("template") {
            Some(Value::Object(t)) => t,
            None | Some(Value::Null) => {
                return Err(OptionError::new(
                    "template",
                    "is required: an object with \"item\" (a map of item fields to templates, e.g. {\"title\": \"{{ title }}\", \"link\": \"{{ url }}\"}) and optionally title, description, link, icon and self",
                ));
            }
            Some(other) => {
                return Err(OptionError::new(
                    "template",
                    format!("must be an object (got {})", type_name(other)),
                ));
            }
        };
        let mut templates = Templates::liquid();
        let mut part = |key: &str| -> Result<Option<TemplateId>, OptionError> {
            let label = format!("template.{key}");
            match template.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => templates
                    .add(&label, s)
                    .map(Some)
                    .map_err(OptionError::template),
                Some(other) => Err(OptionError::new(
                    label,
                    format!("must be a string (got {})", type_name(other)),
                )),
            }
        };
        let title = part("title")?;
        let description = part("description")?;
        let link = part("link")?;
        let icon = part("icon")?;
        let self_url = part("self")?;
        let item_value = match template.get("item") {
            Some(v @ Value::Object(map)) if !map.is_empty() => v,
            Some(Value::Object(_)) | None | Some(Value::Null) => {
                return Err(OptionError::new(
                    "template.item",
                    "is required: a non-empty object of item fields to templates, e.g. {\"title\": \"{{ title }}\", \"description\": \"{{ body }}\", \"link\": \"{{ url }}\"}",
                ));
            }
            Some(other) => {
                return Err(OptionError::new(
                    "template.item",
                    format!("must be an object (got {})", type_name(other)),
                ));
            }
        };
        let item = templates
            .add_tree("template.item", item_value)
            .map_err(OptionError::template)?;
        let item_uses_events = item_value.to_string().contains("events");
        let events_to_show = opt_count(
            options,
            "events_to_show",
            DEFAULT_EVENTS_TO_SHOW as u64,
            1,
            MAX_EVENTS_TO_SHOW as u64,
        )? as usize;
        let ttl_minutes = opt_count(options, "ttl", DEFAULT_TTL_MINUTES, 0, MAX_TTL_MINUTES)?;
        let events_order =
            order::parse(&mut templates, "events_order", options.get("events_order"))?
                .unwrap_or_default();
        let events_list_order = match order::parse(
            &mut templates,
            "events_list_order",
            options.get("events_list_order"),
        )? {
            Some(keys) => keys,
            // Huginn's default `[["{{_index_}}", "number", true]]`: newest first.
            None => vec![SortKey::index_descending()],
        };
        let rss_content_type = match opt_str(options, "rss_content_type")?.map(str::trim) {
            None | Some("") => DEFAULT_RSS_CONTENT_TYPE.to_string(),
            Some(ct) => {
                if actix_web::http::header::HeaderValue::from_str(ct).is_err() || !ct.contains('/')
                {
                    return Err(OptionError::new(
                        "rss_content_type",
                        format!("{ct:?} is not a media type like \"application/rss+xml\""),
                    ));
                }
                ct.to_string()
            }
        };
        if let Some(hubs) = options.get("push_hubs")
            && !hubs.is_null()
            && !hubs
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string))
        {
            return Err(OptionError::new(
                "push_hubs",
                "must be a list of hub URLs (accepted for Huginn compatibility; muninn does not ping hubs yet)",
            ));
        }
        Ok(FeedSpec {
            secrets,
            title,
            description,
            link,
            icon,
            self_url,
            item,
            item_uses_events,
            events_to_show,
            ttl_minutes,
            events_order,
            events_list_order,
            ns_dc: opt_bool(options, "ns_dc")?.unwrap_or(false),
            ns_media: opt_bool(options, "ns_media")?.unwrap_or(false),
            ns_itunes: opt_bool(options, "ns_itunes")?.unwrap_or(false),
            rss_content_type,
            response_headers: parse_headers(options)?,
            templates,
        })
    }

    /// The index of the secret that matches, compared in constant time against each.
    pub fn secret_index(&self, given: &str) -> Option<usize> {
        let mut found = None;
        for (i, s) in self.secrets.iter().enumerate() {
            if crate::secrets::constant_time_eq(s.as_bytes(), given.as_bytes()) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"secrets": ["s1", "s2"], "template": {"item": {"title": "{{ title }}"}}})
    }

    fn with(key: &str, v: Value) -> Value {
        let mut o = base();
        o[key] = v;
        o
    }

    fn err(options: Value) -> OptionError {
        FeedSpec::new(&options).err().unwrap()
    }

    #[test]
    fn defaults_are_huginns() {
        let spec = FeedSpec::new(&base()).unwrap();
        assert_eq!(spec.events_to_show, 40);
        assert_eq!(spec.ttl_minutes, 60);
        assert_eq!(spec.rss_content_type, "application/rss+xml");
        assert!(spec.events_order.is_empty());
        assert_eq!(spec.events_list_order.len(), 1);
        assert!(!spec.ns_media && !spec.ns_itunes && !spec.ns_dc);
        assert_eq!(spec.secret_index("s2"), Some(1));
        assert_eq!(spec.secret_index("s3"), None);
    }

    #[test]
    fn bad_options_name_the_option() {
        let mut o = base();
        o.as_object_mut().unwrap().remove("secrets");
        assert_eq!(err(o).option, "secrets");
        assert_eq!(err(with("secrets", json!([]))).option, "secrets");
        assert_eq!(err(with("secrets", json!("s"))).option, "secrets");
        assert_eq!(err(with("secrets", json!(["a.b"]))).option, "secrets[0]");
        assert_eq!(err(with("secrets", json!(["ok", 3]))).option, "secrets[1]");
        assert_eq!(err(with("template", json!({}))).option, "template.item");
        assert_eq!(
            err(with("template", json!({"item": {}}))).option,
            "template.item"
        );
        assert_eq!(
            err(with("template", json!({"item": {"t": "{{ x"}}))).option,
            "template.item.t"
        );
        assert_eq!(
            err(with("template", json!({"title": 3, "item": {"t": "x"}}))).option,
            "template.title"
        );
        assert_eq!(
            err(with("events_to_show", json!(0))).option,
            "events_to_show"
        );
        assert_eq!(
            err(with("events_to_show", json!("many"))).option,
            "events_to_show"
        );
        assert_eq!(err(with("ttl", json!(-1))).option, "ttl");
        assert_eq!(
            err(with("ns_media", json!("yes please"))).option,
            "ns_media"
        );
        assert_eq!(
            err(with("rss_content_type", json!("xml"))).option,
            "rss_content_type"
        );
        assert_eq!(
            err(with("response_headers", json!({"ETag": "x"}))).option,
            "response_headers"
        );
        assert_eq!(
            err(with("response_headers", json!({"bad header": "x"}))).option,
            "response_headers"
        );
        assert_eq!(err(with("events_order", json!("x"))).option, "events_order");
        assert_eq!(
            err(with("expected_receive_period_in_days", json!(0))).option,
            "expected_receive_period_in_days"
        );
        let msg = err(with("secrets", json!([]))).to_string();
        assert!(msg.starts_with("option \"secrets\" is required"), "{msg}");
    }

    #[test]
    fn numbers_may_be_strings_as_in_huginn() {
        let mut o = with("events_to_show", json!("5"));
        o["ttl"] = json!("15");
        o["ns_media"] = json!("true");
        let spec = FeedSpec::new(&o).unwrap();
        assert_eq!(
            (spec.events_to_show, spec.ttl_minutes, spec.ns_media),
            (5, 15, true)
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let spec = FeedSpec::new(&base()).unwrap();
        assert!(!format!("{spec:?}").contains("s1"));
    }
}
