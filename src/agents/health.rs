//! `working`: whether an agent looks healthy, computed as Huginn does — disabled agents
//! are not working; recent error logs mean not working; many types also expect to have
//! received or created an event within a number of days.
//!
//! One deviation: Huginn only counts errors when the agent has created an event
//! (`last_event_at`), so an agent that fails before ever emitting looks fine. Here an
//! error with no event after it counts, so failures always show.

use chrono::{Duration, NaiveDateTime};
use serde_json::Value;

use crate::store::agents::AgentRow;

#[derive(Debug, Clone, Copy)]
pub enum Health {
    /// Always working (controllers, manual agents).
    Always,
    /// Working unless it logged an error recently.
    NoRecentErrors,
    /// Has received an event, and logged no error since (Huginn's
    /// `received_event_without_error?`: the notifiers).
    ReceivedWithoutError,
    /// Received an event within the option's days, and no recent errors.
    Received {
        option: &'static str,
        default_days: f64,
    },
    /// Created an event within the option's days, and no recent errors.
    Created {
        option: &'static str,
        default_days: f64,
    },
    /// Huginn's HttpStatusAgent: the last status it saw is a positive number.
    LastStatus,
    /// No recent errors, and each of the two options that is set holds: an event created
    /// within `created` days, an event received within `received` days (Huginn's
    /// JavaScriptAgent).
    PeriodsIfSet {
        created: &'static str,
        received: &'static str,
    },
}

fn days(options: &Value, option: &str, default: f64) -> f64 {
    options
        .get(option)
        .and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
        .filter(|d| d.is_finite() && *d > 0.0)
        .unwrap_or(default)
}

fn within(t: Option<NaiveDateTime>, days: f64, now: NaiveDateTime) -> bool {
    // `days` is the user's option (1e308 is a number of days): a window reaching back
    // before the calendar's start holds any time, rather than overflowing.
    let since = Duration::try_milliseconds((days * 86_400_000.0) as i64)
        .and_then(|window| now.checked_sub_signed(window));
    t.is_some_and(|t| since.is_none_or(|since| t > since))
}

/// Errors logged after (or within 2 minutes before) the last event.
fn recent_errors(row: &AgentRow) -> bool {
    match (row.last_error_at, row.last_event_at) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(err), Some(ev)) => err > ev - Duration::minutes(2),
    }
}

pub fn working(health: Health, row: &AgentRow, options: &Value, now: NaiveDateTime) -> bool {
    if row.disabled {
        return false;
    }
    match health {
        Health::Always => true,
        Health::NoRecentErrors => !recent_errors(row),
        Health::ReceivedWithoutError => match (row.last_receive_at, row.last_error_at) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(received), Some(err)) => received > err,
        },
        Health::LastStatus => row
            .memory_json()
            .is_ok_and(|m| super::http_status::working(&m)),
        Health::Received {
            option,
            default_days,
        } => {
            within(
                row.last_receive_at,
                days(options, option, default_days),
                now,
            ) && !recent_errors(row)
        }
        Health::Created {
            option,
            default_days,
        } => {
            within(row.last_event_at, days(options, option, default_days), now)
                && !recent_errors(row)
        }
        Health::PeriodsIfSet { created, received } => {
            let holds = |option: &str, at| {
                options.get(option).is_none_or(|v| {
                    !super::json_parse::present(Some(v))
                        || within(at, days(options, option, 0.0), now)
                })
            };
            !recent_errors(row)
                && holds(created, row.last_event_at)
                && holds(received, row.last_receive_at)
        }
    }
}
