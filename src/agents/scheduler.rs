//! `scheduler` — Huginn's SchedulerAgent: on its cron `schedule` it runs, enables or
//! disables its control targets (`action`). The Clock fires it; the Hub carries out the
//! action on the targets.

use serde_json::Value;

use super::schedule::Schedule;
use super::{AgentCtx, Behavior, ControlAction, OptionError, opt_bool, opt_str};

pub struct Scheduler {
    action: ControlAction,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Scheduler::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(Scheduler::new(options)?))
}

/// A scheduler's own schedule lives in its options (default hourly, as in Huginn).
pub fn schedule_text(options: &Value) -> String {
    options
        .get("schedule")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("0 * * * *")
        .to_string()
}

impl Scheduler {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let drop_pending_events = opt_bool(options, "drop_pending_events")?.unwrap_or(false);
        let action = match opt_str(options, "action")?.map(str::trim) {
            None | Some("") | Some("run") => ControlAction::Run,
            Some("enable") => ControlAction::Enable {
                drop_pending_events,
            },
            Some("disable") => ControlAction::Disable,
            Some(other) => {
                return Err(OptionError::new(
                    "action",
                    format!("must be run, enable or disable (got {other:?})"),
                ));
            }
        };
        Schedule::parse(&schedule_text(options), chrono_tz::Tz::UTC)
            .map_err(|e| OptionError::new("schedule", e.to_string()))?;
        Ok(Scheduler { action })
    }
}

impl Behavior for Scheduler {
    fn check(&mut self, ctx: &mut AgentCtx<'_>) {
        ctx.control(self.action);
    }
}
