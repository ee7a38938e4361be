//! `digest` — Huginn's DigestAgent: collects received events and, when it runs
//! (default 6am), emits one event `{"events": [payloads], "message": ...}` where
//! `message` is rendered from the `message` option with `events` in scope. With
//! `retained_events` N > 0 the newest N events stay for later digests (a rolling
//! window); with 0 the queue empties after each digest. Huginn keeps event ids and
//! reads the events back; here the payloads are kept in memory beside the ids
//! (`queue`), so a digest does not depend on its sources' events outliving it.

use serde_json::{Map, Value};

use super::email_digest::{MAX_QUEUED, list, push_bounded};
use super::{AgentCtx, Behavior, OptionError, opt_number, type_name};
use crate::store::events::EventRow;
use crate::template::{TemplateTree, Templates};

const DEFAULT_MESSAGE: &str = "{{ events | map: 'message' | join: ',' }}";

pub struct Digest {
    templates: Templates,
    message: TemplateTree,
    retained: usize,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Digest::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Digest::new(options)?))
}

impl Digest {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        // Huginn: `to_i`, so a blank or absent value is 0.
        let retained = opt_number(options, "retained_events")
            .map_err(|_| OptionError::new("retained_events", "must be 0 to 999"))?
            .unwrap_or(0.0);
        if !(0.0..1000.0).contains(&retained) {
            return Err(OptionError::new("retained_events", "must be 0 to 999"));
        }
        opt_number(options, "expected_receive_period_in_days")?;
        let mut templates = Templates::liquid();
        let message = match options.get("message") {
            None | Some(Value::Null) => Value::String(DEFAULT_MESSAGE.into()),
            Some(v @ Value::String(_)) => v.clone(),
            Some(other) => {
                return Err(OptionError::new(
                    "message",
                    format!("must be a string (got {})", type_name(other)),
                ));
            }
        };
        let message = templates
            .add_tree("message", &message)
            .map_err(OptionError::template)?;
        Ok(Digest {
            templates,
            message,
            retained: retained as usize,
        })
    }
}

impl Behavior for Digest {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let max = if self.retained > 0 {
            self.retained
        } else {
            MAX_QUEUED
        };
        let mut entry = Map::new();
        entry.insert("id".into(), Value::from(event.id.0));
        entry.insert("payload".into(), payload.clone());
        let dropped = push_bounded(ctx.memory_mut(), "queue", Value::Object(entry), max);
        if dropped > 0 && self.retained == 0 {
            ctx.error(format!(
                "The digest holds {MAX_QUEUED} events, the most it keeps: the oldest was dropped to make room for event {}",
                event.id
            ));
        }
    }

    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let events: Vec<Value> = ctx
            .memory
            .get("queue")
            .and_then(Value::as_array)
            .map(|q| q.iter().filter_map(|e| e.get("payload").cloned()).collect())
            .unwrap_or_default();
        if events.is_empty() {
            return;
        }
        let mut rctx = ctx.render_ctx();
        rctx.set("events", Value::Array(events.clone()));
        let message = match self.templates.render_tree(&self.message, &rctx) {
            Ok(v) => v,
            Err(e) => {
                ctx.error(format!("option \"message\" could not be rendered: {e}"));
                return;
            }
        };
        let mut out = Map::new();
        out.insert("events".into(), Value::Array(events));
        out.insert("message".into(), message);
        ctx.emit(Value::Object(out));
        if self.retained == 0
            && let Some(q) = list(ctx.memory_mut(), "queue")
        {
            q.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::event_formatting::tests_support::{event, row};
    use serde_json::json;

    fn run(options: Value, batches: &[&[&str]]) -> Vec<Value> {
        let mut d = Digest::new(&options).unwrap();
        let row = row();
        let mut memory = json!({});
        let mut out = Vec::new();
        for batch in batches {
            for m in *batch {
                let p = json!({"message": m});
                let mut ctx = AgentCtx::new(&row, &mut memory);
                d.receive(&mut ctx, &event(&p), &p);
            }
            let mut ctx = AgentCtx::new(&row, &mut memory);
            d.check(&mut ctx);
            out.extend(ctx.emitted);
        }
        out
    }

    #[test]
    fn emits_one_digest_and_clears() {
        let out = run(json!({}), &[&["a", "b"], &[]]);
        assert_eq!(
            out,
            vec![json!({"events": [{"message": "a"}, {"message": "b"}], "message": "a,b"})]
        );
    }

    #[test]
    fn retained_events_roll() {
        let out = run(json!({"retained_events": "2"}), &[&["a", "b", "c"], &["d"]]);
        assert_eq!(out[0]["message"], "b,c");
        assert_eq!(out[1]["message"], "c,d");
    }

    #[test]
    fn retained_events_is_bounded() {
        for bad in [
            json!({"retained_events": 1000}),
            json!({"retained_events": "-1"}),
        ] {
            assert_eq!(
                Digest::new(&bad).err().map(|e| e.to_string()).as_deref(),
                Some("option \"retained_events\" must be 0 to 999")
            );
        }
    }
}
