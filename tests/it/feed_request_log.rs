//! A data_output feed's request log: `GET /api/webhooks/{id}/logs?webhook_type=feed`
//! lists the requests its URL answered, newest first, with their status (a refused
//! secret is a 401, a reader whose copy is current a 304); `/statistics` and the
//! summary's endpoint counters count them; another user sees none of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

#[actix_rt::test]
async fn a_feeds_requests_are_logged_and_counted_for_its_owner() {
    let hub = TestHub::start().await;
    let feed = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "data_output", "name": "Out",
                   "options": {"secrets": ["s"], "template": {"item": {"title": "{{ t }}"}}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let logs_path = format!("/api/webhooks/{feed}/logs?webhook_type=feed");
    let r = hub.get(&logs_path, ADMIN_TOKEN).await;
    assert_eq!((r.status, r.json()), (200, json!([])));

    let url = format!("/users/1/web_requests/{feed}/s.xml");
    let first = hub.request("GET", &url, None, &[], None).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let etag = first.header("etag").unwrap().to_string();
    let again = hub
        .request("GET", &url, None, &[("if-none-match", &etag)], None)
        .await;
    assert_eq!(again.status, 304);
    let wrong = format!("/users/1/web_requests/{feed}/nope.xml");
    assert_eq!(
        hub.request("GET", &wrong, None, &[], None).await.status,
        401
    );

    let r = hub.get(&logs_path, ADMIN_TOKEN).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let log = r.json();
    let statuses: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [401, 304, 200], "newest first: {log}");
    assert_eq!(log[0]["accepted"], false);
    assert_eq!(log[0]["reason"], "not_authorized");
    assert_eq!(log[1]["accepted"], true);
    assert_eq!(log[2]["method"], "GET");
    assert_eq!(log[2]["source_ip"], "127.0.0.1");
    let r = hub
        .get(
            &format!("/api/webhooks/{feed}/logs?webhook_type=feed&limit=1&offset=1"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(r.json()[0]["status"], 304);

    let stats = hub
        .get(
            &format!("/api/webhooks/{feed}/statistics?webhook_type=feed"),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(
        (&stats["received"], &stats["accepted"], &stats["rejected"]),
        (&json!(3), &json!(2), &json!(1))
    );
    assert_eq!(stats["rejected_by_reason"], json!({"401": 1}));
    let summary = hub.get("/api/summary", ADMIN_TOKEN).await.json();
    let counted = summary["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["agent_id"] == feed)
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(counted["accepted"], 2, "{summary}");
    assert_eq!(counted["rejected"], json!({"401": 1}));

    // Not another user's to read; not a feed's log for other agents.
    let (_, bob) = hub.add_user("bob").await;
    assert_eq!(hub.get(&logs_path, &bob).await.status, 404);
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let r = hub
        .get(
            &format!("/api/webhooks/{hook}/logs?webhook_type=feed"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}
