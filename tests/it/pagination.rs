//! One pagination for every list: `limit` (default 100, at most 1000) and a cursor,
//! with the next page in a `Link: <…>; rel="next"` header and the body still an array.
//! For each list: paging through with `limit=2` by following `Link` until there is none
//! gives exactly what one `limit=1000` page gives (which has no `Link`), and a bad
//! `limit` or cursor is a 400 naming the parameter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::sink::Sink;
use common::{ADMIN_TOKEN as T, TestHub};
use serde_json::{Value, json};

/// The URL in `Link: <url>; rel="next"`, checked for its form.
fn next_of(link: &str) -> String {
    let (url, rel) = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .unwrap_or_else(|| panic!("Link is not <url>; rel=…: {link}"));
    assert_eq!(rel, "; rel=\"next\"", "{link}");
    url.to_string()
}

/// Follows `Link` from `first`; the ids of every page, and how many pages.
async fn walk(hub: &TestHub, token: &str, first: &str) -> (Vec<Value>, usize) {
    let (mut url, mut ids, mut pages) = (first.to_string(), Vec::new(), 0);
    loop {
        assert!(pages < 100, "more pages than rows from {first}");
        let r = hub.get(&url, token).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let page = r.json().as_array().unwrap().clone();
        assert!(!page.is_empty(), "{url} is an empty page behind a Link");
        assert!(page.len() <= 2, "{url}: {} rows for limit=2", page.len());
        ids.extend(page.iter().map(|v| v["id"].clone()));
        pages += 1;
        match r.header("link") {
            Some(l) => url = next_of(l),
            None => return (ids, pages),
        }
    }
}

/// The whole list in one page at the maximum limit (no `Link`), and the same ids by
/// following `Link` two at a time; the list must hold `at_least` rows.
async fn check_list(hub: &TestHub, token: &str, path: &str, at_least: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let all = hub.get(&format!("{path}{sep}limit=1000"), token).await;
    assert_eq!(all.status, 200, "{path}: {}", all.text());
    assert!(
        all.header("link").is_none(),
        "{path}: a single page has no next"
    );
    let all: Vec<Value> = all
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert!(all.len() >= at_least, "{path}: {all:?}");
    let (walked, pages) = walk(hub, token, &format!("{path}{sep}limit=2")).await;
    assert_eq!(walked, all, "{path}: paging gives the same rows in order");
    assert_eq!(pages, all.len().div_ceil(2), "{path}");

    for bad in ["limit=abc", "limit=0", "limit=1001", "limit=-3"] {
        let r = hub.get(&format!("{path}{sep}{bad}"), token).await;
        assert_eq!(r.status, 400, "{path}{sep}{bad}: {}", r.text());
        assert!(r.text().contains("limit"), "{bad}: {}", r.text());
    }
    all
}

async fn post(hub: &TestHub, path: &str, body: Value) -> Value {
    let r = hub.post_json(path, T, &body).await;
    assert_eq!(r.status, 201, "{path} {body}: {}", r.text());
    r.json()
}

#[actix_rt::test]
async fn every_resource_list_pages_by_link() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let mut agents = Vec::new();
    for i in 0..5 {
        let a = hub
            .add_agent(
                T,
                json!({"type": "event_formatting", "name": format!("a{i}"),
                       "options": {"instructions": {"n": "1"}, "mode": "merge"}}),
            )
            .await;
        agents.push(a["id"].as_i64().unwrap());
    }
    for i in 0..5 {
        hub.add_user(&format!("user{i}")).await;
        post(
            &hub,
            "/api/tokens",
            json!({"name": format!("t{i}"), "scope": "read"}),
        )
        .await;
        post(
            &hub,
            "/api/credentials",
            json!({"credential_name": format!("c{i}"), "credential_value": "v"}),
        )
        .await;
        post(&hub, "/api/scenarios", json!({"name": format!("s{i}")})).await;
        post(
            &hub,
            "/api/webhooks/incoming",
            json!({"name": format!("h{i}"), "agent_id": agents[0]}),
        )
        .await;
        post(
            &hub,
            "/api/webhooks/outgoing",
            json!({"url": format!("http://127.0.0.1:9/{i}"), "event_types": ["*"]}),
        )
        .await;
    }
    for w in agents.windows(2) {
        post(
            &hub,
            "/api/links",
            json!({"source_id": w[0], "receiver_id": w[1]}),
        )
        .await;
    }

    let listed = check_list(&hub, T, "/api/agents", 5).await;
    assert_eq!(listed, agents.iter().map(|a| json!(a)).collect::<Vec<_>>());
    check_list(&hub, T, "/agents.json", 5).await;
    check_list(&hub, T, "/api/users", 6).await;
    check_list(&hub, T, "/api/tokens", 6).await;
    check_list(&hub, T, "/api/credentials", 5).await;
    check_list(&hub, T, "/api/scenarios", 5).await;
    check_list(&hub, T, "/api/webhooks/incoming", 5).await;
    check_list(&hub, T, "/api/webhooks/outgoing", 5).await;
    check_list(&hub, T, "/webhooks", 5).await;
    check_list(&hub, T, "/api/links", 4).await;

    // The cursor is checked like the limit, and one past the end is an empty array.
    let r = hub.get("/api/agents?after=first", T).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("after"), "{}", r.text());
    let last = agents[4];
    let r = hub.get(&format!("/api/agents?after={last}"), T).await;
    assert_eq!((r.status, r.json()), (200, json!([])));
}

#[actix_rt::test]
async fn events_page_both_ways_and_keep_after_and_before() {
    let hub = TestHub::start().await;
    let agent = hub.add_webhook_agent(T).await;
    for i in 0..5 {
        let r = hub
            .post_json(
                &format!("/users/1/web_requests/{agent}/s"),
                T,
                &json!({"n": i}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let asc = check_list(&hub, T, "/api/events", 5).await;
    let desc = check_list(&hub, T, "/api/events?order=desc", 5).await;
    assert_eq!(desc.iter().rev().cloned().collect::<Vec<_>>(), asc);
    check_list(&hub, T, &format!("/api/agents/{agent}/events"), 5).await;
    check_list(&hub, T, &format!("/agents/{agent}/events.json"), 5).await;

    // `after` and `before` as before: a window, and the Link keeps the other bound.
    let (a, b) = (asc[0].as_i64().unwrap(), asc[4].as_i64().unwrap());
    let r = hub
        .get(&format!("/api/events?after={a}&before={b}&limit=2"), T)
        .await;
    let ids: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(ids, asc[1..3].to_vec());
    let next = next_of(r.header("link").unwrap());
    assert!(next.contains(&format!("before={b}")), "{next}");
    let r = hub.get(&next, T).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert!(r.header("link").is_none());
    let r = hub.get("/api/events?before=x", T).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("before"), "{}", r.text());
}

#[actix_rt::test]
async fn deliveries_attempts_and_inbound_logs_page_newest_first() {
    let hub = TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await;
    let sink = Sink::start();
    let sub = post(
        &hub,
        "/api/webhooks/outgoing",
        json!({"url": sink.url, "event_types": ["*"]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let receiver = hub
        .add_agent(
            T,
            json!({"type": "event_formatting", "name": "r",
                   "options": {"instructions": {"seen": "yes"}, "mode": "merge"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let hook = post(
        &hub,
        "/api/webhooks/incoming",
        json!({"name": "in", "agent_id": receiver}),
    )
    .await;
    let (hook_id, hook_token) = (
        hook["id"].as_i64().unwrap(),
        hook["token"].as_str().unwrap().to_string(),
    );
    for i in 0..5 {
        let r = hub
            .request(
                "POST",
                &format!("/webhook/{hook_token}"),
                None,
                &[("content-type", "application/json")],
                Some(json!({"n": i}).to_string().into_bytes()),
            )
            .await;
        assert!(r.status < 300, "{}", r.text());
    }
    sink.wait_for(5).await;
    // The receiver's five events commit with their deliveries, after the webhooks'
    // own: wait for them, so the list does not grow between the reads below.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.payloads(T, receiver).await.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "the receiver made no five events"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = format!("/api/webhooks/{sub}/logs?webhook_type=outgoing");
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub
        .get(&format!("{logs}&limit=1000"), T)
        .await
        .json()
        .as_array()
        .unwrap()
        .len()
        < 5
    {
        assert!(Instant::now() < deadline, "the attempts were not logged");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }

    let ids = check_list(&hub, T, &format!("/api/deliveries?webhook_id={sub}"), 5).await;
    assert!(
        ids.windows(2).all(|w| w[0].as_i64() > w[1].as_i64()),
        "newest first: {ids:?}"
    );
    check_list(&hub, T, "/api/deliveries", 5).await;
    let ids = check_list(&hub, T, &logs, 5).await;
    assert!(
        ids.windows(2).all(|w| w[0].as_i64() > w[1].as_i64()),
        "newest first: {ids:?}"
    );
    // The AGiXT document's `offset` still works, and its Link moves on by cursor.
    let r = hub.get(&format!("{logs}&limit=2&offset=1"), T).await;
    let got: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(got, ids[1..3].to_vec());
    assert!(!next_of(r.header("link").unwrap()).contains("offset"));
    check_list(
        &hub,
        T,
        &format!("/api/webhooks/{hook_id}/logs?webhook_type=incoming"),
        5,
    )
    .await;
    let r = hub.get(&format!("{logs}&offset=-1"), T).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("offset"), "{}", r.text());
}
