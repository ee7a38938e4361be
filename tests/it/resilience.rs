//! The hub keeps its data and cannot be crash-looped: a database deleted under it is
//! noticed (503, /healthz), a lost database is not silently replaced at the next start,
//! a stored row whose configuration cannot be loaded is disabled instead of stopping
//! the hub, `serve --safe` starts nothing but the API, and the files are private
//! whatever the umask.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::process::{HubProcess, api, client, serve_refused};
use common::{ADMIN_TOKEN, TestHub};
use diesel::{Connection, RunQueryDsl};
use serde_json::{Value, json};

const TOKEN: &str = "resilience-admin-token-0123456789";

async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api(base, TOKEN, method, path, body).await
}

/// POSTs `body` to a Huginn web-request URL; the status and body text.
async fn post_webhook(base: &str, agent: i64, body: &Value) -> (u16, String) {
    let mut resp = client()
        .post(format!("{base}/users/1/web_requests/{agent}/s"))
        .send_json(body)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&resp.body().await.unwrap()).to_string();
    (resp.status().as_u16(), text)
}

async fn add_webhook_agent(base: &str) -> i64 {
    let (status, agent) = call(
        base,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    agent["id"].as_i64().unwrap()
}

fn remove_database(dir: &Path) {
    for name in ["muninn.db", "muninn.db-wal", "muninn.db-shm"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Stops a hub cleanly (SIGTERM) so its database is complete on disk.
fn stop(mut hub: HubProcess) {
    hub.signal("TERM");
    assert!(hub.wait_exit(Duration::from_secs(30)).success());
}

#[actix_rt::test]
async fn deleting_the_database_while_running_fails_writes_and_healthz_with_the_reason() {
    let hub = TestHub::start().await;
    let agent = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let path = format!("/users/1/web_requests/{agent}/s");
    let before = hub
        .request("POST", &path, None, &[], Some(b"{\"n\":1}".to_vec()))
        .await;
    assert_eq!(before.status, 201, "{}", before.text());

    // On PostgreSQL the database is dropped under the hub instead (its sessions ended).
    let gone = match &hub.pg {
        Some(pg) => {
            let mut conn = diesel::PgConnection::establish(&pg.url("postgres")).unwrap();
            diesel::sql_query("DROP DATABASE hub WITH (FORCE)")
                .execute(&mut conn)
                .unwrap();
            "connection to the database was lost"
        }
        None => {
            remove_database(hub.dir.path());
            "was deleted"
        }
    };
    // The writer looks at the file at most every 10 ms (store::files::CHECK_EVERY).
    actix_rt::time::sleep(Duration::from_millis(50)).await;

    let after = hub
        .request("POST", &path, None, &[], Some(b"{\"n\":2}".to_vec()))
        .await;
    assert_eq!(after.status, 503, "{}", after.text());
    assert!(after.text().contains(gone), "{}", after.text());
    let health = hub.request("GET", "/healthz", None, &[], None).await;
    assert_eq!(health.status, 503, "{}", health.text());
    let body = health.json();
    assert_eq!(body["status"], "unavailable");
    // On PostgreSQL the read that /healthz makes first finds no database.
    let health_says = if hub.pg.is_some() {
        "does not answer"
    } else {
        gone
    };
    assert!(
        body["error"].as_str().unwrap().contains(health_says),
        "{body}"
    );
    // The API's writes are refused too, with the same reason.
    let created = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "webhook", "name": "late", "options": {"secret": "t"}}),
        )
        .await;
    assert_eq!(created.status, 503, "{}", created.text());
    let message = created.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    // On PostgreSQL the write's first read may be the one that finds no database: the
    // read pool then answers that it cannot get a connection (after 5 s).
    let pg_read = hub.pg.is_some() && message.contains("could not get a database connection");
    assert!(message.contains(gone) || pg_read, "{message}");
}

#[actix_rt::test]
async fn a_lost_database_is_not_replaced_by_an_empty_one_without_init() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("MUNINN_ADMIN_TOKEN", TOKEN)];
    let hub = HubProcess::start(dir.path(), &envs);
    add_webhook_agent(&hub.base).await;
    stop(hub);
    assert!(dir.path().join("muninn.initialized").exists());

    remove_database(dir.path());
    let (status, stderr) = serve_refused(dir.path(), &[], Duration::from_secs(30));
    assert!(!status.success());
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains("muninn serve --init"), "{stderr}");
    assert!(
        !dir.path().join("muninn.db").exists()
            || std::fs::metadata(dir.path().join("muninn.db"))
                .unwrap()
                .len()
                == 0,
        "a refused start leaves no new database behind"
    );

    // --init starts anew, with an empty database.
    let hub = HubProcess::start_args(dir.path(), &["--init"], &envs);
    let (status, agents) = call(&hub.base, "GET", "/api/agents", None).await;
    assert_eq!(status, 200);
    assert_eq!(agents.as_array().unwrap().len(), 0, "{agents}");
    stop(hub);
    // And the next start needs no flag.
    let hub = HubProcess::start(dir.path(), &envs);
    let (status, _) = call(&hub.base, "GET", "/api/agents", None).await;
    assert_eq!(status, 200);
}

/// Writes `sql` to the stopped hub's database.
fn corrupt(dir: &Path, sql: &str) {
    let path = dir.join("muninn.db");
    let mut conn = diesel::sqlite::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let changed = diesel::sql_query(sql).execute(&mut conn).unwrap();
    assert_eq!(changed, 1, "{sql}");
}

#[actix_rt::test]
async fn rows_that_cannot_be_loaded_are_disabled_at_start_and_the_hub_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("MUNINN_ADMIN_TOKEN", TOKEN)];
    let hub = HubProcess::start(dir.path(), &envs);
    let broken = add_webhook_agent(&hub.base).await;
    let healthy = add_webhook_agent(&hub.base).await;
    let (status, sub) = call(
        &hub.base,
        "POST",
        "/api/webhooks/outgoing",
        Some(json!({"url": "https://example.com/hook", "event_types": ["event.created"]})),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    let sub = sub["id"].as_i64().unwrap();
    let (status, receiver) = call(
        &hub.base,
        "POST",
        "/api/agents",
        Some(json!({"type": "event_formatting", "name": "fmt",
                    "options": {"instructions": {"got": "{{ n }}"}}})),
    )
    .await;
    assert_eq!(status, 201, "{receiver}");
    let receiver = receiver["id"].as_i64().unwrap();
    let (status, incoming) = call(
        &hub.base,
        "POST",
        "/api/webhooks/incoming",
        Some(json!({"name": "in", "agent_id": receiver})),
    )
    .await;
    assert_eq!(status, 201, "{incoming}");
    let incoming = incoming["id"].as_i64().unwrap();
    stop(hub);
    corrupt(
        dir.path(),
        &format!("UPDATE agents SET options = '{{not json' WHERE id = {broken}"),
    );
    corrupt(
        dir.path(),
        &format!("UPDATE subscriptions SET headers = 'not json' WHERE id = {sub}"),
    );
    corrupt(
        dir.path(),
        &format!("UPDATE incoming_webhooks SET allowed_ips = '[not json' WHERE id = {incoming}"),
    );

    let hub = HubProcess::start(dir.path(), &envs);
    let (status, agent) = call(&hub.base, "GET", &format!("/api/agents/{broken}"), None).await;
    assert_eq!(status, 200, "{agent}");
    assert_eq!(agent["disabled"], true, "{agent}");
    let (_, logs) = call(
        &hub.base,
        "GET",
        &format!("/api/agents/{broken}/logs"),
        None,
    )
    .await;
    assert!(
        logs.to_string().contains("Disabled at start"),
        "the reason is in the agent's log: {logs}"
    );
    let (status, events) = call(&hub.base, "GET", "/api/events?limit=100", None).await;
    assert_eq!(status, 200);
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert!(types.contains(&"agent.disabled"), "{types:?}");
    assert!(types.contains(&"subscription.disabled"), "{types:?}");
    let (_, s) = call(
        &hub.base,
        "GET",
        &format!("/api/webhooks/outgoing/{sub}"),
        None,
    )
    .await;
    assert_eq!(s["is_active"], false, "{s}");
    assert!(
        s["disabled_reason"].as_str().unwrap().contains("headers"),
        "{s}"
    );
    let (_, w) = call(
        &hub.base,
        "GET",
        &format!("/api/webhooks/incoming/{incoming}"),
        None,
    )
    .await;
    assert_eq!(w["is_active"], false, "{w}");
    let (_, logs) = call(
        &hub.base,
        "GET",
        &format!("/api/agents/{receiver}/logs"),
        None,
    )
    .await;
    assert!(
        logs.to_string().contains("deactivated at start"),
        "the reason is in its agent's log: {logs}"
    );
    // The healthy agent runs.
    let (status, _) = post_webhook(&hub.base, healthy, &json!({"ok": true})).await;
    assert_eq!(status, 201);
    // The broken one can be fixed through the API.
    let (status, fixed) = call(
        &hub.base,
        "PUT",
        &format!("/api/agents/{broken}"),
        Some(json!({"options": {"secret": "s"}, "disabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{fixed}");
    let (status, body) = post_webhook(&hub.base, broken, &json!({"fixed": true})).await;
    assert_eq!(status, 201, "{body}");
}

#[actix_rt::test]
async fn safe_mode_serves_the_api_and_starts_no_agents() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("MUNINN_ADMIN_TOKEN", TOKEN)];
    let hub = HubProcess::start(dir.path(), &envs);
    let agent = add_webhook_agent(&hub.base).await;
    let (status, _) = post_webhook(&hub.base, agent, &json!({"n": 1})).await;
    assert_eq!(status, 201);
    stop(hub);

    let hub = HubProcess::start_args(dir.path(), &["--safe"], &envs);
    let mut resp = client()
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let health: Value = serde_json::from_slice(&resp.body().await.unwrap()).unwrap();
    assert_eq!(health["mode"], "safe", "{health}");
    // The agent is stored but not running: its URL takes nothing.
    let (status, body) = post_webhook(&hub.base, agent, &json!({"n": 2})).await;
    assert_ne!(status, 201, "{body}");
    let (status, events) = call(
        &hub.base,
        "GET",
        &format!("/api/agents/{agent}/events"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    // The API can delete the culprit.
    let (status, _) = call(&hub.base, "DELETE", &format!("/api/agents/{agent}"), None).await;
    assert!(status == 200 || status == 204, "{status}");
    let (status, _) = call(&hub.base, "GET", &format!("/api/agents/{agent}"), None).await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn files_are_private_whatever_the_umask() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let hub = HubProcess::start_with_umask(&dir, "022", &[]);
    let agent = add_webhook_agent_with_file_token(&hub, &dir).await;
    let (status, _) = post_webhook(&hub.base, agent, &json!({"n": 1})).await;
    assert_eq!(status, 201);
    assert_eq!(mode(&dir), 0o700, "data directory");
    for name in [
        "muninn.db",
        "muninn.db-wal",
        "muninn.db-shm",
        "admin.token",
        "muninn.initialized",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    stop(hub);

    // An existing directory that others may read is tightened at start.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.join("muninn.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let hub = HubProcess::start_with_umask(&dir, "022", &[]);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("muninn.db")), 0o600);
    stop(hub);
}

/// Creates a webhook agent with the admin token the hub wrote to `admin.token`.
async fn add_webhook_agent_with_file_token(hub: &HubProcess, dir: &Path) -> i64 {
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let (status, agent) = api(
        &hub.base,
        token.trim(),
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    agent["id"].as_i64().unwrap()
}

/// An agent whose writes fail restarts from its stored state after a growing wait and
/// says so once, instead of restarting at once and logging every failure.
#[actix_rt::test]
async fn an_agent_whose_writes_fail_backs_off_and_logs_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path(), &[("MUNINN_ADMIN_TOKEN", TOKEN)]);
    let hook = add_webhook_agent(&hub.base).await;
    // Not pushed its events: they wait for it in the database.
    let (status, lazy) = call(
        &hub.base,
        "POST",
        "/api/agents",
        Some(
            json!({"type": "event_formatting", "name": "lazy", "source_ids": [hook],
                    "propagate_immediately": false,
                    "options": {"instructions": {"got": "{{ n }}"}}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{lazy}");
    let lazy = lazy["id"].as_i64().unwrap();
    let (status, _) = post_webhook(&hub.base, hook, &json!({"n": 1})).await;
    assert_eq!(status, 201);

    remove_database(dir.path());
    // The writer looks at the file at most every 10 ms (store::files::CHECK_EVERY).
    actix_rt::time::sleep(Duration::from_millis(50)).await;
    // Running it fails its write; each restart reads the waiting event and fails again.
    let (status, body) = call(&hub.base, "POST", &format!("/api/agents/{lazy}/run"), None).await;
    assert!(status < 300, "{status} {body}");
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let failures: Vec<String> = hub
        .log_messages()
        .into_iter()
        .filter(|m| m.starts_with("agent write failed") || m.contains("restarting the agent"))
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "one line when the failures begin: {failures:?}"
    );
}

#[actix_rt::test]
async fn a_secrets_column_that_cannot_sign_disables_the_webhook_at_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("MUNINN_ADMIN_TOKEN", TOKEN)];
    let hub = HubProcess::start(dir.path(), &envs);
    let (status, sub) = call(
        &hub.base,
        "POST",
        "/api/webhooks/outgoing",
        Some(
            json!({"url": "https://example.com/hook", "event_types": ["event.created"],
                    "signature_scheme": "standard"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    let sub = sub["id"].as_i64().unwrap();
    stop(hub);
    // No secret at all under a scheme that always signs: sending would go unsigned.
    corrupt(
        dir.path(),
        &format!("UPDATE subscriptions SET secrets = '[]' WHERE id = {sub}"),
    );

    let hub = HubProcess::start(dir.path(), &envs);
    let (_, s) = call(
        &hub.base,
        "GET",
        &format!("/api/webhooks/outgoing/{sub}"),
        None,
    )
    .await;
    assert_eq!(s["is_active"], false, "{s}");
    let reason = s["disabled_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("secrets") && reason.contains("rotate-secret"),
        "{s}"
    );
    let (_, events) = call(
        &hub.base,
        "GET",
        "/api/events?type=subscription.disabled",
        None,
    )
    .await;
    assert!(
        events.to_string().contains("secrets"),
        "the reason is in the subscription.disabled event: {events}"
    );
    // Rotating sets a secret that signs; enabling it again sends again.
    let (status, rotated) = call(
        &hub.base,
        "POST",
        &format!("/api/webhooks/outgoing/{sub}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, s) = call(
        &hub.base,
        "PATCH",
        &format!("/api/webhooks/outgoing/{sub}"),
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["is_active"], true, "{s}");
    stop(hub);
}
