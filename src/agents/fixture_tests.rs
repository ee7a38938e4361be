//! Data-driven cases for agent types, from `fixtures/agents/<type>.json` (taken from
//! each type's Huginn spec): options that must be refused (with the message), and
//! received events → emitted events (and memory), run through the type's behaviour.
//!
//! A case: `{"name", "options", "invalid"?: "part of the message", "memory"?: {...},
//! "events"?: [payload...], "emits"?: [payload...], "memory_after"?: {...},
//! "error_logged"?: "part of an error log", "requests"?: [{"method"?, "url", "form"?}]}`:
//! `requests` are what the agent asked the delivery engine to send; `form` is the
//! form-encoded body decoded (a field holding a JSON object or list is compared as JSON).
//! A scheduled type's case sets `"run": true`: the agent runs once, the URLs it fetches
//! are compared with `"fetches"`, and each is answered (HTTP 200) with the JSON of
//! `"responses"` in order. A sentiment case sets `"with_lexicon": true` to score with
//! the made-up lexicon `fixtures/sentiment/lexicon.csv`.

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
    ("slack", include_str!("../../fixtures/agents/slack.json")),
    (
        "pushover",
        include_str!("../../fixtures/agents/pushover.json"),
    ),
    (
        "weather",
        include_str!("../../fixtures/agents/weather.json"),
    ),
    (
        "phantom_js_cloud",
        include_str!("../../fixtures/agents/phantom_js_cloud.json"),
    ),
    (
        "github_notifications",
        include_str!("../../fixtures/agents/github_notifications.json"),
    ),
    (
        "imap_folder",
        include_str!("../../fixtures/agents/imap_folder.json"),
    ),
    (
        "liquid_output",
        include_str!("../../fixtures/agents/liquid_output.json"),
    ),
    (
        "local_file",
        include_str!("../../fixtures/agents/local_file.json"),
    ),
    (
        "read_file",
        include_str!("../../fixtures/agents/read_file.json"),
    ),
    (
        "http_status",
        include_str!("../../fixtures/agents/http_status.json"),
    ),
    (
        "shell_command",
        include_str!("../../fixtures/agents/shell_command.json"),
    ),
    (
        "key_value_store",
        include_str!("../../fixtures/agents/key_value_store.json"),
    ),
    (
        "sentiment",
        include_str!("../../fixtures/agents/sentiment.json"),
    ),
];

/// The made-up lexicon sentiment cases score with.
fn fixture_lexicon() -> std::sync::Arc<super::sentiment::lexicon::Lexicon> {
    let text = include_str!("../../fixtures/sentiment/lexicon.csv");
    std::sync::Arc::new(super::sentiment::lexicon::Lexicon::parse(text).unwrap_or_default())
}

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
    let mut requests = Vec::new();
    for (i, p) in case["events"].as_array().into_iter().flatten().enumerate() {
        let mut ev = event(p);
        // Events a second apart, in order (peak and gap detectors read the times).
        ev.created_at = chrono::DateTime::from_timestamp(1_700_000_000 + i as i64 * 3600, 0)
            .map(|t| t.naive_utc())
            .unwrap_or(ev.created_at);
        let mut ctx = AgentCtx::new(&row, &mut memory);
        if case["with_lexicon"].as_bool() == Some(true) {
            ctx.sentiment = Some(fixture_lexicon());
        }
        behavior.receive(&mut ctx, &ev, p);
        emitted.extend(ctx.emitted);
        requests.extend(ctx.requests.into_iter().map(|(_, r)| r));
        errors.extend(
            ctx.logs
                .into_iter()
                .filter(|l| l.level == LEVEL_ERROR)
                .map(|l| l.message),
        );
    }
    if case["run"].as_bool() == Some(true) {
        let mut ctx = AgentCtx::new(&row, &mut memory);
        behavior.check(&mut ctx);
        let fetches = std::mem::take(&mut ctx.fetches);
        let urls: Vec<Value> = fetches
            .iter()
            .map(|f| Value::String(f.url.clone()))
            .collect();
        if let Some(want) = case.get("fetches")
            && &Value::Array(urls.clone()) != want
        {
            return Err(format!("fetched {urls:?}, want {want}"));
        }
        emitted.extend(std::mem::take(&mut ctx.emitted));
        errors.extend(
            ctx.logs
                .drain(..)
                .filter(|l| l.level == LEVEL_ERROR)
                .map(|l| l.message),
        );
        for (f, answer) in fetches
            .iter()
            .zip(case["responses"].as_array().into_iter().flatten())
        {
            let got = super::rss::Fetched {
                status: Some(200),
                headers: vec![("content-type".into(), "application/json".into())],
                body: answer.to_string().into_bytes(),
                error: None,
                ..Default::default()
            };
            behavior.fetched(&mut ctx, f, &got);
        }
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
    if let Some(want) = case.get("requests") {
        let got = Value::Array(requests.iter().map(request_json).collect());
        if !matches(&got, want) {
            return Err(format!("requests {got}, want {want} (errors: {errors:?})"));
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

/// A prepared request as a case writes it: method, url, headers, and the body decoded
/// when it is a form.
fn request_json(r: &super::post::PreparedRequest) -> Value {
    let is_form = r.headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("content-type") && v.starts_with("application/x-www-form-urlencoded")
    });
    let mut out = serde_json::json!({"method": r.method, "url": r.url, "body": r.body});
    if is_form {
        let form: serde_json::Map<String, Value> = url::form_urlencoded::parse(r.body.as_bytes())
            .map(|(k, v)| {
                let v = match v.trim_start().chars().next() {
                    Some('{' | '[') => serde_json::from_str(&v).unwrap_or(Value::String(v.into())),
                    _ => Value::String(v.into()),
                };
                (k.into_owned(), v)
            })
            .collect();
        out["form"] = Value::Object(form);
    }
    out
}

/// Every key the case gives for each request is as given (others are not compared).
fn matches(got: &Value, want: &Value) -> bool {
    match (got.as_array(), want.as_array()) {
        (Some(g), Some(w)) => {
            g.len() == w.len()
                && g.iter().zip(w).all(|(g, w)| {
                    w.as_object()
                        .is_some_and(|w| w.iter().all(|(k, v)| g.get(k) == Some(v)))
                })
        }
        _ => false,
    }
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
