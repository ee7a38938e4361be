//! `slack` — Huginn's SlackAgent: posts each received event to a Slack incoming webhook
//! (`webhook_url`, or the old `team_name` + `auth_token` form) as the slack-notifier gem
//! does: a form field `payload` holding `{"username", "channel", ..., "text"}`, with
//! `icon` sent as `icon_emoji` (`:name:`) or `icon_url`. Every option is Liquid,
//! rendered per event. The post is sent by the delivery engine (retries, target guard,
//! attempt log), like the post agent's.

use serde_json::{Map, Value};

use super::json_parse::present;
use super::post::PreparedRequest;
use super::{AgentCtx, Behavior, OptionError};
use crate::store::events::EventRow;
use crate::template::{TemplateTree, Templates};

pub const DEFAULT_USERNAME: &str = "Huginn";

/// The options passed on to Slack as they are (Huginn's `ALLOWED_PARAMS`).
const PASSED_ON: &[&str] = &[
    "channel",
    "username",
    "unfurl_links",
    "attachments",
    "blocks",
];

pub struct Slack {
    templates: Templates,
    options: TemplateTree,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Slack::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Slack::new(options)?))
}

impl Slack {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let old_style = present(options.get("auth_token")) && present(options.get("team_name"));
        if !present(options.get("webhook_url")) && !old_style {
            return Err(OptionError::new("webhook_url", "is required"));
        }
        if !present(options.get("channel")) {
            return Err(OptionError::new("channel", "is required"));
        }
        let mut templates = Templates::liquid();
        let options = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(Slack { templates, options })
    }

    /// The request for one event's rendered options.
    pub fn prepare(opts: &Value) -> Result<PreparedRequest, SlackError> {
        let url = webhook_url(opts).ok_or(SlackError::BlankUrl)?;
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(SlackError::NotHttpUrl(url)),
        }
        let mut payload = Map::new();
        payload.insert("username".into(), DEFAULT_USERNAME.into());
        for key in PASSED_ON {
            if let Some(v) = opts.get(*key) {
                payload.insert((*key).into(), v.clone());
            }
        }
        // A blank username falls back to Huginn's default rather than being sent blank.
        if !present(payload.get("username")) {
            payload.insert("username".into(), DEFAULT_USERNAME.into());
        }
        let icon = text(opts.get("icon"));
        if !icon.trim().is_empty() {
            let key = if icon.starts_with(':') {
                "icon_emoji"
            } else {
                "icon_url"
            };
            payload.insert(key.into(), icon.into());
        }
        payload.insert("text".into(), links(&text(opts.get("message"))).into());
        if let Some(Value::Array(attachments)) = payload.get_mut("attachments") {
            for a in attachments.iter_mut() {
                if let Some(Value::String(t)) = a.get_mut("text") {
                    *t = links(t);
                }
            }
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &Value::Object(payload).to_string())
            .finish();
        Ok(PreparedRequest {
            method: "POST".into(),
            url,
            headers: vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body,
            emit: None,
        })
    }
}

/// Why no message could be made for an event.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("Could not interpolate the options: {0}")]
    Options(crate::template::TemplateError),
    #[error("webhook_url rendered blank")]
    BlankUrl,
    #[error("webhook_url {0:?} is not an http or https URL")]
    NotHttpUrl(String),
}

fn text(v: Option<&Value>) -> String {
    super::json_parse::text_of(v)
}

/// `webhook_url`, or the old-style URL Huginn builds from `team_name`, `auth_token`
/// and `webhook` (default `incoming-webhook`).
fn webhook_url(opts: &Value) -> Option<String> {
    let url = text(opts.get("webhook_url"));
    if !url.trim().is_empty() {
        return Some(url.trim().to_string());
    }
    let team = text(opts.get("team_name"));
    let token = text(opts.get("auth_token"));
    if team.trim().is_empty() {
        return None;
    }
    let webhook = text(opts.get("webhook"));
    let webhook = if webhook.trim().is_empty() {
        "incoming-webhook".to_string()
    } else {
        webhook
    };
    // Rack's `escape_path`: everything but the unreserved characters is escaped.
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let seg = |s: &str| percent_encoding::utf8_percent_encode(s, PATH).to_string();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &token)
        .finish();
    Some(format!(
        "https://{}.slack.com/services/hooks/{}?{query}",
        seg(&team),
        seg(&webhook)
    ))
}

/// Slack's link syntax for HTML (`<a href="u">t</a>`) and Markdown (`[t](u)`) links,
/// as slack-notifier's message formatter writes them: `<u|t>`.
fn links(s: &str) -> String {
    static HTML: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"<a (?:[^>]*?)href=['"]([^'"]+?)['"](?:[^>]*?)>(.+?)</a>"#).ok()
    });
    static MARKDOWN: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\[([^\[\]]*?)\]\(((?:https?://|mailto:)[^)\s]*?)\)").ok()
    });
    let mut out = s.to_string();
    if let Some(re) = HTML.as_ref() {
        out = re.replace_all(&out, "<$1|$2>").into_owned();
    }
    if let Some(re) = MARKDOWN.as_ref() {
        out = re.replace_all(&out, "<$2|$1>").into_owned();
    }
    out
}

impl Behavior for Slack {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let vars = ctx.event_ctx(event, payload);
        let prepared = self
            .templates
            .render_tree(&self.options, &vars)
            .map_err(SlackError::Options)
            .and_then(|opts| Slack::prepare(&opts));
        match prepared {
            Ok(req) => ctx.request(event.id, req),
            Err(e) => ctx.error(format!(
                "could not prepare the Slack message for event {}: {e}",
                event.id
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload_of(req: &PreparedRequest) -> Value {
        let (_, v) = url::form_urlencoded::parse(req.body.as_bytes())
            .find(|(k, _)| k == "payload")
            .unwrap();
        serde_json::from_str(&v).unwrap()
    }

    #[test]
    fn the_payload_is_what_slack_notifier_sends() {
        let req = Slack::prepare(&json!({
            "webhook_url": "https://hooks.slack.com/services/a/b/c", "channel": "#random",
            "username": "bot", "message": "see [the docs](https://x.example/d)", "icon": ":ghost:",
            "attachments": [{"fallback": "f", "text": "<a href=\"https://y.example\">y</a>"}],
            "not_passed": 1
        }))
        .unwrap();
        assert_eq!(req.url, "https://hooks.slack.com/services/a/b/c");
        assert_eq!(
            payload_of(&req),
            json!({"username": "bot", "channel": "#random", "icon_emoji": ":ghost:",
                   "text": "see <https://x.example/d|the docs>",
                   "attachments": [{"fallback": "f", "text": "<https://y.example|y>"}]})
        );
        let req = Slack::prepare(&json!({"team_name": "myteam", "auth_token": "t&k",
            "channel": "@bob", "message": "hi", "icon": "https://i.example/a.png", "username": ""}))
        .unwrap();
        assert_eq!(
            req.url,
            "https://myteam.slack.com/services/hooks/incoming-webhook?token=t%26k"
        );
        assert_eq!(payload_of(&req)["icon_url"], "https://i.example/a.png");
        assert_eq!(payload_of(&req)["username"], "Huginn");
        assert!(Slack::prepare(&json!({"webhook_url": "ftp://x", "channel": "c"})).is_err());
    }
}
