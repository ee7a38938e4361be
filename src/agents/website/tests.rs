//! Replays fixtures/website/cases.json (Huginn's website_agent_spec, on muninn's own
//! pages) through the behaviour: a check, then the page as the fetch's answer.

use serde_json::{Value, json};

use super::*;
use crate::agents::event_formatting::tests_support::{event, row};
use crate::store::agent_logs::LEVEL_ERROR;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/website/");

fn cases() -> Value {
    let text = std::fs::read_to_string(format!("{DIR}cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `base` with `over`'s keys (null removes one).
fn merged(base: &Value, over: &Value) -> Value {
    let mut out = base.clone();
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            out.as_object_mut().unwrap().remove(k);
        } else {
            out[k] = v.clone();
        }
    }
    out
}

fn agent(options: &Value) -> Website {
    Website {
        o: Options::parse(options).unwrap_or_else(|e| panic!("{options}: {e}")),
        pending: HashMap::new(),
        order: VecDeque::new(),
    }
}

/// Runs a check and answers its one fetch; returns the events and the error logs.
fn run(w: &mut Website, memory: &mut Value, case: &Value) -> (Vec<Value>, Vec<String>) {
    let row = row();
    let mut ctx = AgentCtx::new(&row, memory);
    w.check(&mut ctx);
    assert_eq!(ctx.fetches.len(), 1, "{}", case["name"]);
    let fetch = ctx.fetches.remove(0);
    let body = match (case.get("page"), case.get("body")) {
        (Some(p), _) => std::fs::read_to_string(format!("{DIR}{}", p.as_str().unwrap())).unwrap(),
        (None, Some(b)) => b.as_str().unwrap().to_string(),
        _ => String::new(),
    };
    let headers = case
        .get("headers")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let got = Fetched {
        status: Some(case.get("status").and_then(Value::as_u64).unwrap_or(200) as u16),
        headers,
        body: body.into_bytes(),
        error: None,
        ..Fetched::default()
    };
    w.fetched(&mut ctx, &fetch, &got);
    let errors = ctx
        .logs
        .iter()
        .filter(|l| l.level == LEVEL_ERROR)
        .map(|l| l.message.clone())
        .collect();
    (std::mem::take(&mut ctx.emitted), errors)
}

#[test]
fn huginn_spec_cases() {
    let all = cases();
    for case in all["cases"].as_array().unwrap() {
        let mut options = merged(&all["base"], &case["options"]);
        if let Some(u) = case.get("url") {
            options["url"] = u.clone();
        }
        let mut w = agent(&options);
        let mut memory = json!({});
        let (events, errors) = run(&mut w, &mut memory, case);
        let name = &case["name"];
        if let Some(want) = case.get("error") {
            let want = want.as_str().unwrap();
            assert!(
                errors.iter().any(|e| e.contains(want)),
                "{name}: wanted an error with {want:?}, got {errors:?}"
            );
            assert!(events.is_empty(), "{name}");
            continue;
        }
        assert!(errors.is_empty(), "{name}: {errors:?}");
        assert_eq!(Value::Array(events), case["events"], "{name}");
        // on_change: the same page again emits nothing.
        let (again, _) = run(&mut w, &mut memory, case);
        assert!(again.is_empty(), "{name}: emitted again: {again:?}");
    }
}

#[test]
fn huginn_validation_messages() {
    let all = cases();
    let base = merged(
        &all["base"],
        &json!({"type": "html", "extract": {"t": {"css": "title"}}}),
    );
    for case in all["invalid"].as_array().unwrap() {
        let options = merged(&base, &case["options"]);
        let got = Options::parse(&options).err().map(|e| e.to_string());
        if case.get("valid").is_some() {
            assert_eq!(got, None, "{options}");
            continue;
        }
        let want = case["message"].as_str().unwrap();
        let got = got.unwrap_or_else(|| panic!("{options} was accepted"));
        assert!(
            got.contains(want),
            "{options}: wanted {want:?}, got {got:?}"
        );
    }
}

#[test]
fn mode_all_emits_every_time_and_merge_keeps_the_event() {
    let html = r#"<p class="x">one</p><p class="x">two</p>"#;
    let mut w = agent(
        &json!({"expected_update_period_in_days": 1, "data_from_event": "{{ html }}",
        "mode": "merge", "extract": {"p": {"css": ".x", "value": "string(.)"}}}),
    );
    let row = row();
    let mut memory = json!({});
    for _ in 0..2 {
        let mut ctx = AgentCtx::new(&row, &mut memory);
        let payload = json!({"html": html, "keep": 1});
        w.receive(&mut ctx, &event(&payload), &payload);
        assert_eq!(
            ctx.emitted,
            [
                json!({"html": html, "keep": 1, "p": "one"}),
                json!({"html": html, "keep": 1, "p": "two"})
            ]
        );
    }
}

#[test]
fn data_from_event_reports_missing_data_and_sees_the_events_response() {
    let mut w = agent(&json!({"expected_update_period_in_days": 1, "mode": "all",
        "data_from_event": "{{ some_object.mistake }}",
        "extract": {"p": {"css": "p", "value": "string(.)"}}}));
    let row = row();
    let mut memory = json!({});
    let mut ctx = AgentCtx::new(&row, &mut memory);
    let payload = json!({"some_object": {}});
    w.receive(&mut ctx, &event(&payload), &payload);
    assert!(ctx.emitted.is_empty());
    assert!(ctx.logs[0].message.contains(
        "No data was found in the Event payload using the template {{ some_object.mistake }}"
    ));
    let mut w = agent(&json!({"expected_update_period_in_days": 1, "mode": "all",
        "data_from_event": "{{ body }}", "type": "html",
        "extract": {"p": {"css": "p", "value": "string(.)"}},
        "template": {"s": "{{ _response_.status }} {{ _response_.headers.Content-Type }} {{ _response_.url }}"}}));
    let mut ctx = AgentCtx::new(&row, &mut memory);
    let payload = json!({"body": "<p>x</p>", "status": "201", "url": "http://e/",
        "headers": {"content-type": "text/html"}});
    w.receive(&mut ctx, &event(&payload), &payload);
    assert_eq!(
        ctx.emitted,
        [json!({"p": "x", "s": "201 text/html http://e/"})]
    );
}

#[test]
fn url_from_event_fetches_for_the_event_and_merges_into_it() {
    let mut w = agent(
        &json!({"expected_update_period_in_days": 1, "mode": "merge",
        "url_from_event": "{{ link }}", "type": "html",
        "extract": {"t": {"css": "title", "value": "string(.)"}}}),
    );
    let row = row();
    let mut memory = json!({});
    let mut ctx = AgentCtx::new(&row, &mut memory);
    ctx.inbound = Some(crate::ids::EventId(7));
    let payload = json!({"link": "http://example.com/a b", "n": 1});
    w.receive(&mut ctx, &event(&payload), &payload);
    assert_eq!(ctx.fetches[0].url, "http://example.com/a%20b");
    let fetch = ctx.fetches.remove(0);
    let got = Fetched {
        status: Some(200),
        headers: vec![],
        body: b"<title>T</title>".to_vec(),
        error: None,
        ..Fetched::default()
    };
    w.fetched(&mut ctx, &fetch, &got);
    assert_eq!(
        ctx.emitted,
        [json!({"link": "http://example.com/a b", "n": 1, "t": "T"})]
    );
    let mut ctx = AgentCtx::new(&row, &mut memory);
    let payload = json!({"link": "file:///etc/passwd"});
    w.receive(&mut ctx, &event(&payload), &payload);
    assert!(ctx.fetches.is_empty());
    assert!(ctx.logs[0].message.contains("Ignoring a non-HTTP url"));
}

#[test]
fn on_change_sends_validators_back_and_remembers_a_bounded_window() {
    let mut w = agent(
        &json!({"expected_update_period_in_days": 1, "url": "http://example.com/",
        "uniqueness_look_back": 2, "type": "text",
        "extract": {"w": {"regexp": "\\w+", "index": 0}}}),
    );
    let row = row();
    let mut memory = json!({});
    let page = |body: &str| Fetched {
        status: Some(200),
        headers: vec![("etag".into(), "\"v1\"".into())],
        body: body.as_bytes().to_vec(),
        error: None,
        ..Fetched::default()
    };
    let mut emitted = |memory: &mut Value, body: &str| {
        let mut ctx = AgentCtx::new(&row, memory);
        w.check(&mut ctx);
        let f = ctx.fetches.remove(0);
        w.fetched(&mut ctx, &f, &page(body));
        (ctx.emitted.len(), f.headers)
    };
    assert_eq!(emitted(&mut memory, "a b").0, 2);
    let (n, headers) = emitted(&mut memory, "a b c");
    assert_eq!(n, 1);
    assert!(headers.contains(&("If-None-Match".to_string(), "\"v1\"".to_string())));
    // With a look-back of 2, `a` has fallen out of the window.
    assert_eq!(emitted(&mut memory, "a").0, 1);
    assert_eq!(memory["seen"].as_array().unwrap().len(), 4);
}

#[test]
fn hostile_documents_are_errors_not_crashes() {
    let deep = "<div>".repeat(5000);
    let mut w = agent(&json!({"expected_update_period_in_days": 1, "mode": "all",
        "data_from_event": "{{ b }}", "extract": {"d": {"css": "div", "value": "."}}}));
    let row = row();
    let mut memory = json!({});
    let mut ctx = AgentCtx::new(&row, &mut memory);
    let payload = json!({"b": deep});
    w.receive(&mut ctx, &event(&payload), &payload);
    assert!(ctx.emitted.is_empty());
    assert!(
        ctx.logs.iter().any(|l| l.message.contains("deep")),
        "{:?}",
        ctx.logs[0].message
    );
    let mut w = agent(
        &json!({"expected_update_period_in_days": 1, "mode": "all", "type": "xml",
        "data_from_event": "{{ b }}", "extract": {"d": {"xpath": "//a", "value": "."}}}),
    );
    let mut ctx = AgentCtx::new(&row, &mut memory);
    let payload = json!({"b": "<a>".repeat(100_000)});
    w.receive(&mut ctx, &event(&payload), &payload);
    assert!(ctx.emitted.is_empty());
    assert!(ctx.logs.iter().any(|l| l.message.contains("deep")));
}
