//! `phantom_js_cloud` — Huginn's PhantomJsCloudAgent: builds a phantomjscloud.com
//! browser-API URL that renders `url` (for a website agent to fetch) and emits it as
//! `{"url": ...}`, on its schedule or per received event (`mode: merge` keeps the
//! event's payload). It makes no request itself.

use serde_json::{Map, Value};

use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::store::events::EventRow;
use crate::template::{RenderCtx, TemplateTree, Templates};

/// Huginn's default User-Agent (`DEFAULT_HTTP_USER_AGENT` unset).
pub const DEFAULT_USER_AGENT: &str = "Huginn - https://github.com/huginn/huginn";
const DEFAULT_WAIT_INTERVAL: i64 = 1000;

pub struct PhantomJsCloud {
    templates: Templates,
    options: TemplateTree,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    PhantomJsCloud::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(PhantomJsCloud::new(options)?))
}

impl PhantomJsCloud {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("url")) {
            return Err(OptionError::new("url", "is required (Url is required)"));
        }
        if !present(options.get("api_key")) {
            return Err(OptionError::new(
                "api_key",
                "is required (API key (credential) is required)",
            ));
        }
        let mut templates = Templates::liquid();
        let options = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(PhantomJsCloud { templates, options })
    }

    /// Renders the options and emits the URL (merged into `merge_into` in merge mode).
    fn emit(&self, ctx: &mut AgentCtx<'_>, vars: &RenderCtx<'_>, merge_into: Option<&Value>) {
        let opts = match self.templates.render_tree(&self.options, vars) {
            Ok(o) => o,
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let request = request_json(&opts);
        ctx.log(format!("Generated request: {request}"));
        let url = phantom_url(&text_of(opts.get("api_key")), &request);
        let mut out = match (text_of(opts.get("mode")).as_str(), merge_into) {
            ("merge", Some(Value::Object(m))) => m.clone(),
            _ => Map::new(),
        };
        out.insert("url".into(), Value::String(url));
        ctx.emit(Value::Object(out));
    }
}

/// A rendered option, or its default when blank (Huginn's `presence || default`).
fn or_default(opts: &Value, key: &str, default: &str) -> String {
    let v = text_of(opts.get(key));
    if v.trim().is_empty() {
        default.to_string()
    } else {
        v
    }
}

/// A JSON string as Rails' `to_json` writes it: `<`, `>`, `&` and the two Unicode line
/// separators escaped.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in Value::String(s.to_string()).to_string().chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The page request, keys in Huginn's order: url, renderType, outputAsJson (when
/// on), requestSettings (ignoreImages when on, userAgent, wait_interval when not 1000).
pub fn request_json(opts: &Value) -> String {
    let flag = |key: &str| present(opts.get(key)) && boolify(opts.get(key)) == Some(true);
    let mut out = format!(
        "{{\"url\":{},\"renderType\":{}",
        json_string(&text_of(opts.get("url"))),
        json_string(&or_default(opts, "render_type", "html"))
    );
    if flag("output_as_json") {
        out.push_str(",\"outputAsJson\":true");
    }
    let mut settings = Vec::new();
    if flag("ignore_images") {
        settings.push("\"ignoreImages\":true".to_string());
    }
    let agent = or_default(opts, "user_agent", DEFAULT_USER_AGENT);
    settings.push(format!("\"userAgent\":{}", json_string(&agent)));
    let wait = wait_interval(opts);
    if wait != DEFAULT_WAIT_INTERVAL {
        settings.push(format!("\"wait_interval\":{wait}"));
    }
    out.push_str(&format!(
        ",\"requestSettings\":{{{}}}}}",
        settings.join(",")
    ));
    out
}

/// `wait_interval` as Ruby's `to_i` (default 1000).
fn wait_interval(opts: &Value) -> i64 {
    let t = text_of(opts.get("wait_interval"));
    let t = t.trim();
    if t.is_empty() {
        return DEFAULT_WAIT_INTERVAL;
    }
    let end = t
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    t[..end].parse().unwrap_or(0)
}

/// The browser-API URL, the request escaped as ERB's `url_encode` does (everything
/// but letters, digits and `-._~`).
pub fn phantom_url(api_key: &str, request: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(request, KEEP);
    format!("https://phantomjscloud.com/api/browser/v2/{api_key}/?request={encoded}")
}

impl Behavior for PhantomJsCloud {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let vars = ctx.render_ctx();
        self.emit(ctx, &vars, None);
    }

    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let vars = ctx.event_ctx(event, payload);
        self.emit(ctx, &vars, Some(payload));
    }
}
