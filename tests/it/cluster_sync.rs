//! Several nodes on one PostgreSQL database (issue 19), what the leases alone left
//! open: an outgoing webhook changed through the node that does not send it (new URL,
//! pause, resume, circuit reset, delete) changes what the sending node does within a
//! few heartbeats; and one `[cluster] node_id` is one process: a second process with a
//! live node's id refuses to start, and a process whose id another one took stops
//! owning anything.
//!
//! Leases are short here (3 s, heartbeat 1 s). Where PostgreSQL is not installed the
//! tests print SKIPPED and pass, unless MUNINN_REQUIRE_POSTGRES=1 makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use common::ADMIN_TOKEN;
use common::postgres::PgCluster;
use common::process::{HubProcess, api, client, serve_refused_with};
use common::sink::{Reply, Sink};
use diesel::sql_types::{Text, Timestamp};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{Value, json};

/// Both nodes seal and open secrets with the same key, as nodes of one hub must.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn envs<'a>(url: &'a str, id: &'a str) -> [(&'static str, &'a str); 8] {
    [
        ("MUNINN_ADMIN_TOKEN", ADMIN_TOKEN),
        ("MUNINN_DATABASE_URL", url),
        ("MUNINN_SECRET_KEY", KEY),
        ("MUNINN_CLUSTER_NODE_ID", id),
        ("MUNINN_CLUSTER_LEASE_SECONDS", "3"),
        ("MUNINN_CLUSTER_HEARTBEAT_SECONDS", "1"),
        ("MUNINN_DELIVERY_ALLOW_PRIVATE_TARGETS", "true"),
        ("MUNINN_DELIVERY_POLL_INTERVAL_MS", "50"),
    ]
}

fn node(url: &str, id: &str) -> (tempfile::TempDir, HubProcess) {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path(), &envs(url, id));
    (dir, hub)
}

async fn status(base: &str) -> Value {
    let (code, body) = api(base, ADMIN_TOKEN, "GET", "/worker_status", None).await;
    assert_eq!(code, 200, "{body}");
    body["node"].clone()
}

/// Waits (bounded) until `pred` holds over the node statuses of `bases`.
async fn wait_status(what: &str, bases: &[&str], pred: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = Vec::new();
        for b in bases {
            all.push(status(b).await);
        }
        if pred(&all) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {all:?}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

fn owns(s: &Value) -> i64 {
    s["owned_agents"].as_i64().unwrap() + s["owned_subscriptions"].as_i64().unwrap()
}

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = Text)]
    node_id: String,
}

fn lease_holder(url: &str, resource: &str) -> String {
    let mut c = PgConnection::establish(url).unwrap();
    diesel::sql_query(format!(
        "SELECT node_id FROM leases WHERE resource = '{resource}'"
    ))
    .get_result::<Holder>(&mut c)
    .unwrap()
    .node_id
}

#[derive(QueryableByName)]
struct Beat {
    #[diesel(sql_type = Timestamp)]
    heartbeat_at: NaiveDateTime,
}

fn heartbeat_of(url: &str, node: &str) -> NaiveDateTime {
    let mut c = PgConnection::establish(url).unwrap();
    diesel::sql_query(format!(
        "SELECT heartbeat_at FROM nodes WHERE id = '{node}'"
    ))
    .get_result::<Beat>(&mut c)
    .unwrap()
    .heartbeat_at
}

/// Waits (bounded) until node `node` has recorded `n` more heartbeats. Rounds never
/// overlap and each records its heartbeat after reading the subscriptions, so after
/// three, a whole round has read and applied everything committed before the call.
async fn rounds(url: &str, node: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = heartbeat_of(url, node);
    let mut seen = 0;
    while seen < n {
        assert!(Instant::now() < deadline, "{node} stopped beating");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        let now = heartbeat_of(url, node);
        if now > last {
            seen += 1;
            last = now;
        }
    }
}

async fn post(base: &str, hook: i64, n: i64) {
    let r = client()
        .post(format!("{base}/users/1/web_requests/{hook}/s"))
        .send_json(&json!({"n": n}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

fn ns(got: &[common::sink::Received]) -> Vec<i64> {
    got.iter()
        .filter_map(|r| r.json()["data"]["n"].as_i64())
        .collect()
}

async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (code, out) = api(base, ADMIN_TOKEN, method, path, body).await;
    assert!((200..300).contains(&code), "{method} {path}: {code} {out}");
    out
}

/// Two nodes on a new database `name`, a webhook agent and one outgoing webhook
/// (`subscription`), once each node owns one of them.
struct Pair {
    url: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    a: HubProcess,
    b: HubProcess,
    hook: i64,
    sub: i64,
    /// The node that sends the webhook.
    owner_id: String,
}

impl Pair {
    async fn start(pg: &PgCluster, name: &str, subscription: Value) -> Pair {
        let url = pg.create_database(name);
        let (a_dir, a) = node(&url, "node-a");
        let (b_dir, b) = node(&url, "node-b");
        let hook = call(
            &a.base,
            "POST",
            "/api/agents",
            Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let sub = call(
            &a.base,
            "POST",
            "/api/webhooks/outgoing",
            Some(subscription),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        wait_status("one resource per node", &[&a.base, &b.base], |s| {
            s.iter().all(|n| n["live_nodes"] == 2 && owns(n) == 1)
        })
        .await;
        let owner_id = lease_holder(&url, &format!("subscription:{sub}"));
        Pair {
            url,
            _dirs: (a_dir, b_dir),
            a,
            b,
            hook,
            sub,
            owner_id,
        }
    }
}

/// A webhook sent by one node and changed through the other: its new URL, a pause, a
/// resume, a circuit closed by hand and its deletion all reach the sending node.
#[actix_rt::test]
async fn a_webhook_changed_through_the_other_node_changes_what_its_owner_sends() {
    let Some(pg) = PgCluster::start() else { return };
    let (first, second) = (Sink::start(), Sink::start());
    // One failure opens the circuit for an hour: only a reset lets a retry through.
    let Pair {
        url,
        a,
        b,
        hook,
        sub,
        owner_id,
        // Bound, not `..`: the data directories live as long as the nodes.
        _dirs,
    } = Pair::start(
        &pg,
        "subsync",
        json!({"url": first.url, "event_types": ["event.created"],
               "failure_threshold": 1, "circuit_cooldown": 3600, "retry_delay": 0.05}),
    )
    .await;
    let other = if owner_id == "node-a" { &b } else { &a };
    let path = format!("/api/webhooks/outgoing/{sub}");
    post(&a.base, hook, 0).await;
    first.wait_for(1).await;

    // A new URL, saved through the node that does not send: events posted from now on
    // reach it within a few heartbeats.
    call(
        &other.base,
        "PATCH",
        &path,
        Some(json!({"url": second.url})),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 1;
    while second.received().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the owner still sends to the old URL: {:?}",
            ns(&first.received())
        );
        post(&a.base, hook, n).await;
        n += 1;
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }

    // Paused through the other node: once the owner has applied it, an event is held
    // through two more of its heartbeats (it polls every 50 ms), and sent on resume.
    call(&other.base, "POST", &format!("{path}/pause"), None).await;
    rounds(&url, &owner_id, 3).await;
    let held = 1000;
    post(&a.base, hook, held).await;
    rounds(&url, &owner_id, 2).await;
    assert!(!ns(&second.received()).contains(&held), "sent while paused");
    call(&other.base, "POST", &format!("{path}/resume"), None).await;
    second
        .wait_until("the held event after the resume", |r| ns(r).contains(&held))
        .await;

    // The circuit opens on the owner (one 500); closed by hand through the other node,
    // the retry waiting behind it goes.
    second.script([Reply::status(500)]);
    let failing = 2000;
    post(&a.base, hook, failing).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(&other.base, "GET", &path, None).await["circuit_state"] != "open" {
        assert!(Instant::now() < deadline, "the circuit did not open");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let reset = call(&other.base, "POST", &format!("{path}/reset-circuit"), None).await;
    assert_eq!(reset["was_open"], true, "{reset}");
    second
        .wait_until("the retry after the reset", |r| {
            ns(r).iter().filter(|n| **n == failing).count() == 2
        })
        .await;

    // Deleted through the other node: the owner stops it and gives its lease up.
    call(&other.base, "DELETE", &path, None).await;
    wait_status(
        "no node owns the deleted webhook",
        &[&a.base, &b.base],
        |s| s.iter().all(|n| n["owned_subscriptions"] == 0),
    )
    .await;
}

/// A second process started with a live node's id exits non-zero and says why; once
/// the first is killed, a process with that id starts at once on the same machine.
#[actix_rt::test]
async fn a_second_process_with_a_live_nodes_id_refuses_to_start() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("clash");
    let (_a_dir, a) = node(&url, "twin");
    let dir = tempfile::tempdir().unwrap();
    let (exit, stderr) =
        serve_refused_with(dir.path(), &envs(&url, "twin"), Duration::from_secs(30));
    assert!(!exit.success(), "{stderr}");
    assert!(
        stderr.contains("node id \"twin\" is in use")
            && stderr.contains("Give each process its own [cluster] node_id"),
        "{stderr}"
    );
    // The first one never noticed.
    let s = status(&a.base).await;
    assert_eq!(
        (s["node_id"].as_str(), &s["error"]),
        (Some("twin"), &Value::Null),
        "{s}"
    );

    a.kill();
    let (_c_dir, c) = node(&url, "twin");
    assert_eq!(status(&c.base).await["node_id"], "twin");
}

/// A running process whose row another process took (as after a stall longer than a
/// lease) logs an error and gives up running its agents and webhooks instead of
/// sharing them; it keeps answering the API.
#[actix_rt::test]
async fn a_process_whose_node_id_was_taken_stops_owning() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("taken");
    let (_a_dir, a) = node(&url, "node-a");
    call(
        &a.base,
        "POST",
        "/api/agents",
        Some(json!({"type": "manual_event", "name": "m", "options": {}})),
    )
    .await;
    wait_status("the agent runs", &[&a.base], |s| owns(&s[0]) == 1).await;

    let mut c = PgConnection::establish(&url).unwrap();
    diesel::sql_query(
        "UPDATE nodes SET instance = 'another process', \
         heartbeat_at = (now() AT TIME ZONE 'UTC') + interval '1 hour' WHERE id = 'node-a'",
    )
    .execute(&mut c)
    .unwrap();
    wait_status("node-a stops owning", &[&a.base], |s| {
        owns(&s[0]) == 0
            && s[0]["error"].as_str().is_some_and(|e| {
                e.contains("node id \"node-a\" was taken by another muninn process")
            })
    })
    .await;
    let errors: Vec<Value> = a
        .log_json()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert!(
        errors.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("was taken by another muninn process"))),
        "{errors:?}"
    );
}

/// Waits (bounded) until every delivery of subscription `sub` that `base` lists is
/// `dead`, and there are `n` of them; answers their ids, oldest first.
async fn dead_deliveries(base: &str, sub: i64, n: usize) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = call(
            base,
            "GET",
            &format!("/api/deliveries?webhook_id={sub}&status=dead"),
            None,
        )
        .await;
        let mut ids: Vec<i64> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect();
        if ids.len() == n {
            ids.sort_unstable();
            return ids;
        }
        assert!(Instant::now() < deadline, "waiting for {n} dead: {list}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A retry and a replay asked on the node that does not send the webhook are sent by
/// the node that does, without a new event or a change to the webhook to wake it.
#[actix_rt::test]
async fn a_retry_and_a_replay_asked_on_the_other_node_are_sent_by_the_owner() {
    let Some(pg) = PgCluster::start() else { return };
    let sink = Sink::start();
    // No retries: the first 500 is final. A high threshold keeps the circuit closed.
    let Pair {
        url,
        a,
        b,
        hook,
        sub,
        owner_id,
        // Bound, not `..`: the data directories live as long as the nodes.
        _dirs,
    } = Pair::start(
        &pg,
        "requeue",
        json!({"url": sink.url, "event_types": ["event.created"],
               "retry_count": 0, "failure_threshold": 100}),
    )
    .await;
    let other = if owner_id == "node-a" { &b } else { &a };

    sink.script([Reply::status(500), Reply::status(500)]);
    post(&a.base, hook, 1).await;
    post(&a.base, hook, 2).await;
    let dead = dead_deliveries(&other.base, sub, 2).await;
    assert_eq!(ns(&sink.received()), [1, 2]);
    // Whatever the owner would do at its heartbeats alone, it has done by now.
    rounds(&url, &owner_id, 2).await;

    call(
        &other.base,
        "POST",
        &format!("/api/deliveries/{}/retry", dead[0]),
        None,
    )
    .await;
    sink.wait_until("the retried delivery", |r| ns(r) == [1, 2, 1])
        .await;

    let replayed = call(
        &other.base,
        "POST",
        &format!("/api/webhooks/outgoing/{sub}/replay"),
        Some(json!({"status": ["dead"]})),
    )
    .await;
    assert_eq!(replayed["queued"], 1, "{replayed}");
    sink.wait_until("the replayed delivery", |r| ns(r) == [1, 2, 1, 2])
        .await;
}
