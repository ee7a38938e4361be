//! The key_value_store agent type end to end: events written into its store (its
//! memory, read back through GET /api/agents/{id}), the agents it controls reading the
//! store in their templates under its `variable`, Huginn's validation messages as 422s,
//! and a dry run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

async fn id_of(hub: &TestHub, token: &str, body: Value) -> i64 {
    hub.add_agent(token, body).await["id"].as_i64().unwrap()
}

async fn send(hub: &TestHub, token: &str, manual: i64, payload: Value) {
    let r = hub
        .post_json(&format!("/api/agents/{manual}/events"), token, &payload)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Waits (bounded) until the agent's memory has `key`; returns the memory.
async fn wait_memory_key(hub: &TestHub, token: &str, id: i64, key: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let memory = hub.get(&format!("/api/agents/{id}"), token).await.json()["memory"].clone();
        if memory.get(key).is_some() || Instant::now() > deadline {
            return memory;
        }
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
}

#[actix_rt::test]
async fn controlled_agents_read_the_store_under_its_variable() {
    let hub = TestHub::start().await;
    let writes = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "manual_event", "name": "writes"}),
    )
    .await;
    let reads = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "manual_event", "name": "reads"}),
    )
    .await;
    let reader = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "event_formatting", "name": "reader", "source_ids": [reads], "options": {
            "instructions": {"message": "{{ weather[city] | default: \"unknown\" }}"},
            "mode": "clean"
        }}),
    )
    .await;
    let kvs = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "Agents::KeyValueStoreAgent", "name": "store", "source_ids": [writes],
               "control_target_ids": [reader],
               "options": {"key": "{{ city }}", "value": "{{ weather }}", "variable": "weather"}}),
    )
    .await;
    send(
        &hub,
        ADMIN_TOKEN,
        writes,
        json!({"city": "Tokyo", "weather": "cloudy"}),
    )
    .await;
    send(
        &hub,
        ADMIN_TOKEN,
        writes,
        json!({"city": "Osaka", "weather": "sunny"}),
    )
    .await;
    let memory = wait_memory_key(&hub, ADMIN_TOKEN, kvs, "Osaka").await;
    assert_eq!(memory["Tokyo"], "cloudy", "{memory}");
    assert_eq!(memory["Osaka"], "sunny", "{memory}");

    send(&hub, ADMIN_TOKEN, reads, json!({"city": "Osaka"})).await;
    let got = hub
        .wait_payloads(ADMIN_TOKEN, reader, &[json!({"message": "sunny"})])
        .await;
    assert_eq!(got, vec![json!({"message": "sunny"})]);

    // The store's variable wins over a payload key of the same name (Huginn's outer
    // scope), and a key it does not have falls back to the default.
    send(
        &hub,
        ADMIN_TOKEN,
        reads,
        json!({"city": "Tokyo", "weather": {"Tokyo": "from the payload"}}),
    )
    .await;
    send(&hub, ADMIN_TOKEN, reads, json!({"city": "Kyoto"})).await;
    let want = vec![
        json!({"message": "sunny"}),
        json!({"message": "cloudy"}),
        json!({"message": "unknown"}),
    ];
    let got = hub.wait_payloads(ADMIN_TOKEN, reader, &want).await;
    assert_eq!(got, want);

    // An empty value deletes the key; the reader sees it gone.
    send(
        &hub,
        ADMIN_TOKEN,
        writes,
        json!({"city": "Osaka", "weather": ""}),
    )
    .await;
    send(
        &hub,
        ADMIN_TOKEN,
        writes,
        json!({"city": "Nara", "weather": "rain"}),
    )
    .await;
    let memory = wait_memory_key(&hub, ADMIN_TOKEN, kvs, "Nara").await;
    assert!(memory.get("Osaka").is_none(), "{memory}");
    send(&hub, ADMIN_TOKEN, reads, json!({"city": "Osaka"})).await;
    let mut want = want;
    want.push(json!({"message": "unknown"}));
    let got = hub.wait_payloads(ADMIN_TOKEN, reader, &want).await;
    assert_eq!(got, want);
}

#[actix_rt::test]
async fn an_agent_not_controlled_by_the_store_does_not_see_it() {
    let hub = TestHub::start().await;
    let writes = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "manual_event", "name": "w"}),
    )
    .await;
    let reads = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "manual_event", "name": "r"}),
    )
    .await;
    let outsider = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "event_formatting", "name": "outsider", "source_ids": [reads], "options": {
            "instructions": {"message": "{{ kvs.a | default: \"none\" }}"}, "mode": "clean"
        }}),
    )
    .await;
    let kvs = id_of(
        &hub,
        ADMIN_TOKEN,
        json!({"type": "key_value_store", "name": "store", "source_ids": [writes],
               "options": {"key": "a", "value": "{{ v }}", "variable": "kvs"}}),
    )
    .await;
    send(&hub, ADMIN_TOKEN, writes, json!({"v": "secret"})).await;
    wait_memory_key(&hub, ADMIN_TOKEN, kvs, "a").await;
    send(&hub, ADMIN_TOKEN, reads, json!({})).await;
    let want = vec![json!({"message": "none"})];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, outsider, &want).await, want);
    // Made a control target, it sees the store.
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{kvs}"),
            ADMIN_TOKEN,
            &json!({"control_target_ids": [outsider]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    send(&hub, ADMIN_TOKEN, reads, json!({})).await;
    let want = vec![json!({"message": "none"}), json!({"message": "secret"})];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, outsider, &want).await, want);
}

#[actix_rt::test]
async fn invalid_options_are_refused_with_huginns_messages() {
    let hub = TestHub::start().await;
    for (options, message) in [
        (
            json!({"value": "x", "variable": "kvs"}),
            "option \"key\" is required and must be a string.",
        ),
        (
            json!({"key": "k", "variable": "kvs"}),
            "option \"value\" is required.",
        ),
        (
            json!({"key": "k", "value": "x", "variable": "1abc"}),
            "option \"variable\" is required and must be valid as a variable name.",
        ),
        (
            json!({"key": "k", "value": "x", "variable": "kvs", "max_keys": 0}),
            "option \"max_keys\" must be a positive number.",
        ),
    ] {
        let r = hub
            .post_json(
                "/api/agents",
                ADMIN_TOKEN,
                &json!({"type": "key_value_store", "name": "bad", "options": options}),
            )
            .await;
        assert_eq!(r.status, 422, "{options}: {}", r.text());
        assert_eq!(r.json()["error"]["message"], message, "{options}");
    }
}

#[actix_rt::test]
async fn a_dry_run_shows_the_store_it_would_keep() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/agents/dry_run",
            ADMIN_TOKEN,
            &json!({"type": "key_value_store",
                    "options": {"key": "{{ id }}", "value": "{{ _event_ | as_object }}", "variable": "kvs", "max_keys": 2},
                    "memory": {"1": "one", "2": "two", "": ["1", "2"]},
                    "event": {"id": 3, "name": "three"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["events"], json!([]));
    assert_eq!(
        body["memory"],
        json!({"2": "two", "3": {"id": 3, "name": "three"}, "": ["2", "3"]})
    );
}
