//! The command line as an operator uses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::process::{HubProcess, client};

fn muninn(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muninn"))
        .args(args)
        .env_remove("MUNINN_ADMIN_TOKEN")
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

#[test]
fn help_names_every_command() {
    let (ok, text) = muninn(&["--help"]);
    assert!(ok);
    for cmd in [
        "serve",
        "user",
        "token",
        "migrate",
        "config",
        "secrets",
        "systemd-unit",
    ] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}

#[test]
fn config_prints_the_documented_defaults() {
    let (ok, text) = muninn(&["config"]);
    assert!(ok);
    assert!(text.contains("bind = \"127.0.0.1:3000\""));
    assert!(text.contains("synchronous = \"full\""));
}

#[test]
fn a_bad_config_file_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("muninn.toml");
    std::fs::write(&file, "[server]\nbindd = \"x\"\n").unwrap();
    let (ok, text) = muninn(&["--config", file.to_str().unwrap(), "migrate"]);
    assert!(!ok);
    assert!(text.contains("bindd"), "{text}");
}

#[actix_rt::test]
async fn first_start_writes_a_private_admin_token_and_user_add_works_alongside() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path(), &[]);
    let token_file = dir.path().join("admin.token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let admin_token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();

    let c = client();
    let r = c
        .get(format!("{}/api/me", hub.base))
        .insert_header(("Authorization", format!("Bearer {admin_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // `user add` on the same database while the hub runs.
    let (ok, text) = muninn(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "user",
        "add",
        "carol",
    ]);
    assert!(ok, "{text}");
    let token = text.lines().last().unwrap().trim().to_string();
    let mut r = c
        .get(format!("{}/api/me", hub.base))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["name"], "carol");
    assert_eq!(me["is_admin"], false);

    let (ok, text) = muninn(&["--data-dir", dir.path().to_str().unwrap(), "user", "list"]);
    assert!(ok);
    assert!(text.contains("admin") && text.contains("carol"), "{text}");
    let (ok, text) = muninn(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "user",
        "add",
        "carol",
    ]);
    assert!(!ok, "a duplicate name is refused");
    assert!(text.contains("already exists"), "{text}");
}

#[actix_rt::test]
async fn import_and_export_talk_to_the_running_hub() {
    let dir = tempfile::tempdir().unwrap();
    // The scenario pages a local address: a single-host setup that allows it.
    let config = dir.path().join("muninn.toml");
    std::fs::write(&config, "[delivery]\nallow_private_targets = true\n").unwrap();
    let hub = HubProcess::start(dir.path(), &[("MUNINN_CONFIG", config.to_str().unwrap())]);
    let data_dir = dir.path().to_str().unwrap();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/scenarios/alerting_chain.json"
    );
    let (ok, text) = muninn(&["--data-dir", data_dir, "import", file, "--url", &hub.base]);
    assert!(ok, "{text}");
    assert!(
        text.contains("scenario 1 (Server alerts) created"),
        "{text}"
    );
    assert!(text.contains("Page the on-call"), "{text}");
    assert!(!text.contains("problem:"), "{text}");
    let (ok, text) = muninn(&["--data-dir", data_dir, "export", "1", "--url", &hub.base]);
    assert!(ok, "{text}");
    let exported: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(exported["guid"], "8a3e29b1c7d04f6a9b2e5d1c0f7a6b31");
    assert_eq!(exported["agents"].as_array().unwrap().len(), 4);
    let (ok, text) = muninn(&["--data-dir", data_dir, "export", "99", "--url", &hub.base]);
    assert!(!ok);
    assert!(
        text.contains("404") && text.contains("scenario 99 not found"),
        "{text}"
    );

    // A file that does not come over whole: every piece left out is on a line of its
    // own, and the exit status says so.
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/scenarios/incomplete.json"
    );
    let (ok, text) = muninn(&["--data-dir", data_dir, "import", file, "--url", &hub.base]);
    assert!(!ok, "{text}");
    assert!(!text.contains("null"), "{text}");
    for line in [
        "scenario 2 (Price watch) created",
        "  skipped  - Shop page (not created: unknown type Agents::TwitterStreamAgent (not available in muninn))",
        "agents: 5 created, 0 updated, 1 not created; links: 1 made, 3 not made; control links: 1 made, 2 not made",
        "  problem: link 'Shop page' -> 'Cheap enough' was not made: source 'Shop page' was not created: unknown type Agents::TwitterStreamAgent",
        "  problem: control link 'Business hours' -> 'Shop page' was not made: control target 'Shop page' was not created: unknown type Agents::TwitterStreamAgent",
        "the scenario did not come over whole",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

#[test]
fn systemd_unit_prints_a_verifiable_notify_service() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, text) = muninn(&[
        "systemd-unit",
        "--user",
        "muninn",
        "--data-dir",
        data.to_str().unwrap(),
        "--bin",
        env!("CARGO_BIN_EXE_muninn"),
    ]);
    assert!(ok, "{text}");
    for want in [
        "Type=notify\n".to_string(),
        format!(
            "ExecStart={} serve --data-dir {}\n",
            env!("CARGO_BIN_EXE_muninn"),
            data.display()
        ),
        format!("ReadWritePaths={}\n", data.display()),
        "User=muninn\n".into(),
        "WatchdogSec=30\n".into(),
        "Restart=on-failure\n".into(),
        "SystemCallFilter=@system-service\n".into(),
    ] {
        assert!(text.contains(&want), "unit lacks {want:?}:\n{text}");
    }
    // systemd's own checker, where the machine has it.
    let unit = dir.path().join("muninn.service");
    std::fs::write(&unit, &text).unwrap();
    match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "systemd-analyze verify failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("systemd-analyze not available ({e}); checked the text only"),
    }
}

/// The key lines of a key file (comments dropped).
fn key_lines(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("secret.key"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn file_has(dir: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let e = e.unwrap();
        e.file_name().to_string_lossy().starts_with("muninn.db")
            && std::fs::read(e.path())
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
    })
}

/// Posts event `n` through the webhook agent and checks the hex signature of the
/// delivery the sink got for it against `secret`.
async fn signed_delivery(
    hub: &HubProcess,
    agent: i64,
    sink: &common::sink::Sink,
    secret: &str,
    n: usize,
) {
    let url = format!("{}/users/1/web_requests/{agent}/s", hub.base);
    let r = client()
        .post(url)
        .send_json(&serde_json::json!({"n": n}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let got = sink
        .wait_until("the delivery of event n", |r| {
            r.iter().any(|d| d.json()["data"]["n"] == n)
        })
        .await;
    let d = got.iter().find(|d| d.json()["data"]["n"] == n).unwrap();
    use hmac::{KeyInit, Mac};
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(&d.body);
    assert_eq!(
        d.header("x-webhook-signature").unwrap(),
        hex::encode(m.finalize().into_bytes())
    );
}

/// Posts `{}` to an incoming webhook signed (X-Hub-Signature-256) with `secret`.
async fn post_signed(url: &str, secret: &str) -> u16 {
    use hmac::{KeyInit, Mac};
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(b"{}");
    let sig = format!("sha256={}", hex::encode(m.finalize().into_bytes()));
    client()
        .post(url)
        .insert_header(("content-type", "application/json"))
        .insert_header(("x-hub-signature-256", sig))
        .send_body("{}")
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_rt::test]
async fn rotate_key_re_encrypts_every_secret_and_a_lost_key_holds_deliveries() {
    use common::process::api;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    let config = dir.path().join("muninn.toml");
    std::fs::write(
        &config,
        "[delivery]\nallow_private_targets = true\npoll_interval_ms = 50\n",
    )
    .unwrap();
    let envs = [("MUNINN_CONFIG", config.to_str().unwrap())];
    let sink = common::sink::Sink::start();
    let mut hub = HubProcess::start(dir.path(), &envs);
    let token = std::fs::read_to_string(dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let (s, agent) = api(
        &hub.base,
        &token,
        "POST",
        "/api/agents",
        Some(serde_json::json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    assert_eq!(s, 201, "{agent}");
    let agent = agent["id"].as_i64().unwrap();
    let secret = "cli-sub-secret-3e8b";
    let (s, sub) = api(
        &hub.base,
        &token,
        "POST",
        "/api/webhooks/outgoing",
        Some(serde_json::json!({"url": sink.url, "event_types": ["event.created"], "secret": secret})),
    )
    .await;
    assert_eq!(s, 201, "{sub}");
    let sub = sub["id"].as_i64().unwrap();
    signed_delivery(&hub, agent, &sink, secret, 1).await;
    // An incoming webhook with a signature secret, sealed and rotated too.
    let (s, receiver) = api(
        &hub.base,
        &token,
        "POST",
        "/api/agents",
        Some(serde_json::json!({"type": "event_formatting", "name": "r",
                                "options": {"instructions": {"seen": "yes"}, "mode": "merge"}})),
    )
    .await;
    assert_eq!(s, 201, "{receiver}");
    let sig_secret = "cli-sig-secret-a4c2";
    let (s, incoming) = api(
        &hub.base,
        &token,
        "POST",
        "/api/webhooks/incoming",
        Some(serde_json::json!({"name": "gh", "agent_id": receiver["id"],
            "signature": {"scheme": "hmac-sha256", "secret": sig_secret, "header": "X-Hub-Signature-256"}})),
    )
    .await;
    assert_eq!(s, 201, "{incoming}");
    let hook = format!("/webhook/{}", incoming["token"].as_str().unwrap());
    let incoming_path = format!("/api/webhooks/incoming/{}", incoming["id"]);
    assert_eq!(
        post_signed(&format!("{}{hook}", hub.base), sig_secret).await,
        200
    );
    let before = key_lines(dir.path());
    assert_eq!(before.len(), 1);

    // Refused while the hub runs: it would keep sealing with the retired key.
    let (ok, text) = muninn(&["--data-dir", &data_dir, "secrets", "rotate-key"]);
    assert!(!ok, "{text}");
    assert!(text.contains("running"), "{text}");

    hub.signal("TERM");
    assert!(hub.wait_exit(std::time::Duration::from_secs(30)).success());
    let (ok, text) = muninn(&["--data-dir", &data_dir, "secrets", "rotate-key"]);
    assert!(ok, "{text}");
    assert!(text.contains("2 value(s) re-encrypted"), "{text}");
    let after = key_lines(dir.path());
    assert_eq!(after.len(), 1, "the old key is gone once all is re-sealed");
    assert_ne!(after, before);
    let mode = std::fs::metadata(dir.path().join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let new_id = text
        .split("rotated to ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap();
    assert!(file_has(dir.path(), &format!("enc:v1:{new_id}:")), "{text}");
    assert!(!file_has(dir.path(), secret));
    assert!(!file_has(dir.path(), sig_secret));

    // The rotated key signs and checks signatures as before.
    let mut hub = HubProcess::start(dir.path(), &envs);
    signed_delivery(&hub, agent, &sink, secret, 2).await;
    assert_eq!(
        post_signed(&format!("{}{hook}", hub.base), sig_secret).await,
        200
    );
    assert_eq!(
        post_signed(&format!("{}{hook}", hub.base), "wrong").await,
        401
    );
    hub.signal("TERM");
    assert!(hub.wait_exit(std::time::Duration::from_secs(30)).success());

    // A lost key: the webhook says why it cannot sign and holds its deliveries.
    let good = std::fs::read(dir.path().join("secret.key")).unwrap();
    std::fs::write(
        dir.path().join("secret.key"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .unwrap();
    let sent_before = sink.received().len();
    let mut hub = HubProcess::start(dir.path(), &envs);
    let path = format!("/api/webhooks/outgoing/{sub}");
    let (_, shown) = api(&hub.base, &token, "GET", &path, None).await;
    let why = shown["signing_error"].as_str().unwrap_or_default();
    assert!(why.contains("MUNINN_SECRET_KEY"), "{shown}");
    let (_, test) = api(&hub.base, &token, "POST", &format!("{path}/test"), None).await;
    assert_eq!(test["success"], false, "{test}");
    assert!(
        test["error"].as_str().unwrap().contains("cannot sign"),
        "{test}"
    );
    // The incoming webhook refuses every request rather than skip its check.
    assert_eq!(
        post_signed(&format!("{}{hook}", hub.base), sig_secret).await,
        503
    );
    let (_, shown) = api(&hub.base, &token, "GET", &incoming_path, None).await;
    assert!(
        shown["options_error"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{shown}"
    );
    let r = client()
        .post(format!("{}/users/1/web_requests/{agent}/s", hub.base))
        .send_json(&serde_json::json!({"n": 3}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    hub.signal("TERM");
    assert!(hub.wait_exit(std::time::Duration::from_secs(30)).success());
    assert_eq!(
        sink.received().len(),
        sent_before,
        "nothing was sent unsigned"
    );

    // The key restored, the held delivery goes, signed.
    std::fs::write(dir.path().join("secret.key"), good).unwrap();
    let _hub = HubProcess::start(dir.path(), &envs);
    let got = sink
        .wait_until("the held delivery", |r| {
            r.iter().any(|d| d.json()["data"]["n"] == 3)
        })
        .await;
    let d = got.iter().find(|d| d.json()["data"]["n"] == 3).unwrap();
    use hmac::{KeyInit, Mac};
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(&d.body);
    assert_eq!(
        d.header("x-webhook-signature").unwrap(),
        hex::encode(m.finalize().into_bytes())
    );
}
