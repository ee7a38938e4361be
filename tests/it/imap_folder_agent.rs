//! The imap_folder agent through the real server, against `FakeImap` — a scripted IMAP
//! server in tests/common/imap.rs, not a real one: the first run records where the
//! folder stands, the next emits each new mail once (Huginn's payload) and marks or
//! deletes it when asked; the target guard refuses the loopback server by default;
//! a wrong password and a TLS handshake with a plain server are logged as errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::imap::FakeImap;
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

const PLAIN: &str = "From: Nanashi Gombeh <nanashi.gombeh@example.jp>\r\nTo: Jane Doe <jane.doe@example.com>, John Doe <john.doe@example.com>\r\nSubject: some subject\r\nDate: Fri, 09 May 2014 16:00:00 +0900\r\nMessage-ID: <foo.123@mail.example.jp>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nSome plain text\r\n";

const ALERT: &str = "From: Monitor <monitor@example.com>\r\nTo: ops@example.com\r\nCc: Jane Doe <jane.doe@example.com>\r\nSubject: Alert: disk full on web-1\r\nDate: Sat, 10 May 2014 09:30:00 +0000\r\nMessage-ID: <alert.1@example.com>\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p>Disk full on web-1</p>\r\n";

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn logs(hub: &TestHub, id: i64) -> Vec<Value> {
    let r = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await;
    r.json().as_array().cloned().unwrap_or_default()
}

/// Runs the agent and waits for the end of its session (its `n`th "Connection closed").
async fn run(hub: &TestHub, id: i64, n: usize) -> Vec<Value> {
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let mut got = Vec::new();
    wait_for("the session's end", async || {
        got = logs(hub, id).await;
        got.iter()
            .filter(|l| l["message"] == "Connection closed")
            .count()
            >= n
    })
    .await;
    got
}

fn agent(fake: &FakeImap, extra: Value) -> Value {
    let mut options = json!({
        "host": "127.0.0.1", "port": fake.port, "ssl": false,
        "username": "jane", "password": "s3cret",
        "folders": ["INBOX"], "conditions": {}
    });
    for (k, v) in extra.as_object().unwrap() {
        options[k] = v.clone();
    }
    json!({"type": "Agents::ImapFolderAgent", "name": "mail", "options": options})
}

fn messages(logs: &[Value]) -> Vec<String> {
    logs.iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[actix_rt::test]
async fn new_mails_become_events_once_and_are_marked_read() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let fake = FakeImap::start("jane", "s3cret");
    let old = fake.deliver("INBOX", PLAIN, &[]);
    let a = hub
        .add_agent(ADMIN_TOKEN, agent(&fake, json!({"mark_as_read": true})))
        .await;
    assert_eq!(a["schedule"], "every_30m", "{a}");
    let id = a["id"].as_i64().unwrap();

    // The first visit records the folder's state and emits nothing.
    let l = messages(&run(&hub, id, 1).await);
    assert!(
        l.iter()
            .any(|m| m == "Recording the initial status: 1 existing mail"),
        "{l:?}"
    );
    let memory = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json()["memory"]
        .clone();
    assert_eq!(memory["lastseen"], json!({"100": old}));
    assert!(hub.payloads(ADMIN_TOKEN, id).await.is_empty());
    assert_eq!(
        fake.flags("INBOX", old),
        Some(vec![]),
        "an old mail is left alone"
    );

    let uid = fake.deliver("INBOX", ALERT, &[]);
    run(&hub, id, 2).await;
    let payloads = hub.payloads(ADMIN_TOKEN, id).await;
    assert_eq!(
        payloads,
        vec![json!({
            "message_id": "alert.1@example.com", "folder": "INBOX",
            "subject": "Alert: disk full on web-1", "from": "monitor@example.com",
            "to": ["ops@example.com"], "cc": ["jane.doe@example.com"],
            "date": "2014-05-10T09:30:00+00:00", "mime_type": "text/html",
            "body": "<p>Disk full on web-1</p>\r\n", "matches": {}, "has_attachment": false
        })]
    );
    assert_eq!(fake.flags("INBOX", uid), Some(vec!["\\Seen".to_string()]));
    assert!(
        fake.commands()
            .iter()
            .any(|c| c.ends_with(&format!("UID STORE {uid} +FLAGS (\\Seen)")))
    );

    // Nothing new: nothing emitted, the last UID remembered.
    run(&hub, id, 3).await;
    assert_eq!(hub.payloads(ADMIN_TOKEN, id).await.len(), 1);
    let memory = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json()["memory"]
        .clone();
    assert_eq!(memory["lastseen"], json!({"100": uid}));
    assert_eq!(memory["notified"], json!(["alert.1@example.com"]));
}

#[actix_rt::test]
async fn conditions_choose_the_mails_and_delete_removes_them() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let fake = FakeImap::start("jane", "s3cret");
    let id = hub
        .add_agent(ADMIN_TOKEN, agent(&fake, json!({
            "delete": true,
            "conditions": {"subject": "^Alert: (?<what>.+) on (?<host>\\S+)", "from": "*@example.com", "is_unread": true}
        })))
        .await["id"]
        .as_i64()
        .unwrap();
    run(&hub, id, 1).await;
    let plain = fake.deliver("INBOX", PLAIN, &[]);
    let read_alert = fake.deliver("INBOX", &ALERT.replace("alert.1", "alert.0"), &["\\Seen"]);
    let alert = fake.deliver("INBOX", ALERT, &[]);
    let l = messages(&run(&hub, id, 2).await);
    assert!(l.iter().any(|m| m == "2 new unread mails"), "{l:?}");
    let payloads = hub.payloads(ADMIN_TOKEN, id).await;
    assert_eq!(payloads.len(), 1, "{payloads:?}");
    assert_eq!(
        payloads[0]["matches"],
        json!({"what": "disk full", "host": "web-1"})
    );
    // Only the matched mail is deleted.
    assert_eq!(fake.uids("INBOX"), vec![plain, read_alert]);
    assert!(!fake.uids("INBOX").contains(&alert));
}

#[actix_rt::test]
async fn the_target_guard_refuses_a_loopback_server_by_default() {
    let hub = TestHub::start().await;
    let fake = FakeImap::start("jane", "s3cret");
    let id = hub.add_agent(ADMIN_TOKEN, agent(&fake, json!({}))).await["id"]
        .as_i64()
        .unwrap();
    let l = run(&hub, id, 1).await;
    let errors: Vec<&Value> = l
        .iter()
        .filter(|l| l["level"].as_i64() >= Some(4))
        .collect();
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("refused: target 127.0.0.1 resolves to 127.0.0.1 (loopback)")),
        "{l:?}"
    );
    assert_eq!(fake.connections(), 0, "the server was never reached");
}

#[actix_rt::test]
async fn a_wrong_password_and_a_failed_tls_handshake_are_errors() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let fake = FakeImap::start("jane", "s3cret");
    let id = hub
        .add_agent(ADMIN_TOKEN, agent(&fake, json!({"password": "wrong"})))
        .await["id"]
        .as_i64()
        .unwrap();
    let l = messages(&run(&hub, id, 1).await);
    assert!(
        l.iter()
            .any(|m| m.starts_with("The IMAP check failed: IMAP LOGIN failed")),
        "{l:?}"
    );
    assert!(
        fake.commands()
            .iter()
            .any(|c| c.ends_with("LOGIN jane ***"))
    );

    // `ssl: true` speaks TLS: against this plain server the handshake fails, loudly.
    let id = hub
        .add_agent(ADMIN_TOKEN, agent(&fake, json!({"ssl": true})))
        .await["id"]
        .as_i64()
        .unwrap();
    let l = messages(&run(&hub, id, 1).await);
    assert!(
        l.iter()
            .any(|m| m.contains(&format!("Connecting to 127.0.0.1:{} via SSL", fake.port))),
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|m| m.contains("The IMAP check failed:") && m.contains("TLS")),
        "{l:?}"
    );
}

#[actix_rt::test]
async fn options_are_validated_as_huginn_does() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json("/api/agents", ADMIN_TOKEN, &json!({"type": "imap_folder", "name": "x", "options": {"host": "h", "username": "u", "password": "p", "conditions": {"subject": "(foo"}}}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("conditions.subject"), "{}", r.text());
    assert!(
        r.text().contains("contains an invalid regexp"),
        "{}",
        r.text()
    );
}
