//! The options of Huginn's WebhookAgent and the mapping request -> events -> response
//! for its web-request URL. The endpoint owns them (the agent type in
//! `crate::agents::webhook` only validates through them): the request itself is handled
//! by the agent's EndpointActor (auth, verbs, parsing, commit).

use serde_json::{Map, Value};

use super::guard::ProtectionOptions;
use super::{OwnRefusal, Rejection, WebResponse};
use crate::jsonpath::BoundedPath;
pub use crate::net::HeaderStyle;
use crate::options::{OptionError, boolify, opt_str, type_name};
use crate::template::liquid::CredentialSource;
use crate::template::{TemplateId, Templates, context_of};
use std::sync::Arc;

const VERBS: &[&str] = &["get", "post", "put", "delete", "patch"];

/// A webhook agent's options, checked and compiled.
pub struct Webhook {
    secret: String,
    verbs: Vec<String>,
    payload_path: Option<BoundedPath>,
    payload_path_text: String,
    code: u16,
    response: Option<TemplateId>,
    templates: Templates,
    response_headers: Vec<(String, String)>,
    event_headers: Option<Vec<String>>,
    event_headers_key: Option<String>,
    header_style: HeaderStyle,
    /// `rate_limit`, `allowed_ips`, `signature`, `max_body_bytes`: the inbound protections.
    pub protections: ProtectionOptions,
    /// `recaptcha_secret`, `recaptcha_send_remote_addr`, `score_threshold`.
    pub recaptcha: Option<Recaptcha>,
}

/// Huginn's reCAPTCHA options.
#[derive(Clone)]
pub struct Recaptcha {
    pub secret: String,
    pub send_remote_addr: bool,
    pub score_threshold: Option<f64>,
}

fn parse_recaptcha(options: &Value) -> Result<Option<Recaptcha>, OptionError> {
    let Some(secret) = opt_str(options, "recaptcha_secret")?.filter(|s| !s.trim().is_empty())
    else {
        return Ok(None);
    };
    let score_threshold = match options.get("score_threshold") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| {
                    OptionError::new("score_threshold", "must be a number such as 0.5")
                })?,
        ),
    };
    Ok(Some(Recaptcha {
        secret: secret.to_string(),
        send_remote_addr: boolify(options.get("recaptcha_send_remote_addr")) == Some(true),
        score_threshold,
    }))
}

/// Turns Huginn's `payload_path` (leading `$` optional, `.` for the whole body) into
/// a JSONPath; `None` selects the whole body.
fn parse_payload_path(path: &str) -> Result<Option<BoundedPath>, OptionError> {
    let p = path.trim();
    if p.is_empty() || p == "." || p == "$" {
        return Ok(None);
    }
    BoundedPath::parse_huginn(p)
        .map(Some)
        .map_err(|e| OptionError::new("payload_path", e.to_string()))
}

fn string_list(options: &Value, key: &str) -> Result<Option<Vec<String>>, OptionError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(|s| s.trim().to_string()).ok_or_else(|| {
                    OptionError::new(
                        key,
                        "must be an array of strings or a comma separated string",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(OptionError::new(
            key,
            format!(
                "must be an array of strings or a comma separated string (got {})",
                type_name(other)
            ),
        )),
    }
}

fn parse_code(options: &Value) -> Result<u16, OptionError> {
    let raw = match options.get("code") {
        None | Some(Value::Null) => return Ok(201),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(201),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(OptionError::new(
                "code",
                format!(
                    "must be an HTTP status code such as 201 (got {})",
                    type_name(other)
                ),
            ));
        }
    };
    match raw.parse::<u16>() {
        Ok(c) if (200..=599).contains(&c) => Ok(c),
        _ => Err(OptionError::new(
            "code",
            format!("must be an HTTP status code from 200 to 599 such as 201 (got {raw:?})"),
        )),
    }
}

impl Webhook {
    // One idea: the webhook agent's options, each read and checked in Huginn's order with its
    // own message; it is the schema of the agent, one field after another.
    pub fn new(options: &Value) -> Result<Webhook, OptionError> {
        let secret = match opt_str(options, "secret")? {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ => {
                return Err(OptionError::new(
                    "secret",
                    "is required: it is the last segment of the web-request URL that authenticates requests",
                ));
            }
        };
        if secret.contains('/') || secret.contains('.') {
            return Err(OptionError::new(
                "secret",
                "must not contain \"/\" or \".\": it has to fit in one URL segment",
            ));
        }
        let verbs = match string_list(options, "verbs")? {
            None => vec!["post".to_string()],
            Some(v) if v.is_empty() => vec!["post".to_string()],
            Some(v) => v.into_iter().map(|s| s.to_lowercase()).collect(),
        };
        if let Some(bad) = verbs.iter().find(|v| !VERBS.contains(&v.as_str())) {
            return Err(OptionError::new(
                "verbs",
                format!("has {bad:?}: use a comma separated list of get, post, put, delete, patch"),
            ));
        }
        let payload_path_text = opt_str(options, "payload_path")?.unwrap_or(".").to_string();
        let payload_path = parse_payload_path(&payload_path_text)?;
        let code = parse_code(options)?;
        let mut templates = Templates::liquid();
        let response = match opt_str(options, "response")? {
            None => None,
            Some(r) => Some(
                templates
                    .add("response", r)
                    .map_err(OptionError::template)?,
            ),
        };
        if (300..400).contains(&code) && response.is_none() {
            return Err(OptionError::new(
                "response",
                format!("must be the URL to redirect to when code is {code}"),
            ));
        }
        let response_headers = match options.get("response_headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    _ => Err(OptionError::new(
                        "response_headers",
                        format!("value of {k:?} must be a string"),
                    )),
                })
                .collect::<Result<_, _>>()?,
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
        for (name, value) in &response_headers {
            if actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || actix_web::http::header::HeaderValue::from_str(value).is_err()
            {
                return Err(OptionError::new(
                    "response_headers",
                    format!("{name:?}: {value:?} is not a valid HTTP header"),
                ));
            }
        }
        let event_headers = string_list(options, "event_headers")?;
        let event_headers_key = match options.get("event_headers_key") {
            None | Some(Value::Null) => Some("headers".to_string()),
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(OptionError::new("event_headers_key", "must be a string")),
        };
        let header_style = match opt_str(options, "event_headers_style")? {
            None | Some("capitalized") => HeaderStyle::Capitalized,
            Some("downcased") => HeaderStyle::Downcased,
            Some("snakecased") => HeaderStyle::Snakecased,
            Some("raw") => HeaderStyle::Raw,
            Some(other) => {
                return Err(OptionError::new(
                    "event_headers_style",
                    format!(
                        "must be 'capitalized', 'downcased', 'snakecased' or 'raw' (got {other:?})"
                    ),
                ));
            }
        };
        if let Some(v) = options.get("expected_receive_period_in_days")
            && !v.is_null()
            && v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .is_none()
        {
            return Err(OptionError::new(
                "expected_receive_period_in_days",
                "must be a number of days",
            ));
        }
        let protections = ProtectionOptions::from_json(options, None).map_err(|e| {
            // The guard's messages begin with the option's name ("rate_limit must be
            // ...", "allowed_ips: ..."), which the agent's error already shows.
            let problem = e
                .message
                .strip_prefix(e.option)
                .filter(|rest| rest.starts_with([' ', ':']))
                .map_or(e.message.as_str(), |rest| {
                    rest.trim_start_matches(':').trim_start()
                });
            OptionError::new(e.option, problem)
        })?;
        let recaptcha = parse_recaptcha(options)?;
        Ok(Webhook {
            protections,
            recaptcha,
            secret,
            verbs,
            payload_path,
            payload_path_text,
            code,
            response,
            templates,
            response_headers,
            event_headers,
            event_headers_key,
            header_style,
        })
    }

    /// Whether the answer is rendered from a template (which may read credentials).
    pub fn has_response_template(&self) -> bool {
        self.response.is_some()
    }

    /// The extra headers every answer carries (also the CORS preflight's answer).
    /// Whether a request runs user-written logic here (a response template or a
    /// `payload_path`), which the endpoint keeps off the HTTP workers.
    pub fn runs_user_logic(&self) -> bool {
        self.response.is_some() || self.payload_path.is_some()
    }

    pub fn response_headers(&self) -> &[(String, String)] {
        &self.response_headers
    }

    /// Huginn's order: the secret first, then the verb; both failures are 401.
    ///
    /// The `secret` option stays in the agent's options as the user wrote it, not hashed
    /// like incoming-webhook tokens, because Huginn's contract needs it back: the URL
    /// `/users/{id}/web_requests/{agent}/{secret}` *is* the secret, and Huginn shows it
    /// to its owner whenever asked (`web_request_url` in every agent answer, the agent's
    /// page), and a scenario export carries it so that an import elsewhere answers at
    /// the same URL the senders already use. A digest could serve none of these, and a
    /// short user-chosen secret gains little from an unsalted hash. What protects it at
    /// rest is the data directory's permissions (like the rest of the options); values
    /// that must not sit in options belong in credentials (`{% credential name %}`),
    /// which are sealed. The comparison stays constant-time.
    pub fn authorize(&self, secret: &str, method: &str) -> Result<(), Rejection> {
        if !crate::secrets::constant_time_eq(secret.as_bytes(), self.secret.as_bytes()) {
            return Err(Rejection::text(401, "Not Authorized"));
        }
        let method = method.to_lowercase();
        if !self.verbs.contains(&method) {
            let allowed = self
                .verbs
                .iter()
                .map(|v| v.to_uppercase())
                .collect::<Vec<_>>()
                .join("/");
            return Err(Rejection::text(
                401,
                format!("Please use {allowed} requests only"),
            ));
        }
        Ok(())
    }

    /// The payloads of the events a request makes: `payload_path` selects from the
    /// params; an array makes one event per element.
    pub fn payloads(
        &self,
        params: Value,
        headers: &[(String, String)],
    ) -> Result<Vec<Value>, Rejection> {
        let selected = match &self.payload_path {
            None => Some(params),
            Some(path) => path
                .first(&params)
                .map_err(|e| {
                    Rejection::refuse(
                        OwnRefusal::InvalidPayload,
                        format!("payload_path {:?} {e}", self.payload_path_text),
                    )
                })?
                .cloned(),
        };
        let Some(selected) = selected else {
            // Huginn makes one empty event when the path matches nothing.
            return Ok(vec![self.with_headers(Map::new(), headers)]);
        };
        let mut flat = Vec::new();
        flatten(selected, &mut flat);
        flat.into_iter()
            .map(|v| match v {
                Value::Object(map) => Ok(self.with_headers(map, headers)),
                other => Err(Rejection::refuse(
                    OwnRefusal::InvalidPayload,
                    format!(
                        "payload_path {:?} selected {} ({}); each event must be a JSON object",
                        self.payload_path_text,
                        type_name(&other),
                        truncate(&other.to_string(), 80)
                    ),
                )),
            })
            .collect()
    }

    fn with_headers(&self, mut payload: Map<String, Value>, headers: &[(String, String)]) -> Value {
        if let (Some(wanted), Some(key)) = (&self.event_headers, &self.event_headers_key) {
            let wanted: Vec<String> = wanted.iter().map(|w| self.header_style.apply(w)).collect();
            let mut picked = Map::new();
            for (name, value) in headers {
                if name == "content-type" || name == "content-length" {
                    continue;
                }
                let styled = self.header_style.apply(name);
                if wanted.contains(&styled) {
                    picked.insert(styled, Value::String(value.clone()));
                }
            }
            payload.insert(key.clone(), Value::Object(picked));
        }
        Value::Object(payload)
    }

    /// The answer to a request whose events were committed. A template that fails at
    /// render time falls back to the default text and is reported as the second value.
    /// Whether the answer is a redirect, whose relative target is resolved against
    /// the request's URL (the only use of that URL, which is costly to build).
    pub fn redirects(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// `credentials` are the owner's as they are now (a snapshot per request: a saved
    /// credential is seen by the next request).
    pub fn response(
        &self,
        params: &Value,
        request_url: &str,
        credentials: Arc<dyn CredentialSource>,
    ) -> (WebResponse, Option<String>) {
        let (body, error) = match &self.response {
            None => ("Event Created".to_string(), None),
            // The request's params are the context, with the owner's credentials.
            Some(id) => match self
                .templates
                .render(id, &context_of(params).with_credentials(credentials))
            {
                Ok(b) => (b, None),
                Err(e) => (
                    "Event Created".to_string(),
                    Some(format!("rendering option \"response\" failed: {e}")),
                ),
            },
        };
        let mut resp = WebResponse {
            status: self.code,
            body,
            content_type: "text/plain; charset=utf-8".into(),
            headers: self.response_headers.clone(),
            location: None,
            refusal: None,
        };
        if self.redirects() {
            let target = url::Url::parse(request_url)
                .and_then(|base| base.join(resp.body.trim()))
                .map(|u| u.to_string())
                .unwrap_or_else(|_| resp.body.trim().to_string());
            resp.location = Some(target);
            resp.body = String::new();
        }
        (resp, error)
    }
}

fn flatten(v: Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::context::no_credentials;
    use serde_json::json;

    fn hook(options: Value) -> Webhook {
        Webhook::new(&options).unwrap()
    }

    #[test]
    fn secret_is_required_and_named() {
        let err = Webhook::new(&json!({})).err().unwrap();
        assert_eq!(err.option, "secret");
        let err = Webhook::new(&json!({"secret": "a.b"})).err().unwrap();
        assert!(err.to_string().contains("must not contain"));
    }

    #[test]
    fn verbs_are_checked_after_the_secret() {
        let h = hook(json!({"secret": "s", "verbs": "put, post,get"}));
        assert_eq!(h.authorize("x", "DELETE").unwrap_err().status, 401);
        let r = h.authorize("s", "DELETE").unwrap_err();
        assert_eq!(r.body, "Please use PUT/POST/GET requests only");
        assert!(h.authorize("s", "GET").is_ok());
    }

    #[test]
    fn payload_path_selects_and_splits_arrays() {
        let h = hook(json!({"secret": "s", "payload_path": "some_key.people"}));
        let params = json!({"some_key": {"people": [{"name": "bob"}, {"name": "jon"}]}});
        let events = h.payloads(params, &[]).unwrap();
        assert_eq!(events, vec![json!({"name": "bob"}), json!({"name": "jon"})]);
    }

    #[test]
    fn scalars_are_refused_with_the_path() {
        let h = hook(json!({"secret": "s", "payload_path": "$.n"}));
        let err = h.payloads(json!({"n": 5}), &[]).unwrap_err();
        assert_eq!(err.status, 422);
        assert!(err.body.contains("payload_path \"$.n\""), "{}", err.body);
    }

    #[test]
    fn payload_path_runs_inside_the_jsonpath_bounds() {
        let err = Webhook::new(&json!({"secret": "s", "payload_path": "$..*..*..*..*..*..*"}))
            .err()
            .unwrap();
        assert_eq!(err.option, "payload_path");
        assert!(err.problem.contains("(JSONPath descendant limit)"), "{err}");
        let h = hook(json!({"secret": "s", "payload_path": "$..*"}));
        let wide = json!({"items": (0..20_000).collect::<Vec<_>>()});
        let err = h.payloads(wide, &[]).unwrap_err();
        assert_eq!(err.status, 422);
        assert_eq!(
            err.body,
            "payload_path \"$..*\" would select more than 10000 values (JSONPath result limit)"
        );
    }

    #[test]
    fn event_headers_are_copied_only_when_asked() {
        let headers = vec![
            ("accept".to_string(), "application/xml".to_string()),
            ("x-hello-world".to_string(), "Hello Huginn".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        let plain = hook(json!({"secret": "s"}));
        assert_eq!(
            plain.payloads(json!({"a": 1}), &headers).unwrap(),
            vec![json!({"a": 1})]
        );
        let h = hook(
            json!({"secret": "s", "event_headers": "Accept,X-Hello-World", "event_headers_key": "X-HTTP-HEADERS"}),
        );
        assert_eq!(
            h.payloads(json!({"a": 1}), &headers).unwrap(),
            vec![
                json!({"a": 1, "X-HTTP-HEADERS": {"Accept": "application/xml", "X-Hello-World": "Hello Huginn"}})
            ]
        );
    }

    #[test]
    fn redirect_codes_need_and_resolve_a_target() {
        assert_eq!(
            Webhook::new(&json!({"secret": "s", "code": 302}))
                .err()
                .unwrap()
                .option,
            "response"
        );
        let h = hook(json!({"secret": "s", "code": "302", "response": "/thanks"}));
        let (r, _) = h.response(
            &json!({}),
            "http://h:1/users/1/web_requests/2/s",
            no_credentials(),
        );
        assert_eq!(r.status, 302);
        assert_eq!(r.location.as_deref(), Some("http://h:1/thanks"));
    }

    #[test]
    fn response_renders_with_the_params() {
        let h = hook(json!({"secret": "s", "response": "ok {{ name }}", "code": 200}));
        let (r, err) = h.response(&json!({"name": "ada"}), "http://h/", no_credentials());
        assert_eq!((r.status, r.body.as_str(), err), (200, "ok ada", None));
        let empty = hook(json!({"secret": "s", "response": ""}));
        assert_eq!(
            empty
                .response(&json!({}), "http://h/", no_credentials())
                .0
                .body,
            ""
        );
    }

    #[test]
    fn header_styles() {
        assert_eq!(
            HeaderStyle::Capitalized.apply("x-hello-world"),
            "X-Hello-World"
        );
        assert_eq!(
            HeaderStyle::Snakecased.apply("X-Hello-World"),
            "x_hello_world"
        );
        assert_eq!(HeaderStyle::Downcased.apply("X-Hello"), "x-hello");
    }
}
