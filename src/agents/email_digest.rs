//! `email_digest` — Huginn's EmailDigestAgent: keeps received events' payloads in
//! memory (`queue`, with their ids in `events`) and, when it runs (default 5am),
//! sends one mail listing them all, then empties the queue. Nothing queued, no mail.

use serde_json::Value;

use super::email::EmailOptions;
use super::{AgentCtx, Behavior, OptionError};
use crate::mail::message;
use crate::store::events::EventRow;

/// The most events one digest holds; older ones are dropped (with a log line), so a
/// digest whose schedule never comes cannot grow its memory without bound.
pub const MAX_QUEUED: usize = 1000;

pub struct EmailDigest {
    options: EmailOptions,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    EmailOptions::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(EmailDigest {
        options: EmailOptions::new(options)?,
    }))
}

/// `memory[key]` as a list, made one if it is something else.
pub fn list<'m>(memory: &'m mut Value, key: &str) -> Option<&'m mut Vec<Value>> {
    if !memory.is_object() {
        *memory = Value::Object(Default::default());
    }
    let slot = memory
        .as_object_mut()?
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
}

/// Pushes `v` onto `memory[key]`, keeping the newest `max`; returns how many fell off.
pub fn push_bounded(memory: &mut Value, key: &str, v: Value, max: usize) -> usize {
    let Some(l) = list(memory, key) else { return 0 };
    l.push(v);
    let excess = l.len().saturating_sub(max);
    l.drain(..excess);
    excess
}

impl Behavior for EmailDigest {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let memory = ctx.memory_mut();
        let dropped = push_bounded(memory, "queue", payload.clone(), MAX_QUEUED);
        push_bounded(memory, "events", Value::from(event.id.0), MAX_QUEUED);
        if dropped > 0 {
            ctx.error(format!(
                "The digest holds {MAX_QUEUED} events, the most it keeps: the oldest was dropped to make room for event {}",
                event.id
            ));
        }
    }

    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let queued = ctx
            .memory
            .get("queue")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if queued.is_empty() {
            return;
        }
        let ids: Vec<i64> = ctx
            .memory
            .get("events")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let rctx = ctx.render_ctx();
        let made = self.options.render(&rctx).and_then(|mut mail| {
            mail.groups = queued.iter().map(message::present).collect();
            mail.event_ids = ids.clone();
            self.options.queue(ctx, &rctx, None, mail)
        });
        match made {
            Ok(()) => {
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                ctx.log(format!("Sending digest mail with events [{list}]"));
                if let Some(m) = ctx.memory_mut().as_object_mut() {
                    m.insert("queue".into(), Value::Array(Vec::new()));
                    m.insert("events".into(), Value::Array(Vec::new()));
                }
            }
            // The queue is kept: the next run tries again.
            Err(e) => ctx.error(format!("Error sending digest mail: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::event_formatting::tests_support::{event, row};
    use serde_json::json;

    #[test]
    fn runs_at_5am_unless_told_otherwise() {
        let mut r = row();
        r.agent_type = "Agents::EmailDigestAgent".into();
        assert_eq!(crate::agents::schedule_of(&r).as_deref(), Some("5am"));
        r.agent_type = "digest".into();
        assert_eq!(crate::agents::schedule_of(&r).as_deref(), Some("6am"));
        r.agent_type = "email".into();
        assert_eq!(crate::agents::schedule_of(&r), None);
    }

    #[test]
    fn collects_then_sends_one_mail_and_nothing_when_empty() {
        let mut b = build(&json!({"subject": "Digest {{_agent_.name}}", "headline": "Your notifications:", "expected_receive_period_in_days": "2"})).unwrap();
        let row = row();
        let mut memory = json!({});
        for p in [json!({"message": "one"}), json!({"data": "two"})] {
            let mut ctx = AgentCtx::new(&row, &mut memory);
            b.receive(&mut ctx, &event(&p), &p);
        }
        assert_eq!(memory["queue"].as_array().map(Vec::len), Some(2));
        let mut ctx = AgentCtx::new(&row, &mut memory);
        b.check(&mut ctx);
        assert_eq!(ctx.mails.len(), 1);
        let m = &ctx.mails[0].1;
        assert_eq!(m.groups.len(), 2);
        assert_eq!(m.event_ids, vec![7, 7]);
        assert_eq!(m.subject, "Digest a");
        assert_eq!(memory["queue"], json!([]));
        let mut ctx = AgentCtx::new(&row, &mut memory);
        b.check(&mut ctx);
        assert!(ctx.mails.is_empty());
    }
}
