//! The hub survives a PostgreSQL restart (issue 19): while the server is down, webhook
//! posts are answered 503 (never a 2xx for an event that did not commit, never a hang)
//! and `/healthz` says the database is unavailable; once it is back, posts are answered
//! 2xx again within a bounded wait, without restarting the hub, and every event
//! acknowledged with a 2xx, before and after, is in the database, reaches the agent
//! downstream and is delivered to the subscription's sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::postgres::PgCluster;
use common::sink::Sink;
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// How long the hub may take to write again once PostgreSQL is back: the writer's
/// longest backoff is 2 s; the rest is slack for a slow machine.
const RECOVERY: Duration = Duration::from_secs(30);

/// POSTs `{"n": n}` to the webhook agent's URL; the status (and the body, for messages).
async fn post(hub: &TestHub, hook: i64, n: i64) -> (u16, String) {
    let path = format!("/users/1/web_requests/{hook}/s");
    let body = json!({ "n": n }).to_string().into_bytes();
    let r = hub
        .request(
            "POST",
            &path,
            None,
            &[("content-type", "application/json")],
            Some(body),
        )
        .await;
    (r.status, r.text())
}

fn ns(payloads: &[Value]) -> Vec<i64> {
    let mut n: Vec<i64> = payloads.iter().filter_map(|p| p["n"].as_i64()).collect();
    n.sort_unstable();
    n.dedup();
    n
}

/// Whether every number in `want` is among `got`.
fn all_in(want: &[i64], got: &[i64]) -> bool {
    want.iter().all(|n| got.contains(n))
}

/// Waits (bounded) until the agent's events hold every payload number in `want`.
async fn wait_events(hub: &TestHub, agent: i64, want: &[i64]) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = ns(&hub.payloads(ADMIN_TOKEN, agent).await);
        if all_in(want, &got) || Instant::now() > deadline {
            return got;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn webhooks_answer_503_while_postgres_is_down_and_commit_again_after_it_restarts() {
    let Some(pg) = PgCluster::start() else { return };
    let hub = TestHub::start_on(Some(pg), |c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await;
    let sink = Sink::start();
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let formatter = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "fmt", "source_ids": [hook],
                   "options": {"mode": "merge", "instructions": {"seen": "yes"}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // Only the webhook's own events go to the sink (the formatter's are checked on the
    // agent), so the sink gets one request per acknowledged post.
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "event_types": ["event.created"], "agent_id": hook}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let mut acknowledged = Vec::new();
    for n in 1..=3 {
        let (status, body) = post(&hub, hook, n).await;
        assert_eq!(status, 201, "before the restart: {body}");
        acknowledged.push(n);
    }

    let pg = hub.pg.as_ref().unwrap();
    pg.stop_fast();
    // While it is down: refused with the reason, at once (the client gives up after
    // 20 s, which would fail the request), never acknowledged.
    for n in 100..103 {
        let (status, body) = post(&hub, hook, n).await;
        assert_eq!(status, 503, "while PostgreSQL is down: {body}");
        assert!(
            body.contains("connection to the database was lost"),
            "the reason: {body}"
        );
    }
    let health = hub.request("GET", "/healthz", None, &[], None).await;
    assert_eq!(health.status, 503, "{}", health.text());
    assert_eq!(health.json()["status"], "unavailable", "{}", health.text());

    pg.start_again();
    // Back within a bounded wait: the first 2xx ends it; every 503 before it is a
    // refusal the sender would retry.
    let deadline = Instant::now() + RECOVERY;
    let mut n = 200;
    loop {
        let (status, body) = post(&hub, hook, n).await;
        if status == 201 {
            acknowledged.push(n);
            break;
        }
        assert_eq!(status, 503, "while reconnecting: {body}");
        assert!(
            Instant::now() < deadline,
            "posts are still refused {} s after PostgreSQL came back: {body}",
            RECOVERY.as_secs()
        );
        n += 1;
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 300..303 {
        let (status, body) = post(&hub, hook, n).await;
        assert_eq!(status, 201, "after the restart: {body}");
        acknowledged.push(n);
    }
    let health = hub.request("GET", "/healthz", None, &[], None).await;
    assert_eq!(health.status, 200, "{}", health.text());

    // Every acknowledged event is stored, reached the agent downstream and the sink.
    let stored = wait_events(&hub, hook, &acknowledged).await;
    assert!(
        all_in(&acknowledged, &stored),
        "acknowledged {acknowledged:?}, stored {stored:?}"
    );
    let formatted = wait_events(&hub, formatter, &acknowledged).await;
    assert!(
        all_in(&acknowledged, &formatted),
        "acknowledged {acknowledged:?}, the agent made {formatted:?}"
    );
    let want = acknowledged.clone();
    sink.wait_until("every acknowledged event", move |got| {
        let sent: Vec<i64> = got
            .iter()
            .filter_map(|r| r.json()["data"]["n"].as_i64())
            .collect();
        all_in(&want, &sent)
    })
    .await;
    // Refused while down: none of them was stored.
    assert!(
        stored.iter().all(|n| !(100..103).contains(n)),
        "a post answered 503 while PostgreSQL was down was stored: {stored:?}"
    );
}
