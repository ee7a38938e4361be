//! The inbound request as endpoints see it, and how its query and body become the
//! params object (Rails rules, as Huginn's WebhookAgent sees them: query parameters
//! overlaid by body parameters; nested `a[b]=1` and `a[]=1` keys; a JSON body that is
//! not an object appears under `_json`).

use actix_web::web::Bytes;
use serde_json::{Map, Value};

use super::{OwnRefusal, Rejection, WebResponse};

#[derive(Debug, Clone)]
pub struct InboundRequest {
    /// Upper-case HTTP method.
    pub method: String,
    /// The full URL as the client called it, for resolving a relative redirect; empty
    /// when the endpoint does not redirect (building it costs more than parsing a
    /// small JSON body).
    pub url: String,
    pub query: String,
    /// Header names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The client address (socket peer, or X-Forwarded-For from a trusted proxy).
    pub client_ip: Option<std::net::IpAddr>,
    /// When the request arrived, for the log's processing time.
    pub received: std::time::Instant,
}

impl InboundRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type without parameters, lower-case.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}

/// Builds the params object from the query and the body.
pub fn params(req: &InboundRequest) -> Result<Value, Rejection> {
    let mut params = Map::new();
    parse_form_into(&mut params, req.query.as_bytes());
    if req.body.is_empty() {
        return Ok(Value::Object(params));
    }
    let media = req.media_type();
    match media.as_deref() {
        Some(m) if m == "application/json" || m.ends_with("+json") => {
            let body: Value = serde_json::from_slice(&req.body).map_err(|e| {
                WebResponse::refuse(
                    OwnRefusal::InvalidJson,
                    format!("The request body is not valid JSON: {e}"),
                )
            })?;
            match body {
                // Most requests have no query: the body's object is then the params
                // as it is, without moving every key into a new map.
                Value::Object(map) if params.is_empty() => params = map,
                Value::Object(map) => params.extend(map),
                other => {
                    params.insert("_json".into(), other);
                }
            }
        }
        Some("application/x-www-form-urlencoded") => parse_form_into(&mut params, &req.body),
        Some("multipart/form-data") | Some("application/octet-stream") => {
            return Err(WebResponse::refuse(
                OwnRefusal::UnsupportedMediaType,
                format!(
                    "Content-Type {} is not supported: send JSON (application/json), a form (application/x-www-form-urlencoded) or text",
                    media.unwrap_or_default()
                ),
            ));
        }
        _ => {
            // Text of any other type is kept whole rather than dropped.
            let text = std::str::from_utf8(&req.body).map_err(|_| {
                WebResponse::refuse(
                    OwnRefusal::UnsupportedMediaType,
                    "The request body is binary: send JSON (application/json), a form (application/x-www-form-urlencoded) or UTF-8 text",
                )
            })?;
            params.insert("body".into(), Value::String(text.to_string()));
        }
    }
    Ok(Value::Object(params))
}

/// The body of an incoming webhook as data: JSON as sent, a form as an object, text as
/// `{"body": text}`, nothing as `{}`. Other content types are refused with 415.
pub fn body_value(req: &InboundRequest) -> Result<Value, Rejection> {
    if req.body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let media = req.media_type().unwrap_or_default();
    if media == "application/json" || media.ends_with("+json") {
        return serde_json::from_slice(&req.body).map_err(|e| {
            WebResponse::refuse(
                OwnRefusal::InvalidJson,
                format!("The request body is not valid JSON: {e}"),
            )
        });
    }
    if media == "application/x-www-form-urlencoded" {
        let mut map = Map::new();
        parse_form_into(&mut map, &req.body);
        return Ok(Value::Object(map));
    }
    if media.is_empty() || media.starts_with("text/") {
        let text = std::str::from_utf8(&req.body).map_err(|_| {
            WebResponse::refuse(
                OwnRefusal::UnsupportedMediaType,
                "The request body is not UTF-8 text",
            )
        })?;
        return Ok(serde_json::json!({ "body": text }));
    }
    Err(WebResponse::refuse(
        OwnRefusal::UnsupportedMediaType,
        format!(
            "Content-Type {media} is not supported: send JSON (application/json), a form (application/x-www-form-urlencoded) or text (text/plain)"
        ),
    ))
}

fn parse_form_into(params: &mut Map<String, Value>, input: &[u8]) {
    for (key, value) in url::form_urlencoded::parse(input) {
        insert_param(params, &key, value.into_owned());
    }
}

/// Inserts `a[b][]`-style keys as nested objects and arrays.
fn insert_param(params: &mut Map<String, Value>, key: &str, value: String) {
    let Some((head, path)) = split_key(key) else {
        params.insert(key.to_string(), Value::String(value));
        return;
    };
    let slot = params.entry(head).or_insert(Value::Null);
    put(slot, &path, value);
}

/// Deepest `a[b][c]...` nesting a form key may have; deeper keys are kept as plain keys.
const MAX_NESTING: usize = 32;

/// `a[b][]` -> ("a", ["b", ""]); `None` for plain or malformed keys.
fn split_key(key: &str) -> Option<(String, Vec<String>)> {
    let open = key.find('[')?;
    if open == 0 || !key.ends_with(']') {
        return None;
    }
    let head = key[..open].to_string();
    let inner = &key[open + 1..key.len() - 1];
    let parts: Vec<String> = inner.split("][").map(str::to_string).collect();
    // Nesting is bounded so a crafted key cannot recurse deep enough to overflow the stack.
    if parts.len() > MAX_NESTING || parts.iter().any(|p| p.contains('[') || p.contains(']')) {
        return None;
    }
    Some((head, parts))
}

fn put(slot: &mut Value, path: &[String], value: String) {
    let Some((first, rest)) = path.split_first() else {
        *slot = Value::String(value);
        return;
    };
    if first.is_empty() {
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        if let Value::Array(items) = slot {
            if rest.is_empty() {
                items.push(Value::String(value));
            } else {
                let mut child = Value::Null;
                put(&mut child, rest, value);
                items.push(child);
            }
        }
        return;
    }
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(map) = slot {
        put(map.entry(first.clone()).or_insert(Value::Null), rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(query: &str, ct: Option<&str>, body: &str) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            url: "http://h/x".into(),
            query: query.into(),
            headers: ct
                .map(|c| vec![("content-type".to_string(), c.to_string())])
                .unwrap_or_default(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            client_ip: None,
            received: std::time::Instant::now(),
        }
    }

    #[test]
    fn body_params_win_over_query() {
        let p = params(&req("a=1&b=2", Some("application/json"), r#"{"a": 9}"#)).unwrap();
        assert_eq!(p, json!({"a": 9, "b": "2"}));
    }

    #[test]
    fn forms_nest_like_rails() {
        let p = params(&req(
            "",
            Some("application/x-www-form-urlencoded"),
            "a[b]=1&t[]=x&t[]=y&plain=%20z",
        ))
        .unwrap();
        assert_eq!(p, json!({"a": {"b": "1"}, "t": ["x", "y"], "plain": " z"}));
    }

    #[test]
    fn arrays_and_text_are_kept() {
        let p = params(&req("", Some("application/json; charset=utf-8"), "[1,2]")).unwrap();
        assert_eq!(p, json!({"_json": [1, 2]}));
        let p = params(&req("", Some("text/plain"), "hello")).unwrap();
        assert_eq!(p, json!({"body": "hello"}));
    }

    #[test]
    fn deep_form_keys_stay_flat() {
        let key = format!("a{}", "[x]".repeat(10_000));
        let body = format!("{key}=1");
        let p = params(&req("", Some("application/x-www-form-urlencoded"), &body)).unwrap();
        assert_eq!(p[&key], json!("1"));
    }

    #[test]
    fn malformed_json_says_where() {
        let err = params(&req("", Some("application/json"), "{\"a\": }")).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.body.contains("line 1 column"), "{}", err.body);
    }
}
