//! `commander` — Huginn's CommanderAgent: when it runs on its schedule or receives an
//! event, it asks the hub to run, enable or disable its control targets (`action`, a
//! Liquid template rendered with the received event). Like `scheduler`, the hub carries
//! out the action on the targets and logs it.
//!
//! Not done: Huginn's `configure` action (rewriting the targets' options) is refused
//! when saved, and the `target` variable is not available to the `action` template (the
//! action is rendered once for all targets).

use serde_json::Value;

use super::json_parse::text_of;
use super::{AgentCtx, Behavior, ControlAction, OptionError, opt_bool};
use crate::store::events::EventRow;
use crate::template::{RenderCtx, TemplateId, Templates};

pub struct Commander {
    templates: Templates,
    action: TemplateId,
    drop_pending_events: bool,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Commander::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Commander::new(options)?))
}

/// An action the commander does not know.
#[derive(Debug, thiserror::Error)]
#[error("Unsupported action '{0}' ignored")]
struct UnsupportedAction(String);

fn action_of(
    text: &str,
    drop_pending_events: bool,
) -> Result<Option<ControlAction>, UnsupportedAction> {
    match text.trim() {
        "run" => Ok(Some(ControlAction::Run)),
        "enable" => Ok(Some(ControlAction::Enable {
            drop_pending_events,
        })),
        "disable" => Ok(Some(ControlAction::Disable)),
        "" => Ok(None),
        other => Err(UnsupportedAction(other.to_string())),
    }
}

impl Commander {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let drop_pending_events = opt_bool(options, "drop_pending_events")?.unwrap_or(false);
        let action = match options.get("action") {
            None | Some(Value::Null) => {
                return Err(OptionError::new("action", "must be specified"));
            }
            Some(v) => text_of(Some(v)),
        };
        let templated = action.contains("{%") || action.contains("{{");
        if action == "configure" {
            return Err(OptionError::new(
                "action",
                "\"configure\" is not supported by muninn yet: use run, enable or disable",
            ));
        }
        if !templated && action_of(&action, drop_pending_events).is_err() {
            return Err(OptionError::new(
                "action",
                format!("is invalid (got {action:?}): use run, enable or disable"),
            ));
        }
        let mut templates = Templates::liquid();
        let action = templates
            .add("action", &action)
            .map_err(OptionError::template)?;
        Ok(Commander {
            templates,
            action,
            drop_pending_events,
        })
    }

    fn control(&self, ctx: &mut AgentCtx<'_>, rctx: &RenderCtx<'_>) {
        let text = match self.templates.render(&self.action, rctx) {
            Ok(t) => t,
            Err(e) => {
                ctx.error(format!("Could not interpolate the action: {e}"));
                return;
            }
        };
        match action_of(&text, self.drop_pending_events) {
            Ok(Some(action)) => ctx.control(action),
            Ok(None) => ctx.log("No action is performed."),
            Err(e) => ctx.error(e.to_string()),
        }
    }
}

impl Behavior for Commander {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        self.control(ctx, &RenderCtx::new());
    }

    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        self.control(ctx, &rctx);
    }
}
