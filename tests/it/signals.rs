//! What operators read in the real binary's JSON log: the WARN lines they alert on (a
//! circuit opening and closing, a delivery going dead, an endpoint starting and
//! stopping to answer 429) and the opt-in access log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::process::{HubProcess, client};
use common::sink::{Reply, Sink};
use serde_json::{Value, json};

const TOKEN: &str = "signals-test-token-0123456789abcdef";

/// A hub that may deliver to 127.0.0.1 and polls for retries often.
fn hub(dir: &std::path::Path) -> HubProcess {
    hub_with(dir, "")
}

/// Like [`hub`], with more `[server]` keys.
fn hub_with(dir: &std::path::Path, server: &str) -> HubProcess {
    let config = dir.join("muninn.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\n{server}\n[delivery]\nallow_private_targets = true\npoll_interval_ms = 50\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    HubProcess::start_args(
        &dir.join("data"),
        &["--config", &config],
        &[("MUNINN_ADMIN_TOKEN", TOKEN)],
    )
}

async fn post(hub: &HubProcess, path: &str, body: Value) -> (u16, Value) {
    let mut r = client()
        .post(format!("{}{path}", hub.base))
        .insert_header(("Authorization", format!("Bearer {TOKEN}")))
        .send_json(&body)
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn webhook_agent(hub: &HubProcess, options: Value) -> i64 {
    let (status, agent) = post(
        hub,
        "/api/agents",
        json!({"type": "webhook", "name": "in", "options": options}),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    agent["id"].as_i64().unwrap()
}

#[actix_rt::test]
async fn a_dead_delivery_and_an_opened_circuit_are_logged_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path());
    let sink = Sink::start();
    sink.set_default(Reply::status(500));
    let agent = webhook_agent(&hub, json!({"secret": "s"})).await;
    let target = format!("{}/PATH-SECRET?token=Q-SECRET", sink.url);
    let (status, sub) = post(
        &hub,
        "/api/webhooks/outgoing",
        json!({"url": target, "event_types": ["event.created"], "retry_count": 0,
               "failure_threshold": 1, "circuit_cooldown": 60}),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    let sub = sub["id"].as_i64().unwrap();
    let (status, _) = post(
        &hub,
        &format!("/users/1/web_requests/{agent}/s"),
        json!({"n": 1}),
    )
    .await;
    assert_eq!(status, 201);

    let opened = hub.wait_signal("circuit_opened");
    assert_eq!(opened["level"], "WARN", "{opened}");
    assert_eq!(opened["fields"]["subscription_id"], sub, "{opened}");
    assert_eq!(opened["fields"]["consecutive_failures"], 1, "{opened}");
    let host = sink
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    assert_eq!(opened["fields"]["target_host"], host, "{opened}");

    let dead = hub.wait_signal("delivery_dead");
    assert_eq!(dead["level"], "WARN", "{dead}");
    assert_eq!(dead["fields"]["subscription_id"], sub, "{dead}");
    assert_eq!(dead["fields"]["attempts"], 1, "{dead}");
    assert_eq!(dead["fields"]["last_status"], 500, "{dead}");
    assert!(dead["fields"]["delivery_id"].as_i64().is_some(), "{dead}");

    // Closing the circuit (here by hand; a probe's success takes the same path) is
    // logged as well, with the same fields.
    let (status, body) = post(
        &hub,
        &format!("/api/webhooks/outgoing/{sub}/reset-circuit"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let closed = hub.wait_signal("circuit_closed");
    assert_eq!(closed["level"], "WARN", "{closed}");
    assert_eq!(closed["fields"]["subscription_id"], sub, "{closed}");
    assert_eq!(closed["fields"]["target_host"], host, "{closed}");
    for line in hub.log_json() {
        let text = line.to_string();
        assert!(
            !text.contains("PATH-SECRET") && !text.contains("Q-SECRET"),
            "a target secret in the log: {text}"
        );
    }
    hub.kill();
}

#[actix_rt::test]
async fn an_endpoint_starting_to_answer_429_is_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path());
    let agent = webhook_agent(&hub, json!({"secret": "s", "rate_limit": 1})).await;
    let path = format!("/users/1/web_requests/{agent}/s");
    let (first, _) = post(&hub, &path, json!({"n": 1})).await;
    assert_eq!(first, 201);
    for n in 2..5 {
        let (status, _) = post(&hub, &path, json!({"n": n})).await;
        assert_eq!(status, 429);
    }
    let started = hub.wait_signal("rate_limit_started");
    assert_eq!(started["level"], "WARN", "{started}");
    assert_eq!(
        started["fields"]["endpoint"],
        format!("agent {agent}"),
        "{started}"
    );
    assert_eq!(started["fields"]["per_minute"], 1, "{started}");
    let count = hub
        .log_json()
        .iter()
        .filter(|v| v["fields"]["signal"] == "rate_limit_started")
        .count();
    assert_eq!(count, 1, "three refusals in a row log one line");
    hub.kill();
}

#[actix_rt::test]
async fn an_endpoint_that_stops_answering_429_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path());
    // 60 a minute: the bucket holds 60 and one comes back every second.
    let agent = webhook_agent(&hub, json!({"secret": "s", "rate_limit": 60})).await;
    let path = format!("/users/1/web_requests/{agent}/s");
    let mut sent = 0;
    loop {
        let (status, _) = post(&hub, &path, json!({"n": sent})).await;
        sent += 1;
        if status == 429 {
            break;
        }
        assert_eq!(status, 201);
        assert!(sent < 1_000, "never limited");
    }
    hub.wait_signal("rate_limit_started");
    // The first request the refilled bucket takes ends the limited stretch.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (status, _) = post(&hub, &path, json!({"n": sent})).await;
        sent += 1;
        if status == 201 {
            break;
        }
        assert_eq!(status, 429);
        assert!(std::time::Instant::now() < deadline, "never accepted again");
        actix_rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let stopped = hub.wait_signal("rate_limit_stopped");
    assert_eq!(stopped["level"], "WARN", "{stopped}");
    assert_eq!(
        stopped["fields"]["endpoint"],
        format!("agent {agent}"),
        "{stopped}"
    );
    assert_eq!(stopped["fields"]["per_minute"], 60, "{stopped}");
    hub.kill();
}

/// Sends one web request with its secret in the path and a token in the query, then
/// waits for the request that follows it to be answered (so its line, if any, is out).
async fn secret_request(hub: &HubProcess) -> i64 {
    let agent = webhook_agent(hub, json!({"secret": "PATHSECRET"})).await;
    let (status, _) = post(
        hub,
        &format!("/users/1/web_requests/{agent}/PATHSECRET?token=QUERYSECRET"),
        json!({"n": 1}),
    )
    .await;
    assert_eq!(status, 201);
    let r = client()
        .get(format!("{}/healthz", hub.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    agent
}

fn access_lines(hub: &HubProcess) -> Vec<Value> {
    hub.log_json()
        .into_iter()
        .filter(|v| v["fields"]["message"] == "access")
        .collect()
}

#[actix_rt::test]
async fn the_access_log_when_on_logs_each_request_with_its_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with(dir.path(), "access_log = true");
    let agent = secret_request(&hub).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        if let Some(l) = access_lines(&hub).into_iter().find(|v| {
            v["fields"]["path"]
                .as_str()
                .is_some_and(|p| p.contains("web_requests"))
        }) {
            break l;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access line: {:?}",
            hub.log_messages()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(line["level"], "INFO", "{line}");
    let f = &line["fields"];
    assert_eq!(f["method"], "POST", "{line}");
    assert_eq!(
        f["path"],
        format!("/users/1/web_requests/{agent}/***?token=***"),
        "{line}"
    );
    assert_eq!(f["status"], 201, "{line}");
    assert_eq!(f["peer"], "127.0.0.1", "{line}");
    assert!(f["duration_ms"].as_u64().is_some(), "{line}");
    assert!(f["bytes"].as_u64().is_some(), "{line}");
    for l in hub.log_json() {
        let text = l.to_string();
        assert!(
            !text.contains("PATHSECRET") && !text.contains("QUERYSECRET"),
            "a secret in the log: {text}"
        );
    }
    hub.kill();
}

#[actix_rt::test]
async fn the_access_log_is_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path());
    secret_request(&hub).await;
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(access_lines(&hub), Vec::<Value>::new());
    hub.kill();
}

#[actix_rt::test]
async fn config_keys_are_set_through_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(dir.path(), &[("MUNINN_SERVER_ACCESS_LOG", "true")]);
    let r = client()
        .get(format!("{}/healthz?probe=x", hub.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !access_lines(&hub)
        .iter()
        .any(|l| l["fields"]["path"] == "/healthz?probe=***")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "MUNINN_SERVER_ACCESS_LOG=true did not turn the access log on: {:?}",
            hub.log_messages()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    hub.kill();

    let mut cmd = common::process::serve_command(&dir.path().join("other"), &[], None);
    let mut child = cmd
        .env("MUNINN_DELIVERY_WINDOW", "lots")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("muninn started with MUNINN_DELIVERY_WINDOW=lots");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with a bad variable");
    assert!(
        stderr.contains("MUNINN_DELIVERY_WINDOW") && stderr.contains("lots"),
        "{stderr}"
    );
}
