//! The command line as an operator uses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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
    let hub = HubProcess::start(dir.path(), &[]);
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
