//! `liquid_output` — Huginn's LiquidOutputAgent: answers its web-request URL (any
//! extension: `.html`, `.json`, ...) with its `content` Liquid template rendered on what
//! it received — the last event (`Last event in`), all events merged (`Merge events`),
//! or the newest `event_limit` events as `events` (`Last X events`).
//!
//! This module owns the options and the rendering; `service::page` reads
//! the agent's row (memory) and, in `Last X events` mode, its sources' events, and
//! answers. The ETag is a hash of the rendered page, so a client's copy is reported
//! current exactly when it is (Huginn keeps a time stamp in memory, which in
//! `Last X events` mode is not renewed by new events).

use chrono::{Months, NaiveDateTime};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::store::events::EventRow;
use crate::template::liquid::CredentialSource;
use crate::template::{RenderCtx, TemplateError, TemplateId, TemplateTree, Templates};

pub const NAME: &str = crate::agent_kind::Kind::LiquidOutput.name();

/// Huginn's cap on `event_limit`, and the count used when none is given.
pub const MAX_EVENTS: usize = 1000;

const DATE_UNITS: &[&str] = &[
    "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks",
    "month", "months", "year", "years",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    LastEventIn,
    MergeEvents,
    LastXEvents,
    /// Any other text: nothing is remembered, the page renders on `{}`.
    Other,
}

impl Mode {
    fn of(options: &Value) -> Mode {
        match text_of(options.get("mode")).to_lowercase().as_str() {
            "last event in" => Mode::LastEventIn,
            "merge events" => Mode::MergeEvents,
            "last x events" => Mode::LastXEvents,
            _ => Mode::Other,
        }
    }
}

/// `event_limit` as a time span: "15 minutes", "1 day", "2 Years".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateLimit {
    value: i64,
    unit: &'static str,
}

impl DateLimit {
    fn parse(text: &str) -> Option<DateLimit> {
        if !text.contains(' ') {
            return None;
        }
        let mut parts = text.split_whitespace();
        let value = ruby_integer(parts.next()?)?;
        let unit = parts.next().unwrap_or_default().to_lowercase();
        let unit = DATE_UNITS.iter().find(|u| **u == unit)?;
        Some(DateLimit { value, unit })
    }

    /// The time `value unit` before `now` (months and years by the calendar).
    pub fn before(&self, now: NaiveDateTime) -> NaiveDateTime {
        // `value` is the user's number: a span past the calendar's ends reaches its end
        // (every event, or none for a negative span) rather than overflowing.
        let secs = |n: i64| {
            chrono::Duration::try_seconds(self.value.saturating_mul(n))
                .and_then(|span| now.checked_sub_signed(span))
                .unwrap_or(if self.value < 0 {
                    NaiveDateTime::MAX
                } else {
                    NaiveDateTime::MIN
                })
        };
        let months = |n: i64| {
            let m = u32::try_from(self.value.saturating_mul(n).clamp(0, 120_000)).unwrap_or(0);
            now.checked_sub_months(Months::new(m))
                .unwrap_or(NaiveDateTime::MIN)
        };
        match self.unit.trim_end_matches('s') {
            "second" => secs(1),
            "minute" => secs(60),
            "hour" => secs(3600),
            "day" => secs(86_400),
            "week" => secs(7 * 86_400),
            "month" => months(1),
            _ => months(12),
        }
    }
}

/// Ruby's `Integer(text)` for decimal text: optional sign, digits, `_` between digits,
/// surrounding blanks.
fn ruby_integer(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !well_formed {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// `event_limit` as Huginn's `Integer(...)` reads it: a JSON integer or integer text.
fn integer_limit(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => ruby_integer(s),
        _ => None,
    }
}

/// What the web-request URL answers with a matching secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub body: String,
    /// `mime_type`, with a charset as Rails adds one.
    pub content_type: String,
    /// Quoted strong validator: a hash of the body.
    pub etag: String,
    /// `Cache-Control: max-age` = `expected_receive_period_in_days` in seconds.
    pub max_age: u64,
    /// The rendered `response_headers` (they override the defaults).
    pub headers: Vec<(String, String)>,
}

pub struct LiquidOutput {
    templates: Templates,
    secret: TemplateId,
    content: TemplateId,
    response_headers: Option<TemplateTree>,
    mode: Mode,
    mime_type: String,
    line_break_is_lf: bool,
    max_age: u64,
    count_limit: usize,
    date_limit: Option<DateLimit>,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    LiquidOutput::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(LiquidOutput::new(options)?))
}

/// `secret`: required, one path segment.
fn secret_option(options: &Value) -> Result<String, OptionError> {
    match options.get("secret") {
        v if !present(v) => Err(OptionError::new(
            "secret",
            "is required: Please specify one secret for 'authenticating' incoming feed requests",
        )),
        Some(Value::String(s)) if s.contains(['/', '.']) => {
            Err(OptionError::new("secret", "may not contain a slash or dot"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(OptionError::new("secret", "must be a string")),
    }
}

/// `expected_receive_period_in_days`, read as Ruby's `to_i` does (leading digits of
/// text, a number truncated); it must come to at least 1.
fn receive_period(options: &Value) -> Result<i64, OptionError> {
    let days = match options.get("expected_receive_period_in_days") {
        Some(Value::Number(n)) => n.as_f64().map_or(0, |f| f as i64),
        Some(Value::String(s)) => {
            let t = s.trim();
            let end = t
                .char_indices()
                .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+'))))
                .map_or(t.len(), |(i, _)| i);
            t[..end].parse().unwrap_or(0)
        }
        _ => 0,
    };
    if days <= 0 {
        return Err(OptionError::new(
            "expected_receive_period_in_days",
            "is required: Please provide 'expected_receive_period_in_days' to indicate how many days can pass before this Agent is considered to be not working",
        ));
    }
    Ok(days)
}

/// `event_limit`: a count (at most `MAX_EVENTS`, the default) or a count with a time
/// unit (`2 days`).
fn event_limit(options: &Value) -> Result<(usize, Option<DateLimit>), OptionError> {
    let limit = options.get("event_limit").filter(|v| present(Some(v)));
    let count = limit.map(|v| integer_limit(Some(v)));
    let date_limit = limit.and_then(|v| v.as_str()).and_then(DateLimit::parse);
    match count {
        Some(None) if date_limit.is_none() => {
            return Err(OptionError::new(
                "event_limit",
                "is invalid: Event limit must be an integer that is less than 1001 or an integer plus a valid unit.",
            ));
        }
        Some(Some(n)) if n > MAX_EVENTS as i64 => {
            return Err(OptionError::new(
                "event_limit",
                "is too large: For performance reasons, you cannot have an event limit greater than 1000.",
            ));
        }
        _ => {}
    }
    let count_limit = match count.flatten() {
        Some(n) if n >= 0 => (n as usize).min(MAX_EVENTS),
        _ => MAX_EVENTS,
    };
    Ok((count_limit, date_limit))
}

impl LiquidOutput {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let secret = secret_option(options)?;
        let days = receive_period(options)?;
        let (count_limit, date_limit) = event_limit(options)?;
        let mime_type = match text_of(options.get("mime_type")).trim() {
            "" => "text/html".to_string(),
            m => m.to_string(),
        };
        let mut templates = Templates::liquid();
        let secret = templates
            .add("secret", &secret)
            .map_err(OptionError::template)?;
        let content = templates
            .add("content", &text_of(options.get("content")))
            .map_err(OptionError::template)?;
        let response_headers = match options.get("response_headers").filter(|v| present(Some(v))) {
            None => None,
            Some(v @ Value::Object(_)) => Some(
                templates
                    .add_tree("response_headers", v)
                    .map_err(OptionError::template)?,
            ),
            Some(_) => {
                return Err(OptionError::new(
                    "response_headers",
                    "must be an object of header names to values",
                ));
            }
        };
        Ok(LiquidOutput {
            templates,
            secret,
            content,
            response_headers,
            mode: Mode::of(options),
            mime_type,
            line_break_is_lf: boolify(options.get("line_break_is_lf")).unwrap_or(false),
            max_age: (days as u64).saturating_mul(86_400),
            count_limit,
            date_limit,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How many of the newest received events `Last X events` shows.
    pub fn count_limit(&self) -> usize {
        self.count_limit
    }

    /// Events created at or before this are not shown (`event_limit: "1 day"`).
    pub fn shown_after(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        self.date_limit.map(|d| d.before(now))
    }

    /// Whether `given` (from the URL) is the agent's `secret`, rendered.
    pub fn authorized(
        &self,
        given: &str,
        credentials: std::sync::Arc<dyn CredentialSource>,
    ) -> bool {
        let ctx = RenderCtx::new().with_credentials(credentials);
        self.templates
            .render(&self.secret, &ctx)
            .is_ok_and(|s| !s.is_empty() && s == given)
    }

    /// Renders the page: on `memory.last_event` or, in `Last X events` mode, on
    /// `events` (payloads, newest first, already limited).
    pub fn render(
        &self,
        memory: &Value,
        events: Vec<Value>,
        credentials: std::sync::Arc<dyn CredentialSource>,
    ) -> Result<Page, TemplateError> {
        let data = match self.mode {
            Mode::LastXEvents => {
                let mut m = Map::new();
                m.insert("events".into(), Value::Array(events));
                m
            }
            _ => match memory.get("last_event") {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            },
        };
        let ctx = RenderCtx::from_map(data).with_credentials(credentials.clone());
        let mut body = self.templates.render(&self.content, &ctx)?;
        if self.line_break_is_lf {
            body = body.replace("\r\n", "\n");
        }
        let mut headers = Vec::new();
        if let Some(tree) = &self.response_headers {
            let plain = RenderCtx::new().with_credentials(credentials);
            if let Value::Object(m) = self.templates.render_tree(tree, &plain)? {
                headers = m.into_iter().map(|(k, v)| (k, text_of(Some(&v)))).collect();
            }
        }
        let content_type = if self.mime_type.to_ascii_lowercase().contains("charset=") {
            self.mime_type.clone()
        } else {
            format!("{}; charset=utf-8", self.mime_type)
        };
        let digest = Sha256::digest(body.as_bytes());
        Ok(Page {
            etag: format!("\"{}\"", hex::encode(&digest[..16])),
            body,
            content_type,
            max_age: self.max_age,
            headers,
        })
    }
}

impl Behavior for LiquidOutput {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, _event: &EventRow, payload: &Value) {
        let merge = match self.mode {
            Mode::LastEventIn => false,
            Mode::MergeEvents => true,
            Mode::LastXEvents | Mode::Other => return,
        };
        let memory = ctx.memory_mut();
        if !memory.is_object() {
            *memory = Value::Object(Map::new());
        }
        let last = &mut memory["last_event"];
        match (merge, last, payload) {
            (true, Value::Object(kept), Value::Object(new)) => {
                for (k, v) in new {
                    kept.insert(k.clone(), v.clone());
                }
            }
            (_, last, payload) => *last = payload.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::context::no_credentials;
    use serde_json::json;

    fn agent(extra: Value) -> LiquidOutput {
        let mut o = json!({"secret": "s", "expected_receive_period_in_days": 2,
            "mode": "Last X events", "content": "{% for e in events %}{{ e.name }};{% endfor %}"});
        if let (Some(o), Value::Object(extra)) = (o.as_object_mut(), extra) {
            o.extend(extra);
        }
        LiquidOutput::new(&o).unwrap()
    }

    #[test]
    fn limits_by_count_and_time() {
        assert_eq!(agent(json!({})).count_limit(), 1000);
        assert_eq!(agent(json!({"event_limit": "2"})).count_limit(), 2);
        assert_eq!(agent(json!({"event_limit": 3})).count_limit(), 3);
        assert_eq!(agent(json!({"event_limit": "  "})).count_limit(), 1000);
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc();
        let day = agent(json!({"event_limit": "1 DaY"}));
        assert_eq!(day.count_limit(), 1000);
        assert_eq!(day.shown_after(now), Some(now - chrono::Duration::days(1)));
        assert_eq!(agent(json!({"event_limit": "2"})).shown_after(now), None);
        let year = agent(json!({"event_limit": "1 year"}))
            .shown_after(now)
            .unwrap();
        assert_eq!((now - year).num_days(), 365);
    }

    #[test]
    fn renders_events_and_headers_with_a_body_etag() {
        let a = agent(
            json!({"response_headers": {"X-A": "{{ 'h' | upcase }}"}, "mime_type": "text/plain"}),
        );
        let page = a
            .render(
                &json!({}),
                vec![json!({"name": "b"}), json!({"name": "a"})],
                no_credentials(),
            )
            .unwrap();
        assert_eq!(page.body, "b;a;");
        assert_eq!(page.content_type, "text/plain; charset=utf-8");
        assert_eq!(page.headers, vec![("X-A".to_string(), "H".to_string())]);
        assert_eq!(page.max_age, 2 * 86_400);
        let other = a
            .render(&json!({}), vec![json!({"name": "c"})], no_credentials())
            .unwrap();
        assert_ne!(page.etag, other.etag);
    }

    #[test]
    fn line_break_is_lf_and_last_event() {
        let o = json!({"secret": "s", "expected_receive_period_in_days": 1,
            "content": "hello\r\n{{ k }}\r\n", "line_break_is_lf": "true"});
        let a = LiquidOutput::new(&o).unwrap();
        let page = a
            .render(&json!({"last_event": {"k": "v"}}), vec![], no_credentials())
            .unwrap();
        assert_eq!(page.body, "hello\nv\n");
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        assert!(a.authorized("s", no_credentials()));
        assert!(!a.authorized("t", no_credentials()));
    }
}
