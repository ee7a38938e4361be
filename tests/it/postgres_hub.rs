//! The hub on PostgreSQL (issue 19): `muninn serve` with a postgres:// database runs
//! the core path (a web-request URL makes an event row, an agent receives it, a
//! subscription delivers it to a sink), serves the API lists, keeps everything across
//! a restart, and the `user` and `token` commands work on the same database.
//!
//! Each test starts its own throwaway cluster (tests/common/postgres.rs); where
//! PostgreSQL is not installed they print SKIPPED and pass, unless
//! MUNINN_REQUIRE_POSTGRES=1 (.ci/run) makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::postgres::PgCluster;
use common::process::{HubProcess, api};
use common::sink::Sink;
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}

#[actix_rt::test]
async fn a_web_request_reaches_an_agent_and_a_sink_on_postgres() {
    let Some(pg) = PgCluster::start() else { return };
    let hub = TestHub::start_on(Some(pg), |c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await;
    let sink = Sink::start();
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let formatter = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "fmt", "source_ids": [hook],
                   "options": {"mode": "merge", "instructions": {"seen": "yes"}}}),
        )
        .await;
    let formatter = formatter["id"].as_i64().unwrap();
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "event_types": ["event.created"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let subscription = r.json()["id"].as_i64().unwrap();

    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"n": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // The event row, then the agent's own event made from it.
    assert_eq!(hub.payloads(ADMIN_TOKEN, hook).await, [json!({"n": 1})]);
    hub.wait_payloads(ADMIN_TOKEN, formatter, &[json!({"n": 1, "seen": "yes"})])
        .await;
    // Both events are event.created: the subscription sends each to the sink.
    let got = sink.wait_for(2).await;
    let mut bodies: Vec<Value> = got.iter().map(|r| r.json()["data"].clone()).collect();
    bodies.sort_by_key(|v| v.to_string().len());
    assert_eq!(
        bodies,
        [json!({"n": 1}), json!({"n": 1, "seen": "yes"})],
        "{got:?}"
    );

    // The API lists read the same rows.
    let agents = hub.get("/api/agents", ADMIN_TOKEN).await;
    assert_eq!(agents.status, 200);
    let mut listed = ids(&agents.json());
    listed.sort_unstable();
    assert_eq!(listed, [hook, formatter]);
    let events = hub.get("/api/events?type=event.created", ADMIN_TOKEN).await;
    assert_eq!(events.status, 200);
    assert_eq!(ids(&events.json()).len(), 2, "{}", events.text());
    let first = *ids(&events.json()).iter().min().unwrap();
    let after = hub
        .get(
            &format!("/api/events?type=event.created&after={first}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(ids(&after.json()).len(), 1, "{}", after.text());
    let subs = hub.get("/api/webhooks/outgoing", ADMIN_TOKEN).await;
    assert_eq!(subs.status, 200);
    assert_eq!(ids(&subs.json()), [subscription]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let d = hub
            .get(
                &format!("/api/deliveries?status=delivered&webhook_id={subscription}"),
                ADMIN_TOKEN,
            )
            .await;
        assert_eq!(d.status, 200, "{}", d.text());
        let delivered = d
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["status"] == "delivered")
            .count();
        if delivered == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "deliveries: {}", d.text());
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn payloads(base: &str, token: &str, agent: i64) -> Vec<Value> {
    let (status, body) = api(
        base,
        token,
        "GET",
        &format!("/api/agents/{agent}/events"),
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

fn muninn(dir: &std::path::Path, url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muninn"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", url])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The commands that open the database directly, then the hub on the same database,
/// killed and started again: what was acknowledged and what the commands made is
/// still there.
#[actix_rt::test]
async fn users_tokens_and_events_outlive_a_restart_on_postgres() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("restart");
    let dir = tempfile::tempdir().unwrap();

    let (ok, text) = muninn(dir.path(), &url, &["user", "add", "alice"]);
    assert!(ok, "{text}");
    assert!(text.contains("created user alice"), "{text}");
    let (ok, text) = muninn(
        dir.path(),
        &url,
        &["token", "create", "--user", "alice", "--name", "ci"],
    );
    assert!(ok, "{text}");
    let token = text
        .split_whitespace()
        .find(|w| w.starts_with("mun_"))
        .unwrap_or_else(|| panic!("no token in {text:?}"))
        .to_string();
    let (ok, listed) = muninn(dir.path(), &url, &["user", "list"]);
    assert!(ok && listed.contains("alice"), "{listed}");
    let (ok, listed) = muninn(dir.path(), &url, &["token", "list"]);
    assert!(ok && listed.contains("ci"), "{listed}");

    let envs = [
        ("MUNINN_ADMIN_TOKEN", ADMIN_TOKEN),
        ("MUNINN_DATABASE_URL", url.as_str()),
    ];
    let hub = HubProcess::start(dir.path(), &envs);
    let (status, me) = api(&hub.base, &token, "GET", "/api/agents", None).await;
    assert_eq!(status, 200, "alice's token from the command works: {me}");
    // alice is the database's first user: the hub makes no admin of its own then.
    let (status, agent) = api(
        &hub.base,
        &token,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let id = agent["id"].as_i64().unwrap();
    let c = common::process::client();
    let mut acknowledged = Vec::new();
    for n in 0..20 {
        let resp = c
            .post(format!("{}/users/1/web_requests/{id}/s", hub.base))
            .send_json(&json!({"n": n}))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        acknowledged.push(json!({"n": n}));
    }
    hub.kill();

    let hub = HubProcess::start(dir.path(), &envs);
    assert_eq!(payloads(&hub.base, &token, id).await, acknowledged);
    let (status, _) = api(&hub.base, &token, "GET", "/api/agents", None).await;
    assert_eq!(status, 200, "the token outlived the restart");
    // Nothing was written into the data dir as a database: it is in PostgreSQL.
    assert!(!dir.path().join("muninn.db").exists());
}

/// Two stores on one database, as two nodes are, each with its own group-commit
/// writer, insert events concurrently while a poller reads "ids above my cursor" as
/// `GET /api/events?after=` does: it sees every committed event exactly once, none
/// skipped because a lower id committed after a higher one.
#[actix_rt::test]
async fn a_poller_sees_every_event_of_two_writers_exactly_once() {
    use muninn::store::events::{EventQuery, NewEvent, list};
    use muninn::store::{NoHook, Store, users};
    use std::sync::Arc;

    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database("nodes");
    let open = || {
        let dir = tempfile::tempdir().unwrap();
        let mut config = muninn::Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.storage.database_url = url.clone();
        let store = Store::open(&config.store_options(), Arc::new(NoHook), Box::new(|_| {}));
        (dir, store.unwrap())
    };
    let (_a_dir, a) = open();
    let (_b_dir, b) = open();
    let (_p_dir, poller) = open();
    let user = a
        .writer()
        .write(|c, _| users::insert(c, "writer", false).map(|u| u.id))
        .await
        .unwrap();

    const JOBS: usize = 150;
    let mut writes = Vec::new();
    for (node, store) in [(0, &a), (1, &b)] {
        for j in 0..JOBS {
            let n = 1 + (node + j) % 3;
            let new: Vec<NewEvent> = (0..n)
                .map(|k| NewEvent {
                    user_id: user,
                    agent_id: None,
                    event_type: "test".into(),
                    payload: json!({"node": node, "job": j, "k": k}).to_string(),
                    keep_for_seconds: 0,
                })
                .collect();
            writes.push(actix_rt::spawn(store.writer().write_repeatable(
                move |c, out| {
                    Ok(out
                        .insert(c, &new, 0)?
                        .iter()
                        .map(|e| e.id)
                        .collect::<Vec<_>>())
                },
            )));
        }
    }
    let expected: usize = (0..2)
        .map(|node| (0..JOBS).map(|j| 1 + (node + j) % 3).sum::<usize>())
        .sum();

    let mut cursor = 0;
    let mut seen = Vec::new();
    // Bounded: stops once every write has answered and a last poll found nothing new.
    for _ in 0..100_000 {
        let finished = writes.iter().all(|w| w.is_finished());
        let q = EventQuery {
            after: Some(cursor),
            limit: 1000,
            ..Default::default()
        };
        let rows = poller.read(move |c| list(c, &q)).await.unwrap();
        if let Some(last) = rows.last() {
            cursor = last.id.0;
        }
        let got_none = rows.is_empty();
        seen.extend(rows.into_iter().map(|r| r.id));
        if finished && got_none {
            break;
        }
        actix_rt::task::yield_now().await;
    }
    let mut written = Vec::new();
    for w in writes {
        written.extend(w.await.unwrap().unwrap());
    }
    written.sort_unstable();
    assert_eq!(written.len(), expected);
    assert_eq!(seen, written, "every event seen once, in id order");
}

/// A database address that takes the connection and never answers (a firewall, the
/// wrong service) stops `muninn serve` with a message after the default connect
/// timeout, rather than holding it for as long as the operating system waits. No
/// PostgreSQL needed: the kernel completes the handshake for a listener nobody accepts.
#[test]
fn a_database_that_never_answers_stops_serve_with_a_message() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://muninn:s3cret@127.0.0.1:{}/muninn",
        silent.local_addr().unwrap().port()
    );
    let dir = tempfile::tempdir().unwrap();
    let (status, err) = common::process::serve_refused_with(
        dir.path(),
        &[
            ("MUNINN_DATABASE_URL", url.as_str()),
            ("RUST_BACKTRACE", "0"),
        ],
        Duration::from_secs(60),
    );
    assert!(!status.success(), "{err}");
    assert!(err.contains("could not open the database"), "{err}");
    assert!(err.contains("timeout expired"), "{err}");
    assert!(
        !err.contains("s3cret"),
        "the password reached the message: {err}"
    );
    drop(silent);
}
