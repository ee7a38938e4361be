//! `post` — Huginn's PostAgent: sends each received event to `post_url`. The request
//! is prepared here and sent by the delivery engine (the agent owns a subscription), so
//! posts get the engine's retries, circuit breaker, target guard and attempt logs. With
//! `emit_events` the agent emits `{status, headers, body}` once the request is final.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::request_headers::RequestError;
use super::{
    AgentCtx, Behavior, OptionError, emitted_event_type, opt_bool, opt_number, opt_str, type_name,
};
use crate::delivery::client::Sent;
use crate::delivery::prepared::ResponseHook;
use crate::ids::AgentId;
use crate::store::events::{EventRow, NewEvent};
use crate::template::{RenderCtx, TemplateError, TemplateTree, Templates};

/// What a post agent wants sent, stored (sealed) with its delivery; the delivery
/// engine reads it back as `delivery::prepared::StoredRequest`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreparedRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Set when the agent emits the response as an event.
    pub emit: Option<EmitResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmitResponse {
    pub agent_id: AgentId,
    pub user_id: i64,
    pub event_type: String,
    pub keep_events_for: i64,
    pub parse_body: bool,
    /// With `output_mode: merge`, the incoming payload the response is merged into.
    pub merge_into: Option<Value>,
}

/// How the delivery engine hands this agent its final responses: the `emit` note
/// stored with each request becomes the emitted event.
pub fn response_hook() -> ResponseHook {
    ResponseHook::new(|emit, sent| {
        let e: EmitResponse = serde_json::from_value(emit.clone()).ok()?;
        Some(response_event(&e, sent))
    })
}

/// The event a post agent emits for a response: `{status, headers, body}`, the body
/// parsed when it is JSON and `parse_body` is on; merged into the incoming payload with
/// `output_mode: merge`.
fn response_event(e: &EmitResponse, sent: &Sent) -> NewEvent {
    let body_text = sent.excerpt.clone().unwrap_or_default();
    let is_json = sent
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.contains("json"));
    let body = if e.parse_body && is_json {
        serde_json::from_str(&body_text).unwrap_or(Value::String(body_text))
    } else {
        Value::String(body_text)
    };
    let headers: Map<String, Value> = sent
        .headers
        .iter()
        .map(|(n, v)| {
            (
                crate::net::HeaderStyle::Capitalized.apply(n),
                Value::String(v.clone()),
            )
        })
        .collect();
    let mut payload = match &e.merge_into {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    payload.insert("status".into(), serde_json::json!(sent.status));
    payload.insert("headers".into(), Value::Object(headers));
    payload.insert("body".into(), body);
    NewEvent {
        user_id: e.user_id,
        agent_id: Some(e.agent_id),
        event_type: e.event_type.clone(),
        payload: NewEvent::payload_text(&Value::Object(payload)),
        keep_for_seconds: e.keep_events_for,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ContentType<'a> {
    Form,
    Json,
    Xml,
    Mime(&'a str),
}

pub struct Post {
    /// How the delivery engine retries this agent's requests.
    pub policy: crate::store::subscriptions::OwnedPolicy,
    templates: Templates,
    url: TemplateTree,
    method: String,
    content_type: String,
    payload: TemplateTree,
    headers: TemplateTree,
    no_merge: bool,
    emit_events: bool,
    parse_body: bool,
    merge_output: bool,
    basic_auth: Option<TemplateTree>,
    event_type: String,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Post::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Post::new(options)?))
}

impl Post {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let mut templates = Templates::liquid();
        let url = compile_url(&mut templates, options)?;
        let method = method_option(options)?;
        let content_type = content_type_option(options)?;
        let no_merge = opt_bool(options, "no_merge")?.unwrap_or(false);
        let payload = compile_payload(&mut templates, options, no_merge, &content_type)?;
        let headers = compile_headers(&mut templates, options)?;
        let merge_output = match opt_str(options, "output_mode")?.map(str::trim) {
            None | Some("") | Some("clean") => false,
            Some("merge") => true,
            Some(_) => {
                return Err(OptionError::new(
                    "output_mode",
                    "if provided, output_mode must be 'clean' or 'merge'",
                ));
            }
        };
        let basic_auth = super::basic_auth::compile(&mut templates, options)?;
        let policy = retry_policy(options)?;
        Ok(Post {
            policy,
            templates,
            url,
            method,
            content_type,
            payload,
            headers,
            no_merge,
            emit_events: opt_bool(options, "emit_events")?.unwrap_or(false),
            parse_body: opt_bool(options, "parse_body")?.unwrap_or(true),
            merge_output,
            basic_auth,
            event_type: emitted_event_type(options),
        })
    }

    fn content_type(&self) -> ContentType<'_> {
        match self.content_type.as_str() {
            "json" => ContentType::Json,
            "xml" => ContentType::Xml,
            "form" => ContentType::Form,
            mime => ContentType::Mime(mime),
        }
    }

    /// The request for one event.
    pub fn prepare(
        &self,
        agent_id: AgentId,
        user_id: i64,
        keep: i64,
        payload: &Value,
        ctx: &RenderCtx<'_>,
    ) -> Result<PreparedRequest, RequestError> {
        let url = match self.templates.render_tree(&self.url, ctx)? {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        check_url(&url)?;
        let data = self.data(payload, ctx)?;
        let mut headers = super::request_headers::render(
            &self.templates,
            &self.headers,
            self.basic_auth.as_ref(),
            ctx,
        )?;
        let (url, body) = if self.method == "get" || self.method == "delete" {
            (with_query(url, &form_encode(&data)), String::new())
        } else {
            let (ct, body) = self.body(&data);
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("Content-Type".into(), ct));
            }
            (url, body)
        };
        Ok(PreparedRequest {
            method: self.method.to_uppercase(),
            url,
            headers,
            body,
            emit: self.emit_events.then(|| EmitResponse {
                agent_id,
                user_id,
                event_type: self.event_type.clone(),
                keep_events_for: keep,
                parse_body: self.parse_body,
                merge_into: self.merge_output.then(|| payload.clone()),
            }),
        })
    }

    /// The rendered `payload`, with the incoming event merged in unless `no_merge`.
    fn data(&self, payload: &Value, ctx: &RenderCtx<'_>) -> Result<Value, TemplateError> {
        let data = self.templates.render_tree(&self.payload, ctx)?;
        Ok(match (&data, payload, self.no_merge) {
            (Value::Object(d), Value::Object(p), false) => {
                // The incoming event's keys win, as in Huginn.
                let mut merged = d.clone();
                merged.extend(p.clone());
                Value::Object(merged)
            }
            _ => data,
        })
    }

    /// The content type and body of a request that has one, by `content_type`.
    fn body(&self, data: &Value) -> (String, String) {
        match self.content_type() {
            ContentType::Json => (
                "application/json; charset=utf-8".to_string(),
                data.to_string(),
            ),
            ContentType::Xml => ("text/xml; charset=utf-8".to_string(), xml("post", data)),
            ContentType::Form => (
                "application/x-www-form-urlencoded".to_string(),
                form_encode(data),
            ),
            ContentType::Mime(m) => (
                m.to_string(),
                data.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| data.to_string()),
            ),
        }
    }
}

/// The URL with `query` appended (GET and DELETE send their data there).
fn with_query(url: String, query: &str) -> String {
    if query.is_empty() {
        url
    } else if url.contains('?') {
        format!("{url}&{query}")
    } else {
        format!("{url}?{query}")
    }
}

/// `post_url`, required; a URL without markup is checked now, a templated one
/// (`{{ url }}`, `{% credential hook %}`) when it is rendered, per event.
fn compile_url(templates: &mut Templates, options: &Value) -> Result<TemplateTree, OptionError> {
    let url = match opt_str(options, "post_url")? {
        Some(u) if !u.trim().is_empty() => templates
            .add_tree("post_url", &Value::String(u.to_string()))
            .map_err(OptionError::template)?,
        _ => {
            return Err(OptionError::new(
                "post_url",
                "is required: the URL to send each event to",
            ));
        }
    };
    if let Some(u) = opt_str(options, "post_url")?
        && !crate::template::liquid::has_markup(u)
    {
        check_url(u).map_err(|e| OptionError::new("post_url", e.to_string()))?;
    }
    Ok(url)
}

/// `method`, lower-cased: one of Huginn's five.
fn method_option(options: &Value) -> Result<String, OptionError> {
    let method = opt_str(options, "method")?
        .unwrap_or("post")
        .trim()
        .to_lowercase();
    if !["post", "get", "put", "delete", "patch"].contains(&method.as_str()) {
        return Err(OptionError::new(
            "method",
            "must be 'post', 'get', 'put', 'delete', or 'patch'",
        ));
    }
    Ok(method)
}

/// `content_type`: form, json, xml or a MIME type.
fn content_type_option(options: &Value) -> Result<String, OptionError> {
    let content_type = opt_str(options, "content_type")?
        .unwrap_or("form")
        .trim()
        .to_string();
    if !matches!(content_type.as_str(), "form" | "json" | "xml") && !content_type.contains('/') {
        return Err(OptionError::new(
            "content_type",
            "must be form, json, xml or a MIME type such as text/plain",
        ));
    }
    Ok(content_type)
}

/// `payload`: an object or an array, or a string sent as is (which needs `no_merge`
/// and a MIME content type).
fn compile_payload(
    templates: &mut Templates,
    options: &Value,
    no_merge: bool,
    content_type: &str,
) -> Result<TemplateTree, OptionError> {
    let payload_v = options
        .get("payload")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    match &payload_v {
        Value::Object(_) | Value::Array(_) => {}
        Value::String(_) if no_merge && content_type.contains('/') => {}
        Value::String(_) => {
            return Err(OptionError::new(
                "payload",
                "when the payload is a string, `no_merge` has to be set to `true` and content_type a MIME type",
            ));
        }
        other => {
            return Err(OptionError::new(
                "payload",
                format!(
                    "if provided, payload must be a hash or an array (got {})",
                    type_name(other)
                ),
            ));
        }
    }
    templates
        .add_tree("payload", &payload_v)
        .map_err(OptionError::template)
}

/// `headers`: an object of header names to (templated) values.
fn compile_headers(
    templates: &mut Templates,
    options: &Value,
) -> Result<TemplateTree, OptionError> {
    let headers_v = options
        .get("headers")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    if !headers_v.is_object() {
        return Err(OptionError::new(
            "headers",
            "must be an object of header names to values",
        ));
    }
    templates
        .add_tree("headers", &headers_v)
        .map_err(OptionError::template)
}

/// How the delivery engine retries this agent's requests: `retry_count`,
/// `retry_delay` and `timeout` (seconds).
fn retry_policy(options: &Value) -> Result<crate::store::subscriptions::OwnedPolicy, OptionError> {
    let retry_count = opt_number(options, "retry_count")?.unwrap_or(4.0);
    if retry_count > 100.0 {
        return Err(OptionError::new("retry_count", "must be from 0 to 100"));
    }
    let seconds = |key: &str, default: f64, max: f64| -> Result<i64, OptionError> {
        let v = opt_number(options, key)?.unwrap_or(default);
        if v > max {
            return Err(OptionError::new(
                key,
                format!("must be at most {max} seconds"),
            ));
        }
        Ok((v * 1000.0).round() as i64)
    };
    Ok(crate::store::subscriptions::OwnedPolicy {
        retry_count: retry_count as i32,
        retry_delay_ms: seconds("retry_delay", 30.0, 86_400.0)?,
        timeout_ms: seconds("timeout", 30.0, 300.0)?.max(1),
    })
}

fn check_url(u: &str) -> Result<(), RequestError> {
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Ok(()),
        _ => Err(RequestError::NotHttpUrl(u.to_string())),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `application/x-www-form-urlencoded` of an object's top-level keys.
fn form_encode(data: &Value) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    if let Value::Object(m) = data {
        for (k, v) in m {
            ser.append_pair(k, &scalar(v));
        }
    }
    ser.finish()
}

fn escape_xml(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || !c.is_control())
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The data as XML under `root` (Huginn's `xml_root`, default `post`).
fn xml(root: &str, data: &Value) -> String {
    fn node(tag: &str, v: &Value, out: &mut String) {
        let tag: String = tag
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        match v {
            Value::Object(m) => {
                out.push_str(&format!("<{tag}>"));
                for (k, x) in m {
                    node(k, x, out);
                }
                out.push_str(&format!("</{tag}>"));
            }
            Value::Array(a) => a.iter().for_each(|x| node(&tag, x, out)),
            other => out.push_str(&format!("<{tag}>{}</{tag}>", escape_xml(&scalar(other)))),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    node(root, data, &mut out);
    out
}

impl Behavior for Post {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let (id, user, keep) = (ctx.agent.id, ctx.agent.user_id, ctx.agent.keep_events_for);
        // Building the context copies the payload: only when a template will read it.
        let vars = if self.templates.is_empty() {
            RenderCtx::new()
        } else {
            ctx.event_ctx(event, payload)
        };
        match self.prepare(id, user, keep, payload, &vars) {
            Ok(req) => ctx.request(event.id, req),
            Err(e) => ctx.error(format!(
                "could not prepare the request for event {}: {e}",
                event.id
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prep(options: Value, payload: Value) -> PreparedRequest {
        Post::new(&options)
            .unwrap()
            .prepare(
                crate::ids::AgentId(1),
                1,
                0,
                &payload,
                &RenderCtx::of(&payload),
            )
            .unwrap()
    }

    #[test]
    fn json_form_get_and_merge() {
        let r = prep(
            json!({"post_url": "http://h/x", "content_type": "json", "payload": {"a": "{{ n }}"}, "no_merge": true}),
            json!({"n": 5}),
        );
        assert_eq!(
            (r.method.as_str(), r.body.as_str()),
            ("POST", "{\"a\":\"5\"}")
        );
        assert!(r.headers.contains(&(
            "Content-Type".into(),
            "application/json; charset=utf-8".into()
        )));
        let r = prep(
            json!({"post_url": "http://h/x", "payload": {"a": "1"}}),
            json!({"b": "2"}),
        );
        assert_eq!(r.body, "a=1&b=2", "form by default, merged with the event");
        let r = prep(
            json!({"post_url": "http://h/x?z=1", "method": "get", "payload": {"q": "{{ n }}"}, "no_merge": true}),
            json!({"n": "a b"}),
        );
        assert_eq!(r.url, "http://h/x?z=1&q=a+b");
        assert_eq!(r.body, "");
    }

    #[test]
    fn xml_auth_and_emit() {
        let r = prep(
            json!({"post_url": "https://h/{{ p }}", "content_type": "xml", "payload": {"t": "<b>"}, "no_merge": true,
                            "basic_auth": "u:p", "emit_events": true, "output_mode": "merge"}),
            json!({"p": "path"}),
        );
        assert_eq!(r.url, "https://h/path");
        assert_eq!(
            r.body,
            r#"<?xml version="1.0" encoding="UTF-8"?><post><t>&lt;b&gt;</t></post>"#
        );
        assert!(
            r.headers
                .contains(&("Authorization".into(), "Basic dTpw".into()))
        );
        assert_eq!(r.emit.unwrap().merge_into, Some(json!({"p": "path"})));
    }

    #[test]
    fn the_delivery_engine_reads_the_stored_request_and_hands_back_the_response() {
        let r = prep(
            json!({"post_url": "https://h/x", "emit_events": true, "output_mode": "merge",
                   "parse_body": true}),
            json!({"p": 1}),
        );
        let stored = serde_json::to_string(&r).unwrap();
        let (req, emit) = crate::delivery::request::prepared(Ok(stored)).unwrap();
        assert_eq!(
            (req.method.as_str(), req.url.as_str()),
            ("POST", "https://h/x")
        );
        let sent = Sent {
            status: Some(200),
            headers: vec![("content-type".into(), "application/json".into())],
            retry_after: None,
            excerpt: Some(r#"{"ok":true}"#.into()),
            error: None,
            duration: std::time::Duration::ZERO,
        };
        let event = response_hook().event(&emit.unwrap(), &sent).unwrap();
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(
            payload,
            json!({"p": 1, "status": 200, "headers": {"Content-Type": "application/json"},
                   "body": {"ok": true}})
        );
        let unreadable = crate::delivery::request::prepared(Ok("{".into())).unwrap_err();
        assert!(
            unreadable
                .error
                .to_string()
                .starts_with("the stored request is unreadable: ")
        );
    }

    #[test]
    fn bad_options() {
        assert_eq!(Post::new(&json!({})).err().unwrap().option, "post_url");
        assert_eq!(
            Post::new(&json!({"post_url": "ftp://x"}))
                .err()
                .unwrap()
                .option,
            "post_url"
        );
        assert_eq!(
            Post::new(&json!({"post_url": "http://x", "method": "fetch"}))
                .err()
                .unwrap()
                .option,
            "method"
        );
        assert_eq!(
            Post::new(&json!({"post_url": "http://x", "payload": "s"}))
                .err()
                .unwrap()
                .option,
            "payload"
        );
    }
}
