//! The cluster view of `/worker_status` (issue 19): an admin sees every node sharing the
//! database with what it holds (agents, webhooks, claimed deliveries) and whether its
//! heartbeat is live, late or expired; anyone else sees only the node that answered.
//! The other nodes here are rows written into the hub's database as a node that
//! stopped beating would leave them, so the test runs on SQLite as on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use crate::openapi_bodies::{answer_schema, fits};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// Runs `sql` on the running hub's database; `{AGO:n}` is the time `n` minutes ago in
/// the database's own spelling.
fn run_sql(hub: &TestHub, sql: &str) {
    use diesel::{Connection, RunQueryDsl};
    let ago = |pg: bool, sql: &str| {
        let mut out = sql.to_string();
        while let Some(start) = out.find("{AGO:") {
            let end = start + out[start..].find('}').unwrap();
            let minutes = &out[start + 5..end];
            let t = if pg {
                format!("(now() AT TIME ZONE 'UTC') - interval '{minutes} minutes'")
            } else {
                format!("datetime('now', '-{minutes} minutes')")
            };
            out.replace_range(start..=end, &t);
        }
        out
    };
    if let Some(pg) = &hub.pg {
        let mut conn = diesel::PgConnection::establish(&pg.url("hub")).unwrap();
        diesel::sql_query(ago(true, sql))
            .execute(&mut conn)
            .unwrap();
        return;
    }
    let path = hub.dir.path().join("muninn.db");
    let mut conn = diesel::sqlite::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::sql_query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(ago(false, sql))
        .execute(&mut conn)
        .unwrap();
}

async fn node_status(hub: &TestHub, token: &str) -> Value {
    let r = hub.get("/worker_status", token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["node"].clone()
}

/// The admin's view once `pred` holds (bounded: the hub's first heartbeat and the
/// delivery of a posted event take a moment).
async fn wait_view(hub: &TestHub, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = node_status(hub, ADMIN_TOKEN).await;
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn node<'a>(view: &'a Value, id: &str) -> &'a Value {
    view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {view}"))
}

#[actix_rt::test]
async fn admins_see_every_node_with_what_it_holds_and_whether_it_is_late() {
    // A long lease, so "late" (missed two heartbeats) and "expired" (silent for longer
    // than a lease) are minutes apart and no test timing can blur them.
    let hub = TestHub::start_with(|c| {
        c.cluster.node_id = "hub-a".into();
        c.cluster.heartbeat_seconds = 5;
        c.cluster.lease_seconds = 3600;
        // The paused webhook's target is this machine (nothing is sent to it).
        c.delivery.allow_private_targets = true;
    })
    .await;
    let agent = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let view = wait_view(&hub, "the hub's own node", |v| {
        v["nodes"].as_array().is_some_and(|n| n.len() == 1) && v["owned_agents"] == 1
    })
    .await;
    assert_eq!(view["node_id"], "hub-a");
    assert_eq!(
        (
            view["heartbeat_seconds"].clone(),
            view["lease_seconds"].clone()
        ),
        (json!(5), json!(3600))
    );
    let me = node(&view, "hub-a");
    assert_eq!(me["state"], "live", "{me}");
    assert_eq!(me["owned_agents"], 1, "{me}");
    assert!(me["heartbeat_age_seconds"].as_f64().unwrap() < 10.0, "{me}");

    // A delivery claimed by the silent node: a paused subscription keeps it pending.
    let sub = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": "http://127.0.0.1:9/never", "event_types": ["event.created"]}),
        )
        .await;
    assert_eq!(sub.status, 201, "{}", sub.text());
    let sub = sub.json()["id"].as_i64().unwrap();
    let paused = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{sub}/pause"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.text());
    let posted = hub
        .post_json(
            &format!("/users/1/web_requests/{agent}/s"),
            ADMIN_TOKEN,
            &json!({"n": 1}),
        )
        .await;
    assert!(posted.status < 300, "{}", posted.text());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = hub
            .get(&format!("/api/deliveries?webhook_id={sub}"), ADMIN_TOKEN)
            .await
            .json();
        if r.as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery for the paused webhook"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    // A node that beat a minute ago (late) and one silent for two hours (expired, its
    // lease on an agent and its claim on a delivery not yet taken over).
    run_sql(
        &hub,
        "INSERT INTO nodes (id, started_at, heartbeat_at, version) VALUES \
         ('hub-late', {AGO:90}, {AGO:1}, '0.0.1'), ('hub-gone', {AGO:300}, {AGO:120}, '0.0.1')",
    );
    run_sql(
        &hub,
        "INSERT INTO leases (resource, node_id, expires_at) VALUES \
         ('agent:900001', 'hub-gone', {AGO:119}), ('subscription:900002', 'hub-late', {AGO:0})",
    );
    run_sql(
        &hub,
        &format!("UPDATE deliveries SET claimed_by = 'hub-gone' WHERE subscription_id = {sub}"),
    );

    let view = wait_view(&hub, "three nodes", |v| {
        v["nodes"].as_array().is_some_and(|n| n.len() == 3)
    })
    .await;
    let ids: Vec<&str> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hub-a", "hub-gone", "hub-late"], "by id");
    let late = node(&view, "hub-late");
    assert_eq!(late["state"], "late", "{late}");
    assert_eq!(
        (
            late["owned_agents"].clone(),
            late["owned_subscriptions"].clone()
        ),
        (json!(0), json!(1))
    );
    let age = late["heartbeat_age_seconds"].as_f64().unwrap();
    assert!((55.0..600.0).contains(&age), "{late}");
    let gone = node(&view, "hub-gone");
    assert_eq!(gone["state"], "expired", "{gone}");
    assert_eq!(
        (
            gone["owned_agents"].clone(),
            gone["claimed_deliveries"].clone()
        ),
        (json!(1), json!(1)),
        "{gone}"
    );
    assert_eq!(node(&view, "hub-a")["state"], "live");
    // The answer is what the document says it is.
    let doc = hub
        .request("GET", "/api/openapi.json", None, &[], None)
        .await
        .json();
    let schema = answer_schema(&doc, "/worker_status", "get", "200");
    let full = hub.get("/worker_status", ADMIN_TOKEN).await.json();
    fits(&doc, schema, &full, "worker status");

    // Anyone else: the node that answered, never the others.
    let (_, alice) = hub.add_user("alice").await;
    let theirs = node_status(&hub, &alice).await;
    assert_eq!(theirs["node_id"], "hub-a");
    assert_eq!(theirs["nodes"], json!([]), "{theirs}");
}
