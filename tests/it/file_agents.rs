//! `local_file` and `read_file` end to end, confined to `[files] allowed_dirs`: a
//! write agent writes each received event to a file and emits its pointer, a
//! read_file agent reads it back; a read agent lists a directory when run; paths
//! outside the allowed directories (literal, through `..` or a symbolic link) are
//! refused at save or at the access, with the setting named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

async fn hub_allowing(dir: &Path) -> TestHub {
    let dir = dir.to_path_buf();
    TestHub::start_with(move |c| c.files.allowed_dirs = vec![dir]).await
}

async fn id_of(hub: &TestHub, body: Value) -> i64 {
    hub.add_agent(ADMIN_TOKEN, body).await["id"]
        .as_i64()
        .unwrap()
}

async fn send(hub: &TestHub, manual: i64, payload: Value) {
    let r = hub
        .post_json(
            &format!("/api/agents/{manual}/events"),
            ADMIN_TOKEN,
            &payload,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Waits (bounded) until the agent's log has a message containing `needle`.
async fn wait_log(hub: &TestHub, agent: i64, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = hub
            .get(&format!("/api/agents/{agent}/logs"), ADMIN_TOKEN)
            .await
            .json();
        let found = logs
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l["message"].as_str().unwrap_or("").contains(needle));
        if found || Instant::now() > deadline {
            return found;
        }
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
}

#[actix_rt::test]
async fn written_files_are_read_back_through_their_pointers() {
    let allowed = tempfile::tempdir().unwrap();
    let dir = allowed.path().display().to_string();
    let hub = hub_allowing(allowed.path()).await;
    let manual = id_of(&hub, json!({"type": "manual_event", "name": "m"})).await;
    let writer = id_of(
        &hub,
        json!({"type": "Agents::LocalFileAgent", "name": "w", "source_ids": [manual],
               "options": {"mode": "write", "watch": "false", "append": "false",
                           "path": format!("{dir}/{{{{ n }}}}.json"), "data": "{{ toot | json }}"}}),
    )
    .await;
    let appender = id_of(
        &hub,
        json!({"type": "local_file", "name": "log", "source_ids": [manual],
               "options": {"mode": "write", "watch": "false", "append": "true",
                           "path": format!("{dir}/log.txt"), "data": "{{ n }};"}}),
    )
    .await;
    let reader = id_of(
        &hub,
        json!({"type": "read_file", "name": "r", "source_ids": [writer],
               "options": {"data_key": "contents"}}),
    )
    .await;
    send(
        &hub,
        manual,
        json!({"n": 1, "toot": {"text": "hi"}, "more": "false"}),
    )
    .await;
    let file = format!("{dir}/1.json");
    let pointers = vec![json!({"file_pointer": {"file": file, "agent_id": writer}})];
    let got = hub.wait_payloads(ADMIN_TOKEN, writer, &pointers).await;
    assert_eq!(got, pointers);
    let read = vec![json!({"contents": "{\"text\":\"hi\"}"})];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, reader, &read).await, read);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"text\":\"hi\"}");

    // A rendered path that leaves the allowed directory is refused at the write.
    send(
        &hub,
        manual,
        json!({"n": "../escape", "toot": "x", "more": "false"}),
    )
    .await;
    assert!(wait_log(&hub, writer, "contains '..'").await);
    // append: true adds each event's data to the file.
    let log = format!("{dir}/log.txt");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.payloads(ADMIN_TOKEN, appender).await.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the appender did not write twice"
        );
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "1;../escape;");
    assert!(
        !allowed
            .path()
            .parent()
            .unwrap()
            .join("escape.json")
            .exists()
    );
}

#[actix_rt::test]
async fn a_read_agent_emits_a_pointer_per_file_when_run() {
    let allowed = tempfile::tempdir().unwrap();
    std::fs::write(allowed.path().join("one"), "1").unwrap();
    std::fs::write(allowed.path().join("two"), "2").unwrap();
    std::fs::create_dir(allowed.path().join("sub")).unwrap();
    let hub = hub_allowing(allowed.path()).await;
    let dir = allowed.path().display().to_string();
    let agent = id_of(
        &hub,
        json!({"type": "local_file", "name": "ls",
               "options": {"mode": "read", "watch": "false", "append": "false", "path": dir}}),
    )
    .await;
    let r = hub
        .request(
            "POST",
            &format!("/api/agents/{agent}/run"),
            Some(ADMIN_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < 2 && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(25)).await;
        got = hub.payloads(ADMIN_TOKEN, agent).await;
    }
    let mut files: Vec<String> = got
        .iter()
        .map(|p| p["file_pointer"]["file"].as_str().unwrap().to_string())
        .collect();
    files.sort();
    assert_eq!(files, vec![format!("{dir}/one"), format!("{dir}/two")]);
    assert!(got.iter().all(|p| p["file_pointer"]["agent_id"] == agent));
}

#[actix_rt::test]
async fn paths_outside_the_allowed_dirs_are_refused() {
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
    std::os::unix::fs::symlink(outside.path(), allowed.path().join("link")).unwrap();
    let hub = hub_allowing(allowed.path()).await;

    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "local_file", "name": "x", "options": {"mode": "read",
                    "watch": "false", "append": "false",
                    "path": outside.path().join("secret").display().to_string()}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("MUNINN_FILES_ALLOWED_DIRS"),
        "{}",
        r.text()
    );

    // A pointer through a link that leads outside is not read.
    let manual = id_of(&hub, json!({"type": "manual_event", "name": "m"})).await;
    let reader = id_of(
        &hub,
        json!({"type": "read_file", "name": "r", "source_ids": [manual],
               "options": {"data_key": "data"}}),
    )
    .await;
    let through = allowed.path().join("link").join("secret");
    send(
        &hub,
        manual,
        json!({"file_pointer": {"file": through.display().to_string(), "agent_id": manual}}),
    )
    .await;
    assert!(wait_log(&hub, reader, "outside the directories the operator allows").await);
    assert!(hub.payloads(ADMIN_TOKEN, reader).await.is_empty());
}

#[actix_rt::test]
async fn with_no_allowed_dir_file_agents_are_refused() {
    let hub = TestHub::start().await;
    for body in [
        json!({"type": "local_file", "name": "x", "options": {"mode": "write",
               "watch": "false", "append": "false", "path": "/tmp/x"}}),
        json!({"type": "read_file", "name": "y", "options": {"data_key": "data"}}),
    ] {
        let r = hub.post_json("/api/agents", ADMIN_TOKEN, &body).await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(r.text().contains("allows no directory"), "{}", r.text());
        assert!(r.text().contains("[files] allowed_dirs"), "{}", r.text());
    }
}
