//! The hub's console endpoints: `/api/summary` and `/api/stream` need a token and show
//! each user only its own; `/api/agents/{id}/run` and `/api/agents/{id}/memory`.

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Reads an SSE response until `done` says the text so far is enough (bounded).
async fn read_stream(
    resp: &mut awc::ClientResponse<
        impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
        + Unpin,
    >,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&text) && Instant::now() < deadline {
        if let Ok(Some(Ok(chunk))) =
            actix_rt::time::timeout(Duration::from_millis(200), resp.next()).await
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    text
}

async fn webhook_agent(hub: &TestHub, token: &str, name: &str) -> Value {
    hub.add_agent(
        token,
        json!({"type": "webhook", "name": name, "options": {"secret": "s"}}),
    )
    .await
}

#[actix_rt::test]
async fn summary_and_stream_need_a_token_and_show_each_user_its_own() {
    let hub = TestHub::start().await;
    assert_eq!(
        hub.request("GET", "/api/summary", None, &[], None)
            .await
            .status,
        401
    );
    assert_eq!(
        hub.request("GET", "/api/stream", Some("nope"), &[], None)
            .await
            .status,
        401
    );

    let (bob_id, bob) = hub.add_user("bob").await;
    let client = awc::Client::default();
    let mut bob_stream = client
        .get(format!("{}/api/stream", hub.base))
        .insert_header(("Authorization", format!("Bearer {bob}")))
        .send()
        .await
        .unwrap();
    assert_eq!(bob_stream.status().as_u16(), 200);
    assert_eq!(
        bob_stream.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut admin_stream = client
        .get(format!("{}/api/stream", hub.base))
        .insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")))
        .send()
        .await
        .unwrap();

    let admin_agent = webhook_agent(&hub, ADMIN_TOKEN, "admin in").await;
    let bob_agent = webhook_agent(&hub, &bob, "bob in").await;
    for (user, agent, body) in [
        (1, &admin_agent, "admin-secret-payload"),
        (bob_id, &bob_agent, "bob-payload"),
    ] {
        let r = hub
            .post_json(
                &format!("/users/{user}/web_requests/{}/s", agent["id"]),
                &bob,
                &json!({ "note": body }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let seen = read_stream(&mut bob_stream, |t| t.contains("bob-payload")).await;
    assert!(seen.starts_with("event: hello\n"), "{seen}");
    assert!(
        seen.contains("event: event\ndata: {\"kind\":\"event\""),
        "{seen}"
    );
    assert!(seen.contains("bob-payload"), "{seen}");
    assert!(
        !seen.contains("admin-secret-payload"),
        "bob saw the admin's event: {seen}"
    );
    // The admin sees everything.
    let seen = read_stream(&mut admin_stream, |t| {
        t.contains("bob-payload") && t.contains("admin-secret-payload")
    })
    .await;
    assert!(
        seen.contains("bob-payload") && seen.contains("admin-secret-payload"),
        "{seen}"
    );

    // Summary: counts from memory, scoped to the caller.
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": "https://example.com/hook", "name": "admin's", "event_types": ["x.y"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(5);
    let admin = loop {
        let s = hub.get("/api/summary", ADMIN_TOKEN).await.json();
        if s["subscriptions"].as_array().unwrap().len() == 1 || Instant::now() > deadline {
            break s;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(admin["subscriptions"][0]["name"], "admin's");
    assert_eq!(admin["agents"]["total"], 2);
    assert_eq!(admin["version"], env!("CARGO_PKG_VERSION"));
    assert!(admin["database_bytes"].as_u64().unwrap() > 0);
    assert!(admin["rates"]["events_total"].as_u64().unwrap() >= 2);
    assert_eq!(admin["rates"]["events"].as_array().unwrap().len(), 60);
    let bobs = hub.get("/api/summary", &bob).await.json();
    assert_eq!(bobs["subscriptions"], json!([]));
    assert_eq!(bobs["agents"]["total"], 1);
    assert!(
        bobs.get("database_bytes").is_none(),
        "the hub's database size is for admins: {bobs}"
    );
    // Rates too: bob's own traffic, not the hub's.
    let all = admin["rates"]["events_total"].as_u64().unwrap();
    let his = bobs["rates"]["events_total"].as_u64().unwrap();
    assert!(his >= 1 && his < all, "bob {his}, hub {all}");
    assert_eq!(
        bobs["rates"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>(),
        his
    );

    // Endpoint counters: accepted and rejected by status, each user its own.
    let r = hub
        .post_json(
            &format!("/users/{bob_id}/web_requests/{}/wrong", bob_agent["id"]),
            &bob,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 401);
    let bobs = hub.get("/api/summary", &bob).await.json();
    assert_eq!(
        bobs["endpoints"],
        json!([{"agent_id": bob_agent["id"], "per_minute": 2, "accepted": 1, "rejected": {"401": 1}}])
    );
    let admin = hub.get("/api/summary", ADMIN_TOKEN).await.json();
    assert_eq!(admin["endpoints"].as_array().unwrap().len(), 2);
}

#[actix_rt::test]
async fn run_now_and_clear_memory() {
    let hub = TestHub::start().await;
    let (_, bob) = hub.add_user("bob").await;
    let agent = webhook_agent(&hub, ADMIN_TOKEN, "in").await;
    let id = agent["id"].as_i64().unwrap();
    let r = hub
        .request(
            "POST",
            &format!("/api/agents/{id}/run"),
            Some(ADMIN_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    // Another user's agent does not exist for bob.
    let r = hub
        .request(
            "POST",
            &format!("/api/agents/{id}/run"),
            Some(&bob),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        hub.delete(&format!("/api/agents/{id}/memory"), &bob)
            .await
            .status,
        404
    );
    let r = hub
        .delete(&format!("/api/agents/{id}/memory"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["memory"], json!({}));
    // A disabled agent is not run.
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{id}"),
            ADMIN_TOKEN,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = hub
        .request(
            "POST",
            &format!("/api/agents/{id}/run"),
            Some(ADMIN_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
}
