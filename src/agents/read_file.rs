//! `read_file` — Huginn's ReadFileAgent: for each received event with a file pointer
//! (`file_pointer: {file, agent_id}`, as `local_file` emits), reads the file and emits
//! `{data_key: contents}`. Reads stay inside `[files] allowed_dirs` and under
//! `[files] max_file_bytes` (see [`super::files`]); an event without a pointer is
//! skipped, as in Huginn.

use serde_json::{Map, Value};

use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError, boolify};
use crate::store::events::EventRow;
use crate::template::{RenderCtx, TemplateId, Templates};

pub const NAME: &str = crate::agent_kind::Kind::ReadFile.name();

pub struct ReadFile {
    templates: Templates,
    data_key: TemplateId,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    ReadFile::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(ReadFile::new(options)?))
}

impl ReadFile {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("data_key")) {
            return Err(OptionError::new(
                "data_key",
                "is required: The 'data_key' options is required.",
            ));
        }
        let signed = options.get("require_signed_file_pointer");
        let provided = matches!(signed, Some(Value::Bool(false))) || present(signed);
        if provided && boolify(signed).is_none() {
            return Err(OptionError::new(
                "require_signed_file_pointer",
                "is invalid: if provided, require_signed_file_pointer must be a boolean value",
            ));
        }
        let mut templates = Templates::liquid();
        let data_key = templates
            .add("data_key", &text_of(options.get("data_key")))
            .map_err(OptionError::template)?;
        Ok(ReadFile {
            templates,
            data_key,
        })
    }
}

impl Behavior for ReadFile {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, _event: &EventRow, payload: &Value) {
        let pointer = payload.get("file_pointer");
        let file = pointer.and_then(|p| p.get("file")).and_then(Value::as_str);
        let has_agent = pointer.is_some_and(|p| present(p.get("agent_id")));
        let Some(file) = file.filter(|f| !f.is_empty() && has_agent) else {
            return;
        };
        let rctx = RenderCtx::new().with_credentials(ctx.credentials.clone());
        let key = match self.templates.render(&self.data_key, &rctx) {
            Ok(k) => k,
            Err(e) => {
                ctx.error(format!("Could not interpolate data_key: {e}"));
                return;
            }
        };
        match ctx.files().read(file) {
            Ok(contents) => {
                let mut out = Map::new();
                out.insert(key, Value::String(contents));
                ctx.emit(Value::Object(out));
            }
            Err(e) => ctx.error(e.to_string()),
        }
    }
}
