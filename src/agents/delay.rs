//! `delay` — Huginn's DelayAgent: holds received events (up to `max_events`, keeping
//! the `newest` or `oldest`) and releases them when it runs — on its schedule or when
//! asked — at most `max_emitted_events` at a time, `emit_interval` seconds apart.

use std::time::Duration;

use serde_json::Value;

use super::{AgentCtx, Behavior, OptionError, opt_number, opt_str};
use crate::store::events::EventRow;

/// The most events one delay agent may hold, whatever `max_events` says.
const HARD_MAX: usize = 10_000;

pub struct Delay {
    max_events: usize,
    keep_newest: bool,
    max_emitted: Option<usize>,
    interval: Duration,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Delay::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Delay::new(options)?))
}

impl Delay {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let max_events = opt_number(options, "max_events")?.map_or(100, |n| n as usize);
        if !(1..=HARD_MAX).contains(&max_events) {
            return Err(OptionError::new(
                "max_events",
                format!("must be from 1 to {HARD_MAX}"),
            ));
        }
        let keep_newest = match opt_str(options, "keep")?.map(str::trim) {
            None | Some("") | Some("newest") => true,
            Some("oldest") => false,
            Some(other) => {
                return Err(OptionError::new(
                    "keep",
                    format!("must be \"newest\" or \"oldest\" (got {other:?})"),
                ));
            }
        };
        let max_emitted = match opt_number(options, "max_emitted_events")? {
            None => None,
            Some(n) if n < 1.0 => {
                return Err(OptionError::new(
                    "max_emitted_events",
                    "must be 1 or more, or empty for all",
                ));
            }
            Some(n) => Some(n as usize),
        };
        let interval = Duration::from_secs_f64(
            opt_number(options, "emit_interval")?
                .unwrap_or(0.0)
                .min(86_400.0),
        );
        opt_number(options, "expected_receive_period_in_days")?;
        Ok(Delay {
            max_events,
            keep_newest,
            max_emitted,
            interval,
        })
    }
}

/// The held events in memory, made an array if memory holds something else.
fn held(memory: &mut Value) -> Option<&mut Vec<Value>> {
    if !memory.is_object() {
        *memory = Value::Object(Default::default());
    }
    let map = memory.as_object_mut()?;
    let list = map
        .entry("events")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    list.as_array_mut()
}

impl Behavior for Delay {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, _event: &EventRow, payload: &Value) {
        let (max, newest) = (self.max_events, self.keep_newest);
        let Some(list) = held(ctx.memory_mut()) else {
            return;
        };
        list.push(payload.clone());
        if list.len() > max {
            if newest {
                let excess = list.len() - max;
                list.drain(..excess);
            } else {
                list.truncate(max);
            }
        }
    }

    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        let releasing = ctx
            .memory
            .get("releasing")
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        let available = ctx
            .memory
            .get("events")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if available == 0 {
            if releasing.is_some()
                && let Some(m) = ctx.memory_mut().as_object_mut()
            {
                m.remove("releasing");
            }
            return;
        }
        let budget = releasing.unwrap_or_else(|| self.max_emitted.unwrap_or(usize::MAX));
        let now = if self.interval.is_zero() {
            budget.min(available)
        } else {
            1
        };
        let out: Vec<Value> = held(ctx.memory_mut())
            .map(|l| l.drain(..now).collect())
            .unwrap_or_default();
        let left_budget = budget.saturating_sub(now);
        let left_events = available - now;
        let interval = self.interval;
        if let Some(m) = ctx.memory_mut().as_object_mut() {
            if !interval.is_zero() && left_budget > 0 && left_events > 0 {
                m.insert("releasing".into(), Value::from(left_budget));
            } else {
                m.remove("releasing");
            }
        }
        if !interval.is_zero() && left_budget > 0 && left_events > 0 {
            ctx.check_again_in(interval);
        }
        for p in out {
            ctx.emit(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::event_formatting::tests_support::{event, row};
    use serde_json::json;

    fn feed(d: &mut Delay, memory: &mut Value, n: i64) {
        let row = row();
        let p = json!({"n": n});
        let mut ctx = AgentCtx::new(&row, memory);
        d.receive(&mut ctx, &event(&p), &p);
    }

    #[test]
    fn keeps_newest_and_releases_in_batches() {
        let mut d = Delay::new(&json!({"max_events": 3, "max_emitted_events": 2})).unwrap();
        let mut memory = json!({});
        for n in 0..5 {
            feed(&mut d, &mut memory, n);
        }
        assert_eq!(memory["events"], json!([{"n": 2}, {"n": 3}, {"n": 4}]));
        let row = row();
        let mut ctx = AgentCtx::new(&row, &mut memory);
        d.check(&mut ctx);
        assert_eq!(ctx.emitted, vec![json!({"n": 2}), json!({"n": 3})]);
        assert_eq!(memory["events"], json!([{"n": 4}]));
    }

    #[test]
    fn keeps_oldest_and_spaces_emissions() {
        let mut d =
            Delay::new(&json!({"max_events": 2, "keep": "oldest", "emit_interval": 1})).unwrap();
        let mut memory = json!({});
        for n in 0..3 {
            feed(&mut d, &mut memory, n);
        }
        assert_eq!(memory["events"], json!([{"n": 0}, {"n": 1}]));
        let row = row();
        let mut ctx = AgentCtx::new(&row, &mut memory);
        d.check(&mut ctx);
        assert_eq!(ctx.emitted.len(), 1);
        assert_eq!(ctx.check_again_in, Some(Duration::from_secs(1)));
    }
}
