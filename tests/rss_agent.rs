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

/// An RSS feed of `n` entries, `first` being the oldest id, newest listed first.
fn big_feed(first: usize, n: usize) -> String {
    let mut items = String::new();
    for i in (first..first + n).rev() {
        items.push_str(&format!(
            "<item><title>Post {i}</title><guid>p{i}</guid></item>"
        ));
    }
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title><link>http://127.0.0.1/</link><description>d</description>{items}</channel></rss>"#
    )
}

fn serve(sink: &Sink, body: String) {
    sink.set_default(Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/rss+xml".into())],
        delay: Duration::ZERO,
        body,
    });
}

/// Runs the agent and waits until it has logged `logs` lines; returns its event count.
async fn run_and_count(hub: &TestHub, id: i64, logs: usize) -> usize {
    hub.post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    wait_for("the run's log line", async || {
        let l = hub
            .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
            .await
            .json();
        l.as_array().unwrap().len() >= logs
    })
    .await;
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    a["events_count"].as_u64().unwrap() as usize
}

#[actix_rt::test]
async fn a_huge_feed_is_bounded_per_run_and_never_emitted_twice() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = Sink::start();
    serve(&sink, big_feed(1, 3000));
    // remembered_id_count is far below the feed's size: every id of the feed is
    // remembered all the same.
    let id = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "rss", "name": "big", "options": {"url": format!("{}/feed.xml", sink.url), "remembered_id_count": 10}}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(run_and_count(&hub, id, 1).await, 500, "the default bound");
    let logs = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .json();
    assert!(
        logs[0]["message"].as_str().unwrap().contains(
            "3000 new entries; emitted the newest 500, skipped 2500 older ones (max_events_per_run = 500)"
        ),
        "{logs}"
    );
    let events = hub.payloads(ADMIN_TOKEN, id).await;
    assert_eq!(events.len(), 500);
    assert_eq!(events[0]["id"], "p2501", "the newest 500, oldest first");
    assert_eq!(events[499]["id"], "p3000");
    // The same feed again: nothing new.
    assert_eq!(run_and_count(&hub, id, 2).await, 500);
    // Five new entries on top (the oldest five drop off the feed): exactly those five.
    serve(&sink, big_feed(6, 3000));
    assert_eq!(run_and_count(&hub, id, 3).await, 505);
    let events = hub.payloads(ADMIN_TOKEN, id).await;
    assert_eq!(events[500]["id"], "p3001");
    assert_eq!(events[504]["id"], "p3005");
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["memory"]["seen_ids"].as_array().unwrap().len(), 3000);

    // The bound is the agent's to raise, up to 10 000.
    let id = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "rss", "name": "all", "options": {"url": format!("{}/feed.xml", sink.url), "max_events_per_run": 5000}}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(run_and_count(&hub, id, 1).await, 3000);
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "rss", "name": "x", "options": {"url": format!("{}/feed.xml", sink.url), "max_events_per_run": 20000}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["error"],
        "option \"max_events_per_run\" must be at most 10000 (got 20000)"
    );
}
