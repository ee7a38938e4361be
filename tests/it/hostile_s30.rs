//! A hostile probe of the inputs session 30 added: the `[cluster]` settings and their
//! `MUNINN_CLUSTER_*` variables, `muninn copy-db`'s paths and URLs, what a chat room
//! sends the jabber agent that listens in it, and a JavaScript agent's
//! `this.credential(name, value)` saves. Each is input: a clear error, bounded time and
//! memory, no panic, no effect on another user or on a file the command was not meant
//! to touch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::xmpp::FakeXmpp;
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// Runs `muninn --data-dir DIR ARGS...` with `envs` added, waiting at most `within`
/// (then it is killed and the test fails): whether it succeeded, and what it printed.
fn muninn(
    dir: &Path,
    args: &[&OsStr],
    envs: &[(&str, &OsStr)],
    within: Duration,
) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_muninn"));
    // Relative paths in `args` are read from `dir`, never from the source tree.
    cmd.current_dir(dir)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("MUNINN_DATABASE_URL")
        .env_remove("RUST_LOG")
        // The message is what is measured: with these set (CI shells often set them) an
        // error also prints its backtrace, kilobytes long in a build with debug info.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("muninn {args:?} did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

const QUICK: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// [cluster]

#[test]
fn cluster_settings_that_cannot_work_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let long_id = "n".repeat(10 * 1024);
    let cases: &[(&str, &OsStr, Option<&str>)] = &[
        // What was refused already, kept refused.
        (
            "MUNINN_CLUSTER_LEASE_SECONDS",
            os("-1"),
            Some("MUNINN_CLUSTER_LEASE_SECONDS"),
        ),
        (
            "MUNINN_CLUSTER_LEASE_SECONDS",
            os("soon"),
            Some("MUNINN_CLUSTER_LEASE_SECONDS"),
        ),
        (
            "MUNINN_CLUSTER_LEASE_SECONDS",
            os("99999999999999999999"),
            Some("whole number"),
        ),
        (
            "MUNINN_CLUSTER_HEARTBEAT_SECONDS",
            os("0"),
            Some("cluster.lease_seconds"),
        ),
        (
            "MUNINN_CLUSTER_LEASE_SECONDS",
            os("9"),
            Some("twice heartbeat_seconds"),
        ),
        // A lease past the clock's range: the lease round's expiry time overflows.
        (
            "MUNINN_CLUSTER_LEASE_SECONDS",
            os("10000000000000"),
            Some("at most 86400"),
        ),
        // The largest number TOML carries: 2 * heartbeat stays in range.
        (
            "MUNINN_CLUSTER_HEARTBEAT_SECONDS",
            os("9223372036854775807"),
            Some("twice heartbeat_seconds"),
        ),
        // A node id is printed in logs, /worker_status and the console.
        (
            "MUNINN_CLUSTER_NODE_ID",
            os("node-a\n{\"level\":\"ERROR\"}"),
            Some("control characters"),
        ),
        (
            "MUNINN_CLUSTER_NODE_ID",
            os("node\u{1b}[2J"),
            Some("control characters"),
        ),
        ("MUNINN_CLUSTER_NODE_ID", os(&long_id), Some("at most 255")),
        // Not UTF-8: read as unset, the node would silently be named by its host.
        (
            "MUNINN_CLUSTER_NODE_ID",
            OsStr::from_bytes(b"node-\xff\xfe"),
            Some("not valid UTF-8"),
        ),
        // Accepted.
        ("MUNINN_CLUSTER_NODE_ID", os(""), None),
        ("MUNINN_CLUSTER_NODE_ID", os("  node-b.example.org  "), None),
        ("MUNINN_CLUSTER_LEASE_SECONDS", os("86400"), None),
    ];
    for (var, value, refused) in cases {
        let (ok, out) = muninn(dir.path(), &[os("migrate")], &[(var, value)], QUICK);
        assert!(!out.contains("panicked"), "{var}={value:?}: {out}");
        match refused {
            None => assert!(ok, "{var}={value:?} should be accepted: {out}"),
            Some(why) => {
                assert!(!ok, "{var}={value:?} should be refused: {out}");
                assert!(out.contains(why), "{var}={value:?}: {out}");
                assert!(out.len() < 2000, "the message repeats a 10 KB value: {out}");
                assert!(
                    !out.contains('\u{1b}'),
                    "an escape reached the terminal: {out:?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// copy-db

/// A migrated (empty) SQLite hub database in `dir`.
fn migrated(dir: &Path) -> String {
    let (ok, out) = muninn(dir, &[os("migrate")], &[], QUICK);
    assert!(ok, "{out}");
    dir.join("muninn.db").to_string_lossy().into_owned()
}

fn copy_db(dir: &Path, from: &str, to: &str, replace: bool) -> (bool, String) {
    let mut args = vec![os("copy-db"), os("--from"), os(from), os("--to"), os(to)];
    if replace {
        args.push(os("--replace"));
    }
    muninn(dir, &args, &[], QUICK)
}

#[test]
fn copy_db_never_touches_a_file_that_is_not_a_database() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let db = migrated(&src);
    let notes = work.path().join("notes.txt");
    std::fs::write(&notes, "my notes\n").unwrap();
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o644)).unwrap();
    let notes = notes.to_string_lossy().into_owned();
    for (from, to) in [(notes.as_str(), "copy.db"), (db.as_str(), notes.as_str())] {
        let (ok, out) = copy_db(work.path(), from, to, true);
        assert!(!ok, "--from {from} --to {to}: {out}");
        assert!(out.contains("is not a SQLite database"), "{out}");
        let meta = std::fs::metadata(&notes).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o644,
            "its mode was changed"
        );
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    }
    // A directory, and names that are no file.
    let (ok, out) = copy_db(work.path(), src.to_str().unwrap(), "copy.db", false);
    assert!(!ok && out.contains("is not a file"), "{out}");
    for to in ["", ":memory:", "file:copy.db?mode=memory"] {
        let (ok, out) = copy_db(work.path(), &db, to, false);
        assert!(
            !ok,
            "--to {to:?} copied into a database nobody keeps: {out}"
        );
        assert!(out.contains("names no database file"), "{out}");
    }
    // A missing source; a very long path.
    let (ok, out) = copy_db(work.path(), "missing/muninn.db", "copy.db", false);
    assert!(!ok && out.contains("does not exist"), "{out}");
    let long = format!("{}/muninn.db", "d".repeat(8 * 1024));
    let (ok, out) = copy_db(work.path(), &db, &long, false);
    assert!(!ok && !out.contains("panicked"), "{out}");
}

#[test]
fn copy_db_sees_one_sqlite_file_under_every_name() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let db = migrated(&src);
    let other = work.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let hard = other.join("hard.db");
    std::fs::hard_link(&db, &hard).unwrap();
    let soft = other.join("soft.db");
    std::os::unix::fs::symlink(&db, &soft).unwrap();
    let relative = "src/../src/muninn.db";
    for to in [
        hard.to_str().unwrap(),
        soft.to_str().unwrap(),
        relative,
        &format!("sqlite://{db}"),
    ] {
        let (ok, out) = copy_db(work.path(), &db, to, true);
        assert!(!ok, "--to {to} is the source itself: {out}");
        assert!(out.contains("same database"), "--to {to}: {out}");
    }
}

#[test]
fn copy_db_to_a_silent_port_fails_in_bounded_time_without_the_password() {
    let work = tempfile::tempdir().unwrap();
    let db = migrated(work.path());
    // Accepts connections (the kernel completes them) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    for url in [
        format!("postgres://muninn:hunter2-pw@127.0.0.1:{port}/muninn"),
        format!("postgres://muninn:hunter2-pw@127.0.0.1:{closed_port}/muninn"),
        // libpq repeats a token it cannot decode.
        format!("postgres://muninn:hunter2-pw%zz@127.0.0.1:{closed_port}/muninn"),
    ] {
        let (ok, out) = copy_db(work.path(), &db, &url, false);
        assert!(!ok, "{url}: {out}");
        assert!(!out.contains("hunter2"), "the password was printed: {out}");
        assert!(out.contains("could not open the database"), "{out}");
    }
    drop(silent);
}

#[test]
fn copy_db_sees_one_postgres_database_under_two_urls() {
    let Some(pg) = common::postgres::PgCluster::start() else {
        return;
    };
    let url = pg.create_database("one");
    let work = tempfile::tempdir().unwrap();
    let (ok, out) = muninn(
        work.path(),
        &[os("--database-url"), os(&url), os("migrate")],
        &[],
        QUICK,
    );
    assert!(ok, "{out}");
    let other = url.replacen("postgres://", "postgresql://", 1) + "?application_name=copy";
    let (ok, out) = copy_db(work.path(), &url, &other, true);
    assert!(!ok, "{out}");
    assert!(out.contains("same database"), "{out}");
}

// ---------------------------------------------------------------------------
// jabber: what a room sends

#[actix_rt::test]
async fn a_flooding_room_with_hostile_stanzas_is_bounded_and_ends_cleanly() {
    let room = "flood@conference.localhost";
    // Under the parser's 8 KiB cap on one attribute (past it, the stream ends).
    let big_stamp = "9".repeat(8000);
    let mut live = format!(
        "<message type='groupchat' from='{room}/mallory'><body>stamped</body>\
         <delay xmlns='urn:xmpp:delay' stamp='{big_stamp}'/></message>\
         <message type='groupchat' from='{room}/mallory'><body>{}</body></message>",
        "x".repeat(200 * 1024)
    );
    for i in 0..300 {
        live.push_str(&format!(
            "<message type='groupchat' from='{room}/mallory'><body>flood {i}</body></message>"
        ));
    }
    // Not XML: the connection ends there.
    live.push_str("<message from='x'><body>a</bod></message>");
    let fake = FakeXmpp::with_room_stanzas("foo", "password", room, live);
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("fake-xmpp-ca.pem");
    std::fs::write(&pem, &fake.cert_pem).unwrap();
    let hub = TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.jabber.extra_ca_files = vec![pem];
    })
    .await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let id = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "Agents::JabberAgent", "name": "listener", "source_ids": [hook], "options": {
                "jabber_server": "127.0.0.1", "jabber_port": fake.port.to_string(),
                "jabber_sender": "foo@localhost", "jabber_receiver": format!("{room}/muninn"),
                "jabber_password": "password", "message": "{{title}}",
                "connect_to_receiver": "true", "expected_receive_period_in_days": "2"
            }}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    hub.wait_log(ADMIN_TOKEN, id, &format!("Listening in {room} stopped"), 1)
        .await;
    let mut got: Vec<Value> = Vec::new();
    for _ in 0..200 {
        got = hub.payloads(ADMIN_TOKEN, id).await;
        if got.len() >= 120 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), 120, "one window's events, the rest dropped");
    let stamped = got.iter().find(|p| p["message"] == "stamped").unwrap();
    assert_eq!(stamped["time"], Value::Null, "an 8 KB 'stamp' is no time");
    let long = got
        .iter()
        .find(|p| p["message"].as_str().is_some_and(|m| m.starts_with("xxx")))
        .unwrap();
    assert_eq!(long["message"].as_str().unwrap().len(), 16 * 1024);
    assert_eq!(hub.get("/api/agents", ADMIN_TOKEN).await.status, 200);
}

// ---------------------------------------------------------------------------
// java_script: this.credential(name, value)

async fn js_hub() -> TestHub {
    TestHub::start_with(|c| {
        c.insecure_agents.enabled = true;
        c.insecure_agents.timeout_seconds = 5;
        c.insecure_agents.max_output_bytes = 256 * 1024;
        c.insecure_agents.memory_mb = 64;
    })
    .await
}

async fn run_js(hub: &TestHub, token: &str, code: &str) -> i64 {
    let id = hub
        .add_agent(
            token,
            json!({"type": "java_script", "name": "saver", "options": {"code": code}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), token, &json!({}))
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.text());
    id
}

async fn credential_names(hub: &TestHub, token: &str) -> Vec<String> {
    let list = hub.get("/api/credentials?limit=1000", token).await.json();
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["credential_name"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn a_run_saves_a_bounded_number_of_credentials_and_only_its_owners() {
    let hub = js_hub().await;
    // A loop over saves: hundreds of names, one name a thousand times.
    let code = "Agent.check = function() {\n  for (var i = 0; i < 1000; i++) this.credential('token', 'v' + i);\n  for (var j = 0; j < 500; j++) this.credential('n' + j, 'x');\n  this.log('looped');\n};";
    let a = run_js(&hub, ADMIN_TOKEN, code).await;
    hub.wait_log(ADMIN_TOKEN, a, "looped", 1).await;
    // A second run starts once the first one's saves are written (they hold the
    // agent's mailbox); its log line says they are.
    let r = hub
        .post_json(&format!("/api/agents/{a}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    assert!(r.status < 300, "{}", r.text());
    hub.wait_log(ADMIN_TOKEN, a, "looped", 2).await;
    let names = credential_names(&hub, ADMIN_TOKEN).await;
    assert_eq!(names.len(), 20, "{names:?}");
    assert!(names.contains(&"token".to_string()));
    let logs = hub
        .get(&format!("/api/agents/{a}/logs"), ADMIN_TOKEN)
        .await
        .text();
    assert!(logs.contains("saved 501 credentials in one run"), "{logs}");

    // Another user's agent saving a name the admin has makes the other user's own.
    let (_, bob) = hub.add_user("bob").await;
    let b = run_js(
        &hub,
        &bob,
        "Agent.check = function() { this.credential('token', 'bobs'); this.log('set'); };",
    )
    .await;
    hub.wait_log(&bob, b, "set", 1).await;
    let r = hub
        .post_json(&format!("/api/agents/{b}/run"), &bob, &json!({}))
        .await;
    assert!(r.status < 300, "{}", r.text());
    hub.wait_log(&bob, b, "set", 2).await;
    assert_eq!(credential_names(&hub, &bob).await, vec!["token"]);
    assert_eq!(credential_names(&hub, ADMIN_TOKEN).await.len(), 20);
    let list = hub
        .get("/api/credentials?limit=1000", ADMIN_TOKEN)
        .await
        .json();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["credential_name"] == "token")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let one = hub
        .get(&format!("/api/credentials/{mine}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(one["credential_value"], "v999", "the last value of the run");
}
