//! Hostile JSONPath through the real hub: a webhook agent's `payload_path` reached by an
//! unauthenticated POST, and a trigger rule's `path` run by an agent. Each gets an error
//! naming the bound, and the hub keeps answering another user meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// The report's event: 208 bytes, nested 100 deep.
fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 1..depth {
        v = Value::Array(vec![v]);
    }
    json!({ "n": v })
}

/// Another user's requests answer, within a generous bound, while `hostile` runs.
async fn others_still_answer(hub: &TestHub, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let health = hub.request("GET", "/healthz", None, &[], None).await;
    assert_eq!(health.status, 200);
    let agents = hub.get("/api/agents", token).await;
    assert_eq!(agents.status, 200, "{}", agents.text());
    assert!(Instant::now() < deadline, "the hub stalled for other users");
}

#[actix_rt::test]
async fn an_absurd_path_is_refused_when_saved() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "webhook", "name": "in",
                    "options": {"secret": "s", "payload_path": "$..*..*..*..*..*..*"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let error = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(error.contains("payload_path"), "{error}");
    assert!(error.contains("(JSONPath descendant limit)"), "{error}");

    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "trigger", "name": "t",
                    "options": {"rules": [{"type": "regex", "path": "$..*..*..*..*..*..*", "value": "x"}],
                                "message": "m"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("rules[0].path"), "{}", r.text());
}

#[actix_rt::test]
async fn an_unauthenticated_post_gets_the_bound_not_the_memory() {
    let hub = TestHub::start().await;
    let (_, other) = hub.add_user("other").await;
    let hook = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "webhook", "name": "in",
                   "options": {"secret": "s", "payload_path": "$..*..*..*..*"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let url = format!("/users/1/web_requests/{hook}/s");
    // 20 000 values four levels down: more than the path may select.
    let wide = json!({"a": {"b": {"c": {"items": (0..20_000).collect::<Vec<_>>()}}}});
    let deep = nested(100);
    let hostile = async {
        let mut answers = Vec::new();
        for body in [&wide, &deep, &wide] {
            answers.push(
                hub.request(
                    "POST",
                    &url,
                    None,
                    &[("content-type", "application/json")],
                    Some(body.to_string().into_bytes()),
                )
                .await,
            );
        }
        answers
    };
    let (answers, ()) = futures_util::join!(hostile, others_still_answer(&hub, &other));
    assert_eq!(answers[0].status, 422, "{}", answers[0].text());
    // muninn's own refusal (Huginn has no bound), so the error shape.
    assert_eq!(
        answers[0].json()["error"],
        serde_json::json!({
            "code": "validation_failed",
            "message": "payload_path \"$..*..*..*..*\" would select more than 10000 values (JSONPath result limit)"
        })
    );
    // The deep event is small once each value is reached once: it selects fine, and
    // what it selects is not an object.
    assert_eq!(answers[1].status, 422, "{}", answers[1].text());
    assert!(
        answers[1]
            .text()
            .contains("each event must be a JSON object")
    );
    assert!(hub.payloads(ADMIN_TOKEN, hook).await.is_empty());
    others_still_answer(&hub, &other).await;
}

#[actix_rt::test]
async fn a_trigger_path_over_the_bound_logs_which_bound() {
    let hub = TestHub::start().await;
    let (_, other) = hub.add_user("other").await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let trigger = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "trigger", "name": "t", "source_ids": [hook],
                   "options": {"rules": [{"type": "regex", "path": "$..*..*", "value": "x"}],
                               "message": "m"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"items": (0..20_000).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logs = json!([]);
    while Instant::now() < deadline {
        others_still_answer(&hub, &other).await;
        logs = hub
            .get(&format!("/api/agents/{trigger}/logs"), ADMIN_TOKEN)
            .await
            .json();
        if !logs.as_array().unwrap().is_empty() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
    let message = logs[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "path \"$..*..*\" would select more than 10000 values (JSONPath result limit)"
        ),
        "{logs}"
    );
    assert!(hub.payloads(ADMIN_TOKEN, trigger).await.is_empty());
}
