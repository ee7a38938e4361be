//! Huginn scenario files from fixtures/scenarios/: imported, run end to end, exported
//! and re-imported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

fn scenario(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn import(hub: &TestHub, file: &Value) -> Value {
    let r = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, file)
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    r.json()
}

fn agent_id(result: &Value, name: &str) -> i64 {
    result["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .and_then(|a| a["id"].as_i64())
        .unwrap_or_else(|| panic!("no imported agent {name}: {result}"))
}

#[actix_rt::test]
async fn the_alerting_chain_imports_and_runs_up_to_the_target_guard() {
    let hub = TestHub::start().await;
    // With the default target guard the local pager URL is refused: the post agent is
    // imported disabled, with the reason.
    let result = import(&hub, &scenario("alerting_chain.json")).await;
    assert_eq!(result["created"], true);
    assert_eq!(result["problems"].as_array().unwrap().len(), 1, "{result}");
    let problem = &result["problems"][0];
    assert_eq!(problem["agent"], "Page the on-call", "{result}");
    assert_eq!(problem["option"], "post_url", "{result}");
    assert!(
        problem["problem"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1 (loopback)"),
        "{result}"
    );
    let post = hub
        .get(
            &format!("/api/agents/{}", agent_id(&result, "Page the on-call")),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(post["disabled"], true);
    let hook = agent_id(&result, "Monitoring webhook");
    let pager = agent_id(&result, "Pager text");
    let trigger = hub
        .get(
            &format!("/api/agents/{}", agent_id(&result, "Critical only")),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(
        trigger["options"]["message"], "{{ host | upcase }}: {{ summary | default: 'no summary' }}",
        "imports keep Liquid verbatim"
    );
    assert_eq!(trigger["source_ids"], json!([hook]));

    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/mon-secret"),
            ADMIN_TOKEN,
            &json!({"alerts": [{"host": "db1", "level": "critical", "summary": "disk full"}, {"host": "web1", "level": "info"}, {"host": "lb", "level": "fatal"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let year = chrono::Utc::now().format("%Y").to_string();
    let want = vec![
        json!({"text": "ALERT DB1: disk full", "sent_at": year}),
        json!({"text": "ALERT LB: no summary", "sent_at": year}),
    ];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, pager, &want).await, want);
    // The disabled post agent sends nothing.
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        hub.get("/api/deliveries", ADMIN_TOKEN).await.json(),
        json!([])
    );
}

#[actix_rt::test]
async fn the_scheduled_digest_releases_on_its_scheduler() {
    let hub = TestHub::start().await;
    let result = import(&hub, &scenario("scheduled_digest.json")).await;
    assert_eq!(result["problems"], json!([]), "{result}");
    let hook = agent_id(&result, "Link inbox");
    let delay = agent_id(&result, "Hold links");
    let digest = agent_id(&result, "Digest line");
    let scheduler = hub
        .get(
            &format!("/api/agents/{}", agent_id(&result, "Release every second")),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(scheduler["control_target_ids"], json!([delay]));
    for (t, u) in [
        ("Rust", "https://rust-lang.org"),
        ("Huginn", "https://github.com/huginn/huginn"),
    ] {
        let r = hub
            .post_json(
                &format!("/users/1/web_requests/{hook}/links"),
                ADMIN_TOKEN,
                &json!({"title": t, "url": u}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let want = vec![
        json!({"line": "Rust <https://rust-lang.org>"}),
        json!({"line": "Huginn <https://github.com/huginn/huginn>"}),
    ];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, digest, &want).await, want);
}

#[actix_rt::test]
async fn the_dedup_feed_publishes_unique_items() {
    // The scenario's feed URL is a local placeholder, which the default guard refuses.
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let result = import(&hub, &scenario("dedup_feed.json")).await;
    assert_eq!(result["problems"], json!([]), "{result}");
    let hook = agent_id(&result, "Item inbox");
    let feed = agent_id(&result, "Digest feed");
    for (t, u) in [
        ("A", "https://a.example"),
        ("A again", "https://a.example"),
        ("B", "https://b.example"),
    ] {
        let r = hub
            .post_json(
                &format!("/users/1/web_requests/{hook}/items"),
                ADMIN_TOKEN,
                &json!({"title": t, "url": u}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = hub
            .request(
                "GET",
                &format!("/users/1/web_requests/{feed}/digest.json"),
                None,
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let items = r.json()["items"].as_array().unwrap().clone();
        if items.len() == 2 {
            let titles: Vec<&str> = items.iter().map(|i| i["title"].as_str().unwrap()).collect();
            assert_eq!(titles, ["B", "A"], "newest first");
            break;
        }
        assert!(Instant::now() < deadline, "feed did not fill: {items:?}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn export_then_import_round_trips_and_reimport_updates() {
    let hub = TestHub::start().await;
    let first = import(&hub, &scenario("scheduled_digest.json")).await;
    let id = first["scenario"]["id"].as_i64().unwrap();
    let r = hub
        .get(&format!("/api/scenarios/{id}/export"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"scheduled-digest.json\"")
    );
    let exported = r.json();
    assert_eq!(exported["schema_version"], 1);
    assert_eq!(exported["guid"], "5a1b2c3d4e5f40718293a4b5c6d7e8f9");
    assert_eq!(
        exported["agents"][0]["type"]
            .as_str()
            .unwrap()
            .split("::")
            .next(),
        Some("Agents")
    );

    // Re-importing the export updates the same scenario and agents.
    let again = import(&hub, &exported).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["scenario"]["id"], id);
    assert!(
        again["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["action"] == "updated")
    );
    assert_eq!(
        hub.get("/api/agents", ADMIN_TOKEN)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let mut second = hub
        .get(&format!("/api/scenarios/{id}/export"), ADMIN_TOKEN)
        .await
        .json();
    let mut first_export = exported.clone();
    first_export["exported_at"] = Value::Null;
    second["exported_at"] = Value::Null;
    assert_eq!(
        second, first_export,
        "export -> import -> export is identical"
    );
}

#[actix_rt::test]
async fn liquid_that_does_not_parse_is_reported_and_the_agent_disabled() {
    let hub = TestHub::start().await;
    let file = json!({
        "schema_version": 1, "name": "odd", "guid": "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
        "agents": [{"type": "Agents::EventFormattingAgent", "name": "Extractor", "guid": "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1",
                    "options": {"instructions": {"id": "{% if url %}never closed"}, "mode": "clean"}, "propagate_immediately": true}],
        "links": [], "control_links": []
    });
    let result = import(&hub, &file).await;
    let p = &result["problems"][0];
    assert_eq!(p["option"], "instructions.id");
    assert!(!p["problem"].as_str().unwrap().is_empty(), "{p}");
    assert_eq!(result["agents"][0]["disabled"], true);
    let r = hub
        .post_json(
            "/api/scenarios/import",
            ADMIN_TOKEN,
            &json!({"name": "no agents"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not appear to be a valid Scenario")
    );
}

#[actix_rt::test]
async fn the_alerting_chain_pages_a_local_sink() {
    let hub = TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await;
    let sink = Sink::start();
    let result = import(&hub, &scenario("alerting_chain.json")).await;
    let hook = agent_id(&result, "Monitoring webhook");
    let post = agent_id(&result, "Page the on-call");
    let mut options = hub
        .get(&format!("/api/agents/{post}"), ADMIN_TOKEN)
        .await
        .json()["options"]
        .clone();
    options["post_url"] = json!(format!("{}/page", sink.url));
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{post}"),
            ADMIN_TOKEN,
            &json!({"options": options}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/mon-secret"),
            ADMIN_TOKEN,
            &json!({"alerts": [{"host": "db1", "level": "critical", "summary": "disk full"}, {"host": "web1", "level": "info"}]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].path, "/hook/page");
    assert_eq!(got[0].json()["text"], "ALERT DB1: disk full");
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.received().len(), 1, "only the critical alert pages");
}

#[actix_rt::test]
async fn the_dedup_feed_reads_a_local_blog_feed() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = Sink::start();
    sink.set_default(Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/rss+xml".into())],
        delay: Duration::ZERO,
        body: r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title><link>http://127.0.0.1/</link><description>d</description>
<item><title>From the blog</title><link>https://a.example</link><guid>b1</guid></item></channel></rss>"#
            .into(),
    });
    let result = import(&hub, &scenario("dedup_feed.json")).await;
    let rss = agent_id(&result, "Blog feed");
    let hook = agent_id(&result, "Item inbox");
    let feed = agent_id(&result, "Digest feed");
    let r = hub
        .send_json("PUT", &format!("/api/agents/{rss}"), ADMIN_TOKEN, &json!({"options": {"url": format!("{}/feed.xml", sink.url), "expected_update_period_in_days": "5"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        hub.post_json(&format!("/api/agents/{rss}/run"), ADMIN_TOKEN, &json!({}))
            .await
            .status,
        202
    );
    // The same URL from the webhook is a duplicate; a new one passes.
    for (t, u) in [
        ("Same link", "https://a.example"),
        ("Other", "https://c.example"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while hub.payloads(ADMIN_TOKEN, rss).await.is_empty() {
            assert!(Instant::now() < deadline, "the rss agent emitted nothing");
            actix_rt::time::sleep(Duration::from_millis(30)).await;
        }
        let r = hub
            .post_json(
                &format!("/users/1/web_requests/{hook}/items"),
                ADMIN_TOKEN,
                &json!({"title": t, "url": u}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = hub
            .request(
                "GET",
                &format!("/users/1/web_requests/{feed}/digest.json"),
                None,
                &[],
                None,
            )
            .await;
        let titles: Vec<String> = r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_string())
            .collect();
        if titles.len() == 2 {
            assert_eq!(titles, ["Other", "From the blog"]);
            break;
        }
        assert!(Instant::now() < deadline, "feed: {titles:?}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}
