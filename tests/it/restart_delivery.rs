//! Deliveries survive a SIGKILL in the middle of their retries: after the restart every
//! non-final delivery resumes with the message id it had.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::process::{HubProcess, api, client};
use common::sink::{Reply, Sink};
use serde_json::{Value, json};

const TOKEN: &str = "restart-admin-token-0123456789";

async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api(base, TOKEN, method, path, body).await
}

#[actix_rt::test]
async fn retries_resume_after_sigkill_with_the_same_message_ids() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("muninn.toml");
    std::fs::write(
        &config,
        "[delivery]\nallow_private_targets = true\npoll_interval_ms = 50\n",
    )
    .unwrap();
    let envs = [
        ("MUNINN_ADMIN_TOKEN", TOKEN),
        ("MUNINN_CONFIG", config.to_str().unwrap()),
    ];
    let sink = Sink::start();
    sink.set_default(Reply::status(503));

    let hub = HubProcess::start(dir.path(), &envs);
    let (_, agent) = call(
        &hub.base,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    let agent = agent["id"].as_i64().unwrap();
    let (status, sub) = call(
        &hub.base,
        "POST",
        "/api/webhooks/outgoing",
        Some(json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 20, "retry_delay": 0.5,
                    "max_retry_delay": 0.5, "failure_threshold": 1000})),
    )
    .await;
    assert_eq!(status, 201);
    let c = client();
    for n in 0..10 {
        let r = c
            .post(format!("{}/users/1/web_requests/{agent}/s", hub.base))
            .send_json(&json!({"n": n}))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    // Every delivery has failed at least once: all are mid-retry.
    sink.wait_until("a first attempt of every delivery", |r| {
        r.iter()
            .map(|x| x.header("x-webhook-message-id").unwrap().to_string())
            .collect::<HashSet<_>>()
            .len()
            >= 10
    })
    .await;
    hub.kill();
    let before: HashSet<String> = sink
        .received()
        .iter()
        .map(|r| r.header("x-webhook-message-id").unwrap().to_string())
        .collect();

    sink.set_default(Reply::status(200));
    let hub = HubProcess::start(dir.path(), &envs);
    let got = sink
        .wait_until("all 10 delivered after the restart", |r| {
            r.iter()
                .filter(|x| x.answered == 200)
                .map(|x| x.header("x-webhook-message-id").unwrap().to_string())
                .collect::<HashSet<_>>()
                .len()
                >= 10
        })
        .await;
    let all: HashSet<String> = got
        .iter()
        .map(|r| r.header("x-webhook-message-id").unwrap().to_string())
        .collect();
    assert_eq!(
        all, before,
        "the same 10 message ids before and after the restart, and no others"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, ds) = call(
            &hub.base,
            "GET",
            &format!("/api/deliveries?webhook_id={}", sub["id"]),
            None,
        )
        .await;
        let delivered = ds
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "delivered")
            .count();
        if delivered == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries not all recorded as delivered: {ds}"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}
