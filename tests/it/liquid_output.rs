//! `liquid_output` end to end: events reach it over a link from a manual_event agent,
//! and its web-request URL (any extension) answers the rendered page with an ETag,
//! 304 for a current copy, 401 for a wrong secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Resp, TestHub};
use serde_json::{Value, json};

async fn send(hub: &TestHub, manual: i64, payload: Value) {
    let r = hub
        .post_json(
            &format!("/api/agents/{manual}/events"),
            ADMIN_TOKEN,
            &payload,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

async fn page(hub: &TestHub, path: &str, headers: &[(&str, &str)]) -> Resp {
    hub.request("GET", path, None, headers, None).await
}

/// Waits (bounded) until the page's body is `want`.
async fn wait_body(hub: &TestHub, path: &str, want: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = page(hub, path, &[]).await;
        if r.text() == want || Instant::now() > deadline {
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.text(), want);
            return r;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn setup(hub: &TestHub, options: Value) -> (i64, String) {
    let manual = hub
        .add_agent(ADMIN_TOKEN, json!({"type": "manual_event", "name": "m"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let out = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::LiquidOutputAgent", "name": "page", "source_ids": [manual],
                   "options": options}),
        )
        .await;
    let url = out["web_request_url"].as_str().unwrap().to_string();
    let path = url.strip_prefix(&hub.base).unwrap().to_string();
    (manual, path)
}

#[actix_rt::test]
async fn last_event_in_page_with_etag_and_conditional_get() {
    let hub = TestHub::start().await;
    let (manual, path) = setup(
        &hub,
        json!({"secret": "s3cret", "expected_receive_period_in_days": 2, "mode": "Last event in",
               "mime_type": "text/plain", "content": "The key is {{ k }}.",
               "response_headers": {"Access-Control-Allow-Origin": "*"}}),
    )
    .await;
    assert!(path.ends_with("/s3cret.html"), "{path}");
    // Nothing received yet: the page renders on an empty event.
    let first = page(&hub, &path, &[]).await;
    assert_eq!((first.status, first.text().as_str()), (200, "The key is ."));

    send(&hub, manual, json!({"k": "one"})).await;
    let r = wait_body(&hub, &path, "The key is one.").await;
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("max-age=172800"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    let etag = r.header("etag").unwrap().to_string();
    assert_ne!(Some(etag.as_str()), first.header("etag"));

    // Any extension serves the same page; the client's current copy gets a 304.
    let json_ext = path.replace(".html", ".json");
    let same = page(&hub, &json_ext, &[("If-None-Match", &etag)]).await;
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());

    send(&hub, manual, json!({"k": "two"})).await;
    wait_body(&hub, &path, "The key is two.").await;
    let changed = page(&hub, &path, &[("If-None-Match", &etag)]).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

#[actix_rt::test]
async fn wrong_secret_is_not_authorized() {
    let hub = TestHub::start().await;
    let (_, path) = setup(
        &hub,
        json!({"secret": "right", "expected_receive_period_in_days": 1, "content": "x"}),
    )
    .await;
    let html = page(&hub, &path.replace("right", "wrong"), &[]).await;
    assert_eq!((html.status, html.text().as_str()), (401, "Not Authorized"));
    let json_page = page(&hub, &path.replace("right.html", "wrong.json"), &[]).await;
    assert_eq!(json_page.status, 401);
    assert_eq!(json_page.json(), json!({"error": "Not Authorized"}));
    assert_eq!(page(&hub, &path, &[]).await.text(), "x");
}

#[actix_rt::test]
async fn last_x_events_shows_the_newest_first_up_to_the_limit() {
    let hub = TestHub::start().await;
    let (manual, path) = setup(
        &hub,
        json!({"secret": "s", "expected_receive_period_in_days": 2, "mode": "LAST X EVENTS",
               "event_limit": 2, "content": "{% for e in events %}{{ e.name }}/{{ e.book }};{% endfor %}"}),
    )
    .await;
    for (name, book) in [
        ("Dagny Taggart", "Atlas Shrugged"),
        ("John Galt", "Atlas Shrugged"),
        ("Howard Roark", "The Fountainhead"),
    ] {
        send(&hub, manual, json!({"name": name, "book": book})).await;
    }
    wait_body(
        &hub,
        &path,
        "Howard Roark/The Fountainhead;John Galt/Atlas Shrugged;",
    )
    .await;
}
