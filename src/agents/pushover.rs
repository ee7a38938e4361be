//! `pushover` — Huginn's PushoverAgent: sends each received event as a push
//! notification through the Pushover API (`[apis] pushover_url` + `/1/messages.json`).
//! Every option is Liquid, rendered per event; a Liquid option Huginn's default
//! options give (`message: {{ message }}`, `title: {{ title }}`, ...) applies when the
//! option is absent, so an event's own fields override the notification's. A blank
//! token, user or message sends nothing, as in Huginn.
//!
//! Two deviations, both for safety: the parameters go in a form body, not the query
//! string Huginn uses (the token would otherwise sit in the delivery log's URL), and
//! the post is sent by the delivery engine (retries, target guard, attempt log).

use serde_json::{Map, Value};

use super::json_parse::present;
use super::post::PreparedRequest;
use super::{AgentCtx, Behavior, OptionError};
use crate::store::events::EventRow;
use crate::template::{TemplateTree, Templates};

/// The parameters Pushover requires; a blank one sends nothing.
const REQUIRED: &[&str] = &["token", "user", "message"];
/// The text parameters passed on when present.
const OPTIONAL: &[&str] = &[
    "device",
    "title",
    "url",
    "url_title",
    "priority",
    "timestamp",
    "sound",
    "retry",
    "expire",
    "ttl",
];
/// The parameters sent as `1`/`0`.
const BOOLEAN: &[&str] = &["html", "monospace"];

pub struct Pushover {
    templates: Templates,
    options: TemplateTree,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Pushover::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Pushover::new(options)?))
}

impl Pushover {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let required = ["token", "user", "expected_receive_period_in_days"];
        if let Some(missing) = required.iter().find(|k| !present(options.get(**k))) {
            return Err(OptionError::new(
                *missing,
                "is required (token, user, and expected_receive_period_in_days are all required.)",
            ));
        }
        let mut with_defaults = options.clone();
        if let Value::Object(m) = &mut with_defaults {
            for key in ["message"].iter().chain(OPTIONAL) {
                m.entry(*key)
                    .or_insert_with(|| Value::String(format!("{{{{ {key} }}}}")));
            }
        }
        let mut templates = Templates::liquid();
        let options = templates
            .add_tree("options", &with_defaults)
            .map_err(OptionError::template)?;
        Ok(Pushover { templates, options })
    }
}

/// A rendered option as Huginn's `String.try_convert(value.presence)`: non-blank text.
/// A number is taken as its text (Huginn would drop it silently).
fn param(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The form parameters for one event's rendered options; None when a required one is
/// blank (nothing is sent).
pub fn params(opts: &Value) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for key in REQUIRED {
        out.push((key.to_string(), param(opts.get(*key))?));
    }
    for key in OPTIONAL {
        let Some(mut value) = param(opts.get(*key)) else {
            continue;
        };
        // Pushover's limits: 512 characters of URL, 100 of URL title.
        let limit = match *key {
            "url" => Some(512),
            "url_title" => Some(100),
            _ => None,
        };
        if let Some(limit) = limit {
            value = value.chars().take(limit).collect();
        }
        out.push((key.to_string(), value));
    }
    for key in BOOLEAN {
        if present(opts.get(*key)) {
            let on = matches!(
                super::json_parse::text_of(opts.get(*key)).as_str(),
                "true" | "1"
            );
            out.push((key.to_string(), if on { "1" } else { "0" }.to_string()));
        }
    }
    Some(out)
}

impl Behavior for Pushover {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let vars = ctx.event_ctx(event, payload);
        let opts = match self.templates.render_tree(&self.options, &vars) {
            Ok(o) => o,
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let Some(params) = params(&opts) else {
            ctx.log(format!(
                "Event {}: token, user or message rendered blank; no notification sent",
                event.id
            ));
            return;
        };
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        let mut shown = Map::new();
        for (k, v) in &params {
            body.append_pair(k, v);
            if k != "token" {
                shown.insert(k.clone(), Value::String(v.clone()));
            }
        }
        let url = format!(
            "{}/1/messages.json",
            ctx.apis.pushover_url.trim_end_matches('/')
        );
        ctx.request(
            event.id,
            PreparedRequest {
                method: "POST".into(),
                url,
                headers: vec![(
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                )],
                body: body.finish(),
                emit: None,
            },
        );
        ctx.log(format!(
            "Sending the following notification: {}",
            Value::Object(shown)
        ));
    }
}
