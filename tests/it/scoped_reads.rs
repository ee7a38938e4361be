//! Another user's rows are answered as if they did not exist: an event read by id, the
//! console's summary, and an agent named as the receiver of a subscription or of an
//! incoming webhook. Each answer is compared with the one for a row that is not there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// The id of the event `agent` (a webhook agent of `token`'s user) makes of a request.
async fn an_event(hub: &TestHub, token: &str, agent: i64) -> i64 {
    hub.send_to_webhook(token, agent, &json!({"note": "mine"}))
        .await;
    let seen = hub
        .wait_payloads(token, agent, &[json!({"note": "mine"})])
        .await;
    assert_eq!(seen, [json!({"note": "mine"})]);
    let events = hub
        .get(&format!("/api/agents/{agent}/events"), token)
        .await
        .json();
    events[0]["id"].as_i64().unwrap()
}

/// An agent of `token`'s user that takes events from other agents.
async fn receiver(hub: &TestHub, token: &str) -> i64 {
    hub.add_agent(
        token,
        json!({"type": "event_formatting", "name": "Receiver",
               "options": {"instructions": {"seen": "yes"}, "mode": "merge"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

/// What `path` (with `{id}` filled in) answers `token` for `id`, with `id` written as
/// `as_id`: the answer for another user's row must read exactly like the one for a
/// missing row.
async fn answer_as(hub: &TestHub, token: &str, path: &str, id: i64, as_id: i64) -> (u16, String) {
    let r = hub.get(&path.replace("{id}", &id.to_string()), token).await;
    (
        r.status,
        r.text().replace(&id.to_string(), &as_id.to_string()),
    )
}

#[actix_rt::test]
async fn another_users_event_is_not_found() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.add_user("alice").await;
    let (_, bob) = hub.add_user("bob").await;
    let agent = hub.add_webhook_agent(&bob).await;
    let id = an_event(&hub, &bob, agent).await;
    let path = "/api/events/{id}";

    let own = hub.get(&format!("/api/events/{id}"), &bob).await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json()["payload"], json!({"note": "mine"}));
    let admin = hub.get(&format!("/api/events/{id}"), ADMIN_TOKEN).await;
    assert_eq!(admin.status, 200, "{}", admin.text());
    assert_eq!(admin.json(), own.json());

    let theirs = answer_as(&hub, &alice, path, id, id).await;
    let missing = answer_as(&hub, &alice, path, id + 1_000_000, id).await;
    assert_eq!(theirs.0, 404, "{}", theirs.1);
    assert_eq!(theirs, missing);
    let body: Value = serde_json::from_str(&theirs.1).unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert_eq!(body["error"]["message"], format!("event {id} not found"));
}

#[actix_rt::test]
async fn a_users_summary_counts_only_its_own_rows() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.add_user("alice").await;
    let (_, bob) = hub.add_user("bob").await;
    hub.add_webhook_agent(&alice).await;
    receiver(&hub, &alice).await;
    hub.add_webhook_agent(&bob).await;
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            &alice,
            &json!({"url": "http://93.184.216.34/hook", "name": "alice's",
                    "event_types": ["delivery.dead"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let alices = hub.get("/api/summary", &alice).await.json();
    assert_eq!(alices["agents"]["total"], 2, "{alices}");
    let subs = alices["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{alices}");
    assert_eq!(subs[0]["name"], "alice's");
    let bobs = hub.get("/api/summary", &bob).await.json();
    assert_eq!(bobs["agents"]["total"], 1, "{bobs}");
    assert_eq!(bobs["subscriptions"], json!([]));
    assert_eq!(bobs["queue"]["paused"], 0);
    let admin = hub.get("/api/summary", ADMIN_TOKEN).await.json();
    assert_eq!(admin["agents"]["total"], 3, "{admin}");
    assert_eq!(admin["subscriptions"].as_array().unwrap().len(), 1);
}

#[actix_rt::test]
async fn another_users_agent_cannot_receive_ones_webhooks() {
    let hub = TestHub::start().await;
    let (_, alice) = hub.add_user("alice").await;
    let (_, bob) = hub.add_user("bob").await;
    let alices = receiver(&hub, &alice).await;
    let missing = alices + 1_000_000;

    // An outgoing subscription sent on behalf of an agent.
    let subscribe = |agent: i64| {
        json!({"url": "http://93.184.216.34/hook", "event_types": ["delivery.dead"],
               "agent_id": agent})
    };
    let mut answers = Vec::new();
    for agent in [alices, missing] {
        let r = hub
            .post_json("/api/webhooks/outgoing", &bob, &subscribe(agent))
            .await;
        answers.push((
            r.status,
            r.text().replace(&format!("agent {agent}"), "agent N"),
        ));
    }
    assert_eq!(answers[0].0, 422, "{}", answers[0].1);
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0].1.contains("agent N does not exist"),
        "{}",
        answers[0].1
    );
    let r = hub
        .post_json("/api/webhooks/outgoing", &alice, &subscribe(alices))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // An incoming webhook whose events go to an agent.
    let mut answers = Vec::new();
    for agent in [alices, missing] {
        let r = hub
            .post_json(
                "/api/webhooks/incoming",
                &bob,
                &json!({"name": "in", "agent_id": agent}),
            )
            .await;
        answers.push((
            r.status,
            r.text().replace(&format!("agent {agent}"), "agent N"),
        ));
    }
    assert_eq!(answers[0].0, 422, "{}", answers[0].1);
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0]
            .1
            .contains("agent N does not exist or belongs to another user"),
        "{}",
        answers[0].1
    );
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            &alice,
            &json!({"name": "in", "agent_id": alices}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}
