//! `change_detector` — Huginn's ChangeDetectorAgent: renders `property` (Liquid, with
//! `last_property` set to the value remembered last) for each received event and passes
//! the event on, unchanged, when the result differs from `memory.last_property`.

use serde_json::Value;

use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError, opt_number};
use crate::store::events::EventRow;
use crate::template::{TemplateId, Templates};

pub struct ChangeDetector {
    templates: Templates,
    property: TemplateId,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    ChangeDetector::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(ChangeDetector::new(options)?))
}

impl ChangeDetector {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("property"))
            || !present(options.get("expected_update_period_in_days"))
        {
            return Err(OptionError::new(
                "property",
                "and \"expected_update_period_in_days\" are both required",
            ));
        }
        opt_number(options, "expected_update_period_in_days")?;
        let mut templates = Templates::liquid();
        let property = templates
            .add("property", &text_of(options.get("property")))
            .map_err(OptionError::template)?;
        Ok(ChangeDetector {
            templates,
            property,
        })
    }
}

impl Behavior for ChangeDetector {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let last = ctx
            .memory
            .get("last_property")
            .cloned()
            .unwrap_or(Value::Null);
        let mut rctx = ctx.event_ctx(event, payload);
        rctx.set("last_property", last.clone());
        let property = match self.templates.render(&self.property, &rctx) {
            Ok(p) => p,
            Err(e) => {
                ctx.error(format!(
                    "option \"property\" could not be rendered for event {}: {e}",
                    event.id
                ));
                return;
            }
        };
        let last_text = text_of(Some(&last));
        if last.as_str() == Some(property.as_str()) {
            ctx.log(format!(
                "Not propagating as incoming event has not changed from {last_text}."
            ));
            return;
        }
        ctx.emit(payload.clone());
        ctx.log(format!(
            "Propagating new event as property has changed to {property} from {last_text}"
        ));
        let memory = ctx.memory_mut();
        if !memory.is_object() {
            *memory = Value::Object(Default::default());
        }
        if let Some(m) = memory.as_object_mut() {
            m.insert("last_property".into(), Value::String(property));
        }
    }
}
