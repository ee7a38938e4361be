//! Event flow along links beyond what the fixture cases show.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::json;

#[actix_rt::test]
async fn a_link_cycle_stops_at_the_depth_limit_and_says_so() {
    let hub = TestHub::start_with(|c| c.agents.max_propagation_depth = 6).await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let a = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "a", "source_ids": [hook],
                   "options": {"mode": "merge", "instructions": {"via": "a"}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let b = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "b", "source_ids": [a], "receiver_ids": [a],
                   "options": {"mode": "merge", "instructions": {"via": "b"}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"n": 1}),
        )
        .await;
    assert_eq!(r.status, 201);

    // Depths 0..5 are handled (a: 0,2,4; b: 1,3,5); the event at depth 6 is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logs = json!([]);
    while Instant::now() < deadline {
        logs = hub
            .get(&format!("/api/agents/{a}/logs"), ADMIN_TOKEN)
            .await
            .json();
        if !logs.as_array().unwrap().is_empty() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
    let message = logs[0]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("max_propagation_depth"), "{logs}");
    assert_eq!(logs[0]["level"], 4);
    // Nothing more arrives after the refusal.
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hub.payloads(ADMIN_TOKEN, a).await.len(), 3);
    assert_eq!(hub.payloads(ADMIN_TOKEN, b).await.len(), 3);
    let agent = hub
        .get(&format!("/api/agents/{a}"), ADMIN_TOKEN)
        .await
        .json();
    assert!(agent["last_error_at"].is_string(), "{agent}");
}

#[actix_rt::test]
async fn system_events_record_agent_changes() {
    let hub = TestHub::start().await;
    let id = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "webhook", "name": "w", "options": {"secret": "s"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{id}"),
            ADMIN_TOKEN,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["disabled"], true);
    assert_eq!(
        hub.delete(&format!("/api/agents/{id}"), ADMIN_TOKEN)
            .await
            .status,
        204
    );
    let events = hub.get("/api/events", ADMIN_TOKEN).await.json();
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "agent.created",
            "agent.updated",
            "agent.disabled",
            "agent.deleted"
        ]
    );
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["agent_id"].is_null())
    );
    assert_eq!(events[3]["payload"]["agent"]["id"], id);
}

#[actix_rt::test]
async fn agents_that_do_not_propagate_immediately_get_events_in_the_sweep() {
    let hub = TestHub::start_with(|c| c.agents.propagation_interval_seconds = 1).await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let lazy = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "lazy", "source_ids": [hook], "propagate_immediately": false,
                   "options": {"instructions": {"got": "{{ n }}"}}}),
        )
        .await;
    assert_eq!(lazy["propagate_immediately"], false);
    let lazy = lazy["id"].as_i64().unwrap();
    for n in 0..3 {
        let r = hub
            .post_json(
                &format!("/users/1/web_requests/{hook}/s"),
                ADMIN_TOKEN,
                &json!({"n": n}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let want: Vec<serde_json::Value> = (0..3).map(|n| json!({"got": n.to_string()})).collect();
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, lazy, &want).await, want);
}

#[actix_rt::test]
async fn changing_keep_events_for_rewrites_the_expiry_of_existing_events() {
    let hub = TestHub::start().await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"n": 1}),
        )
        .await;
    assert_eq!(r.status, 201);
    let before = first_event(&hub, hook).await;
    assert!(before["expires_at"].is_null());
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{hook}"),
            ADMIN_TOKEN,
            &json!({"keep_events_for": 86400}),
        )
        .await;
    assert_eq!(r.status, 200);
    let after = first_event(&hub, hook).await;
    let created =
        chrono::DateTime::parse_from_rfc3339(after["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(after["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 86400);
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{hook}"),
            ADMIN_TOKEN,
            &json!({"keep_events_for": 0}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(first_event(&hub, hook).await["expires_at"].is_null());
}

#[actix_rt::test]
async fn an_absurd_keep_events_for_is_refused_and_writes_carry_on() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "manual_event", "name": "m", "keep_events_for": 9_000_000_000_000_000i64}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("keep_events_for"), "{}", r.text());
    let m = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "manual_event", "name": "m", "keep_events_for": 3_153_600_000i64}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/api/agents/{m}/events"),
            ADMIN_TOKEN,
            &json!({"a": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(first_event(&hub, m).await["expires_at"].is_string());
}

async fn first_event(hub: &TestHub, agent: i64) -> serde_json::Value {
    hub.get(&format!("/api/agents/{agent}/events"), ADMIN_TOKEN)
        .await
        .json()[0]
        .clone()
}

/// Expired events go, and with them their place in the agent's `events_count` and
/// the user's `/worker_status` count; an agent whose events are kept keeps its count.
#[actix_rt::test]
async fn expiry_takes_the_deleted_events_off_the_counts() {
    let hub = TestHub::start_with(|c| c.agents.expiry_interval_seconds = 1).await;
    let (uid, token) = hub.add_user("ada").await;
    let short = hub
        .add_agent(
            &token,
            json!({"type": "webhook", "name": "short", "keep_events_for": 1,
                   "options": {"secret": "s"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let kept = hub.add_webhook_agent(&token).await;
    for (agent, n) in [(short, 4), (kept, 3)] {
        for i in 0..n {
            let r = hub
                .post_json(
                    &format!("/users/{uid}/web_requests/{agent}/s"),
                    &token,
                    &json!({"i": i}),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
        }
    }
    let count = |agent: i64| {
        let (hub, token) = (&hub, &token);
        async move {
            let r = hub.get(&format!("/api/agents/{agent}"), token).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["events_count"].as_i64().unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hub.payloads(&token, short).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the expired events were not deleted"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(short).await, 0);
    assert_eq!(count(kept).await, 3);
    assert_eq!(hub.payloads(&token, kept).await.len(), 3);
    // The user's count is the events the user can list.
    let listed = hub.get("/api/events?limit=1000", &token).await.json();
    let listed = listed.as_array().map_or(0, Vec::len) as i64;
    assert!(listed >= 3, "{listed}");
    let status = hub.get("/worker_status", &token).await.json();
    assert_eq!(status["event_count"], listed, "{status}");
}
