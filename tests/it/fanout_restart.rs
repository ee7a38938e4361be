//! A root event's propagation budget survives a restart: the events already descended
//! from it are counted from the database, not forgotten with the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::process::{HubProcess, api, client};
use serde_json::{Value, json};

const TOKEN: &str = "fanout-restart-token-0123456789";

async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api(base, TOKEN, method, path, body).await
}

async fn count(base: &str, agent: i64) -> usize {
    let (_, events) = call(base, "GET", &format!("/api/agents/{agent}/events"), None).await;
    events.as_array().map_or(0, Vec::len)
}

#[actix_rt::test]
async fn a_restart_does_not_refill_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("muninn.toml");
    std::fs::write(&config, "[agents]\nmax_events_per_root = 4\n").unwrap();
    let envs = [
        ("MUNINN_ADMIN_TOKEN", TOKEN),
        ("MUNINN_CONFIG", config.to_str().unwrap()),
    ];
    let hub = HubProcess::start(dir.path(), &envs);
    let base = hub.base.clone();
    let fmt = |name: &str| json!({"mode": "merge", "instructions": {"via": name}});
    let (_, hook) = call(
        &base,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    let hook = hook["id"].as_i64().unwrap();
    let (_, a) = call(&base, "POST", "/api/agents",
        Some(json!({"type": "event_formatting", "name": "a", "source_ids": [hook], "options": fmt("a")}))).await;
    let a = a["id"].as_i64().unwrap();
    // b closes the cycle a -> b -> a but starts disabled: a's first event waits for it.
    let (status, b) = call(
        &base,
        "POST",
        "/api/agents",
        Some(
            json!({"type": "event_formatting", "name": "b", "disabled": true, "source_ids": [a],
                    "receiver_ids": [a], "options": fmt("b")}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let b = b["id"].as_i64().unwrap();
    let r = client()
        .post(format!("{base}/users/1/web_requests/{hook}/s"))
        .send_json(&json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&base, a).await < 1 {
        assert!(
            Instant::now() < deadline,
            "a did not handle the webhook's event"
        );
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
    hub.kill();

    // One of the root's four is spent; the restarted hub must know it.
    let hub = HubProcess::start(dir.path(), &envs);
    let base = hub.base.clone();
    let (status, _) = call(
        &base,
        "PUT",
        &format!("/api/agents/{b}"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    let line = loop {
        let (_, logs) = call(&base, "GET", &format!("/api/agents/{a}/logs"), None).await;
        let (_, b_logs) = call(&base, "GET", &format!("/api/agents/{b}/logs"), None).await;
        let found = logs
            .as_array()
            .into_iter()
            .chain(b_logs.as_array())
            .flatten()
            .filter_map(|l| l["message"].as_str())
            .find(|m| m.contains("agents.max_events_per_root"))
            .map(str::to_string);
        if let Some(line) = found {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no budget line after the restart"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(line.contains("4 events already descend from it"), "{line}");
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    // a1 before the restart; b1, a2, b2 after it: four in all, not one plus four.
    assert_eq!(count(&base, a).await + count(&base, b).await, 4);
}
