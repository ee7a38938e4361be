//! Actions that need the running actor, asked on the node that does not run it (issue
//! 19, every node equal): two nodes on one PostgreSQL database; run now, clear memory,
//! posting to a manual_event agent, a test send and a circuit reset are sent to the
//! node that does NOT hold the agent's or webhook's lease, and answer as through the
//! node that does, with the effect done (the sink got the request, the memory is
//! empty, the events exist, what waited behind the open circuit is sent).
//!
//! Which node runs what is read from the `leases` table once the work is spread over
//! both nodes. A node that has just taken a lease may not have started the actor yet
//! (it answers 503 "restarting", or 422 "not running" for a test send, as it always
//! did): the first call through the other node is repeated (bounded) until it is
//! served; before forwarding existed it was never served there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::ADMIN_TOKEN;
use common::postgres::PgCluster;
use common::process::{HubProcess, api};
use common::sink::{Reply, Sink};
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{Value, json};

/// Both nodes seal and open secrets with the same key, as nodes of one hub must.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

struct Node {
    hub: HubProcess,
    id: &'static str,
    _dir: tempfile::TempDir,
}

fn node(url: &str, id: &'static str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("MUNINN_ADMIN_TOKEN", ADMIN_TOKEN),
        ("MUNINN_DATABASE_URL", url),
        ("MUNINN_SECRET_KEY", KEY),
        ("MUNINN_CLUSTER_NODE_ID", id),
        ("MUNINN_CLUSTER_LEASE_SECONDS", "3"),
        ("MUNINN_CLUSTER_HEARTBEAT_SECONDS", "1"),
        ("MUNINN_DELIVERY_ALLOW_PRIVATE_TARGETS", "true"),
        ("MUNINN_DELIVERY_POLL_INTERVAL_MS", "50"),
    ];
    let hub = HubProcess::start(dir.path(), &envs);
    Node { hub, id, _dir: dir }
}

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = Text)]
    node_id: String,
}

/// The node holding `resource`'s lease, if any.
fn holder(url: &str, resource: &str) -> Option<String> {
    let mut c = PgConnection::establish(url).unwrap();
    diesel::sql_query(format!(
        "SELECT node_id FROM leases WHERE resource = '{resource}'"
    ))
    .load::<Holder>(&mut c)
    .unwrap()
    .pop()
    .map(|h| h.node_id)
}

/// Waits (bounded) until every resource is held and both nodes hold some (each holds
/// its share: nothing moves after that); answers, per resource, (the node that runs
/// it, the node that does not).
async fn spread<'a>(
    url: &str,
    a: &'a Node,
    b: &'a Node,
    resources: &[String],
) -> Vec<(&'a Node, &'a Node)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held: Vec<Option<String>> = resources.iter().map(|r| holder(url, r)).collect();
        let by = |n: &Node| held.iter().any(|h| h.as_deref() == Some(n.id));
        if held.iter().all(Option::is_some) && by(a) && by(b) {
            return held
                .into_iter()
                .map(|h| match h.as_deref() {
                    Some(id) if id == a.id => (a, b),
                    _ => (b, a),
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "not spread over both nodes: {held:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One call, repeated (bounded) while it answers one of `not_yet` (the actor is not
/// started yet where the lease is).
async fn served(
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    not_yet: &[u16],
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, answer) = api(base, ADMIN_TOKEN, method, path, body.clone()).await;
        if !not_yet.contains(&code) || Instant::now() >= deadline {
            return (code, answer);
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn add(base: &str, path: &str, body: Value) -> i64 {
    let (code, made) = api(base, ADMIN_TOKEN, "POST", path, Some(body)).await;
    assert_eq!(code, 201, "{made}");
    made["id"].as_i64().unwrap()
}

async fn get(base: &str, path: &str) -> Value {
    let (code, body) = api(base, ADMIN_TOKEN, "GET", path, None).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn event_count(base: &str, agent: i64) -> usize {
    get(base, &format!("/api/agents/{agent}/events?limit=100"))
        .await
        .as_array()
        .unwrap()
        .len()
}

#[actix_rt::test]
async fn agent_actions_work_through_the_node_that_does_not_run_the_agent() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("forward_agents");
    let (a, b) = (node(&url, "node-a"), node(&url, "node-b"));
    let sink = Sink::start();
    let status = add(
        &a.hub.base,
        "/api/agents",
        json!({"type": "http_status", "name": "status", "options": {"url": sink.url}}),
    )
    .await;
    let manual = add(
        &a.hub.base,
        "/api/agents",
        json!({"type": "manual_event", "name": "m", "options": {}}),
    )
    .await;
    // Two more, so that each node's share (two of four) leaves both with work.
    for name in ["x", "y"] {
        add(
            &a.hub.base,
            "/api/agents",
            json!({"type": "manual_event", "name": name, "options": {}}),
        )
        .await;
    }
    let all: Vec<String> = (status..=manual + 2)
        .map(|id| format!("agent:{id}"))
        .collect();
    assert_eq!(all.len(), 4, "ids in order of creation");
    let owners = spread(&url, &a, &b, &all).await;

    // Run now through the node that does not run it: the check runs (the sink is
    // asked, an event is made, the memory holds the status).
    let (owner, other) = owners[0];
    let run = format!("/api/agents/{status}/run");
    let (code, body) = served(&other.hub.base, "POST", &run, None, &[503]).await;
    assert_eq!(code, 202, "through {}: {body}", other.id);
    assert_eq!(body["agent_id"], status);
    sink.wait_for(1).await;
    let (code, through_owner) = api(&owner.hub.base, ADMIN_TOKEN, "POST", &run, None).await;
    assert_eq!(
        (code, &through_owner),
        (202, &body),
        "the same answer through the owner"
    );
    sink.wait_for(2).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while event_count(&other.hub.base, status).await < 2 {
        assert!(Instant::now() < deadline, "the runs made no events");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let agent = get(&other.hub.base, &format!("/api/agents/{status}")).await;
    assert_ne!(agent["memory"], json!({}), "{agent}");

    // Clear memory through the node that does not run it: empty when answered.
    let memory = format!("/api/agents/{status}/memory");
    let (code, body) = api(&other.hub.base, ADMIN_TOKEN, "DELETE", &memory, None).await;
    assert_eq!(code, 200, "through {}: {body}", other.id);
    assert_eq!(body, json!({"agent_id": status, "memory": {}}));
    for n in [&a, &b] {
        let agent = get(&n.hub.base, &format!("/api/agents/{status}")).await;
        assert_eq!(agent["memory"], json!({}), "seen through {}", n.id);
    }
    let (code, through_owner) = api(&owner.hub.base, ADMIN_TOKEN, "DELETE", &memory, None).await;
    assert_eq!((code, through_owner), (200, body));

    // Events posted to the manual_event agent through the node that does not run it.
    let (owner, other) = owners[1];
    let post = format!("/api/agents/{manual}/events");
    let two = json!({"payloads": [{"n": 1}, {"n": 2}]});
    let (code, body) = served(&other.hub.base, "POST", &post, Some(two), &[503]).await;
    assert_eq!(code, 201, "through {}: {body}", other.id);
    assert_eq!(body["success"], true);
    assert_eq!(body["event_ids"].as_array().unwrap().len(), 2, "{body}");
    let (code, through_owner) = api(
        &owner.hub.base,
        ADMIN_TOKEN,
        "POST",
        &post,
        Some(json!({"n": 3})),
    )
    .await;
    assert_eq!(code, 201, "{through_owner}");
    assert_eq!(through_owner["event_ids"].as_array().unwrap().len(), 1);
    let events = get(
        &other.hub.base,
        &format!("/api/agents/{manual}/events?limit=10"),
    )
    .await;
    let mut ns: Vec<i64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["n"].as_i64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, [1, 2, 3]);
    // A refusal is the same wherever it is asked.
    let bad = json!([1, 2]);
    let (code, refused) = api(
        &other.hub.base,
        ADMIN_TOKEN,
        "POST",
        &post,
        Some(bad.clone()),
    )
    .await;
    assert_eq!(code, 422, "{refused}");
    assert_eq!(
        api(&owner.hub.base, ADMIN_TOKEN, "POST", &post, Some(bad)).await,
        (code, refused)
    );
}

#[actix_rt::test]
async fn webhook_actions_work_through_the_node_that_does_not_run_the_webhook() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("forward_webhooks");
    let (a, b) = (node(&url, "node-a"), node(&url, "node-b"));
    let sink = Sink::start();
    let agent = add(
        &a.hub.base,
        "/api/agents",
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await;
    let sub = add(
        &a.hub.base,
        "/api/webhooks/outgoing",
        json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 10,
               "retry_delay": 0.05, "max_retry_delay": 0.05, "failure_threshold": 2,
               "circuit_cooldown": 3600}),
    )
    .await;
    let all = [format!("agent:{agent}"), format!("subscription:{sub}")];
    let (owner, other) = spread(&url, &a, &b, &all).await[1];

    // A test send through the node that does not run the webhook reaches the target.
    let test = format!("/api/webhooks/outgoing/{sub}/test");
    let data = json!({"test_payload": {"hello": "there"}});
    let (code, body) = served(
        &other.hub.base,
        "POST",
        &test,
        Some(data.clone()),
        &[422, 503],
    )
    .await;
    assert_eq!(code, 200, "through {}: {body}", other.id);
    assert_eq!(
        (&body["success"], &body["status"]),
        (&json!(true), &json!(200)),
        "{body}"
    );
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].json()["event_type"], "test.webhook");
    assert_eq!(got[0].json()["data"], json!({"hello": "there"}));
    let (code, through_owner) = api(&owner.hub.base, ADMIN_TOKEN, "POST", &test, Some(data)).await;
    assert_eq!(code, 200, "{through_owner}");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&through_owner), keys(&body));
    assert_eq!(through_owner["success"], true);
    sink.wait_for(2).await;

    // Two failures open the circuit on the owner; the third attempt waits behind it.
    sink.script([Reply::status(500), Reply::status(500)]);
    let code = common::process::client()
        .post(format!("{}/users/1/web_requests/{agent}/s", other.hub.base))
        .send_json(&json!({"n": 1}))
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(code, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = get(&other.hub.base, &format!("/api/webhooks/outgoing/{sub}")).await;
        if s["circuit_state"] == "open" {
            break;
        }
        assert!(Instant::now() < deadline, "the circuit did not open: {s}");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(sink.received().len(), 4, "held behind the open circuit");

    // Reset through the node that does not run it: the owner's breaker closes, and
    // what waited goes at once (the cooldown is an hour).
    let reset = format!("/api/webhooks/outgoing/{sub}/reset-circuit");
    let (code, body) = api(&other.hub.base, ADMIN_TOKEN, "POST", &reset, None).await;
    assert_eq!(code, 200, "through {}: {body}", other.id);
    assert_eq!(body["was_open"], true, "{body}");
    assert_eq!(body["subscription"]["circuit_state"], "closed", "{body}");
    let got = sink.wait_for(5).await;
    assert_eq!(got[4].json()["data"], json!({"n": 1}));
    let (code, again) = api(&owner.hub.base, ADMIN_TOKEN, "POST", &reset, None).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["was_open"], false, "{again}");
}

/// A commander told to run its targets runs them wherever they run: at least one of
/// its three targets is on the node that does not run the commander (five agents
/// over two nodes: the commander's node holds at most two more).
#[actix_rt::test]
async fn a_controller_runs_its_targets_on_the_other_node_too() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("forward_control");
    let (a, b) = (node(&url, "node-a"), node(&url, "node-b"));
    let sinks: Vec<Sink> = (0..3).map(|_| Sink::start()).collect();
    let manual = add(
        &a.hub.base,
        "/api/agents",
        json!({"type": "manual_event", "name": "m", "options": {}}),
    )
    .await;
    let mut targets = Vec::new();
    for (n, sink) in sinks.iter().enumerate() {
        let body =
            json!({"type": "http_status", "name": format!("t{n}"), "options": {"url": sink.url}});
        targets.push(add(&a.hub.base, "/api/agents", body).await);
    }
    let commander = add(
        &a.hub.base,
        "/api/agents",
        json!({"type": "commander", "name": "c", "source_ids": [manual],
               "control_target_ids": targets, "propagate_immediately": true,
               "options": {"action": "run"}}),
    )
    .await;
    let all: Vec<String> = (manual..=commander)
        .map(|id| format!("agent:{id}"))
        .collect();
    assert_eq!(all.len(), 5, "ids in order of creation");
    let owners = spread(&url, &a, &b, &all).await;
    // Every actor is up where its lease is (asked on that node: no forwarding here).
    for (id, (owner, _)) in (manual..=commander).zip(&owners) {
        let path = format!("/api/agents/{id}/memory");
        let (code, body) = served(&owner.hub.base, "DELETE", &path, None, &[503]).await;
        assert_eq!(code, 200, "agent {id} on {}: {body}", owner.id);
    }
    let (owner, _) = owners[0];
    let post = format!("/api/agents/{manual}/events");
    let (code, body) = api(
        &owner.hub.base,
        ADMIN_TOKEN,
        "POST",
        &post,
        Some(json!({"go": 1})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    for sink in &sinks {
        sink.wait_for(1).await;
    }
}
