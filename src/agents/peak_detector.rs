//! `peak_detector` — Huginn's PeakDetectorAgent: keeps the values at `value_path` of the
//! events it receives (per group, by `group_by_path`) for `window_duration_in_days`
//! (default 14), and emits `message` when the newest value is more than `std_multiple`
//! (default 3) standard deviations above the mean of the others, once there are more
//! than `min_events` values and no peak was seen within `min_peak_spacing_in_days`
//! (default 2). Memory: `data` (group → [[value, time]]) and `peaks` (group → [time]).

use serde_json::{Map, Value, json};

use super::gap_detector::memory_object;
use super::json_parse::{present, text_of};
use super::{AgentCtx, Behavior, OptionError};
use crate::jsonpath::BoundedPath;
use crate::store::events::EventRow;
use crate::template::{TemplateTree, Templates};

/// Bounds Huginn does not have: groups remembered and values kept per group.
const MAX_GROUPS: usize = 1000;
const MAX_VALUES: usize = 10_000;

pub struct PeakDetector {
    templates: Templates,
    options: TemplateTree,
}

pub fn validate(options: &Value) -> Result<(), OptionError> {
    PeakDetector::new(options).map(|_| ())
}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    Ok(Box::new(PeakDetector::new(options)?))
}

impl PeakDetector {
    pub fn new(options: &Value) -> Result<Self, OptionError> {
        let required = [
            "expected_receive_period_in_days",
            "value_path",
            "min_events",
            "message",
        ];
        if let Some(missing) = required.iter().find(|k| !present(options.get(**k))) {
            return Err(OptionError::new(
                *missing,
                "is required (expected_receive_period_in_days, value_path, min_events and message are required)",
            ));
        }
        let search_url = text_of(options.get("search_url"));
        if !search_url.trim().is_empty() && !search_url.contains("{q}") {
            return Err(OptionError::new(
                "search_url",
                "must include a variable named 'q'",
            ));
        }
        let mut templates = Templates::liquid();
        let options = templates
            .add_tree("options", options)
            .map_err(OptionError::template)?;
        Ok(PeakDetector { templates, options })
    }
}

/// Ruby's `to_f` of an option or a value: numbers, numeric text, else 0.
fn num(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Seconds from an older option in seconds, else a newer one in days, else a default.
fn seconds(opts: &Value, old: &str, days: &str, default_days: f64) -> f64 {
    if present(opts.get(old)) {
        num(opts.get(old)).trunc()
    } else if present(opts.get(days)) {
        num(opts.get(days)) * 86_400.0
    } else {
        default_days * 86_400.0
    }
}

fn first_at(payload: &Value, path: &str) -> Option<Value> {
    BoundedPath::parse_huginn(path)
        .ok()?
        .first(payload)
        .ok()
        .flatten()
        .cloned()
}

/// The mean and standard deviation of all values but the newest.
fn stats(data: &[(f64, f64)]) -> (f64, f64) {
    let values = &data[..data.len().saturating_sub(1)];
    let n = values.len() as f64;
    let mean = values.iter().map(|v| v.0).sum::<f64>() / n;
    let variance = values.iter().map(|v| (v.0 - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

fn series(m: &Map<String, Value>, key: &str, group: &str) -> Vec<Value> {
    m.get(key)
        .and_then(|d| d.get(group))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The event's group: the value at `group_by_path`, else `no_group`.
fn group_of(opts: &Value, payload: &Value) -> String {
    let group_path = text_of(opts.get("group_by_path"));
    match (!group_path.trim().is_empty())
        .then(|| first_at(payload, &group_path))
        .flatten()
    {
        None | Some(Value::Null) => "no_group".to_string(),
        Some(v) => text_of(Some(&v)),
    }
}

/// Stores a group's values (`data`: [[value, time]]) and peak times in memory.
fn remember(m: &mut Map<String, Value>, group: &str, data: Vec<(f64, f64)>, peaks: Vec<f64>) {
    let data: Vec<Value> = data
        .into_iter()
        .map(|(v, t)| json!([v, t as i64]))
        .collect();
    for (key, list) in [
        ("data", data),
        (
            "peaks",
            peaks.into_iter().map(|p| json!(p as i64)).collect(),
        ),
    ] {
        let entry = m.entry(key).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        if let Some(o) = entry.as_object_mut() {
            o.insert(group.to_string(), Value::Array(list));
        }
    }
}

impl Behavior for PeakDetector {
    fn receive(&mut self, ctx: &mut AgentCtx<'_>, event: &EventRow, payload: &Value) {
        let rctx = ctx.event_ctx(event, payload);
        let opts = match self.templates.render_tree(&self.options, &rctx) {
            Ok(o) => o,
            Err(e) => {
                ctx.error(format!("Could not interpolate the options: {e}"));
                return;
            }
        };
        let group = group_of(&opts, payload);
        let value = num(first_at(payload, &text_of(opts.get("value_path"))).as_ref());
        let time = event.created_at.and_utc().timestamp() as f64;
        let window = seconds(&opts, "window_duration", "window_duration_in_days", 14.0);
        let spacing = seconds(&opts, "peak_spacing", "min_peak_spacing_in_days", 2.0);
        let std_multiple = if present(opts.get("std_multiple")) {
            num(opts.get("std_multiple"))
        } else {
            3.0
        };
        let min_events = num(opts.get("min_events")).trunc() as usize;
        let Some(m) = memory_object(ctx) else {
            return;
        };
        let groups = m.get("data").and_then(Value::as_object).map_or(0, Map::len);
        if groups >= MAX_GROUPS && m.get("data").and_then(|d| d.get(&group)).is_none() {
            ctx.error(format!(
                "Not remembering group {group:?}: {MAX_GROUPS} groups are remembered already"
            ));
            return;
        }
        let mut data: Vec<(f64, f64)> = series(m, "data", &group)
            .iter()
            .map(|d| (num(d.get(0)), num(d.get(1))))
            .collect();
        data.push((value, time));
        data.retain(|d| d.1 > time - window);
        let excess = data.len().saturating_sub(MAX_VALUES);
        data.drain(..excess);
        let mut peaks: Vec<f64> = series(m, "peaks", &group)
            .iter()
            .map(|p| num(Some(p)))
            .collect();
        let mut found = None;
        if data.len() > min_events && peaks.last().is_none_or(|last| *last < time - spacing) {
            let (mean, std) = stats(&data);
            if value > mean + std_multiple * std {
                peaks.push(time);
                peaks.retain(|p| *p > time - window);
                found = Some(json!({
                    "message": opts.get("message").cloned().unwrap_or(Value::Null),
                    "peak": value,
                    "peak_time": time,
                    "grouped_by": group,
                }));
            }
        }
        remember(m, &group, data, peaks);
        if let Some(p) = found {
            ctx.emit(p);
        }
    }
}
