//! The pure-logic agent types (jq, json_parse, change_detector, attribute_difference, csv,
//! commander), end to end: created through the API, fed by a manual_event agent over a
//! link, their events read back through GET /api/agents/{id}/events. And the jq sandbox:
//! a hostile filter fails its own event with a clear log while the hub keeps answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

async fn id_of(hub: &TestHub, token: &str, body: Value) -> i64 {
    hub.add_agent(token, body).await["id"].as_i64().unwrap()
}

async fn manual(hub: &TestHub, token: &str) -> i64 {
    id_of(hub, token, json!({"type": "manual_event", "name": "m"})).await
}

async fn send(hub: &TestHub, token: &str, manual: i64, payload: Value) {
    let r = hub
        .post_json(&format!("/api/agents/{manual}/events"), token, &payload)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Waits (bounded) until one of the agent's log messages contains `needle`.
async fn wait_log(hub: &TestHub, token: &str, agent: i64, needle: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = hub
            .get(&format!("/api/agents/{agent}/logs"), token)
            .await
            .json();
        let logs = logs.as_array().cloned().unwrap_or_default();
        let found = logs
            .iter()
            .any(|l| l["message"].as_str().unwrap_or("").contains(needle));
        if found || Instant::now() > deadline {
            return logs;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn jq_emits_one_event_per_object_result_with_variables() {
    let hub = TestHub::start().await;
    let m = manual(&hub, ADMIN_TOKEN).await;
    let jq = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "Agents::JqAgent", "name": "jq", "source_ids": [m], "options": {
            "filter": ". as $original | .numbers[] | $original + {\"number\": ., \"extra\": $somevar} | del(.numbers)",
            "variables": {"somevar": {"foo": ["bar", "{{ name }}"]}}
        }}),
    )
    .await;
    send(
        &hub,
        ADMIN_TOKEN,
        m,
        json!({"name": "foo", "numbers": [1, 2]}),
    )
    .await;
    let extra = json!({"foo": ["bar", "foo"]});
    let want = vec![
        json!({"name": "foo", "number": 1, "extra": extra}),
        json!({"name": "foo", "number": 2, "extra": extra}),
    ];
    let mut got = hub.wait_payloads(ADMIN_TOKEN, jq, &want).await;
    got.sort_by_key(|p| p["number"].as_i64());
    // When it fails, the agent's log says why (the worker's own error, or nothing).
    let logs = hub
        .get(&format!("/api/agents/{jq}/logs"), ADMIN_TOKEN)
        .await
        .text();
    assert_eq!(got, want, "the jq agent's log: {logs}");
}

#[actix_rt::test]
async fn jq_filter_errors_are_refused_when_saved_with_the_place() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "jq", "name": "bad", "options": {"filter": ".a |\n| .b"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let text = r.text();
    assert!(text.contains("is not a valid jq filter"), "{text}");
    assert!(text.contains("line 2, column 1"), "{text}");
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "jq", "name": "bad", "options": {"filter": "$nope"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("undefined variable $nope"),
        "{}",
        r.text()
    );
}

#[actix_rt::test]
async fn hostile_jq_filters_fail_their_event_while_the_hub_answers() {
    let hub = TestHub::start().await;
    let (_, other) = hub.add_user("bob").await;
    let m = manual(&hub, ADMIN_TOKEN).await;
    let mut hostile = Vec::new();
    for (name, filter) in [
        ("spin", "last(range(1e18))"),
        ("grow", "[repeat(\"xxxxxxxxxxxxxxxx\")]"),
    ] {
        hostile.push(
            id_of(
                &hub,
                ADMIN_TOKEN,
                json!({"type": "jq", "name": name, "source_ids": [m], "options": {"filter": filter}}),
            )
            .await,
        );
    }
    send(&hub, ADMIN_TOKEN, m, json!({"a": 1})).await;
    // While the filters run, another user's request still answers.
    let started = Instant::now();
    let r = hub.get("/api/agents", &other).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the hub did not answer while jq ran"
    );
    for agent in hostile {
        let logs = wait_log(&hub, ADMIN_TOKEN, agent, "jq was stopped").await;
        let stopped = logs.iter().find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("jq was stopped"))
        });
        let Some(stopped) = stopped else {
            panic!("no 'jq was stopped' log: {logs:?}");
        };
        assert_eq!(stopped["level"], 4, "an error: {stopped}");
        assert!(hub.payloads(ADMIN_TOKEN, agent).await.is_empty());
    }
}

#[actix_rt::test]
async fn json_parse_change_detector_and_attribute_difference() {
    let hub = TestHub::start().await;
    let m = manual(&hub, ADMIN_TOKEN).await;
    let parse = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "json_parse", "name": "p", "source_ids": [m],
               "options": {"data": "{{ data }}", "data_key": "parsed", "mode": "merge"}}),
    )
    .await;
    let change = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "Agents::ChangeDetectorAgent", "name": "c", "source_ids": [m],
               "options": {"property": "{{ rate }}", "expected_update_period_in_days": 1}}),
    )
    .await;
    let diff = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "attribute_difference", "name": "d", "source_ids": [m],
               "options": {"path": "rate", "output": "rate_diff", "method": "integer_difference",
                           "expected_update_period_in_days": 1}}),
    )
    .await;
    for (rate, data) in [(5, "{\"a\": 1}"), (5, "[1, 2]"), (8, "not json")] {
        send(&hub, ADMIN_TOKEN, m, json!({"rate": rate, "data": data})).await;
    }
    let want = vec![
        json!({"rate": 5, "data": "{\"a\": 1}", "parsed": {"a": 1}}),
        json!({"rate": 5, "data": "[1, 2]", "parsed": [1, 2]}),
    ];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, parse, &want).await, want);
    let logs = wait_log(&hub, ADMIN_TOKEN, parse, "Could not parse JSON").await;
    assert!(
        logs.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .contains("Could not parse JSON")),
        "{logs:?}"
    );
    let want = vec![
        json!({"rate": 5, "data": "{\"a\": 1}"}),
        json!({"rate": 8, "data": "not json"}),
    ];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, change, &want).await, want);
    let diffs: Vec<Value> = hub
        .wait_payloads(
            ADMIN_TOKEN,
            diff,
            &[
                json!({"rate": 5, "data": "{\"a\": 1}", "rate_diff": 0}),
                json!({"rate": 5, "data": "[1, 2]", "rate_diff": 0}),
                json!({"rate": 8, "data": "not json", "rate_diff": 3}),
            ],
        )
        .await
        .iter()
        .map(|p| p["rate_diff"].clone())
        .collect();
    assert_eq!(diffs, vec![json!(0), json!(0), json!(3)]);
}

async fn disabled(hub: &TestHub, agent: i64) -> Value {
    hub.get(&format!("/api/agents/{agent}"), ADMIN_TOKEN)
        .await
        .json()["disabled"]
        .clone()
}

#[actix_rt::test]
async fn commander_disables_its_target_when_an_event_says_so() {
    let hub = TestHub::start().await;
    let m = manual(&hub, ADMIN_TOKEN).await;
    let target = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "de_duplication", "name": "t", "source_ids": [m], "options": {}}),
    )
    .await;
    id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "Agents::CommanderAgent", "name": "cmd", "source_ids": [m],
               "control_target_ids": [target],
               "options": {"action": "{% if stop %}disable{% endif %}"}}),
    )
    .await;
    send(&hub, ADMIN_TOKEN, m, json!({"stop": false})).await;
    send(&hub, ADMIN_TOKEN, m, json!({"stop": true})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while disabled(&hub, target).await != json!(true) && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(disabled(&hub, target).await, json!(true));
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "commander", "name": "x", "options": {"action": "explode"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

#[actix_rt::test]
async fn csv_parses_a_row_per_event_and_serializes() {
    let hub = TestHub::start().await;
    let m = manual(&hub, ADMIN_TOKEN).await;
    let parse = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "Agents::CsvAgent", "name": "p", "source_ids": [m],
               "options": {"mode": "parse", "with_header": "true", "data_path": "$.text", "data_key": "row"}}),
    )
    .await;
    let write = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "csv", "name": "w", "source_ids": [parse],
               "options": {"mode": "serialize", "with_header": false, "data_path": "$.row"}}),
    )
    .await;
    send(&hub, ADMIN_TOKEN, m, json!({"text": "a,b\n1,2\n3,4"})).await;
    let rows = vec![
        json!({"row": {"a": "1", "b": "2"}}),
        json!({"row": {"a": "3", "b": "4"}}),
    ];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, parse, &rows).await, rows);
    let csv = vec![
        json!({"data": "\"1\",\"2\"\n"}),
        json!({"data": "\"3\",\"4\"\n"}),
    ];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, write, &csv).await, csv);
}
