//! The website agent on the real server against local pages (a Sink on 127.0.0.1):
//! a scraped page becomes events once (on_change), a second run of the same page emits
//! nothing; an event-driven fetch merges into its event; a wild scenario (Website ->
//! Trigger -> Post) delivers one post per new item and nothing on the second run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn serve(sink: &Sink, content_type: &str, body: String) {
    sink.set_default(Reply {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        delay: Duration::ZERO,
        body,
    });
}

async fn run(hub: &TestHub, id: i64) {
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

#[actix_rt::test]
async fn a_page_becomes_events_once() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let site = Sink::start();
    serve(&site, "text/html", fixture("website/comic.html"));
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::WebsiteAgent", "name": "posts", "options": {
                "url": site.url, "expected_update_period_in_days": "2", "mode": "on_change",
                "extract": {
                    "title": {"css": ".posts a", "value": "string(.)"},
                    "link": {"css": ".posts a", "value": "@href"}},
                "template": {"link": "{{ link | to_uri: _response_.url }}"}}}),
        )
        .await;
    assert_eq!(agent["schedule"], "every_12h");
    let id = agent["id"].as_i64().unwrap();
    run(&hub, id).await;
    let base = site.url.trim_end_matches("/hook");
    let want: Vec<Value> = ["First", "Second", "Third"]
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"title": t, "link": format!("{base}/p/{}", i + 1)}))
        .collect();
    let got = hub.wait_payloads(ADMIN_TOKEN, id, &want).await;
    assert_eq!(got, want);
    run(&hub, id).await;
    hub.wait_log(ADMIN_TOKEN, id, "3 results, 0 new", 1).await;
    assert_eq!(hub.payloads(ADMIN_TOKEN, id).await.len(), 3);
    let a = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["working"], true);
    // A refused option is a 422 that names it.
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "website", "name": "x", "options": {"url": site.url,
                "expected_update_period_in_days": 1, "proxy": "http://p:3128",
                "extract": {"t": {"css": "title"}}}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("proxy"), "{}", r.text());
}

#[actix_rt::test]
async fn an_event_url_is_fetched_and_merged_into_the_event() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let site = Sink::start();
    serve(&site, "text/html", fixture("website/comic.html"));
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let web = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "website", "name": "by event", "source_ids": [hook], "options": {
                "url_from_event": "{{ page }}", "expected_update_period_in_days": 1,
                "mode": "merge", "extract": {"alt": {"css": "#comic img", "value": "@alt"}}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            "",
            &json!({"page": site.url, "n": 1}),
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let want = [json!({"page": site.url, "n": 1, "alt": "Evolving"})];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, web, &want).await, want);
}

#[actix_rt::test]
async fn a_wild_scenario_posts_each_new_item_once() {
    // The post agent is imported with propagate_immediately false (as in the file): it
    // gets its events at the next propagation, every second here.
    let hub = TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.agents.propagation_interval_seconds = 1;
    })
    .await;
    let site = Sink::start();
    let guilded = Sink::start();
    // Reddit's listing, as the scenario's JSONPaths read it (the third child).
    let child = |t: &str| json!({"data": {"title": t, "url": "https://i.example/x.png", "permalink": "/r/x"}});
    let listing = json!({"data": {"children": [child("a"), child("b"),
        child("Fashion Report - Full Details - For Week of 1/1/2026 (Week 1)")]}});
    serve(&site, "application/json", listing.to_string());
    let path = format!(
        "{}/fixtures/scenarios/wild/ashcorpdev__huginn-automations__ffxiv-fashion-report.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for a in file["agents"].as_array_mut().unwrap() {
        match a["type"].as_str().unwrap() {
            "Agents::WebsiteAgent" => a["options"]["url"] = json!(site.url),
            "Agents::PostAgent" => a["options"]["post_url"] = json!(guilded.url),
            _ => {}
        }
    }
    let result = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, &file)
        .await
        .json();
    let id_of = |name: &str| {
        result["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {result}"))["id"]
            .as_i64()
            .unwrap()
    };
    let web = id_of("Latest Reddit Submission from Kaiyoko");
    let trigger = id_of("Check it's a Fashion Report Post");
    run(&hub, web).await;
    let got = guilded.wait_for(1).await;
    let body = got[0].json();
    assert_eq!(
        body["embeds"][0]["title"],
        "Fashion Report - Full Details - For Week of 1/1/2026 (Week 1)"
    );
    assert_eq!(body["embeds"][0]["url"], "https://reddit.com/r/x");
    assert_eq!(hub.payloads(ADMIN_TOKEN, trigger).await.len(), 1);
    // The same page again: nothing new, nothing posted.
    run(&hub, web).await;
    hub.wait_log(ADMIN_TOKEN, web, "1 results, 0 new", 1).await;
    actix_rt::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(guilded.received().len(), 1);
    assert_eq!(hub.payloads(ADMIN_TOKEN, web).await.len(), 1);
}

#[actix_rt::test]
async fn the_readme_dry_run_answers_as_shown() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/agents/dry_run",
            ADMIN_TOKEN,
            &json!({"type": "website", "options": {"data_from_event": "{{ html }}", "mode": "all", "expected_update_period_in_days": 1,
                "extract": {"title": {"css": "h2 a", "value": "string(.)"}, "link": {"css": "h2 a", "value": "@href"}}},
                "event": {"html": "<h2><a href=\"/a\">Hello</a></h2><h2><a href=\"/b\">World</a></h2>"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"events": [{"link": "/a", "title": "Hello"}, {"link": "/b", "title": "World"}],
            "log": [{"level": "INFO", "message": "2 results"}], "memory": {}})
    );
}
