//! A 2xx means committed: SIGKILL the real binary right after answers and check that
//! nothing acknowledged is lost, and that agents catch up on what they had not handled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::process::{HubProcess, api, client};
use serde_json::{Value, json};

const TOKEN: &str = "durability-admin-token-0123456789";

async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api(base, TOKEN, method, path, body).await
}

async fn payloads(base: &str, agent: i64) -> Vec<Value> {
    let (status, body) = call(
        base,
        "GET",
        &format!("/api/agents/{agent}/events?limit=1000"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    body.as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].clone())
        .collect()
}

#[actix_rt::test]
async fn events_acknowledged_before_sigkill_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path(), &[("MUNINN_ADMIN_TOKEN", TOKEN)]);
    let (status, agent) = call(
        &hub.base,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    assert_eq!(status, 201);
    let id = agent["id"].as_i64().unwrap();
    let c = client();
    let mut acknowledged = Vec::new();
    for n in 0..50 {
        let resp = c
            .post(format!("{}/users/1/web_requests/{id}/s", hub.base))
            .send_json(&json!({"n": n}))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        acknowledged.push(json!({"n": n}));
    }
    // Killed immediately after the last 201: no shutdown, no flush.
    hub.kill();

    let hub = HubProcess::start(dir.path(), &[("MUNINN_ADMIN_TOKEN", TOKEN)]);
    assert_eq!(payloads(&hub.base, id).await, acknowledged);
}

#[actix_rt::test]
async fn a_receiver_handles_after_restart_what_it_had_not_handled() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path(), &[("MUNINN_ADMIN_TOKEN", TOKEN)]);
    let (_, hook) = call(
        &hub.base,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    let hook = hook["id"].as_i64().unwrap();
    // Disabled: events wait for it, durably.
    let (status, fmt) = call(
        &hub.base,
        "POST",
        "/api/agents",
        Some(json!({"type": "event_formatting", "name": "fmt", "disabled": true, "source_ids": [hook],
                    "options": {"instructions": {"seen": "{{ n }}"}}})),
    )
    .await;
    assert_eq!(status, 201);
    let fmt = fmt["id"].as_i64().unwrap();
    let c = client();
    for n in 0..5 {
        let r = c
            .post(format!("{}/users/1/web_requests/{hook}/s", hub.base))
            .send_json(&json!({"n": n}))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    hub.kill();

    let hub = HubProcess::start(dir.path(), &[("MUNINN_ADMIN_TOKEN", TOKEN)]);
    assert!(
        payloads(&hub.base, fmt).await.is_empty(),
        "a disabled agent handles nothing"
    );
    let (status, _) = call(
        &hub.base,
        "PUT",
        &format!("/api/agents/{fmt}"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let want: Vec<Value> = (0..5).map(|n| json!({"seen": n.to_string()})).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        got = payloads(&hub.base, fmt).await;
        if got.len() >= want.len() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        got, want,
        "each backlog event handled exactly once, in order"
    );
}
