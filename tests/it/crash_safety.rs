//! Crash safety of the real binary: thousands of concurrent webhooks, SIGKILL in the
//! middle, restart on the same data dir. Every request that got a 2xx is an event and
//! reaches the sink at least once (before or after the restart); every message the sink
//! received belongs to an event in the database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::load::{Load, all_events, ns};
use common::process::{HubProcess, api, webhook_to_sink};
use common::sink::Sink;
use serde_json::Value;

const TOKEN: &str = "crash-admin-token-0123456789";
const REQUESTS: u64 = 2000;
const CONCURRENCY: usize = 32;

async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api(base, TOKEN, method, path, body).await
}

/// Every delivery row, through the API: message id -> event id.
async fn deliveries(base: &str) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    loop {
        let (status, page) = call(
            base,
            "GET",
            &format!("/api/deliveries?limit=1000&offset={}", out.len()),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        for d in page {
            out.insert(
                d["message_id"].as_str().unwrap().to_string(),
                d["event_id"].as_i64().unwrap(),
            );
        }
    }
}

#[actix_rt::test]
async fn sigkill_mid_load_loses_no_acknowledged_event_or_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("muninn.toml");
    std::fs::write(
        &config,
        "[server]\nworkers = 2\n[delivery]\nallow_private_targets = true\npoll_interval_ms = 50\n[inbound]\ndefault_rate_limit_per_minute = 0\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let envs = [
        ("MUNINN_ADMIN_TOKEN", TOKEN),
        ("MUNINN_CONFIG", config.as_str()),
    ];
    let sink = Sink::start();

    let hub = HubProcess::start(dir.path(), &envs);
    let url = webhook_to_sink(&hub.base, TOKEN, &sink.url).await;

    let load = Load::default();
    let tasks = load.start(&url, REQUESTS, CONCURRENCY);
    // Partway: some requests answered, many in flight, deliveries under way.
    load.wait_acked(REQUESTS as usize / 3, Duration::from_secs(40))
        .await;
    hub.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = load.acked();
    assert!(
        (acked.len() as u64) < REQUESTS,
        "the kill came after the load had ended"
    );
    assert!(
        load.other.lock().unwrap().iter().all(|s| *s == 503),
        "only 503 (busy) may refuse a request: {:?}",
        load.other.lock().unwrap()
    );
    eprintln!(
        "{} acknowledged before SIGKILL; the sink had {} requests",
        acked.len(),
        sink.received().len()
    );

    let hub = HubProcess::start(dir.path(), &envs);
    let events = all_events(&hub.base, TOKEN).await;
    let stored = ns(&events);
    let lost: Vec<_> = acked.iter().filter(|n| !stored.contains(n)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");

    let got = sink
        .wait_until("every acknowledged request delivered", |r| {
            let delivered: HashSet<u64> = r
                .iter()
                .filter_map(|x| x.json()["data"]["n"].as_u64())
                .collect();
            acked.iter().all(|n| delivered.contains(n))
        })
        .await;
    let outbox = deliveries(&hub.base).await;
    for r in &got {
        let body = r.json();
        let message_id = body["id"].as_str().unwrap();
        assert_eq!(
            outbox.get(message_id),
            body["event_id"].as_i64().as_ref(),
            "message {message_id} is a delivery of the event it carries"
        );
        let event_id = body["event_id"].as_i64().unwrap();
        let payload = events.get(&event_id).unwrap_or_else(|| {
            panic!(
                "message {} names event {event_id}, which is not in the database",
                body["id"]
            )
        });
        assert_eq!(
            payload, &body["data"],
            "message {} carries its event",
            body["id"]
        );
        assert_eq!(
            r.header("x-webhook-message-id"),
            body["id"].as_str(),
            "the header and the body name the same message"
        );
    }
}
