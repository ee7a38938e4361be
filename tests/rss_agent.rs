//! The rss agent against a local feed: new entries become events once, validators are
//! sent back, and an unreachable feed shows as an error and `working: false`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Local blog</title><link>http://127.0.0.1/</link><description>posts</description>
<item><title>Second post</title><link>http://127.0.0.1/2</link><guid>post-2</guid><pubDate>Sun, 22 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>First post</title><link>http://127.0.0.1/1</link><guid>post-1</guid><pubDate>Sat, 21 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"#;

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
}

#[actix_rt::test]
async fn new_entries_become_events_once() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = Sink::start();
    sink.set_default(Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/rss+xml".into()),
            ("ETag".into(), "\"v1\"".into()),
        ],
        delay: Duration::ZERO,
        body: FEED.into(),
    });
    let agent = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "Agents::RssAgent", "name": "blog", "options": {"url": format!("{}/feed.xml", sink.url)}}))
        .await;
    assert_eq!(agent["schedule"], "every_1d");
    let id = agent["id"].as_i64().unwrap();
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let mut payloads: Vec<Value> = Vec::new();
    wait_for("two entries", async || {
        payloads = hub.payloads(ADMIN_TOKEN, id).await;
        payloads.len() == 2
    })
    .await;
    assert_eq!(payloads[0]["title"], "First post", "oldest first");
    assert_eq!(payloads[0]["url"], "http://127.0.0.1/1");
    assert_eq!(payloads[1]["id"], "post-2");
    // A second run sends the validator back and finds nothing new.
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    sink.wait_for(2).await;
    assert_eq!(sink.received()[1].header("if-none-match"), Some("\"v1\""));
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hub.payloads(ADMIN_TOKEN, id).await.len(), 2);
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["working"], true);
    assert_eq!(a["memory"]["seen_ids"], json!(["post-1", "post-2"]));
}

#[actix_rt::test]
async fn an_unreachable_feed_is_an_error_not_a_crash() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let id = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "rss", "name": "gone", "options": {"url": "http://127.0.0.1:9/feed.xml"}}))
        .await["id"]
        .as_i64()
        .unwrap();
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    let mut logs = json!([]);
    wait_for("an error log", async || {
        logs = hub
            .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
            .await
            .json();
        !logs.as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(logs[0]["level"], 4);
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .contains("Could not fetch http://127.0.0.1:9/feed.xml"),
        "{logs}"
    );
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["working"], false);
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "rss", "name": "x", "options": {"url": "file:///etc/passwd"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("option \"url\"")
    );
}
