//! The console's data layer against a real hub: a subscription whose target fails
//! ends with a dead delivery; the console sees it (summary, failures, detail, live
//! stream), retries it once the target is healthy, and sees it delivered. Also: the
//! actions of the Queues and Agents screens, and what a wrong token and an
//! unreachable hub look like.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/it/common/sink.rs"]
mod sink;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use muninn_console::api::{StreamItem, Summary};
use muninn_console::app::Key;
use muninn_console::client::{Client, ClientError};
use muninn_console::worker::{endpoint_detail, load_failures};
use serde_json::{Value, json};
use sink::{Reply, Sink};

const TOKEN: &str = "console-test-admin-token-0123456789";

struct Hub {
    base: String,
    _dir: tempfile::TempDir,
}

fn start_hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let mut config = muninn::Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.admin_token = Some(TOKEN.to_string());
    config.server.workers = 2;
    config.delivery.allow_private_targets = true;
    config.delivery.poll_interval_ms = 50;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let system = actix_rt::System::new();
        if let Err(e) = system.block_on(muninn::run(config, listener)) {
            eprintln!("test hub stopped: {e}");
        }
    });
    Hub { base, _dir: dir }
}

/// Setup calls the console has no screen for (creating things).
async fn post(base: &str, path: &str, body: Value) -> Value {
    let mut r = awc::Client::default()
        .post(format!("{base}{path}"))
        .insert_header(("Authorization", format!("Bearer {TOKEN}")))
        .send_json(&body)
        .await
        .unwrap();
    let bytes = r.body().await.unwrap();
    assert!(
        r.status().is_success(),
        "{path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn queue(s: &Summary, id: i64) -> Option<&muninn_console::api::Queue> {
    s.subscriptions.iter().find(|q| q.id == id)
}

#[actix_rt::test]
async fn sees_a_dead_delivery_retries_it_and_sees_it_delivered() {
    let hub = start_hub();
    let client = Client::new(&hub.base, TOKEN, Duration::from_secs(10));
    wait_for("the hub", async || client.summary().await.ok()).await;

    // Live stream, collected in the background.
    let seen: Arc<Mutex<Vec<StreamItem>>> = Arc::default();
    let stream = client.stream().await.unwrap();
    {
        let seen = seen.clone();
        actix_rt::spawn(async move {
            let mut stream = Box::pin(stream);
            while let Some(Ok(item)) = stream.next().await {
                seen.lock().unwrap().push(item);
            }
        });
    }

    let sink = Sink::start();
    sink.set_default(Reply::status(500));
    let agent = post(
        &hub.base,
        "/api/agents",
        json!({"type": "webhook", "name": "orders in", "options": {"secret": "s"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let sub = post(
        &hub.base,
        "/api/webhooks/outgoing",
        json!({"url": sink.url, "name": "billing", "event_types": ["event.created"], "retry_count": 0}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    post(
        &hub.base,
        &format!("/users/1/web_requests/{agent}/s"),
        json!({"order": 42}),
    )
    .await;

    // Dead: in the summary, in the failures list, with the attempt's detail.
    let s = wait_for("the dead delivery in the summary", async || {
        client
            .summary()
            .await
            .ok()
            .filter(|s| queue(s, sub).is_some_and(|q| q.dead == 1))
    })
    .await;
    assert_eq!(s.queue.dead, 1);
    assert_eq!(queue(&s, sub).unwrap().name, "billing");
    assert!(s.rates.events_total >= 1);
    assert!(s.rates.dead_total >= 1);
    assert_eq!(
        queue(&s, sub).unwrap().last_error.as_deref(),
        Some("target answered 500")
    );
    let names = HashMap::from([(sub, "billing".to_string())]);
    let failures = load_failures(&client, &names, &RefCell::new(HashMap::new()))
        .await
        .unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(
        (f.subscription.as_str(), f.delivery.status.as_str()),
        ("billing", "dead")
    );
    assert_eq!(f.event_type, "event.created");
    assert_eq!(f.delivery.last_status, Some(500));
    let detail = client.delivery(f.delivery.id).await.unwrap();
    let attempts = detail.attempt_log.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].response_status, Some(500));
    assert!(attempts[0].request_body.contains("42"));

    // The target recovers; the console retries; the delivery arrives.
    sink.set_default(Reply::status(200));
    client.retry_delivery(f.delivery.id).await.unwrap();
    let d = wait_for("the delivery to be delivered", async || {
        client
            .delivery(f.delivery.id)
            .await
            .ok()
            .filter(|d| d.status == "delivered")
    })
    .await;
    assert_eq!(d.attempts, 2);
    let s = wait_for("the summary to drop the dead count", async || {
        client
            .summary()
            .await
            .ok()
            .filter(|s| queue(s, sub).is_some_and(|q| q.dead == 0))
    })
    .await;
    assert_eq!(queue(&s, sub).unwrap().delivered_total, 1);
    assert_eq!(
        sink.received().iter().filter(|r| r.answered == 200).count(),
        1
    );
    let failures = load_failures(&client, &names, &RefCell::new(HashMap::new()))
        .await
        .unwrap();
    assert!(failures.is_empty(), "{failures:?}");

    // The stream told the same story, as it happened.
    let seen = wait_for("the stream", async || {
        let s = seen.lock().unwrap().clone();
        s.iter()
            .any(|i| matches!(i, StreamItem::Delivery { status, .. } if status == "delivered"))
            .then_some(s)
    })
    .await;
    assert!(seen.iter().any(|i| matches!(i,
        StreamItem::Event { event_type, agent_id: Some(a), .. } if event_type == "event.created" && *a == agent)));
    let outcomes: Vec<&str> = seen
        .iter()
        .filter_map(|i| match i {
            StreamItem::Delivery {
                status, webhook_id, ..
            } if *webhook_id == sub => Some(status.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes, ["dead", "delivered"]);
}

#[actix_rt::test]
async fn queue_and_agent_actions_go_through_the_api() {
    let hub = start_hub();
    let client = Client::new(&hub.base, TOKEN, Duration::from_secs(10));
    wait_for("the hub", async || client.summary().await.ok()).await;
    let sink = Sink::start();
    let sub = post(
        &hub.base,
        "/api/webhooks/outgoing",
        json!({"url": sink.url, "name": "crm", "event_types": ["event.created"]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let agent = post(
        &hub.base,
        "/api/agents",
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();

    client.set_paused(sub, true).await.unwrap();
    let s = wait_for("paused", async || {
        client
            .summary()
            .await
            .ok()
            .filter(|s| queue(s, sub).is_some_and(|q| q.paused))
    })
    .await;
    assert_eq!(s.queue.paused, 1);
    client.set_paused(sub, false).await.unwrap();
    wait_for("resumed", async || {
        client
            .summary()
            .await
            .ok()
            .filter(|s| queue(s, sub).is_some_and(|q| !q.paused))
    })
    .await;
    let replay = client.replay_dead(sub, None).await.unwrap();
    assert!(replay.is_object(), "{replay}");
    let replay = client
        .replay_dead(sub, Some("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(replay["matched"], 0, "{replay}");

    client.set_agent_disabled(agent, true).await.unwrap();
    assert!(client.agent(agent).await.unwrap().disabled);
    let s = wait_for("the disabled agent", async || {
        client
            .summary()
            .await
            .ok()
            .filter(|s| s.agents.disabled == 1)
    })
    .await;
    assert_eq!(s.agents.not_working, 1);
    match client.run_agent(agent).await {
        Err(ClientError::Api { status: 409, .. }) => {}
        other => panic!("running a disabled agent: {other:?}"),
    }
    client.set_agent_disabled(agent, false).await.unwrap();
    client.run_agent(agent).await.unwrap();
    client.clear_agent_memory(agent).await.unwrap();
    assert_eq!(client.agent(agent).await.unwrap().memory, json!({}));
    let logs = client.agent_logs(agent, 10).await.unwrap();
    assert!(logs.len() <= 10);
}

/// The console needs a `read` token for everything it shows; its actions need the
/// `full` scope, and a read token's action is answered a 403 that says so (shown on
/// the status line, without marking the connection as refused).
#[actix_rt::test]
async fn a_read_token_shows_every_screen_and_actions_need_a_full_token() {
    let hub = start_hub();
    let admin = Client::new(&hub.base, TOKEN, Duration::from_secs(10));
    wait_for("the hub", async || admin.summary().await.ok()).await;
    let sink = Sink::start();
    let sub = post(
        &hub.base,
        "/api/webhooks/outgoing",
        json!({"url": sink.url, "name": "crm", "event_types": ["event.created"]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let agent = post(
        &hub.base,
        "/api/agents",
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let token = async |scope: &str| {
        post(
            &hub.base,
            "/api/tokens",
            json!({"name": format!("console-{scope}"), "scope": scope}),
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let read = Client::new(&hub.base, &token("read").await, Duration::from_secs(10));
    let full = Client::new(&hub.base, &token("full").await, Duration::from_secs(10));

    // Every read the screens make.
    wait_for("the subscription's queue", async || {
        read.summary()
            .await
            .ok()
            .filter(|s| queue(s, sub).is_some())
    })
    .await;
    assert_eq!(read.agents().await.unwrap().len(), 1);
    read.agent(agent).await.unwrap();
    read.agent_logs(agent, 50).await.unwrap();
    read.subscription(sub).await.unwrap();
    read.deliveries("dead", 50).await.unwrap();
    read.deliveries_of(sub, "retrying", 50).await.unwrap();
    read.outgoing_logs(sub, 50).await.unwrap();
    read.scenarios().await.unwrap();
    read.credentials().await.unwrap();
    read.incoming().await.unwrap();
    read.inbound_stats(agent, "agent").await.unwrap();
    endpoint_detail(&read, Key::AgentEndpoint(agent))
        .await
        .unwrap();
    let names = HashMap::from([(sub, "crm".to_string())]);
    load_failures(&read, &names, &RefCell::new(HashMap::new()))
        .await
        .unwrap();
    assert!(read.stream().await.is_ok(), "the live tail opens");

    // Actions: refused with the reason for a read token, done with a full one.
    match read.set_paused(sub, true).await {
        Err(ClientError::Unauthorized {
            status: 403,
            message,
        }) => assert!(message.contains("read-only"), "{message}"),
        other => panic!("pausing with a read token: {other:?}"),
    }
    match read.set_agent_disabled(agent, true).await {
        Err(ClientError::Unauthorized { status: 403, .. }) => {}
        other => panic!("disabling with a read token: {other:?}"),
    }
    assert!(!read.subscription(sub).await.unwrap().paused);
    full.set_paused(sub, true).await.unwrap();
    assert!(read.subscription(sub).await.unwrap().paused);
    full.set_agent_disabled(agent, true).await.unwrap();
    assert!(read.agent(agent).await.unwrap().disabled);
    full.set_agent_disabled(agent, false).await.unwrap();
    full.run_agent(agent).await.unwrap();
}

#[actix_rt::test]
async fn circuit_reset_edit_and_delete_go_through_the_api() {
    let hub = start_hub();
    let client = Client::new(&hub.base, TOKEN, Duration::from_secs(10));
    wait_for("the hub", async || client.summary().await.ok()).await;
    let sink = Sink::start();
    let sub = post(
        &hub.base,
        "/api/webhooks/outgoing",
        json!({"url": sink.url, "name": "crm", "event_types": ["event.created"]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // A closed circuit: the reset is harmless and says so.
    assert!(!client.reset_circuit(sub).await.unwrap());
    let s = client.subscription(sub).await.unwrap();
    assert_eq!(
        (s.circuit_state.as_str(), s.circuit_opened_at, s.filters),
        ("closed", None, None)
    );

    // What the edit form sends: only the changed fields.
    let other = format!("{}/other", sink.url);
    let saved = client
        .update_subscription(
            sub,
            json!({"url": other, "is_active": false, "event_types": ["event.*"],
                   "filters": {"data.level": "high"}}),
        )
        .await
        .unwrap();
    assert_eq!(saved.url, other);
    assert!(!saved.is_active);
    let read = client.subscription(sub).await.unwrap();
    assert_eq!(read.event_types, vec!["event.*".to_string()]);
    assert_eq!(read.filters, Some(json!({"data.level": "high"})));
    assert_eq!(read.name, "crm", "fields not sent are kept");
    // The hub's refusal reaches the operator with its reason.
    match client
        .update_subscription(
            sub,
            json!({"filters": [{"field": "data.x", "operator": "regex", "value": "("}]}),
        )
        .await
    {
        Err(ClientError::Api {
            status: 422,
            message,
        }) => {
            assert!(message.contains("filters"), "{message}")
        }
        other => panic!("a bad filter: {other:?}"),
    }
    client
        .update_subscription(sub, json!({"filters": null}))
        .await
        .unwrap();
    assert_eq!(client.subscription(sub).await.unwrap().filters, None);

    // A data_output agent's row opens its feed's request log.
    let feed = post(
        &hub.base,
        "/api/agents",
        json!({"type": "data_output", "name": "Out",
               "options": {"secrets": ["s"], "template": {"item": {"title": "{{ t }}"}}}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let r = awc::Client::default()
        .get(format!("{}/users/1/web_requests/{feed}/s.json", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let d = endpoint_detail(&client, Key::AgentEndpoint(feed))
        .await
        .unwrap();
    assert_eq!(d.note, None);
    assert_eq!(d.logs.len(), 1, "{d:?}");
    assert_eq!((d.logs[0].status, d.logs[0].method.as_str()), (200, "GET"));
    assert_eq!(d.stats.map(|s| s.accepted), Some(1));

    client.delete_subscription(sub).await.unwrap();
    match client.subscription(sub).await {
        Err(ClientError::Api { status: 404, .. }) => {}
        other => panic!("a deleted subscription: {other:?}"),
    }
    match client.reset_circuit(sub).await {
        Err(ClientError::Api { status: 404, .. }) => {}
        other => panic!("resetting a deleted subscription: {other:?}"),
    }
}

#[actix_rt::test]
async fn a_wrong_token_and_a_missing_hub_are_told_apart() {
    let hub = start_hub();
    let good = Client::new(&hub.base, TOKEN, Duration::from_secs(10));
    wait_for("the hub", async || good.summary().await.ok()).await;
    let bad = Client::new(&hub.base, "not-the-token", Duration::from_secs(10));
    match bad.summary().await {
        Err(ClientError::Unauthorized {
            status: 401,
            message,
        }) => {
            assert_eq!(message, "invalid API token");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        bad.stream().await.err(),
        Some(ClientError::Unauthorized { .. })
    ));
    // Nothing listens on a port we just freed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = Client::new(
        &format!("http://127.0.0.1:{port}"),
        TOKEN,
        Duration::from_secs(2),
    );
    let e = gone.summary().await.unwrap_err();
    assert!(e.is_connection(), "{e:?}");
}

#[actix_rt::test]
async fn detail_reads_and_the_test_delivery_go_through_the_api() {
    let hub = start_hub();
    let client = Client::new(&hub.base, TOKEN, Duration::from_secs(10));
    wait_for("the hub", async || client.summary().await.ok()).await;
    let sink = Sink::start();
    sink.set_default(Reply::status(500));
    let agent = post(
        &hub.base,
        "/api/agents",
        json!({"type": "webhook", "name": "orders in", "options": {"secret": "s"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let sub = post(
        &hub.base,
        "/api/webhooks/outgoing",
        json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 3, "retry_delay": 600}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    post(
        &hub.base,
        &format!("/users/1/web_requests/{agent}/s"),
        json!({"order": 42}),
    )
    .await;

    // Queues detail: settings, the retrying delivery's next attempt, the attempt.
    let retrying = wait_for("a retrying delivery", async || {
        client
            .deliveries_of(sub, "retrying", 100)
            .await
            .ok()
            .filter(|d| !d.is_empty())
    })
    .await;
    assert!(retrying[0].next_attempt_at.is_some(), "{retrying:?}");
    let s = client.subscription(sub).await.unwrap();
    assert_eq!((s.id, s.retry_count, s.retry_delay), (sub, 3, 600.0));
    let attempts = client.outgoing_logs(sub, 20).await.unwrap();
    assert_eq!(attempts[0].response_status, Some(500), "{attempts:?}");
    assert_eq!(attempts[0].delivery_id, retrying[0].id);
    // An unnamed subscription's label is its host and port.
    let label = wait_for("the subscription in the summary", async || {
        client
            .summary()
            .await
            .ok()
            .and_then(|s| queue(&s, sub).map(|q| q.label()))
    })
    .await;
    assert!(label.starts_with("127.0.0.1:"), "{label}");
    let report = client.test_delivery(sub).await.unwrap();
    assert!(report.is_object(), "{report}");

    // Endpoints: an incoming webhook's request log, and a webhook agent's.
    let receiver = post(
        &hub.base,
        "/api/agents",
        json!({"type": "event_formatting", "name": "fmt", "options": {"instructions": {"message": "{{ paid }}"}}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let w = post(
        &hub.base,
        "/api/webhooks/incoming",
        json!({"name": "stripe", "agent_id": receiver}),
    )
    .await;
    let id = w["id"].as_i64().unwrap();
    let listed = client.incoming().await.unwrap();
    assert_eq!(listed.iter().map(|x| x.id).collect::<Vec<_>>(), [id]);
    let url = w["url"].as_str().unwrap().to_string();
    let path = url.splitn(4, '/').nth(3).unwrap();
    post(&hub.base, &format!("/{path}"), json!({"paid": true})).await;
    let logs = wait_for("the incoming request in its log", async || {
        client
            .inbound_logs(id, "incoming", 50)
            .await
            .ok()
            .filter(|l| !l.is_empty())
    })
    .await;
    assert!(logs[0].accepted, "{logs:?}");
    let stats = client.inbound_stats(id, "incoming").await.unwrap();
    assert_eq!((stats.received, stats.accepted), (1, 1));
    let agent_logs = wait_for("the agent request in its log", async || {
        client
            .inbound_logs(agent, "agent", 50)
            .await
            .ok()
            .filter(|l| !l.is_empty())
    })
    .await;
    assert_eq!(agent_logs[0].status / 100, 2, "{agent_logs:?}");
}

#[actix_rt::test]
async fn credentials_are_listed_by_name_and_never_carry_a_value() {
    let hub = start_hub();
    let client = Client::new(&hub.base, TOKEN, Duration::from_secs(10));
    wait_for("the hub", async || client.summary().await.ok()).await;
    post(
        &hub.base,
        "/api/credentials",
        json!({"credential_name": "github_token", "credential_value": "ghp_never_in_the_console"}),
    )
    .await;
    let listed = client.credentials().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].credential_name, "github_token");
    assert_eq!(listed[0].mode, "text");
    assert!(!format!("{listed:?}").contains("ghp_never"), "{listed:?}");
}

#[actix_rt::test]
async fn the_node_view_reads_the_hubs_worker_status() {
    use muninn_console::api::NodeState;
    let hub = start_hub();
    let client = Client::new(&hub.base, TOKEN, Duration::from_secs(10));
    wait_for("the hub", async || client.summary().await.ok()).await;
    post(
        &hub.base,
        "/api/agents",
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await;
    // A one-box hub: one node, listed to the admin, holding the agent once its
    // heartbeat has run.
    let node = wait_for("the node holding the agent", async || {
        let n = client.worker_status().await.unwrap().node?;
        (n.owned_agents == 1 && n.nodes.len() == 1).then_some(n)
    })
    .await;
    assert!(!node.node_id.is_empty());
    assert_eq!(node.live_nodes, 1);
    let me = &node.nodes[0];
    assert_eq!(me.id, node.node_id);
    assert_eq!(me.state, Some(NodeState::Live), "{me:?}");
    assert_eq!((me.owned_agents, me.claimed_deliveries), (Some(1), Some(0)));
    assert!(me.heartbeat_age_seconds.is_some_and(|s| s < 60.0), "{me:?}");
    assert_eq!(node.lease_seconds, Some(15));
}
