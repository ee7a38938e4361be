//! API token lifecycle: list (never the secret), create with a name and a scope, the
//! scopes enforced, last use recorded, rotate, revoke; and `muninn token ...`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{HubProcess, client};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

async fn create(hub: &TestHub, with: &str, name: &str, scope: &str) -> (i64, String) {
    let r = hub
        .post_json("/api/tokens", with, &json!({"name": name, "scope": scope}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    assert_eq!(j["name"], name);
    assert_eq!(j["scope"], scope);
    assert!(
        j["last_used_at"].is_null() && j["revoked_at"].is_null(),
        "{j}"
    );
    (
        j["id"].as_i64().unwrap(),
        j["token"].as_str().unwrap().to_string(),
    )
}

async fn listed(hub: &TestHub, with: &str) -> Vec<Value> {
    let r = hub.get("/api/tokens", with).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json().as_array().unwrap().clone();
    for t in &list {
        assert!(
            t.get("token").is_none() && t.get("token_hash").is_none(),
            "{t}"
        );
    }
    list
}

#[actix_rt::test]
async fn tokens_are_listed_created_scoped_rotated_and_revoked() {
    let hub = TestHub::start().await;
    let first = listed(&hub, ADMIN_TOKEN).await;
    assert_eq!(first.len(), 1, "the first admin token: {first:?}");
    assert_eq!(
        first[0]["scope"], "admin",
        "tokens made before keep their power"
    );

    // A read token reads, and gets 403 for anything else.
    let (read_id, read) = create(&hub, ADMIN_TOKEN, "console", "read").await;
    assert_eq!(hub.get("/api/agents", &read).await.status, 200);
    let r = hub
        .post_json(
            "/api/agents",
            &read,
            &json!({"type": "webhook", "name": "x", "options": {"secret": "s"}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("read-only"), "{}", r.text());
    assert_eq!(
        hub.delete(&format!("/api/tokens/{read_id}"), &read)
            .await
            .status,
        403
    );
    let r = hub
        .post_json("/api/tokens", &read, &json!({"name": "more"}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(hub.get("/api/users", &read).await.status, 403, "not admin");

    // A full token writes, but has no admin powers and cannot widen its scope.
    let (_, full) = create(&hub, ADMIN_TOKEN, "ci", "full").await;
    assert_eq!(hub.get("/api/users", &full).await.status, 403);
    let r = hub
        .post_json(
            "/api/tokens",
            &full,
            &json!({"name": "up", "scope": "admin"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    create(&hub, &full, "down", "read").await;
    let r = hub
        .post_json(
            "/api/tokens",
            ADMIN_TOKEN,
            &json!({"name": "x", "scope": "root"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = hub
        .post_json("/api/tokens", ADMIN_TOKEN, &json!({"scope": "read"}))
        .await;
    assert!(
        (400..500).contains(&r.status),
        "a token needs a name: {}",
        r.text()
    );

    // Use is recorded (the write is queued, so wait for it).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = listed(&hub, ADMIN_TOKEN).await;
        let t = list.iter().find(|t| t["id"] == read_id).unwrap();
        if t["last_used_at"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at never set: {t}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }

    // Rotate: same id, name and scope, a new secret; the old one stops at once.
    let r = hub
        .post_json(
            &format!("/api/tokens/{read_id}/rotate"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(
        (j["id"].as_i64(), j["scope"].as_str()),
        (Some(read_id), Some("read"))
    );
    let rotated = j["token"].as_str().unwrap().to_string();
    assert_ne!(rotated, read);
    assert_eq!(hub.get("/api/me", &read).await.status, 401);
    assert_eq!(hub.get("/api/me", &rotated).await.status, 200);

    // Another user sees only their own tokens and cannot touch the admin's.
    let (_, carol) = hub.add_user("carol").await;
    let mine = listed(&hub, &carol).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        hub.delete(&format!("/api/tokens/{read_id}"), &carol)
            .await
            .status,
        404
    );
    assert_eq!(
        listed(&hub, ADMIN_TOKEN).await.len(),
        5,
        "every user's for the admin"
    );

    // Revoke: 204, then 401 for the token, the row says when, a second revoke is 404.
    let r = hub
        .delete(&format!("/api/tokens/{read_id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(hub.get("/api/me", &rotated).await.status, 401);
    let list = listed(&hub, ADMIN_TOKEN).await;
    let t = list.iter().find(|t| t["id"] == read_id).unwrap();
    assert!(t["revoked_at"].is_string(), "{t}");
    assert_eq!(
        hub.delete(&format!("/api/tokens/{read_id}"), ADMIN_TOKEN)
            .await
            .status,
        404
    );
}

fn muninn(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_muninn"))
        .arg("--data-dir")
        .arg(dir)
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

#[actix_rt::test]
async fn the_token_commands_create_list_rotate_and_revoke_alongside_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path(), &[]);
    let (ok, text) = muninn(dir.path(), &["user", "add", "dave"]);
    assert!(ok, "{text}");
    let (ok, text) = muninn(
        dir.path(),
        &[
            "token", "create", "--user", "dave", "--name", "ci", "--scope", "read",
        ],
    );
    assert!(ok, "{text}");
    let token = text.lines().last().unwrap().trim().to_string();
    let id: i64 = text
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no id in {text}"));

    let c = client();
    let get = |t: String| {
        let c = c.clone();
        let url = format!("{}/api/me", hub.base);
        async move {
            c.get(url)
                .insert_header(("Authorization", format!("Bearer {t}")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(token.clone()).await, 200);
    let r = c
        .post(format!("{}/api/tokens", hub.base))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(&json!({"name": "x"}))
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "the CLI's read token is read-only"
    );

    let (ok, text) = muninn(dir.path(), &["token", "list", "--user", "dave"]);
    assert!(ok, "{text}");
    assert!(text.contains("ci") && text.contains("read"), "{text}");
    assert!(!text.contains(&token), "the list never shows a secret");

    // Rotate: a new secret for the same token; the old one stops at once.
    let (ok, text) = muninn(dir.path(), &["token", "rotate", &id.to_string()]);
    assert!(ok, "{text}");
    let rotated = text.lines().last().unwrap().trim().to_string();
    assert_ne!(rotated, token);
    assert_eq!(get(token.clone()).await, 401);
    assert_eq!(get(rotated.clone()).await, 200);
    let (ok, text) = muninn(dir.path(), &["token", "list", "--user", "dave"]);
    assert!(ok && !text.contains(&rotated), "{text}");
    let (ok, text) = muninn(dir.path(), &["token", "rotate", "999"]);
    assert!(!ok && text.contains("no live token"), "{text}");

    let (ok, text) = muninn(dir.path(), &["token", "revoke", &id.to_string()]);
    assert!(ok, "{text}");
    assert_eq!(get(rotated).await, 401);
    let (ok, text) = muninn(dir.path(), &["token", "revoke", &id.to_string()]);
    assert!(!ok && text.contains("no live token"), "{text}");
    let (ok, text) = muninn(
        dir.path(),
        &["token", "create", "--user", "nobody", "--name", "x"],
    );
    assert!(!ok && text.contains("no user named"), "{text}");
}
