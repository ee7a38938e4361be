//! `muninn api ...` as a script uses it: the real binary against a running hub, its
//! stdout the API's JSON, a non-zero exit with the API's message on stderr when the API
//! answers an error, the token from --token, MUNINN_TOKEN or the data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        assert!(self.ok, "the command failed: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `muninn <args>` with no MUNINN_* settings from the environment but `envs`,
/// `stdin` on its standard input, in an empty folder.
fn muninn(args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Out {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_muninn"));
    cmd.args(args).current_dir(cwd.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("MUNINN_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// `muninn api --url <hub> --token <admin> <args>`.
fn api(hub: &TestHub, args: &[&str]) -> Out {
    api_in(hub, args, None)
}

fn api_in(hub: &TestHub, args: &[&str], stdin: Option<&str>) -> Out {
    let mut all = vec!["api", "--url", &hub.base, "--token", ADMIN_TOKEN];
    all.extend_from_slice(args);
    muninn(&all, &[], stdin)
}

/// The sentence of an API error body, whichever shape it has.
fn message(body: &Value) -> String {
    let e = &body["error"];
    e.as_str()
        .or_else(|| e["message"].as_str())
        .unwrap()
        .to_string()
}

#[actix_rt::test]
async fn agents_are_created_listed_switched_run_and_deleted() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.json");
    std::fs::write(
        &file,
        r#"{"type": "Agents::ManualEventAgent", "name": "by hand", "options": {}}"#,
    )
    .unwrap();
    let created = api(&hub, &["agents", "create", file.to_str().unwrap()]).json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["name"], "by hand");
    assert_eq!(
        hub.get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
            .await
            .status,
        200
    );
    // From stdin, with `-` or no file at all.
    let second = api_in(
        &hub,
        &["agents", "create", "-"],
        Some(r#"{"type": "manual_event", "name": "second", "options": {}}"#),
    )
    .json();
    let third = api_in(
        &hub,
        &["agents", "create"],
        Some(r#"{"type": "manual_event", "name": "third", "options": {}}"#),
    )
    .json();
    assert_ne!(second["id"], third["id"]);

    let list = api(&hub, &["agents", "list"]).json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"by hand") && names.contains(&"third"),
        "{list}"
    );
    // The output is the API's own answer.
    let id_s = id.to_string();
    let got = api(&hub, &["agents", "get", &id_s]).json();
    assert_eq!(
        got,
        hub.get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
            .await
            .json()
    );

    let off = api(&hub, &["agents", "disable", &id_s]).json();
    assert_eq!(off["disabled"], true);
    let on = api(&hub, &["agents", "enable", &id_s]).json();
    assert_eq!(on["disabled"], false);
    let api_says = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(api_says["disabled"], false);
    assert!(api(&hub, &["agents", "run", &id_s]).ok);

    let deleted = api(&hub, &["agents", "delete", &id_s]);
    assert!(deleted.ok, "{}", deleted.stderr);
    assert_eq!(deleted.stdout, "", "a 204 prints nothing");
    let gone = hub.get(&format!("/api/agents/{id}"), ADMIN_TOKEN).await;
    assert_eq!(gone.status, 404);
    let again = api(&hub, &["agents", "get", &id_s]);
    assert!(!again.ok);
    assert_eq!(again.stdout, "");
    assert!(
        again.stderr.contains(&message(&gone.json())) && again.stderr.contains("404"),
        "{}",
        again.stderr
    );
}

#[actix_rt::test]
async fn a_refused_body_exits_non_zero_with_the_apis_message() {
    let hub = TestHub::start().await;
    let body = json!({"type": "rss", "name": "x", "options": {"url": "file:///etc/passwd"}});
    let r = hub.post_json("/api/agents", ADMIN_TOKEN, &body).await;
    assert_eq!(r.status, 422);
    let out = api_in(&hub, &["agents", "create"], Some(&body.to_string()));
    assert!(!out.ok);
    assert!(out.stderr.contains(&message(&r.json())), "{}", out.stderr);
    let out = api_in(&hub, &["agents", "create"], Some("{not json"));
    assert!(!out.ok);
    assert!(out.stderr.contains("stdin is not JSON"), "{}", out.stderr);
}

#[actix_rt::test]
async fn the_token_comes_from_the_flag_the_environment_or_the_data_dir() {
    let hub = TestHub::start().await;
    let env = muninn(
        &["api", "agents", "list"],
        &[("MUNINN_URL", &hub.base), ("MUNINN_TOKEN", ADMIN_TOKEN)],
        None,
    );
    assert_eq!(env.json(), json!([]));
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("admin.token"), format!("{ADMIN_TOKEN}\n")).unwrap();
    let from_file = muninn(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "api",
            "--url",
            &hub.base,
            "agents",
            "list",
        ],
        &[],
        None,
    );
    assert_eq!(from_file.json(), json!([]));
    let bad = muninn(
        &[
            "api", "--url", &hub.base, "--token", "nope", "agents", "list",
        ],
        &[],
        None,
    );
    assert!(!bad.ok);
    assert!(bad.stderr.contains("401"), "{}", bad.stderr);
    let none = muninn(&["api", "--url", &hub.base, "agents", "list"], &[], None);
    assert!(!none.ok);
    assert!(none.stderr.contains("admin.token"), "{}", none.stderr);
}

#[actix_rt::test]
async fn subscriptions_deliveries_and_replay() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let created = api_in(
        &hub,
        &["subscriptions", "create"],
        Some(r#"{"url": "http://127.0.0.1:9/hook", "event_types": ["event.created"]}"#),
    )
    .json();
    let id = created["id"].as_i64().unwrap().to_string();
    assert_eq!(created["url"], "http://127.0.0.1:9/hook");
    let list = api(&hub, &["subscriptions", "list"]).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], created["id"]);
    let got = api(&hub, &["subscriptions", "get", &id, "--pretty"]);
    assert!(got.stdout.contains("\n  \""), "indented: {}", got.stdout);
    assert_eq!(got.json()["url"], created["url"]);

    let replay = api(&hub, &["subscriptions", "replay", &id, "--dry-run"]).json();
    assert_eq!(replay, json!({"matched": 0, "queued": 0, "dry_run": true}));
    let bad = api(&hub, &["subscriptions", "replay", &id, "--status", "lost"]);
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("\"lost\" is not one of"),
        "{}",
        bad.stderr
    );

    assert_eq!(
        api(&hub, &["deliveries", "list", "--status", "dead"]).json(),
        json!([])
    );
    let retry = api(&hub, &["deliveries", "retry", "999999"]);
    assert!(!retry.ok);
    assert!(retry.stderr.contains("404"), "{}", retry.stderr);

    assert!(api(&hub, &["subscriptions", "delete", &id]).ok);
    assert_eq!(api(&hub, &["subscriptions", "list"]).json(), json!([]));
}

#[actix_rt::test]
async fn a_dead_delivery_is_listed_and_retried() {
    let hub = TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await;
    let agent = hub.add_webhook_agent(ADMIN_TOKEN).await;
    // Nothing listens on port 9: the one attempt fails and the delivery dies.
    let sub = api_in(
        &hub,
        &["subscriptions", "create"],
        Some(r#"{"url": "http://127.0.0.1:9/hook", "event_types": ["event.created"], "retry_count": 0}"#),
    )
    .json();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{agent}/s"),
            ADMIN_TOKEN,
            &json!({"n": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let dead = loop {
        let dead = api(&hub, &["deliveries", "list", "--status", "dead"]).json();
        if let Some(d) = dead.as_array().unwrap().first() {
            break d.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no delivery died");
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(dead["webhook_id"], sub["id"]);
    let id = dead["id"].as_i64().unwrap().to_string();
    let retried = api(&hub, &["deliveries", "retry", &id]).json();
    assert_eq!(retried["id"], dead["id"]);
    assert_ne!(retried["status"], "dead", "{retried}");
    let got = api(&hub, &["deliveries", "get", &id]).json();
    assert!(!got["attempt_log"].as_array().unwrap().is_empty(), "{got}");
}

#[actix_rt::test]
async fn events_are_listed_by_agent() {
    let hub = TestHub::start().await;
    let id = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "manual_event", "name": "m", "options": {}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/api/agents/{id}/events"),
            ADMIN_TOKEN,
            &json!({"payloads": [{"n": 1}, {"n": 2}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id_s = id.to_string();
    let events = api(&hub, &["events", "list", "--agent", &id_s]).json();
    let payloads: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["payload"])
        .collect();
    assert_eq!(payloads, [&json!({"n": 1}), &json!({"n": 2})]);
    let one = api(&hub, &["events", "list", "--agent", &id_s, "--limit", "1"]).json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    let first = events[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(
        api(&hub, &["events", "get", &first]).json()["payload"],
        json!({"n": 1})
    );
    let bad = api(&hub, &["events", "list", "--param", "nonsense"]);
    assert!(!bad.ok);
    assert!(bad.stderr.contains("KEY=VALUE"), "{}", bad.stderr);
}

#[actix_rt::test]
async fn scenarios_import_and_export() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/dedup_feed.json");
    let report = api(&hub, &["scenarios", "import", file.to_str().unwrap()]).json();
    assert_eq!(report["created"], true, "{report}");
    let id = report["scenario"]["id"].as_i64().unwrap();
    let list = api(&hub, &["scenarios", "list"]).json();
    assert_eq!(list[0]["id"], id);
    let mut export = api(&hub, &["scenarios", "export", &id.to_string()]).json();
    assert_eq!(export["schema_version"], 1);
    assert_eq!(export["guid"], "a0b1c2d3e4f5460718293a4b5c6d7e8f");
    let mut via_api = hub
        .get(&format!("/api/scenarios/{id}/export"), ADMIN_TOKEN)
        .await
        .json();
    // Each export is stamped with the second it was made; under load the two were a
    // second apart (a CI run). Everything else must be the same.
    for e in [&mut export, &mut via_api] {
        assert!(e.as_object_mut().unwrap().remove("exported_at").is_some());
    }
    assert_eq!(export, via_api);
}

#[actix_rt::test]
async fn tokens_are_created_listed_rotated_and_revoked() {
    let hub = TestHub::start().await;
    let created = api(
        &hub,
        &["tokens", "create", "--name", "ci", "--scope", "read"],
    )
    .json();
    let token = created["token"].as_str().unwrap().to_string();
    assert_eq!(created["scope"], "read");
    let id = created["id"].as_i64().unwrap().to_string();
    let list = api(&hub, &["tokens", "list"]).json();
    assert!(
        list.as_array().unwrap().iter().any(|t| t["name"] == "ci"),
        "{list}"
    );
    // The new token reads, and cannot write.
    let read = muninn(
        &[
            "api", "--url", &hub.base, "--token", &token, "agents", "list",
        ],
        &[],
        None,
    );
    assert_eq!(read.json(), json!([]));
    let write = muninn(
        &[
            "api", "--url", &hub.base, "--token", &token, "agents", "create",
        ],
        &[],
        Some(r#"{"type": "manual_event", "name": "m", "options": {}}"#),
    );
    assert!(!write.ok);
    assert!(write.stderr.contains("403"), "{}", write.stderr);
    // Rotate: the same token with a new secret, printed once; the old one stops.
    let rotated = api(&hub, &["tokens", "rotate", &id]).json();
    assert_eq!(
        (&rotated["id"], &rotated["scope"]),
        (&created["id"], &json!("read"))
    );
    let old = token;
    let token = rotated["token"].as_str().unwrap().to_string();
    assert_ne!(token, old);
    let stale = muninn(
        &["api", "--url", &hub.base, "--token", &old, "agents", "list"],
        &[],
        None,
    );
    assert!(
        !stale.ok && stale.stderr.contains("401"),
        "{}",
        stale.stderr
    );
    assert!(api(&hub, &["tokens", "revoke", &id]).ok);
    let revoked = muninn(
        &[
            "api", "--url", &hub.base, "--token", &token, "agents", "list",
        ],
        &[],
        None,
    );
    assert!(!revoked.ok);
    assert!(revoked.stderr.contains("401"), "{}", revoked.stderr);
}
