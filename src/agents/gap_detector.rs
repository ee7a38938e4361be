//! `gap_detector` — Huginn's GapDetectorAgent: remembers when it last received an event
//! whose `value_path` (JSONPath; any event when blank) holds a present value, and on its
//! schedule (default every 10 minutes) emits `message` once when that was longer than
//! `window_duration_in_days` ago. A new event with a value re-arms the alert.

use serde_json::{Value, json};

use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError};
use crate::jsonpath::BoundedPath;
use crate::store::events::EventRow;
use crate::template::{TemplateTree, Templates};

pub struct GapDetector {
    templates: Templates,
    options: TemplateTree,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    GapDetector::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(GapDetector::new(options)?))
}

fn window_days(v: Option<&Value>) -> f64 {
    let t = text_of(v);
    t.trim().parse::<f64>().unwrap_or(0.0)
}

impl GapDetector {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        if !present(options.get("message")) {
            return Err(OptionError::new("message", "is required"));
        }
        let window = options.get("window_duration_in_days");
        if !present(window) || window_days(window) <= 0.0 {
            return Err(OptionError::new(
                "window_duration_in_days",
                "must be provided as an integer or floating point number",
            ));
        }
        let mut templates = Templates::liquid();
        let options = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(GapDetector { templates, options })
    }

    fn interpolated(&self, ctx: &mut AgentCtx<'_>) -> Option<Value> {
        let rctx = crate::template::RenderCtx::new();
        match self.templates.render_tree(&self.options, &rctx) {
            Ok(o) => Some(o),
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                None
            }
        }
    }
}

pub(crate) fn memory_object<'a>(
    ctx: &'a mut AgentCtx<'_>,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let memory = ctx.memory_mut();
    if !memory.is_object() {
        *memory = Value::Object(Default::default());
    }
    memory.as_object_mut()
}

impl Behavior for GapDetector {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let Some(opts) = self.interpolated(ctx) else {
            return;
        };
        let path = text_of(opts.get("value_path"));
        let counts = if path.trim().is_empty() {
            true
        } else {
            match BoundedPath::parse_huginn(&path) {
                Ok(p) => present(p.first(payload).ok().flatten()),
                Err(e) => {
                    ctx.error(format!(
                        "option \"value_path\" is not a valid JSONPath: {e}"
                    ));
                    return;
                }
            }
        };
        let newest = ctx
            .memory
            .get("newest_event_created_at")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let at = event.created_at.and_utc().timestamp();
        if counts
            && at > newest
            && let Some(m) = memory_object(ctx)
        {
            m.insert("newest_event_created_at".into(), json!(at));
            m.remove("alerted_at");
        }
    }

    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let Some(opts) = self.interpolated(ctx) else {
            return;
        };
        let Some(newest) = ctx
            .memory
            .get("newest_event_created_at")
            .and_then(Value::as_i64)
        else {
            return;
        };
        let window = window_days(opts.get("window_duration_in_days")) * 86_400.0;
        let now = chrono::Utc::now().timestamp();
        if (newest as f64) >= now as f64 - window || ctx.memory.get("alerted_at").is_some() {
            return;
        }
        if let Some(m) = memory_object(ctx) {
            m.insert("alerted_at".into(), json!(now));
        }
        ctx.emit(json!({
            "message": opts.get("message").cloned().unwrap_or(Value::Null),
            "gap_started_at": newest,
        }));
    }
}
