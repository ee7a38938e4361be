//! `muninn copy-db` (issue 19): a SQLite hub's whole database moved to PostgreSQL and
//! back. The hub on the copy answers the same API lists, sends the deliveries that were
//! waiting, opens the sealed secrets with the same key, and gives new rows ids above
//! the copied ones. The copy refuses a running hub, a target that holds data and an
//! open session on the target; `muninn migrate` finds both databases up to date.
//!
//! Each test starts its own throwaway cluster (tests/common/postgres.rs); where
//! PostgreSQL is not installed they print SKIPPED and pass, unless
//! MUNINN_REQUIRE_POSTGRES=1 (.ci/run) makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::ADMIN_TOKEN;
use common::postgres::PgCluster;
use common::process::{HubProcess, api};
use common::sink::Sink;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SIGNING_SECRET: &str = "copy-db-signing-secret";
const CREDENTIAL: &str = "cred-value-7f3a";

/// `muninn --data-dir DIR ARGS...`: whether it succeeded, and what it printed.
fn muninn(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muninn"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("MUNINN_DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn config(dir: &Path) -> String {
    let file = dir.join("test.toml");
    std::fs::write(
        &file,
        "[delivery]\nallow_private_targets = true\npoll_interval_ms = 50\n",
    )
    .unwrap();
    file.to_string_lossy().into_owned()
}

/// The hub on `database` (a SQLite path or a postgres:// URL) in `dir`.
fn serve(dir: &Path, database: &str) -> HubProcess {
    let config = config(dir);
    HubProcess::start(
        dir,
        &[
            ("MUNINN_CONFIG", config.as_str()),
            ("MUNINN_ADMIN_TOKEN", ADMIN_TOKEN),
            ("MUNINN_DATABASE_URL", database),
        ],
    )
}

async fn call(hub: &HubProcess, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, answer) = api(&hub.base, ADMIN_TOKEN, method, path, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

/// What an operator reads back: the API's lists (the hub's address made `HUB`).
async fn lists(hub: &HubProcess) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in [
        "/api/agents",
        "/api/events?limit=1000",
        "/api/webhooks/outgoing",
        "/api/deliveries?limit=1000",
        "/api/credentials",
        "/api/scenarios",
        "/api/users",
    ] {
        // The hub's own address (in web-request URLs) is the one thing that differs.
        let answer = call(hub, "GET", path, None).await.to_string();
        let answer = serde_json::from_str(&answer.replace(&hub.base, "http://HUB")).unwrap();
        out.push((path.to_string(), answer));
    }
    out
}

fn max_id(list: &Value) -> i64 {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .max()
        .unwrap_or(0)
}

async fn post_webhook(hub: &HubProcess, hook: i64, n: i64) {
    let resp = common::process::client()
        .post(format!("{}/users/1/web_requests/{hook}/s", hub.base))
        .send_json(&json!({"n": n}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

/// Waits (bounded) until `agent` has `n` events.
async fn wait_events(hub: &HubProcess, agent: i64, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = call(hub, "GET", &format!("/api/agents/{agent}/events"), None).await;
        let got = list.as_array().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "agent {agent} has {got:?}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signed_with_the_secret(r: &common::sink::Received) -> bool {
    let mut m = Hmac::<Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    m.update(&r.body);
    r.header("x-webhook-signature") == Some(hex::encode(m.finalize().into_bytes()).as_str())
}

/// A SQLite hub with agents, a link, events, a paused subscription with waiting
/// deliveries and a credential. Returns (webhook agent, formatter agent, subscription).
async fn populate(hub: &HubProcess, sink: &Sink) -> (i64, i64, i64) {
    call(
        hub,
        "POST",
        "/api/credentials",
        Some(json!({"credential_name": "greeting", "credential_value": CREDENTIAL})),
    )
    .await;
    let hook = call(
        hub,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let formatter = call(
        hub,
        "POST",
        "/api/agents",
        Some(
            json!({"type": "event_formatting", "name": "fmt", "source_ids": [hook],
                    "options": {"mode": "merge",
                                "instructions": {"cred": "{% credential greeting %}"}}}),
        ),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let sub = call(
        hub,
        "POST",
        "/api/webhooks/outgoing",
        Some(json!({"url": sink.url, "event_types": ["event.created"],
                    "secret": SIGNING_SECRET})),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    call(
        hub,
        "POST",
        &format!("/api/webhooks/outgoing/{sub}/pause"),
        None,
    )
    .await;
    for n in 0..3 {
        post_webhook(hub, hook, n).await;
    }
    wait_events(hub, formatter, 3).await;
    (hook, formatter, sub)
}

#[actix_rt::test]
async fn a_sqlite_hub_moves_to_postgres_and_back_whole() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("copy");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("muninn.db");
    let sqlite_arg = sqlite.to_string_lossy().into_owned();
    let sink = Sink::start();

    let hub = serve(dir.path(), &sqlite_arg);
    let (hook, formatter, sub) = populate(&hub, &sink).await;
    let before = lists(&hub).await;
    let deliveries = &before[3].1;
    assert_eq!(
        deliveries.as_array().unwrap().len(),
        6,
        "six events wait for the paused subscription: {deliveries}"
    );
    assert!(sink.received().is_empty());

    // Refused while the hub runs on it.
    let (ok, text) = muninn(
        dir.path(),
        &["copy-db", "--from", &sqlite_arg, "--to", &url],
    );
    assert!(!ok && text.contains("a hub is running"), "{text}");
    hub.signal("TERM");
    let mut hub = hub;
    hub.wait_exit(Duration::from_secs(20));

    let (ok, text) = muninn(
        dir.path(),
        &["copy-db", "--from", &sqlite_arg, "--to", &url],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("events") && text.contains("new events get ids above"),
        "{text}"
    );
    // The schema of each is the one this muninn migrates to.
    for db in [sqlite_arg.as_str(), url.as_str()] {
        let (ok, text) = muninn(dir.path(), &["--database-url", db, "migrate"]);
        assert!(
            ok && text.starts_with("0 migration(s) applied"),
            "{db}: {text}"
        );
    }

    // The hub on PostgreSQL, same data directory (so the same secret key).
    let hub = serve(dir.path(), &url);
    assert_eq!(lists(&hub).await, before, "the same answers on PostgreSQL");
    let old_events = max_id(&before[1].1);
    post_webhook(&hub, hook, 3).await;
    let formatted = wait_events(&hub, formatter, 4).await;
    let newest = formatted.iter().max_by_key(|e| e["id"].as_i64()).unwrap();
    assert!(newest["id"].as_i64().unwrap() > old_events, "{newest}");
    assert_eq!(
        newest["payload"]["cred"], CREDENTIAL,
        "the sealed credential opens with the same key"
    );
    let agent = call(
        &hub,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "later", "options": {"secret": "t"}})),
    )
    .await;
    assert!(agent["id"].as_i64().unwrap() > formatter, "{agent}");
    // The waiting deliveries, signed with the copied secret, and the two new ones.
    call(
        &hub,
        "POST",
        &format!("/api/webhooks/outgoing/{sub}/resume"),
        None,
    )
    .await;
    let got = sink.wait_for(8).await;
    assert!(got.iter().all(signed_with_the_secret), "{got:?}");
    let mut sent: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    sent.sort_unstable();
    assert_eq!(sent, [0, 0, 1, 1, 2, 2, 3, 3]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let on_postgres = loop {
        let now = lists(&hub).await;
        let delivered = now[3]
            .1
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered");
        if delivered {
            break now;
        }
        assert!(Instant::now() < deadline, "{:?}", now[3]);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    hub.kill();

    // And back into a new SQLite file.
    let back = dir.path().join("back.db");
    let back_arg = back.to_string_lossy().into_owned();
    let (ok, text) = muninn(dir.path(), &["copy-db", "--from", &url, "--to", &back_arg]);
    assert!(ok, "{text}");
    let hub = serve(dir.path(), &back_arg);
    assert_eq!(
        lists(&hub).await,
        on_postgres,
        "the same answers on SQLite again"
    );
    let last = max_id(&on_postgres[1].1);
    post_webhook(&hub, hook, 4).await;
    let formatted = wait_events(&hub, formatter, 5).await;
    let newest = formatted.iter().max_by_key(|e| e["id"].as_i64()).unwrap();
    assert!(newest["id"].as_i64().unwrap() > last, "{newest}");
    assert_eq!(newest["payload"]["cred"], CREDENTIAL);
    hub.kill();
}

#[actix_rt::test]
async fn the_copy_refuses_a_target_with_data_or_in_use_unless_told() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("busy");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("muninn.db");
    let sqlite_arg = sqlite.to_string_lossy().into_owned();
    let hub = serve(dir.path(), &sqlite_arg);
    call(&hub, "POST", "/api/users", Some(json!({"name": "bob"}))).await;
    hub.kill();

    let copy = |extra: &[&str]| {
        let mut args = vec!["copy-db", "--from", &sqlite_arg, "--to", &url];
        args.extend_from_slice(extra);
        muninn(dir.path(), &args)
    };
    {
        // Another session on the target: maybe a hub.
        use diesel::Connection;
        let _session = diesel::PgConnection::establish(&url).unwrap();
        let (ok, text) = copy(&[]);
        assert!(
            !ok && text.contains("other session(s) are connected"),
            "{text}"
        );
    }
    let (ok, text) = copy(&[]);
    assert!(ok, "{text}");
    let (ok, text) = copy(&[]);
    assert!(
        !ok && text.contains("already holds data") && text.contains("--replace"),
        "{text}"
    );
    let (ok, text) = copy(&["--replace"]);
    assert!(ok, "{text}");
    let (ok, text) = muninn(dir.path(), &["copy-db", "--from", &url, "--to", &url]);
    assert!(!ok && text.contains("same database"), "{text}");
    let missing = dir.path().join("none.db");
    let (ok, text) = muninn(
        dir.path(),
        &[
            "copy-db",
            "--from",
            &missing.to_string_lossy(),
            "--to",
            &url,
            "--replace",
        ],
    );
    assert!(!ok && text.contains("does not exist"), "{text}");

    let hub = serve(dir.path(), &url);
    let users = call(&hub, "GET", "/api/users", None).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"bob"), "one copy, replaced whole: {users}");
    assert_eq!(names.len(), 2, "{users}");
    hub.kill();
}
