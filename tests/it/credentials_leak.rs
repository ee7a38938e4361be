//! Credential values stay secret across the whole hub, run as the real binary: a
//! scenario that uses `{% credential NAME %}` is imported, run, exported, dry-run and
//! listed, and the value shows up in no answer (other than its owner's own read), no
//! CLI output and no log line, even at debug level. `muninn secrets rotate-key`
//! re-seals credentials and they still read back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{HubProcess, api, client};
use common::sink::Sink;
use serde_json::{Value, json};

fn muninn(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muninn"))
        .args(args)
        .env_remove("MUNINN_ADMIN_TOKEN")
        .env_remove("MUNINN_TOKEN")
        .env_remove("MUNINN_SECRET_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn admin_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string()
}

fn database_has(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let e = e.unwrap();
        e.file_name().to_string_lossy().starts_with("muninn.db")
            && std::fs::read(e.path())
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
    })
}

/// Any answer body, as text (some are not JSON).
async fn raw(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> String {
    let req = client()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .insert_header(("Authorization", format!("Bearer {token}")));
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .unwrap();
    let bytes = resp.body().limit(16 * 1024 * 1024).await.unwrap();
    format!(
        "{method} {path} -> {}\n{}",
        resp.status(),
        String::from_utf8_lossy(&bytes)
    )
}

async fn add_user(base: &str, admin: &str, name: &str) -> (i64, String) {
    let (s, u) = api(
        base,
        admin,
        "POST",
        "/api/users",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    (
        u["id"].as_i64().unwrap(),
        u["token"].as_str().unwrap().to_string(),
    )
}

fn scenario(sink_url: &str) -> Value {
    json!({
        "schema_version": 1,
        "name": "Uses a credential",
        "guid": "c2ed0a1b5e9f4d3c8b7a6f5e4d3c2b1a",
        "agents": [
            {"type": "Agents::WebhookAgent", "name": "In", "disabled": false,
             "guid": "c2ed0a1b5e9f4d3c8b7a6f5e4d3c2b10",
             "options": {"secret": "in-secret", "expected_receive_period_in_days": "1"}},
            {"type": "Agents::PostAgent", "name": "Call the API", "disabled": false,
             "guid": "c2ed0a1b5e9f4d3c8b7a6f5e4d3c2b11", "propagate_immediately": true,
             "options": {"post_url": sink_url, "expected_receive_period_in_days": "1",
                         "content_type": "json", "method": "post",
                         "headers": {"Authorization": "Bearer {% credential grep_key %}"},
                         "payload": {"text": "{{ text }}"}, "emit_events": "false"}}
        ],
        "links": [{"source": 0, "receiver": 1}],
        "control_links": []
    })
}

/// Every answer a user, another user, an admin and the CLI can get that could carry
/// the value, one text each.
async fn everything_shown(
    base: &str,
    alice: &str,
    bob: &str,
    admin: &str,
    ids: (i64, i64),
    secret: &str,
) -> Vec<String> {
    let (mine, bobs) = ids;
    let mut shown = Vec::new();
    for (who, token) in [("alice", alice), ("bob", bob), ("admin", admin)] {
        for path in [
            "/api/credentials".to_string(),
            format!("/api/credentials/{bobs}"),
            "/api/agents".into(),
            "/api/events".into(),
            "/api/scenarios".into(),
            "/api/summary".into(),
            "/api/me".into(),
            "/worker_status".into(),
            "/metrics".into(),
        ] {
            shown.push(format!(
                "{who}: {}",
                raw(base, token, "GET", &path, None).await
            ));
        }
    }
    let path = format!("/api/credentials/{mine}");
    for token in [bob, admin] {
        shown.push(raw(base, token, "GET", &path, None).await);
        let body = json!({"credential_value": "overwritten"});
        shown.push(raw(base, token, "PUT", &path, Some(body)).await);
    }
    // Saves answer without the value; errors do not repeat it.
    let body = json!({"credential_name": "grep_key", "credential_value": secret});
    shown.push(raw(base, alice, "POST", "/api/credentials", Some(body)).await);
    let body = json!({"credential_value": secret, "mode": "bogus"});
    shown.push(raw(base, alice, "PUT", &path, Some(body)).await);
    let body = json!({"mode": "text"});
    shown.push(raw(base, alice, "PUT", &path, Some(body)).await);
    // A dry run of a template that reads the credential.
    let body = json!({"type": "event_formatting", "event": {"x": 1},
        "options": {"instructions": {"auth": "Bearer {% credential grep_key %}"}, "mode": "clean"}});
    shown.push(raw(base, alice, "POST", "/api/agents/dry_run", Some(body)).await);
    let (_, agents) = api(base, alice, "GET", "/api/agents", None).await;
    for a in agents.as_array().unwrap() {
        for tail in ["", "/logs", "/events"] {
            let path = format!("/api/agents/{}{tail}", a["id"]);
            shown.push(raw(base, alice, "GET", &path, None).await);
        }
    }
    let (_, scenarios) = api(base, alice, "GET", "/api/scenarios", None).await;
    for s in scenarios.as_array().unwrap() {
        for path in [
            format!("/api/scenarios/{}", s["id"]),
            format!("/api/scenarios/{}/export", s["id"]),
            format!("/scenarios/{}/export", s["id"]),
        ] {
            shown.push(raw(base, alice, "GET", &path, None).await);
        }
    }
    let (ok, cli) = muninn(&["credentials", "list", "--url", base, "--token", alice]);
    assert!(ok, "{cli}");
    assert!(cli.contains("grep_key") && cli.contains("text"), "{cli}");
    shown.push(format!("muninn credentials list:\n{cli}"));
    let (ok, cli) = muninn(&[
        "export",
        &scenarios[0]["id"].to_string(),
        "--url",
        base,
        "--token",
        alice,
    ]);
    assert!(ok, "{cli}");
    shown.push(format!("muninn export:\n{cli}"));
    shown
}

#[actix_rt::test]
async fn a_credential_value_appears_only_in_its_owners_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("muninn.toml");
    std::fs::write(&config, "[delivery]\nallow_private_targets = true\n").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut hub = HubProcess::start(
        &data,
        &[
            ("RUST_LOG", "debug"),
            ("MUNINN_CONFIG", config.to_str().unwrap()),
        ],
    );
    let base = hub.base.clone();
    let admin = admin_token(&data);
    let sink = Sink::start();
    let secret = "sk_live_GREPME-5e1f0a9c7b3d";
    let (alice_id, alice) = add_user(&base, &admin, "alice").await;
    let (_, bob) = add_user(&base, &admin, "bob").await;

    let body = json!({"credential_name": "grep_key", "credential_value": secret});
    let (s, mine) = api(&base, &alice, "POST", "/api/credentials", Some(body)).await;
    assert_eq!(s, 201, "{mine}");
    let body = json!({"credential_name": "grep_key", "credential_value": "bobs-own-value"});
    let (s, bobs) = api(&base, &bob, "POST", "/api/credentials", Some(body)).await;
    assert_eq!(s, 201, "{bobs}");
    let ids = (mine["id"].as_i64().unwrap(), bobs["id"].as_i64().unwrap());

    let imported = raw(
        &base,
        &alice,
        "POST",
        "/api/scenarios/import",
        Some(scenario(&sink.url)),
    )
    .await;
    let (_, agents) = api(&base, &alice, "GET", "/api/agents", None).await;
    let hook = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "In")
        .unwrap_or_else(|| panic!("no webhook agent: {imported}"))["id"]
        .clone();
    let r = client()
        .post(format!(
            "{base}/users/{alice_id}/web_requests/{hook}/in-secret"
        ))
        .send_json(&json!({"text": "hello"}))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // Give the POST agent a moment to act (or log why it cannot); nothing is asserted
    // about the call itself here, only about what the hub shows and logs.
    let until = Instant::now() + Duration::from_secs(3);
    while sink.received().is_empty() && Instant::now() < until {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }

    let mut shown = vec![imported];
    shown.extend(everything_shown(&base, &alice, &bob, &admin, ids, secret).await);
    // The one place it may be, which also shows that the search would find it.
    let own = raw(
        &base,
        &alice,
        "GET",
        &format!("/api/credentials/{}", ids.0),
        None,
    )
    .await;
    assert!(own.contains(secret), "{own}");
    assert!(shown.len() > 40);
    for text in &shown {
        assert!(!text.contains(secret), "the value leaked into:\n{text}");
    }

    hub.signal("TERM");
    assert!(hub.wait_exit(Duration::from_secs(30)).success());
    let lines = hub.log_lines();
    assert!(
        lines.iter().any(|l| l.contains("DEBUG")),
        "debug logging was on"
    );
    for line in &lines {
        assert!(
            !line.contains(secret),
            "the value is in the hub's log: {line}"
        );
    }
    assert!(
        !database_has(&data, secret),
        "the value is in the database file"
    );
}

#[actix_rt::test]
async fn rotate_key_reseals_credentials_and_they_still_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    let mut hub = HubProcess::start(dir.path(), &[]);
    let admin = admin_token(dir.path());
    let secret = "rotate-me-credential-8d2c";
    let body = json!({"credential_name": "rotated", "credential_value": secret});
    let (s, made) = api(&hub.base, &admin, "POST", "/api/credentials", Some(body)).await;
    assert_eq!(s, 201, "{made}");
    let path = format!("/api/credentials/{}", made["id"]);
    hub.signal("TERM");
    assert!(hub.wait_exit(Duration::from_secs(30)).success());

    let (ok, text) = muninn(&["--data-dir", &data_dir, "secrets", "rotate-key"]);
    assert!(ok, "{text}");
    assert!(text.contains("1 value(s) re-encrypted"), "{text}");
    let new_id = text
        .split("rotated to ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap();
    assert!(
        database_has(dir.path(), &format!("enc:v1:{new_id}:")),
        "{text}"
    );
    assert!(!database_has(dir.path(), secret));

    let mut hub = HubProcess::start(dir.path(), &[]);
    let (s, one) = api(&hub.base, &admin, "GET", &path, None).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["credential_value"], secret);
    assert!(one.get("value_error").is_none(), "{one}");
    hub.signal("TERM");
    assert!(hub.wait_exit(Duration::from_secs(30)).success());

    // A lost key: the owner's read says why instead of showing garbage.
    std::fs::write(
        dir.path().join("secret.key"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .unwrap();
    let hub = HubProcess::start(dir.path(), &[]);
    let (s, one) = api(&hub.base, &admin, "GET", &path, None).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["credential_value"], Value::Null, "{one}");
    assert!(
        one["value_error"]
            .as_str()
            .unwrap()
            .contains("MUNINN_SECRET_KEY"),
        "{one}"
    );
}

#[test]
fn help_names_the_credentials_command() {
    let (ok, text) = muninn(&["--help"]);
    assert!(ok);
    assert!(text.contains("credentials"), "{text}");
    let (ok, text) = muninn(&["credentials", "list", "--help"]);
    assert!(ok, "{text}");
    assert!(text.contains("never values"), "{text}");
}
