//! The notifier and API agent types against local fakes of their services: what the
//! fake receives (path, form, JSON), and what the agents emit and log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sink::Sink;
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// A form body decoded into a JSON object (every value a string).
fn form(body: &[u8]) -> Value {
    Value::Object(
        url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    )
}

async fn hub() -> TestHub {
    TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await
}

async fn send(hub: &TestHub, hook: i64, payload: Value) {
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &payload,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[actix_rt::test]
async fn slack_posts_each_event_to_the_webhook() {
    let hub = hub().await;
    let slack = Sink::start();
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::SlackAgent", "name": "team chat", "source_ids": [hook],
                   "options": {"webhook_url": slack.url, "channel": "#ops", "icon": ":fire:",
                               "message": "{{ title }} is [down](https://status.example/{{ title }})"}}),
        )
        .await;
    assert_eq!(agent["type"], "slack", "{agent}");
    send(&hub, hook, json!({"title": "db"})).await;
    let got = slack.wait_for(1).await;
    assert_eq!(got[0].path, "/hook");
    assert_eq!(
        got[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let payload: Value =
        serde_json::from_str(form(&got[0].body)["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        payload,
        json!({"username": "Huginn", "channel": "#ops", "icon_emoji": ":fire:",
               "text": "db is <https://status.example/db|down>"})
    );
    // Huginn's validation messages, and the target guard on the webhook URL.
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "slack", "name": "x", "options": {"channel": "#a"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("option \\\"webhook_url\\\" is required"),
        "{}",
        r.text()
    );
}
