//! `/worker_status` is per user: one user's failing agent shows in that user's
//! `recent_failures` only, for an admin as for anyone else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::json;

#[actix_rt::test]
async fn recent_failures_count_only_the_callers_agents() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let (_, alice) = hub.add_user("alice").await;
    let (_, bob) = hub.add_user("bob").await;
    // Bob's feed is unreachable (nothing listens on port 9): each run logs an error.
    let id = hub
        .add_agent(&bob, json!({"type": "rss", "name": "gone", "options": {"url": "http://127.0.0.1:9/feed.xml"}}))
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), &bob, &json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    let failures = |token: String| {
        let hub = &hub;
        async move {
            let r = hub.get("/worker_status", &token).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["recent_failures"].as_i64().unwrap()
        }
    };
    while failures(bob.clone()).await == 0 {
        assert!(Instant::now() < deadline, "bob's agent logged no error");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(failures(bob.clone()).await, 1);
    assert_eq!(failures(alice.clone()).await, 0, "alice sees bob's failure");
    assert_eq!(
        failures(ADMIN_TOKEN.to_string()).await,
        0,
        "the admin's worker_status is the admin's own work too"
    );
    let r = hub.get("/worker_status", &alice).await.json();
    assert_eq!(r["event_count"], 0);
    assert_eq!(r["max_id"], 0);
}
