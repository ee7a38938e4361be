//! Data-driven cases for agent types, from `fixtures/agents/<type>.json` (taken from
//! each type's Huginn spec): options that must be refused (with the message), and
//! received events → emitted events (and memory), run through the type's behaviour.
//!
//! A case: `{"name", "options", "invalid"?: "part of the message", "memory"?: {...},
//! "events"?: [payload...], "emits"?: [payload...], "memory_after"?: {...},
//! "error_logged"?: "part of an error log"}`.

use serde_json::Value;

use super::event_formatting::tests_support::{event, row};
use super::{AgentCtx, kind};
use crate::store::agent_logs::LEVEL_ERROR;

const FILES: &[(&str, &str)] = &[
    ("jq", include_str!("../../fixtures/agents/jq.json")),
    (
        "json_parse",
        include_str!("../../fixtures/agents/json_parse.json"),
    ),
    (
        "change_detector",
        include_str!("../../fixtures/agents/change_detector.json"),
    ),
    (
        "attribute_difference",
        include_str!("../../fixtures/agents/attribute_difference.json"),
    ),
    (
        "gap_detector",
        include_str!("../../fixtures/agents/gap_detector.json"),
    ),
    (
        "peak_detector",
        include_str!("../../fixtures/agents/peak_detector.json"),
    ),
    (
        "commander",
        include_str!("../../fixtures/agents/commander.json"),
    ),
    ("csv", include_str!("../../fixtures/agents/csv.json")),
    (
        "shell_command",
        include_str!("../../fixtures/agents/shell_command.json"),
    ),
];

fn run_case(type_name: &str, case: &Value) -> Result<(), String> {
    let k = kind(type_name).ok_or("unknown type")?;
    let options = &case["options"];
    if let Some(want) = case["invalid"].as_str() {
        return match k.validate(options) {
            Ok(()) => Err(format!(
                "options were accepted; want an error with {want:?}"
            )),
            Err(e) if e.to_string().contains(want) => Ok(()),
            Err(e) => Err(format!("error {e:?} does not contain {want:?}")),
        };
    }
    let mut behavior = k.build(options).map_err(|e| format!("refused: {e}"))?;
    let row = row();
    let mut memory = case
        .get("memory")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let mut emitted = Vec::new();
    let mut errors = Vec::new();
    for (i, p) in case["events"].as_array().into_iter().flatten().enumerate() {
        let mut ev = event(p);
        // Events a second apart, in order (peak and gap detectors read the times).
        ev.created_at = chrono::DateTime::from_timestamp(1_700_000_000 + i as i64 * 3600, 0)
            .map(|t| t.naive_utc())
            .unwrap_or(ev.created_at);
        let mut ctx = AgentCtx::new(&row, &mut memory);
        behavior.receive(&mut ctx, &ev, p);
        emitted.extend(ctx.emitted);
        errors.extend(
            ctx.logs
                .into_iter()
                .filter(|l| l.level == LEVEL_ERROR)
                .map(|l| l.message),
        );
    }
    if let Some(want) = case.get("emits") {
        let got = Value::Array(emitted);
        if &got != want {
            return Err(format!("emitted {got}, want {want} (errors: {errors:?})"));
        }
    }
    if let Some(want) = case.get("memory_after")
        && &memory != want
    {
        return Err(format!("memory {memory}, want {want}"));
    }
    if let Some(want) = case["error_logged"].as_str()
        && !errors.iter().any(|e| e.contains(want))
    {
        return Err(format!("no error log with {want:?}: {errors:?}"));
    }
    Ok(())
}

#[test]
fn agent_fixture_cases() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (type_name, text) in FILES {
        let cases: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let cases = cases["cases"].as_array().cloned().unwrap_or_default();
        assert!(
            !cases.is_empty(),
            "fixtures/agents/{type_name}.json has no cases"
        );
        for case in cases {
            count += 1;
            if let Err(e) = run_case(type_name, &case) {
                failures.push(format!("{type_name} / {}: {e}", case["name"]));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
