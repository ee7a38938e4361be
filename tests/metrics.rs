//! `GET /metrics`: Prometheus text that counts what the hub did, behind the optional
//! token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/common/mod.rs"]
mod common;

use common::sink::Sink;
use common::{ADMIN_TOKEN, TestHub};
use serde_json::json;

/// The value of the series whose line starts with `series ` (exact labels).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[actix_rt::test]
async fn metrics_count_ingest_commits_and_deliveries_behind_the_token() {
    let hub = TestHub::start_with(|c| {
        c.metrics.token = "scrape-secret".into();
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await;
    let sink = Sink::start();
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
        )
        .await;
    let id = agent["id"].as_i64().unwrap();
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "event_types": ["event.created"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let sub = r.json()["id"].as_i64().unwrap();
    for n in 0..3 {
        let r = hub
            .request(
                "POST",
                &format!("/users/1/web_requests/{id}/s"),
                None,
                &[("Content-Type", "application/json")],
                Some(json!({ "n": n }).to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = hub
        .request(
            "POST",
            &format!("/users/1/web_requests/{id}/wrong"),
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    sink.wait_for(3).await;

    let r = hub.request("GET", "/metrics", None, &[], None).await;
    assert_eq!(r.status, 401, "the token is required when configured");
    let r = hub.get("/metrics", "not-it").await;
    assert_eq!(r.status, 401);

    // The delivery outcome is counted after its commit, which may trail the sink.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let r = hub.get("/metrics", "scrape-secret").await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = r.text();
        if value(&text, "muninn_deliveries_total{outcome=\"delivered\"}") >= 3.0
            || std::time::Instant::now() > deadline
        {
            break text;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        value(
            &text,
            "muninn_ingest_requests_total{kind=\"huginn\",status=\"201\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "muninn_ingest_requests_total{kind=\"huginn\",status=\"401\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&text, "muninn_deliveries_total{outcome=\"delivered\"}"),
        3.0
    );
    let per_sub = |outcome: &str| {
        value(
            &text,
            &format!(
                "muninn_subscription_deliveries_total{{subscription=\"{sub}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!((per_sub("delivered"), per_sub("failed")), (3.0, 0.0));
    let count = format!("muninn_subscription_attempt_seconds_count{{subscription=\"{sub}\"}}");
    assert_eq!(value(&text, &count), 3.0);
    let sum = format!("muninn_subscription_attempt_seconds_sum{{subscription=\"{sub}\"}}");
    assert!(value(&text, &sum) >= 0.0);
    assert!(value(&text, "muninn_events_committed_total") >= 3.0);
    assert!(value(&text, "muninn_writer_batch_size_count") >= 1.0);
    assert!(value(&text, "muninn_writer_commit_seconds_count") >= 1.0);
    assert_eq!(value(&text, "muninn_subscriptions"), 1.0);
    assert_eq!(value(&text, "muninn_agents"), 1.0);
    assert_eq!(value(&text, "muninn_circuits_open"), 0.0);
    assert_eq!(value(&text, "muninn_writer_queue_depth"), 0.0);
    assert_eq!(value(&text, "muninn_feed_cache_hits_total"), 0.0);
}

#[actix_rt::test]
async fn metrics_carry_build_info_and_the_process_series() {
    let hub = TestHub::start().await;
    let r = hub.request("GET", "/metrics", None, &[], None).await;
    assert_eq!(r.status, 200, "open without a configured token");
    let text = r.text();
    assert_eq!(
        value(
            &text,
            &format!(
                "muninn_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    assert!(text.contains("# TYPE muninn_build_info gauge\n"), "{text}");
    if cfg!(target_os = "linux") {
        // The test process is the hub's process: it has memory, descriptors and a start.
        assert!(value(&text, "process_resident_memory_bytes") > 1024.0 * 1024.0);
        assert!(value(&text, "process_open_fds") >= 3.0);
        assert!(value(&text, "process_max_fds") >= value(&text, "process_open_fds"));
        assert!(value(&text, "process_cpu_seconds_total") >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value(&text, "process_start_time_seconds");
        assert!(
            start <= now + 2.0 && start > now - 24.0 * 3600.0,
            "started {start}, now {now}"
        );
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    } else {
        assert!(!text.contains("process_"), "{text}");
    }
}
