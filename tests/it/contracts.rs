//! What the contract documents' users expect beyond single requests (which the
//! fixtures in fixtures/cases/contract_*.json replay): default rate limits, logs that
//! show every answered request, retry policies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::json;

/// Huginn has no limit on web-request URLs; AGiXT limits an incoming webhook to 100
/// requests a minute.
#[actix_rt::test]
async fn huginn_urls_are_unlimited_and_incoming_webhooks_take_100_a_minute() {
    let hub = TestHub::start().await;
    let agent = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let url = format!("/users/1/web_requests/{agent}/s");
    for i in 0..120 {
        let r = hub
            .request(
                "POST",
                &url,
                None,
                &[("content-type", "application/json")],
                Some(b"{\"n\": 1}".to_vec()),
            )
            .await;
        assert_eq!(r.status, 201, "request {i}: {}", r.text());
    }
    let receiver = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "r", "options": {"instructions": {"a": "b"}}}),
        )
        .await;
    let created = hub
        .post_json(
            "/api/webhooks/incoming",
            ADMIN_TOKEN,
            &json!({"name": "in", "agent_id": receiver["id"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let token = created.json()["token"].as_str().unwrap().to_string();
    let path = format!("/webhook/{token}");
    // A bucket of 100 that refills over the minute: the first 100 pass, and a burst
    // meets 429 soon after (a few tokens come back while the burst is sent).
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..150 {
        let r = hub
            .request(
                "POST",
                &path,
                None,
                &[("content-type", "application/json")],
                Some(b"{}".to_vec()),
            )
            .await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        accepted += 1;
    }
    let refused = refused.expect("150 requests in a burst were all accepted");
    assert!(accepted >= 100, "only {accepted} accepted before a 429");
    assert!(refused.header("retry-after").is_some());
}

/// A user who sends requests and then reads the log sees every one of them: lines wait
/// in memory up to a second, and a read has them written first.
#[actix_rt::test]
async fn a_log_read_shows_every_request_answered_before_it() {
    let hub = TestHub::start().await;
    let receiver = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "r", "options": {"instructions": {"a": "b"}}}),
        )
        .await;
    let created = hub
        .post_json(
            "/api/webhooks/incoming",
            ADMIN_TOKEN,
            &json!({"name": "in", "agent_id": receiver["id"]}),
        )
        .await;
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/webhook/{}", created.json()["token"].as_str().unwrap());
    let json_type = [("content-type", "application/json")];
    for round in 1..=3 {
        let r = hub
            .request("POST", &path, None, &json_type, Some(b"{}".to_vec()))
            .await;
        assert_eq!(r.status, 200);
        let r = hub.request("PUT", &path, None, &json_type, None).await;
        assert_eq!(r.status, 405);
        let logs = hub
            .get(
                &format!("/api/webhooks/{id}/logs?webhook_type=incoming"),
                ADMIN_TOKEN,
            )
            .await
            .json();
        assert_eq!(logs.as_array().unwrap().len(), 2 * round, "{logs}");
        assert_eq!(logs[0]["status"], 405, "newest first: {logs}");
    }
    let agent = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let url = format!("/users/1/web_requests/{agent}/s");
    let r = hub
        .request("POST", &url, None, &json_type, Some(b"{}".to_vec()))
        .await;
    assert_eq!(r.status, 201);
    let r = hub
        .request(
            "POST",
            &format!("/users/1/web_requests/{agent}/wrong"),
            None,
            &json_type,
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(r.status, 401);
    let logs = hub
        .get(
            &format!("/api/webhooks/{agent}/logs?webhook_type=agent"),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(logs.as_array().unwrap().len(), 2, "{logs}");
    let stats = hub
        .get(&format!("/api/webhooks/{id}/statistics"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(stats["received"], 6, "{stats}");
}
