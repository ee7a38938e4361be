//! The java_script agent type through the real server and the real `muninn js-worker`
//! child: an event in, the code, an event out; memory kept between runs; a credential
//! read and saved (`this.credential(name, value)`, through the credentials service);
//! `this.kvs`; and hostile code (a busy loop, a memory bomb, a syntax error) each ending with a
//! clear log line while the hub keeps answering. Refused while `[insecure_agents]` is off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

async fn enabled_hub() -> TestHub {
    TestHub::start_with(|c| {
        c.insecure_agents.enabled = true;
        c.insecure_agents.timeout_seconds = 2;
        c.insecure_agents.max_output_bytes = 64 * 1024;
        c.insecure_agents.memory_mb = 64;
    })
    .await
}

fn js(name: &str, code: &str, extra: Value) -> Value {
    let mut options = json!({"code": code, "language": "JavaScript"});
    if let (Some(o), Some(e)) = (options.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    json!({"type": "java_script", "name": name, "options": options})
}

async fn id_of(hub: &TestHub, body: Value) -> i64 {
    hub.add_agent(ADMIN_TOKEN, body).await["id"]
        .as_i64()
        .unwrap()
}

async fn run(hub: &TestHub, id: i64) {
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    assert!(r.status < 300, "{} {}", r.text(), r.status);
}

async fn memory(hub: &TestHub, id: i64) -> Value {
    hub.get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json()["memory"]
        .clone()
}

#[actix_rt::test]
async fn an_event_goes_in_through_the_code_and_comes_out() {
    let hub = enabled_hub().await;
    let m = id_of(&hub, json!({"type": "manual_event", "name": "m"})).await;
    let mut body = js(
        "upper",
        "Agent.receive = function() {\n  var events = this.incomingEvents();\n  for (var i = 0; i < events.length; i++) {\n    this.createEvent({ shout: events[i].payload.text.toUpperCase(), prefix: this.options('prefix') });\n  }\n};",
        json!({"prefix": "{{ 'P' | append: 'X' }}"}),
    );
    body["source_ids"] = json!([m]);
    let a = id_of(&hub, body).await;
    let r = hub
        .post_json(
            &format!("/api/agents/{m}/events"),
            ADMIN_TOKEN,
            &json!({"text": "hello"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let got = hub
        .wait_payloads(ADMIN_TOKEN, a, &[json!({"shout": "HELLO", "prefix": "PX"})])
        .await;
    assert_eq!(got, vec![json!({"shout": "HELLO", "prefix": "PX"})]);
}

#[actix_rt::test]
async fn memory_is_kept_between_runs_and_a_credential_is_read() {
    let hub = enabled_hub().await;
    let r = hub
        .post_json(
            "/api/credentials",
            ADMIN_TOKEN,
            &json!({"credential_name": "greeting", "credential_value": "hej"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let code = "Agent.check = function() {\n  var n = (this.memory('count') || 0) + 1;\n  this.memory('count', n);\n  this.createEvent({ n: n, greeting: this.credential('greeting') });\n  this.log('run ' + n);\n};";
    let a = id_of(&hub, js("counter", code, json!({}))).await;
    run(&hub, a).await;
    hub.wait_log(ADMIN_TOKEN, a, "run 1", 1).await;
    run(&hub, a).await;
    hub.wait_log(ADMIN_TOKEN, a, "run 2", 1).await;
    assert_eq!(memory(&hub, a).await, json!({"count": 2}));
    let got = hub.payloads(ADMIN_TOKEN, a).await;
    assert_eq!(
        got,
        vec![
            json!({"n": 1, "greeting": "hej"}),
            json!({"n": 2, "greeting": "hej"})
        ]
    );
    // The code itself may live in a credential (`credential:NAME`).
    let r = hub
        .post_json(
            "/api/credentials",
            ADMIN_TOKEN,
            &json!({"credential_name": "code-foo",
                    "credential_value": "Agent.check = function() { this.log(\"ran it\"); };"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = id_of(
        &hub,
        js("from credential", "credential:code-foo", json!({})),
    )
    .await;
    run(&hub, c).await;
    hub.wait_log(ADMIN_TOKEN, c, "ran it", 1).await;
}

/// The owner's credential `name` as `GET /api/credentials/{id}` shows it (None: absent).
async fn credential_value(hub: &TestHub, name: &str) -> Option<(String, String)> {
    let list = hub.get("/api/credentials", ADMIN_TOKEN).await.json();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["credential_name"] == name)?["id"]
        .as_i64()
        .unwrap();
    let one = hub
        .get(&format!("/api/credentials/{id}"), ADMIN_TOKEN)
        .await
        .json();
    Some((
        one["credential_value"].as_str().unwrap().to_string(),
        one["mode"].as_str().unwrap().to_string(),
    ))
}

#[actix_rt::test]
async fn this_credential_with_a_value_saves_the_owners_credential() {
    let hub = enabled_hub().await;
    // Huginn's set_credential: find_or_initialize_by(credential_name), then save. The
    // run reads back what it set; the next run reads the saved value.
    let code = "Agent.check = function() {\n  var before = this.credential('token');\n  this.credential('token', (before || '') + 'x');\n  this.createEvent({ before: before, after: this.credential('token') });\n  this.log('saved');\n};";
    let a = id_of(&hub, js("saver", code, json!({}))).await;
    run(&hub, a).await;
    hub.wait_log(ADMIN_TOKEN, a, "saved", 1).await;
    assert_eq!(
        credential_value(&hub, "token").await,
        Some(("x".to_string(), "text".to_string()))
    );
    run(&hub, a).await;
    hub.wait_log(ADMIN_TOKEN, a, "saved", 2).await;
    assert_eq!(
        hub.payloads(ADMIN_TOKEN, a).await,
        vec![
            json!({"before": null, "after": "x"}),
            json!({"before": "x", "after": "xx"})
        ]
    );
    assert_eq!(
        credential_value(&hub, "token").await,
        Some(("xx".to_string(), "text".to_string()))
    );

    // An existing credential keeps its mode and only changes its value.
    let r = hub
        .post_json(
            "/api/credentials",
            ADMIN_TOKEN,
            &json!({"credential_name": "lib", "credential_value": "old", "mode": "java_script"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = id_of(
        &hub,
        js(
            "lib writer",
            "Agent.check = function() { this.credential('lib', 'new'); this.log('set'); };",
            json!({}),
        ),
    )
    .await;
    run(&hub, b).await;
    hub.wait_log(ADMIN_TOKEN, b, "set", 1).await;
    assert_eq!(
        credential_value(&hub, "lib").await,
        Some(("new".to_string(), "java_script".to_string()))
    );

    // What the credentials API refuses is refused here too, as an error log that does
    // not repeat the value; the run's other work still counts.
    let c = id_of(
        &hub,
        js(
            "bad writer",
            "Agent.check = function() { this.credential('blank', '   '); this.createEvent({ ok: 1 }); };",
            json!({}),
        ),
    )
    .await;
    run(&hub, c).await;
    hub.wait_log(ADMIN_TOKEN, c, "The credential \"blank\" was not saved", 1)
        .await;
    let logs = hub
        .get(&format!("/api/agents/{c}/logs"), ADMIN_TOKEN)
        .await
        .text();
    assert!(logs.contains("credential_value: can't be blank"), "{logs}");
    assert_eq!(credential_value(&hub, "blank").await, None);
    assert_eq!(hub.payloads(ADMIN_TOKEN, c).await, vec![json!({"ok": 1})]);
}

#[actix_rt::test]
async fn a_dry_run_does_not_save_a_credential() {
    let hub = enabled_hub().await;
    let r = hub
        .post_json(
            "/api/agents/dry_run",
            ADMIN_TOKEN,
            &json!({"type": "Agents::JavaScriptAgent",
                    "options": {"code": "Agent.check = function() { this.credential('dry', 'v'); this.createEvent({ got: this.credential('dry') }); };"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = r.json();
    assert_eq!(body["events"], json!([{"got": "v"}]), "{body}");
    assert_eq!(credential_value(&hub, "dry").await, None);
}

#[actix_rt::test]
async fn this_kvs_has_the_stores_of_the_key_value_store_agents_controlling_it() {
    let hub = enabled_hub().await;
    let writes = id_of(&hub, json!({"type": "manual_event", "name": "w"})).await;
    let reader = id_of(
        &hub,
        js(
            "reader",
            "Agent.check = function() { this.createEvent({ kvs: this.kvs }); };",
            json!({}),
        ),
    )
    .await;
    run(&hub, reader).await;
    assert_eq!(
        hub.wait_payloads(ADMIN_TOKEN, reader, &[json!({"kvs": {}})])
            .await,
        vec![json!({"kvs": {}})]
    );
    let store = id_of(
        &hub,
        json!({"type": "key_value_store", "name": "store", "source_ids": [writes],
               "control_target_ids": [reader],
               "options": {"key": "{{ k }}", "value": "{{ v }}", "variable": "config"}}),
    )
    .await;
    let r = hub
        .post_json(
            &format!("/api/agents/{writes}/events"),
            ADMIN_TOKEN,
            &json!({"k": "city", "v": "Oslo"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Bounded wait for the store's memory to hold the key.
    let mut stored = false;
    for _ in 0..200 {
        let m = hub
            .get(&format!("/api/agents/{store}"), ADMIN_TOKEN)
            .await
            .json();
        if m["memory"].to_string().contains("Oslo") {
            stored = true;
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(stored, "the store never held the key");
    run(&hub, reader).await;
    let want = [
        json!({"kvs": {}}),
        json!({"kvs": {"config": {"city": "Oslo"}}}),
    ];
    assert_eq!(
        hub.wait_payloads(ADMIN_TOKEN, reader, &want).await,
        want.to_vec()
    );
}

#[actix_rt::test]
async fn hostile_code_ends_with_a_clear_error_and_the_hub_keeps_answering() {
    let hub = enabled_hub().await;
    let cases = [
        (
            "loop",
            "Agent.check = function() { while (true) {} };",
            "the code did not finish within 2 s and was stopped",
        ),
        (
            "bomb",
            "Agent.check = function() { var a = []; while (true) { a.push(new Array(100000).fill('x')); } };",
            "the code used more than 64 MiB of memory and was stopped",
        ),
        (
            "syntax",
            "Agent.check = function() {\n  this.log('fine');\n  this.log('oops' +);\n};",
            "JavaScript error: SyntaxError",
        ),
    ];
    let mut ids = Vec::new();
    for (name, code, _) in cases {
        let id = id_of(&hub, js(name, code, json!({}))).await;
        run(&hub, id).await;
        ids.push(id);
    }
    for ((_, _, needle), id) in cases.iter().zip(&ids) {
        hub.wait_log(ADMIN_TOKEN, *id, needle, 1).await;
        assert!(hub.payloads(ADMIN_TOKEN, *id).await.is_empty());
    }
    // The syntax error names its line.
    hub.wait_log(ADMIN_TOKEN, ids[2], "(line 3, column", 1)
        .await;
    assert_eq!(hub.get("/api/agents", ADMIN_TOKEN).await.status, 200);
}

#[actix_rt::test]
async fn while_off_a_save_is_refused_saying_how_to_enable() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &js("s", "Agent.check = function() {};", json!({})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("[insecure_agents] enabled = true"),
        "{}",
        r.text()
    );
    let r = hub
        .post_json(
            "/api/agents/dry_run",
            ADMIN_TOKEN,
            &json!({"type": "Agents::JavaScriptAgent",
                    "options": {"code": "Agent.check = function() {};"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

#[actix_rt::test]
async fn a_dry_run_shows_the_events_and_logs_and_keeps_nothing() {
    let hub = enabled_hub().await;
    let r = hub
        .post_json(
            "/api/agents/dry_run",
            ADMIN_TOKEN,
            &json!({"type": "Agents::JavaScriptAgent",
                    "options": {"code": "Agent.check = function() { this.createEvent({ a: 1 }); this.log('dry'); };"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = r.json();
    assert_eq!(body["events"], json!([{"a": 1}]), "{body}");
    assert!(body.to_string().contains("dry"), "{body}");
}

/// Huginn's spec cases (fixtures/agents/java_script.json) through the API: `invalid`
/// cases are a 422 on save naming the problem; the others are dry runs (one event, or a
/// check) whose events, error log lines and memory are compared.
#[actix_rt::test]
async fn huginn_spec_cases_from_the_fixture_file() {
    let hub = enabled_hub().await;
    let file: Value =
        serde_json::from_str(include_str!("../../fixtures/agents/java_script.json")).unwrap();
    let mut failures = Vec::new();
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let options = case["options"].clone();
        if let Some(want) = case["invalid"].as_str() {
            let r = hub
                .post_json(
                    "/api/agents",
                    ADMIN_TOKEN,
                    &json!({"type": "java_script", "name": name, "options": options}),
                )
                .await;
            if r.status != 422 || !r.text().contains(want) {
                failures.push(format!("{name}: {} {}", r.status, r.text()));
            }
            continue;
        }
        let mut body = json!({"type": "java_script", "options": options,
                              "memory": case.get("memory").cloned().unwrap_or(json!({}))});
        if let Some(event) = case.get("event") {
            body["event"] = event.clone();
        }
        let r = hub
            .post_json("/api/agents/dry_run", ADMIN_TOKEN, &body)
            .await;
        if r.status != 200 {
            failures.push(format!("{name}: {} {}", r.status, r.text()));
            continue;
        }
        let got: Value = r.json();
        if let Some(want) = case.get("emits")
            && &got["events"] != want
        {
            failures.push(format!("{name}: events {} want {want}", got["events"]));
        }
        if let Some(want) = case.get("memory_after")
            && &got["memory"] != want
        {
            failures.push(format!("{name}: memory {} want {want}", got["memory"]));
        }
        let errors: Vec<&str> = got["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["level"] == "ERROR")
            .filter_map(|l| l["message"].as_str())
            .collect();
        match case["error_logged"].as_str() {
            Some(want) if !errors.iter().any(|e| e.contains(want)) => {
                failures.push(format!("{name}: no error log with {want:?}: {errors:?}"))
            }
            None if !errors.is_empty() => failures.push(format!("{name}: errors {errors:?}")),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
