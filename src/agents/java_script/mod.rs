//! `java_script` — Huginn's JavaScriptAgent: runs the user's JavaScript `code` (or the
//! code kept in the credential named by `code: "credential:NAME"`), calling its
//! `Agent.check` on the schedule (default: never) and `Agent.receive` for each received
//! event, with Huginn's API on `this`: `createEvent`, `incomingEvents`, `memory`,
//! `setMemory`, `deleteKey`, `credential`, `options`, `log`, `error`, `escapeHtml`,
//! `unescapeHtml`, `kvs`. `this.credential(name, value)` comes back in the worker's
//! answer and is saved by the agent's actor through the credentials service (the child
//! process never writes anything). Not built: Huginn's `fetch`, `fetchAll`, `URL` and
//! `URLSearchParams`. Errors (a syntax error, an exception, a limit) are logged as
//! `JavaScript error: ...`; what the code did before that still counts, as in Huginn.
//!
//! An insecure type (see `agents::insecure`): it runs only when the operator enabled
//! them, in the sandbox's child process (`worker`, the `muninn-js` program), with the
//! engine's own bounds and the configured limits. CoffeeScript (Huginn's other `language`) is
//! refused when the agent is saved.

pub mod protocol;
pub mod worker;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::json_parse::present;
use super::{AgentCtx, Behavior, OptionError};
use crate::store::events::EventRow;
use crate::template::liquid::has_markup;
use crate::template::{TemplateTree, Templates};

pub const NAME: &str = crate::agent_kind::Kind::JavaScript.name();

/// The most credentials one run saves (`this.credential(name, value)`, distinct
/// names): each is a write and, for a new name, a row the owner keeps, so a loop over
/// it would otherwise add thousands per run, every run.
pub const MAX_CREDENTIAL_SAVES: usize = 20;

pub struct JavaScript {
    templates: Templates,
    options: TemplateTree,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    JavaScript::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(JavaScript::new(options)?))
}

/// The credential `code` names (`credential:NAME`), as Huginn reads it.
fn credential_named(code: &str) -> Option<&str> {
    code.trim().strip_prefix("credential:")
}

impl JavaScript {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("code")) {
            return Err(OptionError::new(
                "code",
                "is required: The 'code' option is required",
            ));
        }
        if !options["code"].is_string() {
            return Err(OptionError::new(
                "code",
                "must be the JavaScript code as text",
            ));
        }
        match options.get("language") {
            None | Some(Value::Null) => {}
            Some(Value::String(l)) if l.trim().is_empty() || has_markup(l) => {}
            Some(Value::String(l)) if l.eq_ignore_ascii_case("javascript") => {}
            Some(Value::String(l)) if l.eq_ignore_ascii_case("coffeescript") => {
                return Err(OptionError::new(
                    "language",
                    "CoffeeScript is not supported: muninn runs JavaScript only; compile the \
                     code to JavaScript and set \"language\": \"JavaScript\"",
                ));
            }
            Some(_) => {
                return Err(OptionError::new(
                    "language",
                    "must be JavaScript (Huginn's The 'language' must be JavaScript or \
                     CoffeeScript; muninn runs JavaScript only)",
                ));
            }
        }
        let mut templates = Templates::liquid();
        let tree = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(JavaScript {
            templates,
            options: tree,
        })
    }

    fn handle(&self, ctx: &mut AgentCtx<'_>, function: &str, incoming: Vec<Value>) {
        let Some(limits) = ctx.insecure else {
            ctx.error(format!(
                "Unable to run: {}",
                super::insecure::not_enabled(NAME)
            ));
            return;
        };
        let rctx = ctx.render_ctx();
        let options = match self.templates.render_tree(&self.options, &rctx) {
            Ok(o) => o,
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let written = options["code"].as_str().unwrap_or_default();
        let code = match credential_named(written) {
            Some(name) => match ctx.credentials.credential(name) {
                Some(code) => code,
                None => {
                    ctx.error("Unable to find credential");
                    return;
                }
            },
            None => written.to_string(),
        };
        let credentials: BTreeMap<String, String> = ctx
            .credentials
            .names()
            .into_iter()
            .filter_map(|n| ctx.credentials.credential(&n).map(|v| (n, v)))
            .collect();
        let kvs: serde_json::Map<String, Value> = ctx
            .directory
            .map(|dir| {
                dir.stores_for(ctx.agent.id, ctx.agent.user_id)
                    .into_iter()
                    .map(|(variable, store)| (variable, (*store).clone()))
                    .collect()
            })
            .unwrap_or_default();
        let memory = ctx.memory.as_object().cloned().unwrap_or_default();
        let request = protocol::Request {
            code,
            function: function.to_string(),
            options,
            memory: memory.clone(),
            incoming_events: incoming,
            credentials,
            kvs,
            timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
            memory_bytes: limits.memory_bytes,
            max_output_bytes: limits.max_output_bytes,
        };
        let answer = match worker::run(request, &limits) {
            Ok(a) => a,
            Err(why) => {
                ctx.error(why.to_string());
                return;
            }
        };
        let mut saves = Vec::new();
        for action in answer.actions {
            match action {
                protocol::Action::Emit(payload) => ctx.emit(payload),
                protocol::Action::Log(m) => ctx.log(m),
                protocol::Action::Error(m) => ctx.error(m),
                protocol::Action::SetCredential { name, value } => saves.push((name, value)),
            }
        }
        save_credentials(ctx, saves);
        if answer.memory != memory {
            *ctx.memory_mut() = Value::Object(answer.memory);
        }
        if let Some(e) = answer.error {
            ctx.error(e);
        }
    }
}

/// Saves what the run set with `this.credential(name, value)`: a name's last value
/// only (one write per name), and at most [`MAX_CREDENTIAL_SAVES`] names.
fn save_credentials(ctx: &mut AgentCtx<'_>, set: Vec<(String, String)>) {
    let mut saves: Vec<(String, String)> = Vec::new();
    let mut place: std::collections::HashMap<String, usize> = Default::default();
    for (name, value) in set {
        match place.get(&name).and_then(|&i| saves.get_mut(i)) {
            Some(save) => save.1 = value,
            None => {
                place.insert(name.clone(), saves.len());
                saves.push((name, value));
            }
        }
    }
    if saves.len() > MAX_CREDENTIAL_SAVES {
        ctx.error(format!(
            "JavaScript error: the code saved {} credentials in one run; only the first \
             {MAX_CREDENTIAL_SAVES} were saved",
            saves.len()
        ));
        saves.truncate(MAX_CREDENTIAL_SAVES);
    }
    for (name, value) in saves {
        ctx.save_credential(name, value);
    }
}

/// An event as `this.incomingEvents()` shows it (Huginn's event JSON).
fn event_json(event: &EventRow, payload: &Value) -> Value {
    json!({
        "id": event.id,
        "agent_id": event.agent_id,
        "payload": payload,
        "created_at": crate::time::ts(event.created_at),
    })
}

impl Behavior for JavaScript {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        self.handle(ctx, "receive", vec![event_json(event, payload)]);
    }

    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        self.handle(ctx, "check", Vec::new());
    }
}
