//! `github_notifications` — the GithubNotificationsAgent of the huginn_github_notifications
//! gem (joenas): on its schedule (default every 10 minutes) it reads the user's GitHub
//! notifications (`[apis] github_url` + `/notifications`, `Authorization: token
//! <access_token>`) and emits one event per notification (`events: multiple`) or one
//! `{"notifications": [...]}` (`events: single`). Each `subject` gains `repo_name` and
//! `url_web` (the notification's page on github.com). With `last_modified` (default on)
//! it sends the previous answer's `Last-Modified` as `If-Modified-Since`, and a 304
//! emits nothing. The fetch goes through the rss/website machinery (target guard,
//! timeout, size limit).

use serde_json::{Map, Value, json};

use super::json_parse::{present, text_of};
use super::rss::{Fetch, Fetched};
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::template::{TemplateTree, Templates};

/// The gem's User-Agent.
pub const USER_AGENT: &str = "Huginn (https://github.com/cantino/huginn)";

pub struct GithubNotifications {
    templates: Templates,
    options: TemplateTree,
    single: bool,
    last_modified: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    GithubNotifications::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(GithubNotifications::new(options)?))
}

impl GithubNotifications {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("access_token")) {
            return Err(OptionError::new("access_token", "is required"));
        }
        let last_modified = options.get("last_modified");
        if present(last_modified) && boolify(last_modified).is_none() {
            return Err(OptionError::new("last_modified", "must be a boolean value"));
        }
        let last_modified = !present(last_modified) || boolify(last_modified) == Some(true);
        let mut templates = Templates::liquid();
        let tree = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(GithubNotifications {
            templates,
            options: tree,
            single: text_of(options.get("events")) == "single",
            last_modified,
        })
    }
}

/// `https://github.com/<repo>/<pull|issues>/<n>` from a subject's API URL, as the
/// gem's `Subject#url_web` builds it (the repository's page, with a trailing `/`,
/// when the URL is not a pull request's or an issue's).
pub fn url_web(api_url: &str, repo_name: &str) -> String {
    static RE: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"/(pull|issues)s?/(\d+)$").ok());
    let tail = RE
        .as_ref()
        .and_then(|re| re.captures(api_url))
        .map(|c| format!("{}/{}", &c[1], &c[2]))
        .unwrap_or_default();
    format!("https://github.com/{repo_name}/{tail}")
}

/// A notification with the gem's `subject` (title, url, latest_comment_url, type,
/// url_web, repo_name).
fn with_subject(mut notification: Value) -> Value {
    let repo = text_of(notification.pointer("/repository/full_name"));
    let s = notification.get("subject").cloned().unwrap_or(Value::Null);
    let field = |k: &str| match s.get(k) {
        Some(Value::Null) | None => Value::Null,
        Some(v) => Value::String(text_of(Some(v))),
    };
    let api_url = text_of(s.get("url"));
    let subject = json!({
        "title": field("title"),
        "url": field("url"),
        "latest_comment_url": field("latest_comment_url"),
        "type": field("type"),
        "url_web": url_web(&api_url, &repo),
        "repo_name": repo,
    });
    if let Value::Object(m) = &mut notification {
        m.insert("subject".into(), subject);
    }
    notification
}

impl Behavior for GithubNotifications {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let vars = ctx.render_ctx();
        let opts = match self.templates.render_tree(&self.options, &vars) {
            Ok(o) => o,
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let mut headers = vec![
            ("User-Agent".to_string(), USER_AGENT.to_string()),
            (
                "Authorization".to_string(),
                format!("token {}", text_of(opts.get("access_token")).trim()),
            ),
            (
                "Accept".to_string(),
                "application/vnd.github+json".to_string(),
            ),
        ];
        let since = text_of(ctx.memory.get("last_modified"));
        if self.last_modified && !since.trim().is_empty() {
            headers.push(("If-Modified-Since".to_string(), since));
        }
        let url = format!(
            "{}/notifications",
            ctx.apis.github_url.trim_end_matches('/')
        );
        ctx.fetch(Fetch {
            url,
            headers,
            ..Default::default()
        });
    }

    fn fetched(&mut self, ctx: &mut AgentCtx<'_>, _fetch: &Fetch, got: &Fetched) {
        if let Some(e) = &got.error {
            ctx.error(format!("Error during http request: {e}"));
            return;
        }
        // Nothing new since the last answer.
        if got.status == Some(304) {
            return;
        }
        let body = String::from_utf8_lossy(&got.body);
        if got.status.is_some_and(|s| s >= 400) {
            ctx.error(format!("Error during http request: {body}"));
            return;
        }
        let notifications = match serde_json::from_str::<Value>(&body) {
            Ok(Value::Array(items)) => items,
            Ok(_) => {
                ctx.error("GitHub's answer is not a list of notifications");
                return;
            }
            Err(e) => {
                ctx.error(format!("GitHub's answer is not JSON: {e}"));
                return;
            }
        };
        let notifications: Vec<Value> = notifications.into_iter().map(with_subject).collect();
        if self.single {
            let mut m = Map::new();
            m.insert("notifications".into(), Value::Array(notifications));
            ctx.emit(Value::Object(m));
        } else {
            for n in notifications {
                ctx.emit(n);
            }
        }
        let last = got
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("last-modified"))
            .map(|(_, v)| Value::String(v.clone()))
            .unwrap_or(Value::Null);
        let memory = ctx.memory_mut();
        if !memory.is_object() {
            *memory = Value::Object(Map::new());
        }
        if let Value::Object(m) = memory {
            m.insert("last_modified".into(), last);
        }
    }
}
