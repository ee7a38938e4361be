//! Graceful shutdown of the real binary: SIGTERM in the middle of ingest and delivery
//! load exits 0, speaks the systemd notify protocol, and loses nothing: every
//! acknowledged request is an event after the restart and reaches the sink, and no
//! delivery settled before the exit is sent a second time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::load::{Load, all_events, ns};
use common::process::{HubProcess, api, webhook_to_sink};
use common::sink::{Received, Reply, Sink};
use serde_json::{Value, json};

const TOKEN: &str = "shutdown-admin-token-0123456789";

async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    api(base, TOKEN, method, path, body).await
}

fn write_config(dir: &Path) -> String {
    let path = dir.join("muninn.toml");
    std::fs::write(
        &path,
        "[server]\nworkers = 2\nshutdown_timeout_seconds = 10\n\
         [delivery]\nallow_private_targets = true\npoll_interval_ms = 50\n[inbound]\ndefault_rate_limit_per_minute = 0\n",
    )
    .unwrap();
    path.display().to_string()
}

/// Reads the notify socket on its own thread, as systemd does, so the hub is never
/// held up by a full datagram queue; the test takes the messages from the channel.
fn notify_reader(sock: UnixDatagram) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Takes notify messages until one has the line `want` (bounded); returns all taken.
fn read_until(rx: &mpsc::Receiver<String>, want: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(msg) => {
                let done = msg.lines().any(|l| l == want);
                got.push(msg);
                if done {
                    return got;
                }
            }
            Err(_) => panic!("no {want:?} from muninn within {within:?}; got {got:?}"),
        }
    }
}

fn message_ids(r: &[Received]) -> Vec<String> {
    r.iter()
        .map(|x| x.header("x-webhook-message-id").unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn sigterm_during_load_exits_0_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let notify_path = dir.path().join("notify.sock");
    let notify = notify_reader(UnixDatagram::bind(&notify_path).unwrap());
    let notify_env = notify_path.display().to_string();
    // A slow receiver, so deliveries are in flight when the signal comes.
    let sink = Sink::start();
    sink.set_default(Reply::hang(Duration::from_millis(100)));

    let mut hub = HubProcess::start(
        dir.path(),
        &[
            ("MUNINN_ADMIN_TOKEN", TOKEN),
            ("MUNINN_CONFIG", &config),
            ("NOTIFY_SOCKET", &notify_env),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let ready = read_until(&notify, "READY=1", Duration::from_secs(10));
    assert!(
        ready.iter().any(|m| m.contains("STATUS=listening on")),
        "{ready:?}"
    );
    read_until(&notify, "WATCHDOG=1", Duration::from_secs(5));

    let url = webhook_to_sink(&hub.base, TOKEN, &sink.url).await;

    let load = Load::default();
    let tasks = load.start(&url, 3000, 16);
    load.wait_acked(300, Duration::from_secs(30)).await;
    hub.signal("TERM");
    for t in tasks {
        t.await.unwrap();
    }
    let status = hub.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    let seen = read_until(&notify, "STOPPING=1", Duration::from_secs(5));
    assert!(!seen.iter().any(|m| m.contains("READY=1")), "{seen:?}");
    let acked = load.acked();
    assert!(
        load.other.lock().unwrap().iter().all(|s| *s == 503),
        "only 503 (busy) may refuse a request: {:?}",
        load.other.lock().unwrap()
    );
    // Every attempt that reached the sink before the exit had its outcome recorded.
    let before_exit: HashSet<String> = message_ids(&sink.received()).into_iter().collect();
    eprintln!(
        "acknowledged {} requests; the sink had {} deliveries at the exit",
        acked.len(),
        before_exit.len()
    );

    sink.set_default(Reply::status(200));
    let hub = HubProcess::start(
        dir.path(),
        &[("MUNINN_ADMIN_TOKEN", TOKEN), ("MUNINN_CONFIG", &config)],
    );
    let events = all_events(&hub.base, TOKEN).await;
    let stored = ns(&events);
    let lost: Vec<_> = acked.iter().filter(|n| !stored.contains(n)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let got = sink
        .wait_until("every stored event delivered", |r| {
            let delivered: HashSet<u64> = r
                .iter()
                .filter_map(|x| x.json()["data"]["n"].as_u64())
                .collect();
            stored.iter().all(|n| delivered.contains(n))
        })
        .await;
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for id in message_ids(&got) {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = before_exit
        .iter()
        .filter(|id| counts.get(*id).copied().unwrap_or(0) > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "deliveries settled before the graceful exit were sent again: {twice:?}"
    );
}

#[actix_rt::test]
async fn sigint_on_an_idle_hub_exits_0_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = HubProcess::start(dir.path(), &[("MUNINN_ADMIN_TOKEN", TOKEN)]);
    let started = Instant::now();
    hub.signal("INT");
    let status = hub.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "an idle hub stops without waiting for a timeout"
    );
}

#[actix_rt::test]
async fn a_second_signal_exits_at_once_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("muninn.toml");
    std::fs::write(
        &config,
        "[server]\nworkers = 2\nshutdown_timeout_seconds = 60\n\
         [delivery]\nallow_private_targets = true\npoll_interval_ms = 50\n[inbound]\ndefault_rate_limit_per_minute = 0\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let envs = [
        ("MUNINN_ADMIN_TOKEN", TOKEN),
        ("MUNINN_CONFIG", config.as_str()),
    ];
    // The receiver hangs, so the graceful stop would wait out its whole deadline.
    let sink = Sink::start();
    sink.set_default(Reply::hang(Duration::from_secs(30)));
    let mut hub = HubProcess::start(dir.path(), &envs);
    let (_, agent) = call(
        &hub.base,
        "POST",
        "/api/agents",
        Some(json!({"type": "webhook", "name": "in", "options": {"secret": "s"}})),
    )
    .await;
    let agent = agent["id"].as_i64().unwrap();
    let (status, _) = call(
        &hub.base,
        "POST",
        "/api/webhooks/outgoing",
        Some(json!({"url": sink.url, "event_types": ["event.created"], "timeout": 60})),
    )
    .await;
    assert_eq!(status, 201);
    let load = Load::default();
    let url = format!("{}/users/1/web_requests/{agent}/s", hub.base);
    for t in load.start(&url, 50, 4) {
        t.await.unwrap();
    }
    assert_eq!(load.acked_count(), 50);
    // Deliveries are hanging in the sink when the first signal comes (the sink
    // records a request only once it answers, so this waits instead of looking).
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    hub.signal("TERM");
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    assert!(
        hub.child.try_wait().unwrap().is_none(),
        "the graceful stop waits for the deliveries in flight"
    );
    let started = Instant::now();
    hub.signal("INT");
    let status = hub.wait_exit(Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second signal exits at once"
    );
    assert_eq!(status.code(), Some(0));

    sink.set_default(Reply::status(200));
    let hub = HubProcess::start(dir.path(), &envs);
    let stored = ns(&all_events(&hub.base, TOKEN).await);
    assert!(load.acked().iter().all(|n| stored.contains(n)));
    sink.wait_until("all 50 delivered after the restart", |r| {
        let got: HashSet<u64> = r
            .iter()
            .filter(|x| x.answered == 200)
            .filter_map(|x| x.json()["data"]["n"].as_u64())
            .collect();
        (0..50).all(|n| got.contains(&n))
    })
    .await;
}
