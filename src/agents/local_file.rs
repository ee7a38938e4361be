//! `local_file` — Huginn's LocalFileAgent, confined to the operator's `[files]
//! allowed_dirs` (see [`super::files`]). `mode: read` emits a file pointer
//! `{"file_pointer": {"file", "agent_id"}}` for the file at `path`, or for every file in
//! the directory at `path`, when it runs (default `every_1h`); `mode: write` writes each
//! received event's rendered `data` to the rendered `path` (or appends, `append: true`)
//! and emits the file's pointer. A `read_file` agent reads what a pointer names.
//!
//! `watch: true`: Huginn watches the path continuously; here each run compares the
//! files with what the last run saw (memory `watched`) and emits one pointer per change
//! with `event_type` `modified`, `added` or `removed` (the first run only looks).

use std::path::Path;
use std::time::UNIX_EPOCH;

use serde_json::{Map, Value, json};

use super::files::FileError;
use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::ids::AgentId;
use crate::store::events::EventRow;
use crate::template::{RenderCtx, TemplateError, TemplateId, Templates};

pub const NAME: &str = crate::agent_kind::Kind::LocalFile.name();

pub struct LocalFile {
    write: bool,
    watch: bool,
    templates: Templates,
    path: TemplateId,
    data: TemplateId,
    append: TemplateId,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    LocalFile::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(LocalFile::new(options)?))
}

/// Huginn's `option_provided?` and a boolean: `true`/`false` or their text.
fn required_bool(options: &Value, key: &str) -> Result<bool, OptionError> {
    let v = options.get(key);
    let provided = matches!(v, Some(Value::Bool(false))) || present(v);
    match boolify(v).filter(|_| provided) {
        Some(b) => Ok(b),
        None => Err(OptionError::new(
            key,
            format!(
                "is required: The '{key}' option is required and must be set to 'true' or 'false'"
            ),
        )),
    }
}

/// A file pointer as Huginn's FileHandling makes it (unsigned: see the README).
pub fn file_pointer(file: &str, agent_id: AgentId) -> Value {
    json!({"file_pointer": {"file": file, "agent_id": agent_id}})
}

impl LocalFile {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let write = match options.get("mode").and_then(Value::as_str) {
            Some("read") => false,
            Some("write") => true,
            _ => {
                return Err(OptionError::new(
                    "mode",
                    "is required: The 'mode' option is required and must be set to 'read' or 'write'",
                ));
            }
        };
        let watch = required_bool(options, "watch")?;
        required_bool(options, "append")?;
        if !present(options.get("path")) {
            return Err(OptionError::new(
                "path",
                "is required: The 'path' option is required.",
            ));
        }
        let mut templates = Templates::liquid();
        let mut add =
            |name: &str, text: String| templates.add(name, &text).map_err(OptionError::template);
        let path = add("path", text_of(options.get("path")))?;
        let data = match options.get("data") {
            None | Some(Value::Null) => add("data", "{{ data }}".into())?,
            v => add("data", text_of(v))?,
        };
        let append = add("append", text_of(options.get("append")))?;
        Ok(LocalFile {
            write,
            watch,
            templates,
            path,
            data,
            append,
        })
    }

    /// The path rendered without an event (read mode).
    fn path(&self, ctx: &AgentCtx<'_>) -> Result<String, ReadError> {
        let rctx = RenderCtx::new().with_credentials(ctx.credentials.clone());
        self.templates
            .render(&self.path, &rctx)
            .map(|p| p.trim().to_string())
            .map_err(ReadError::Path)
    }

    /// The files at `path`: itself, or those in the directory it names.
    fn files(ctx: &AgentCtx<'_>, path: &str) -> Result<Vec<String>, ReadError> {
        let policy = ctx.files();
        let resolved = policy.resolve(path)?;
        if !resolved.exists() {
            return Err(ReadError::Missing(path.to_string()));
        }
        if resolved.is_dir() {
            Ok(policy
                .list(Path::new(path))?
                .iter()
                .filter_map(|p| p.to_str().map(str::to_string))
                .collect())
        } else {
            Ok(vec![path.to_string()])
        }
    }

    fn watched(ctx: &mut AgentCtx<'_>, files: &[String]) {
        let now: Map<String, Value> = files
            .iter()
            .map(|f| {
                let stamp = std::fs::metadata(f)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
                    .and_then(|(t, len)| Some((t.duration_since(UNIX_EPOCH).ok()?, len)))
                    .map(|(d, len)| format!("{}.{:09}:{len}", d.as_secs(), d.subsec_nanos()))
                    .unwrap_or_default();
                (f.clone(), Value::String(stamp))
            })
            .collect();
        let before = ctx
            .memory
            .get("watched")
            .and_then(Value::as_object)
            .cloned();
        let id = ctx.agent.id;
        if let Some(before) = &before {
            for (file, stamp) in &now {
                let change = match before.get(file) {
                    None => "added",
                    Some(old) if old != stamp => "modified",
                    Some(_) => continue,
                };
                let mut p = file_pointer(file, id);
                p["event_type"] = json!(change);
                ctx.emit(p);
            }
            for file in before.keys().filter(|f| !now.contains_key(*f)) {
                let mut p = file_pointer(file, id);
                p["event_type"] = json!("removed");
                ctx.emit(p);
            }
        }
        if before.as_ref() != Some(&now) {
            let memory = ctx.memory_mut();
            if !memory.is_object() {
                *memory = Value::Object(Map::new());
            }
            memory["watched"] = Value::Object(now);
        }
    }
}

impl Behavior for LocalFile {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        if self.write {
            return;
        }
        let files = match self.path(ctx).and_then(|p| Self::files(ctx, &p)) {
            Ok(f) => f,
            Err(e) => {
                ctx.error(e.to_string());
                return;
            }
        };
        if self.watch {
            Self::watched(ctx, &files);
            return;
        }
        let id = ctx.agent.id;
        for f in files {
            ctx.emit(file_pointer(&f, id));
        }
    }

    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        if !self.write {
            return;
        }
        let rctx = ctx.event_ctx(event, payload);
        let render = |id| self.templates.render(id, &rctx);
        let (path, data, append) =
            match (render(&self.path), render(&self.data), render(&self.append)) {
                (Ok(p), Ok(d), Ok(a)) => (p.trim().to_string(), d, a),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                    ctx.error(format!("Could not interpolate the options: {e}"));
                    return;
                }
            };
        let append = boolify(Some(&Value::String(append))).unwrap_or(false);
        match ctx.files().write(&path, &data, append) {
            Ok(_) => {
                let id = ctx.agent.id;
                ctx.emit(file_pointer(&path, id));
            }
            Err(e) => ctx.error(e.to_string()),
        }
    }
}

/// Why a local_file agent in read mode found no files.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("Could not interpolate the path: {0}")]
    Path(TemplateError),
    #[error(transparent)]
    Files(#[from] FileError),
    #[error("File or directory '{0}' does not exist")]
    Missing(String),
}
