//! `imap_folder` — Huginn's ImapFolderAgent: on its schedule (default every 30 minutes)
//! or when run, it logs in to an IMAP server (`host`, `port`, `ssl`, `username`,
//! `password`), reads the new mails of each of its `folders`, and emits one event per
//! mail that meets its `conditions` (`subject`/`body` regexes whose named captures
//! become `matches`, `from`/`to`/`cc` glob patterns, `is_unread`, `has_attachment`;
//! `mime_types` chooses the body part). Matched mails can be marked as read
//! (`mark_as_read`) or deleted (`delete`). Memory, as Huginn's: `lastseen` (per
//! UIDVALIDITY, the last UID seen; the first visit to a folder only records it) and
//! `notified` (the recent Message-Ids, so one mail found twice is emitted once).
//!
//! The options are Liquid (a password from `{% credential %}`), rendered at each run.
//! The session ([`session`]) is an async task the AgentActor runs on its arbiter; the
//! mail rules are in [`mail`]. Unlike Huginn, what a failed run did before it failed is
//! remembered (Huginn forgets the run's progress and may emit those mails again).

pub mod glob;
pub mod mail;
pub mod session;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::task::{Task, TaskOutput};
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::net::HeaderStyle;
use crate::template::{TemplateTree, Templates};
use glob::Glob;
use mail::{Conditions, HeaderChoice, Shape};
use session::RunResult;

/// Huginn's default `mime_types`.
const DEFAULT_MIME_TYPES: [&str; 3] = ["text/plain", "text/enriched", "text/html"];

/// The options of one run, read (and rendered).
#[derive(Debug)]
pub struct Settings {
    pub host: String,
    pub port: Option<u16>,
    pub ssl: bool,
    pub username: String,
    pub password: String,
    pub folders: Vec<String>,
    pub conditions: Conditions,
    pub shape: Shape,
    pub mark_as_read: bool,
    pub delete: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Settings::parse(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Settings::parse(options)?;
    let mut templates = Templates::liquid();
    let tree = templates
        .add_tree("options", options)
        .map_err(OptionError::template)?;
    Ok(Box::new(ImapFolder {
        templates,
        tree,
        running: false,
    }))
}

fn present(v: Option<&Value>) -> bool {
    super::json_parse::present(v)
}

/// A user's regex, bounded in size (as the trigger agent's); case-sensitive as Ruby's,
/// `(?i)` turns case off.
fn user_regex(key: &str, v: &Value) -> Result<regex::Regex, OptionError> {
    let option = format!("conditions.{key}");
    let Value::String(pattern) = v else {
        return Err(OptionError::new(option, "contains a non-string object"));
    };
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|_| OptionError::new(option, "contains an invalid regexp"))
}

fn globs(key: &str, v: &Value) -> Result<Vec<Glob>, OptionError> {
    let option = format!("conditions.{key}");
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|p| match p {
            Value::String(s) => Glob::new(s)
                .map_err(|_| OptionError::new(&option, "contains an invalid glob pattern")),
            _ => Err(OptionError::new(&option, "contains a non-string object")),
        })
        .collect()
}

fn conditions(options: &Value) -> Result<Conditions, OptionError> {
    let Some(Value::Object(map)) = options.get("conditions") else {
        return Err(OptionError::new("conditions", "must be a hash"));
    };
    let mut c = Conditions::default();
    for (key, value) in map {
        if !present(Some(value)) && value != &Value::Bool(false) {
            continue;
        }
        match key.as_str() {
            "subject" => c.subject = Some(user_regex(key, value)?),
            "body" => c.body = Some(user_regex(key, value)?),
            "from" => c.from = Some(globs(key, value)?),
            "to" => c.to = Some(globs(key, value)?),
            "cc" => c.cc = Some(globs(key, value)?),
            "is_unread" | "has_attachment" => {
                let b = boolify(Some(value)).ok_or_else(|| {
                    OptionError::new(
                        format!("conditions.{key}"),
                        "must be a boolean value or null",
                    )
                })?;
                if key == "is_unread" {
                    c.is_unread = Some(b);
                } else {
                    c.has_attachment = Some(b);
                }
            }
            other => c.unknown.push(other.to_string()),
        }
    }
    Ok(c)
}

/// A list option of strings (`folders`, `mime_types`), Huginn's messages.
fn string_list(
    options: &Value,
    key: &str,
    items: &str,
) -> Result<Option<Vec<String>>, OptionError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            let list: Option<Vec<String>> =
                a.iter().map(|v| v.as_str().map(str::to_string)).collect();
            let list =
                list.ok_or_else(|| OptionError::new(key, format!("may only contain {items}")))?;
            if list.is_empty() {
                return Err(OptionError::new(key, "should not be empty"));
            }
            Ok(Some(list))
        }
        Some(_) => Err(OptionError::new(key, "must be an array")),
    }
}

/// Huginn's `is_positive_integer?`: an integer (or its text) of 0 or more.
fn non_negative_integer(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn flag(options: &Value, key: &str) -> Result<bool, OptionError> {
    let v = options.get(key);
    if !present(v) && v != Some(&Value::Bool(false)) {
        return Ok(false);
    }
    boolify(v).ok_or_else(|| OptionError::new(key, "must be a boolean value"))
}

fn header_choice(options: &Value) -> Result<Option<HeaderChoice>, OptionError> {
    let style = match options.get("event_headers_style") {
        None | Some(Value::Null) => HeaderStyle::Capitalized,
        Some(Value::String(s)) => match s.as_str() {
            "" | "capitalized" => HeaderStyle::Capitalized,
            "downcased" => HeaderStyle::Downcased,
            "snakecased" => HeaderStyle::Snakecased,
            "raw" => HeaderStyle::Raw,
            _ => return Err(bad_style()),
        },
        Some(_) => return Err(bad_style()),
    };
    let key = match options.get("event_headers_key") {
        None | Some(Value::Null) => "headers".to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => "headers".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(OptionError::new(
                "event_headers_key",
                "if provided, must be a string",
            ));
        }
    };
    let names: Vec<String> = match options.get("event_headers") {
        v if !present(v) => return Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        Some(Value::String(s)) => s.split(',').map(|n| n.trim().to_string()).collect(),
        _ => {
            return Err(OptionError::new(
                "event_headers",
                "if provided, must be an array of strings or a comma separated string",
            ));
        }
    };
    Ok(Some(HeaderChoice { names, style, key }))
}

fn bad_style() -> OptionError {
    OptionError::new(
        "event_headers_style",
        "if provided, must be 'capitalized', 'downcased', 'snakecased' or 'raw'",
    )
}

impl Settings {
    pub fn parse(options: &Value) -> Result<Settings, OptionError> {
        let text = |key: &str| match options.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(OptionError::new(key, "is required and must be a string")),
        };
        let (host, username, password) = (text("host")?, text("username")?, text("password")?);
        let port = match options.get("port") {
            v if !present(v) => None,
            Some(v) => {
                let n = non_negative_integer(v)
                    .ok_or_else(|| OptionError::new("port", "must be a positive integer"))?;
                Some(u16::try_from(n).map_err(|_| {
                    OptionError::new(
                        "port",
                        format!("must be a port number, 65535 at most (got {n})"),
                    )
                })?)
            }
            None => None,
        };
        let ssl = flag(options, "ssl")?;
        let mark_as_read = flag(options, "mark_as_read")?;
        let delete = flag(options, "delete")?;
        let include_raw_mail = flag(options, "include_raw_mail")?;
        let mime_types = string_list(options, "mime_types", "strings that match \"text/*\".")?;
        if let Some(m) = &mime_types
            && !m.iter().all(|t| t.starts_with("text/"))
        {
            return Err(OptionError::new(
                "mime_types",
                "may only contain strings that match \"text/*\".",
            ));
        }
        // Huginn's default options name INBOX; a missing list reads as that.
        let folders =
            string_list(options, "folders", "strings")?.unwrap_or_else(|| vec!["INBOX".into()]);
        let conditions = conditions(options)?;
        if present(options.get("expected_update_period_in_days"))
            && options
                .get("expected_update_period_in_days")
                .and_then(non_negative_integer)
                .is_none()
        {
            return Err(OptionError::new(
                "expected_update_period_in_days",
                "has an invalid format (Invalid expected_update_period_in_days format)",
            ));
        }
        let shape = Shape {
            mime_types: mime_types
                .unwrap_or_else(|| DEFAULT_MIME_TYPES.iter().map(|s| s.to_string()).collect()),
            include_raw_mail,
            headers: header_choice(options)?,
        };
        Ok(Settings {
            host: host.trim().to_string(),
            port,
            ssl,
            username,
            password,
            folders,
            conditions,
            shape,
            mark_as_read,
            delete,
        })
    }
}

pub struct ImapFolder {
    templates: Templates,
    tree: TemplateTree,
    /// A run is under way: a check meanwhile would read the same mails again.
    running: bool,
}

/// The `lastseen` memory: UIDVALIDITY (as text) → last UID.
fn lastseen_of(memory: &Value) -> BTreeMap<u32, u32> {
    memory
        .get("lastseen")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, u32::try_from(v.as_u64()?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn notified_of(memory: &Value) -> Vec<String> {
    memory
        .get("notified")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Behavior for ImapFolder {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        if self.running {
            ctx.log("The previous check is still reading the mailbox; this one is skipped");
            return;
        }
        let rendered = match self.templates.render_tree(&self.tree, &ctx.render_ctx()) {
            Ok(v) => v,
            Err(e) => return ctx.error(format!("Cannot render the options: {}", e.0)),
        };
        let settings = match Settings::parse(&rendered) {
            Ok(s) => Arc::new(s),
            Err(e) => return ctx.error(format!("Cannot run: {e}")),
        };
        let lastseen = lastseen_of(ctx.memory);
        let notified = notified_of(ctx.memory);
        self.running = true;
        ctx.spawn_task(Task::new(move |env| {
            Box::pin(async move {
                let done =
                    session::run(settings, lastseen, notified, env.allow_private_targets).await;
                Box::new(done) as TaskOutput
            })
        }));
    }

    fn task_done(&mut self, ctx: &mut AgentCtx<'_>, output: TaskOutput) {
        self.running = false;
        let Ok(done) = output.downcast::<RunResult>() else {
            return;
        };
        let RunResult {
            events,
            logs,
            error,
            mut lastseen,
            notified,
        } = *done;
        for l in logs {
            ctx.log(l);
        }
        if let Some(e) = &error {
            ctx.error(format!("The IMAP check failed: {e}"));
            // The folders this run did not reach keep what was known of them.
            for (k, v) in lastseen_of(ctx.memory) {
                lastseen.entry(k).or_insert(v);
            }
        }
        for e in events {
            ctx.emit(e);
        }
        let memory = ctx.memory_mut();
        if !memory.is_object() {
            *memory = Value::Object(Map::new());
        }
        if let Some(m) = memory.as_object_mut() {
            m.remove("seen");
            m.insert(
                "lastseen".into(),
                Value::Object(
                    lastseen
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), Value::from(v)))
                        .collect(),
                ),
            );
            m.insert(
                "notified".into(),
                Value::Array(notified.into_iter().map(Value::String).collect()),
            );
        }
    }
}

#[cfg(test)]
mod tests;
