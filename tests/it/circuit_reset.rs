//! `POST /api/webhooks/outgoing/{id}/reset-circuit`: the answers show an open circuit
//! and when it opened; a reset by its owner sends what waited behind it at once (the
//! cooldown is an hour), is stored, emits `subscription.circuit_closed` once, and is
//! idempotent; other users get 404 and a read-only token 403. Re-enabling a disabled
//! subscription closes its circuit too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use chrono::DateTime;
use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

async fn hub() -> TestHub {
    TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await
}

async fn events_of_type(hub: &TestHub, t: &str) -> Vec<Value> {
    hub.get(&format!("/api/events?type={t}"), ADMIN_TOKEN)
        .await
        .json()
        .as_array()
        .unwrap()
        .clone()
}

async fn subscription(hub: &TestHub, id: i64) -> Value {
    let r = hub
        .get(&format!("/api/webhooks/outgoing/{id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn time(v: &Value) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

#[actix_rt::test]
async fn an_open_circuit_is_shown_and_reset_by_its_owner_only() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::status(500), Reply::status(500)]);
    let agent = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 10,
                    "retry_delay": 0.05, "max_retry_delay": 0.05, "failure_threshold": 2,
                    "circuit_cooldown": 3600}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let closed = subscription(&hub, id).await;
    assert_eq!(closed["circuit_state"], "closed");
    assert_eq!(closed["circuit_opened_at"], Value::Null);
    assert_eq!(closed["circuit_half_opens_at"], Value::Null);

    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{agent}/s"),
            ADMIN_TOKEN,
            &json!({"n": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(15);
    let open = loop {
        let s = subscription(&hub, id).await;
        if s["circuit_state"] == "open" {
            break s;
        }
        assert!(Instant::now() < deadline, "the circuit did not open: {s}");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    };
    assert_eq!(open["consecutive_failures"], 2);
    let opened = time(&open["circuit_opened_at"]);
    assert!(
        (chrono::Utc::now().fixed_offset() - opened)
            .num_seconds()
            .abs()
            < 60
    );
    assert_eq!(
        time(&open["circuit_half_opens_at"]) - opened,
        chrono::Duration::seconds(3600)
    );
    let summary = hub.get("/api/summary", ADMIN_TOKEN).await.json();
    let q = &summary["subscriptions"][0];
    assert_eq!(
        (q["circuit"].as_str(), q["id"].as_i64()),
        (Some("open"), Some(id))
    );
    assert_eq!(q["circuit_opened_at"], open["circuit_opened_at"]);
    assert_eq!(sink.received().len(), 2, "held behind the open circuit");

    // Not another user's to reset, nor a read-only token's.
    let path = format!("/api/webhooks/outgoing/{id}/reset-circuit");
    let (_, bob) = hub.add_user("bob").await;
    let r = hub.request("POST", &path, Some(&bob), &[], None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = hub
        .post_json(
            "/api/tokens",
            ADMIN_TOKEN,
            &json!({"name": "ro", "scope": "read"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let read_only = r.json()["token"].as_str().unwrap().to_string();
    let r = hub
        .request("POST", &path, Some(&read_only), &[], None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = hub
        .request(
            "POST",
            "/api/webhooks/outgoing/999999/reset-circuit",
            Some(ADMIN_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(subscription(&hub, id).await["circuit_state"], "open");
    assert_eq!(
        sink.received().len(),
        2,
        "the refused resets changed nothing"
    );

    // The owner resets it: the held delivery goes now, not in an hour.
    let r = hub
        .request("POST", &path, Some(ADMIN_TOKEN), &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["was_open"], true);
    assert_eq!(j["subscription"]["circuit_state"], "closed");
    assert_eq!(j["subscription"]["circuit_opened_at"], Value::Null);
    assert_eq!(j["subscription"]["consecutive_failures"], 0);
    let got = sink.wait_for(3).await;
    assert_eq!(got[2].answered, 200);
    let stored = subscription(&hub, id).await;
    assert_eq!(
        (&stored["circuit_state"], &stored["consecutive_failures"]),
        (&json!("closed"), &json!(0))
    );
    let closed_events = events_of_type(&hub, "subscription.circuit_closed").await;
    assert_eq!(closed_events.len(), 1, "{closed_events:?}");
    assert_eq!(closed_events[0]["payload"]["webhook_id"], id);
    assert_eq!(closed_events[0]["payload"]["reset_by_hand"], true);

    // Again: nothing to reset, no second event.
    let r = hub
        .request("POST", &path, Some(ADMIN_TOKEN), &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["was_open"], false);
    assert_eq!(
        events_of_type(&hub, "subscription.circuit_closed")
            .await
            .len(),
        1
    );
    let summary = hub.get("/api/summary", ADMIN_TOKEN).await.json();
    assert_eq!(summary["subscriptions"][0]["circuit"], "closed");
    assert_eq!(
        summary["subscriptions"][0]["circuit_opened_at"],
        Value::Null
    );
}

#[actix_rt::test]
async fn re_enabling_a_subscription_closes_its_live_circuit() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::status(500), Reply::status(500)]);
    let agent = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 10,
                    "retry_delay": 0.05, "max_retry_delay": 0.05, "failure_threshold": 2,
                    "circuit_cooldown": 3600}),
        )
        .await;
    let id = r.json()["id"].as_i64().unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{agent}/s"),
            ADMIN_TOKEN,
            &json!({"n": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(15);
    while subscription(&hub, id).await["circuit_state"] != "open" {
        assert!(Instant::now() < deadline, "the circuit did not open");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    let path = format!("/api/webhooks/outgoing/{id}");
    for active in [false, true] {
        let r = hub
            .send_json("PATCH", &path, ADMIN_TOKEN, &json!({"is_active": active}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(subscription(&hub, id).await["circuit_state"], "closed");
    // Sent now, not after the hour's cooldown.
    let got = sink.wait_for(3).await;
    assert_eq!(got[2].answered, 200);
}
