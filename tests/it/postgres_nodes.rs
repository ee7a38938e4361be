//! Two hub processes on one PostgreSQL database (issue 19, the shared parts): an event
//! ingested on one node wakes an agent on the other through LISTEN/NOTIFY (the poll
//! interval is set to ten minutes, so only the notification can explain the wake-up);
//! one idempotency key sent to both nodes at once makes one event; a URL limited to N
//! requests a minute accepts N across both nodes.
//!
//! The assertions read the events table through the API, so they also hold once
//! agents run on one node only (leases): what is counted is rows, not which node ran.
//! Skipped with a message where PostgreSQL is not installed (see tests/common/postgres.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::ADMIN_TOKEN;
use common::postgres::PgCluster;
use common::process::{HubProcess, api, client};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// Both nodes seal and open secrets with the same key, as a cluster's nodes must.
const KEY: &str = "bXVuaW5uLXRlc3Qtbm9kZXMta2V5LTMyLWJ5dGVzISE=";

/// Starts a node on `url` with its own data directory and node id; polling every ten
/// minutes.
fn node(url: &str) -> (tempfile::TempDir, HubProcess) {
    let dir = tempfile::tempdir().unwrap();
    // Two processes on one machine need their own node ids (the default is the host
    // name, and a second process with a live node's id refuses to start).
    let id = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let envs = [
        ("MUNINN_CLUSTER_NODE_ID", id.as_str()),
        ("MUNINN_ADMIN_TOKEN", ADMIN_TOKEN),
        ("MUNINN_DATABASE_URL", url),
        ("MUNINN_SECRET_KEY", KEY),
        ("MUNINN_DELIVERY_POLL_INTERVAL_MS", "600000"),
        ("MUNINN_AGENTS_PROPAGATION_INTERVAL_SECONDS", "3600"),
    ];
    let hub = HubProcess::start(dir.path(), &envs);
    (dir, hub)
}

async fn webhook_agent(base: &str, options: Value) -> i64 {
    let (status, agent) = api(
        base,
        ADMIN_TOKEN,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": options})),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    agent["id"].as_i64().unwrap()
}

async fn payloads(base: &str, agent: i64) -> Vec<Value> {
    let (status, body) = api(
        base,
        ADMIN_TOKEN,
        "GET",
        &format!("/api/agents/{agent}/events?limit=100"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut p: Vec<Value> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].clone())
        .collect();
    p.sort_by_key(|v| v["n"].as_i64());
    p
}

/// Posts `body` to an agent's Huginn URL on `base`; answers the status.
async fn post(base: &str, agent: i64, body: Value, key: Option<&str>) -> u16 {
    let mut req = client().post(format!("{base}/users/1/web_requests/{agent}/s"));
    if let Some(k) = key {
        req = req.insert_header(("Idempotency-Key", k));
    }
    req.send_json(&body).await.unwrap().status().as_u16()
}

#[actix_rt::test]
async fn an_event_ingested_on_one_node_wakes_an_agent_on_the_other() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("wake");
    let (_a_dir, a) = node(&url);
    let hook = webhook_agent(&a.base, json!({"secret": "s"})).await;
    // B starts after the webhook agent exists, and the formatter is made on B: A
    // neither runs it nor has its link, so A's own routing cannot reach it.
    let (_b_dir, b) = node(&url);
    let (status, formatter) = api(
        &b.base,
        ADMIN_TOKEN,
        "POST",
        "/api/agents",
        Some(
            json!({"type": "event_formatting", "name": "fmt", "source_ids": [hook],
                    "options": {"mode": "merge", "instructions": {"seen": "yes"}}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{formatter}");
    let formatter = formatter["id"].as_i64().unwrap();

    assert_eq!(post(&a.base, hook, json!({"n": 1}), None).await, 201);

    // Bounded: far below the ten-minute poll interval, so only the notification can
    // have woken the formatter on B.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = payloads(&b.base, formatter).await;
        if got == [json!({"n": 1, "seen": "yes"})] {
            break;
        }
        assert!(
            got.is_empty() && Instant::now() < deadline,
            "the formatter on B made {got:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn one_idempotency_key_sent_to_both_nodes_makes_one_event() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("idem");
    let (_a_dir, a) = node(&url);
    let hook = webhook_agent(&a.base, json!({"secret": "s"})).await;
    let (_b_dir, b) = node(&url);

    // In rounds: a batch that starts by counting events into agents takes the
    // event-order lock first and would hide a race; later batches within the second
    // do not count.
    const ROUNDS: i64 = 5;
    const KEYS: i64 = 10;
    for round in 0..ROUNDS {
        let sends = (round * KEYS..(round + 1) * KEYS).flat_map(|n| {
            let key = format!("key-{n}");
            [a.base.clone(), b.base.clone()].map(|base| {
                let key = key.clone();
                async move { post(&base, hook, json!({"n": n}), Some(&key)).await }
            })
        });
        let statuses = join_all(sends).await;
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    }
    let want: Vec<Value> = (0..ROUNDS * KEYS).map(|n| json!({"n": n})).collect();
    assert_eq!(payloads(&a.base, hook).await, want, "one event per key");
}

#[actix_rt::test]
async fn a_rate_limit_holds_across_both_nodes() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("limits");
    let (_a_dir, a) = node(&url);
    const LIMIT: usize = 5;
    // One agent per attempt: a burst that straddles a minute boundary is counted in
    // two fixed windows and is tried again on a fresh agent (at most three tries).
    let mut hooks = Vec::new();
    for _ in 0..3 {
        hooks.push(webhook_agent(&a.base, json!({"secret": "s", "rate_limit": LIMIT})).await);
    }
    let (_b_dir, b) = node(&url);
    for hook in hooks {
        let minute = || chrono::Utc::now().timestamp() / 60;
        let started = minute();
        let sends = (0..4 * LIMIT).map(|n| {
            let base = if n % 2 == 0 { &a.base } else { &b.base }.clone();
            async move { post(&base, hook, json!({"n": n}), None).await }
        });
        let statuses = join_all(sends).await;
        if minute() != started {
            continue;
        }
        let accepted = statuses.iter().filter(|s| **s == 201).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!((accepted, limited), (LIMIT, 3 * LIMIT), "{statuses:?}");
        assert_eq!(payloads(&b.base, hook).await.len(), LIMIT);
        return;
    }
    panic!("three bursts in a row straddled a minute boundary");
}
