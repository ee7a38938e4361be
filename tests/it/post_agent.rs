//! The post agent sends through the delivery engine: retries, attempt logs, and the
//! response as an event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::json;

#[actix_rt::test]
async fn posts_are_retried_and_their_responses_emitted() {
    let hub = TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await;
    let sink = Sink::start();
    sink.script([Reply::status(503)]);
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let post = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::PostAgent", "name": "notify", "source_ids": [hook],
                   "options": {"post_url": format!("{}/notify", sink.url), "content_type": "json", "no_merge": true,
                               "payload": {"text": "{{ title }} is {{ state }}"}, "headers": {"X-Token": "t-{{ state }}"},
                               "emit_events": true, "retry_delay": 0.1}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"title": "db", "state": "down"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let got = sink.wait_for(2).await;
    assert_eq!(got[1].json(), json!({"text": "db is down"}));
    assert_eq!(got[1].header("x-token"), Some("t-down"));
    assert_eq!(
        got[1].header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(got[0].body, got[1].body, "the retry sends the same request");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut emitted = Vec::new();
    while Instant::now() < deadline {
        emitted = hub.payloads(ADMIN_TOKEN, post).await;
        if !emitted.is_empty() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(emitted.len(), 1, "{emitted:?}");
    assert_eq!(emitted[0]["status"], 200);
    assert_eq!(emitted[0]["body"], "");
    // The agent's sends are not outgoing webhooks a user manages.
    assert_eq!(
        hub.get("/api/webhooks/outgoing", ADMIN_TOKEN).await.json(),
        json!([])
    );
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "post", "name": "x", "options": {"post_url": "nope"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("option \"post_url\"")
    );
    assert_eq!(
        hub.delete(&format!("/api/agents/{post}"), ADMIN_TOKEN)
            .await
            .status,
        204
    );
}
