//! Replays the applicable cases of Huginn's `spec/concerns/liquid_interpolatable_spec.rb`
//! (and the Huginn quirks issue 16 names) from `fixtures/liquid/`.

use serde_json::{Map, Value};

use super::{NoCredentials, compile};
use crate::template::limits::Limits;

const CASES: &str = include_str!("../../../fixtures/liquid/huginn_liquid_interpolatable_spec.json");

#[test]
fn huginn_liquid_interpolatable_spec_cases_pass() {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap_or_default();
    assert!(cases.len() >= 50, "the fixture file has its cases");
    let limits = Limits::default();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let template = case["template"].as_str().unwrap_or("");
        let vars: Map<String, Value> = case["vars"].as_object().cloned().unwrap_or_default();
        let compiled = compile(template, &limits);
        if let Some(want) = case.get("compile_error_contains") {
            match compiled {
                Err(e) if e.to_string().contains(want.as_str().unwrap_or("")) => {}
                other => failures.push(format!(
                    "{name}: wanted a compile error, got {:?}",
                    other.map(|_| ())
                )),
            }
            continue;
        }
        let got = compiled.and_then(|t| t.render(&vars, &NoCredentials, &limits));
        let want = case
            .get("expected_object")
            .cloned()
            .unwrap_or_else(|| case["expected"].clone());
        if got.as_ref() != Ok(&want) {
            failures.push(format!("{name}: wanted {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
