//! The delivery engine against a local sink: signatures, retries, dead letters,
//! replay, the circuit breaker, ordering, 410, the target guard.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A hub that may deliver to 127.0.0.1 and checks for due retries often.
async fn hub() -> TestHub {
    TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await
}

async fn webhook_agent(hub: &TestHub) -> i64 {
    hub.add_agent(
        ADMIN_TOKEN,
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn post_event(hub: &TestHub, agent: i64, body: Value) {
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{agent}/s"),
            ADMIN_TOKEN,
            &body,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

async fn subscribe(hub: &TestHub, body: Value) -> Value {
    let r = hub
        .post_json("/api/webhooks/outgoing", ADMIN_TOKEN, &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

async fn deliveries(hub: &TestHub, webhook: i64) -> Vec<Value> {
    let r = hub
        .get(
            &format!("/api/deliveries?webhook_id={webhook}"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

async fn wait_delivery_status(hub: &TestHub, webhook: i64, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ds = deliveries(hub, webhook).await;
        if let Some(d) = ds.iter().find(|d| d["status"] == status) {
            return d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no delivery became {status}: {ds:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn events_of_type(hub: &TestHub, t: &str) -> Vec<Value> {
    hub.get(&format!("/api/events?type={t}"), ADMIN_TOKEN)
        .await
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[actix_rt::test]
async fn every_scheme_signs_so_an_independent_check_verifies() {
    let hub = hub().await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    subscribe(&hub, json!({"url": format!("{}/hex", sink.url), "event_types": ["event.created"], "secret": "hex-secret"})).await;
    subscribe(&hub, json!({"target_url": format!("{}/gh", sink.url), "event_types": ["event.*"], "secret": "gh-secret",
                           "signature_scheme": "sha256", "signature_header": "X-Hub-Signature-256"})).await;
    let std_sub = subscribe(&hub, json!({"url": format!("{}/std", sink.url), "event_types": ["*"], "signature_scheme": "standard",
                                         "headers": {"X-Custom": "yes"}})).await;
    let whsec = std_sub["secret"].as_str().unwrap().to_string();
    assert!(
        whsec.starts_with("whsec_"),
        "a standard secret is generated and shown once: {std_sub}"
    );
    let shown = hub
        .get(
            &format!("/api/webhooks/outgoing/{}", std_sub["id"]),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert!(
        shown.get("secret").is_none() && shown["has_secret"] == true,
        "{shown}"
    );

    post_event(&hub, agent, json!({"title": "hello"})).await;
    let got = sink.wait_for(3).await;
    let by = |p: &str| got.iter().find(|r| r.path.ends_with(p)).unwrap().clone();

    let hex = by("/hex");
    assert_eq!(
        hex.header("x-webhook-signature").unwrap(),
        hex::encode(hmac256(b"hex-secret", &hex.body))
    );
    assert_eq!(hex.header("content-type"), Some("application/json"));
    assert!(hex.header("user-agent").unwrap().starts_with("muninn/"));
    assert_eq!(hex.header("x-webhook-event"), Some("event.created"));
    let env = hex.json();
    assert_eq!(env["event_type"], "event.created");
    assert_eq!(env["agent_id"], agent);
    assert_eq!(env["user_id"], 1);
    assert_eq!(env["data"], json!({"title": "hello"}));
    assert!(env["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        hex.header("x-webhook-id").unwrap(),
        env["webhook_id"].to_string()
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(hex.header("x-webhook-timestamp").unwrap()).is_ok()
    );

    let gh = by("/gh");
    assert_eq!(
        gh.header("x-hub-signature-256").unwrap(),
        format!("sha256={}", hex::encode(hmac256(b"gh-secret", &gh.body)))
    );

    let std = by("/std");
    assert_eq!(std.header("x-custom"), Some("yes"));
    let key = base64::engine::general_purpose::STANDARD
        .decode(whsec.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = std.header("webhook-id").unwrap();
    let ts = std.header("webhook-timestamp").unwrap();
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", &std.body].concat();
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac256(&key, &signed))
    );
    assert_eq!(std.header("webhook-signature").unwrap(), expected);
    assert_eq!(
        id,
        std.json()["id"].as_str().unwrap(),
        "webhook-id is the message id"
    );
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..300).contains(&age));
}

#[actix_rt::test]
async fn rotation_signs_with_every_valid_key() {
    let hub = hub().await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(
        &hub,
        json!({"url": sink.url, "event_types": ["event.created"], "signature_scheme": "standard"}),
    )
    .await;
    let old = sub["secret"].as_str().unwrap().to_string();
    let r = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{}/rotate-secret", sub["id"]),
            ADMIN_TOKEN,
            &json!({"grace_period_seconds": 3600}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new = r.json()["secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    post_event(&hub, agent, json!({"n": 1})).await;
    let got = sink.wait_for(1).await;
    let sigs: Vec<&str> = got[0]
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(
        sigs.len(),
        2,
        "new and old key both sign during the grace period"
    );
    let r = &got[0];
    let signed = [
        r.header("webhook-id").unwrap().as_bytes(),
        b".",
        r.header("webhook-timestamp").unwrap().as_bytes(),
        b".",
        &r.body,
    ]
    .concat();
    for secret in [&new, &old] {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let sig = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(hmac256(&key, &signed))
        );
        assert!(sigs.contains(&sig.as_str()));
    }
}

#[actix_rt::test]
async fn failures_are_retried_with_the_same_message_id_until_delivered() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::status(500), Reply::status(503)]);
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(&hub, json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 3, "retry_delay": 0.1})).await;
    let id = sub["id"].as_i64().unwrap();
    post_event(&hub, agent, json!({"n": 1})).await;
    let got = sink.wait_for(3).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-webhook-message-id").unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every attempt sends the same bytes"
    );
    let d = wait_delivery_status(&hub, id, "delivered").await;
    assert_eq!(d["attempts"], 3);
    let detail = hub
        .get(&format!("/api/deliveries/{}", d["id"]), ADMIN_TOKEN)
        .await
        .json();
    let statuses: Vec<i64> = detail["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["response_status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 503, 200]);
    let logs = hub
        .get(
            &format!("/api/webhooks/{id}/logs?webhook_type=outgoing"),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(logs.as_array().unwrap().len(), 3);
    assert_eq!(logs[0]["response_status"], 200);
    assert_eq!(logs[0]["retry_count"], 2);
    assert_eq!(logs[0]["event_type"], "event.created");
    assert_eq!(
        logs[0]["request_headers"]["X-Webhook-Signature"],
        Value::Null,
        "no secret, no signature header"
    );
    let stats = hub
        .get(
            &format!("/api/webhooks/{id}/statistics?webhook_type=outgoing"),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(stats["total_requests"], 3);
    assert_eq!(stats["successful_requests"], 1);
    assert_eq!(stats["failed_requests"], 2);
    assert_eq!(stats["delivered"], 1);
    assert_eq!(stats["circuit_state"], "closed");
}

#[actix_rt::test]
async fn a_final_4xx_is_not_retried_and_lands_in_the_dead_letters() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::status(400)]);
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(&hub, json!({"url": sink.url, "event_types": ["event.created"], "retry_delay": 0.05, "secret": "k"})).await;
    let id = sub["id"].as_i64().unwrap();
    post_event(&hub, agent, json!({"n": 1})).await;
    let d = wait_delivery_status(&hub, id, "dead").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status"], 400);
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "no retry after a 400");
    let dead = events_of_type(&hub, "delivery.dead").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["payload"]["delivery_id"], d["id"]);
    let logs = hub
        .get(
            &format!("/api/webhooks/{id}/logs?webhook_type=outgoing"),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(
        logs[0]["request_headers"]["X-Webhook-Signature"],
        "[masked]"
    );
}

#[actix_rt::test]
async fn retry_after_is_honoured_and_spends_no_retry() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::retry_after(429, 1), Reply::retry_after(503, 1)]);
    let agent = webhook_agent(&hub).await;
    // One retry only: the two throttled answers must not use it up.
    let sub = subscribe(&hub, json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 1, "retry_delay": 0.05})).await;
    post_event(&hub, agent, json!({"n": 1})).await;
    let got = sink.wait_for(3).await;
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(900),
        "waited for Retry-After"
    );
    assert!(got[2].at.duration_since(got[1].at) >= Duration::from_millis(900));
    let d = wait_delivery_status(&hub, sub["id"].as_i64().unwrap(), "delivered").await;
    assert_eq!(d["attempts"], 3);
}

#[actix_rt::test]
async fn gone_disables_the_subscription() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::status(410)]);
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(
        &hub,
        json!({"url": sink.url, "event_types": ["event.created"], "retry_delay": 0.05}),
    )
    .await;
    let id = sub["id"].as_i64().unwrap();
    post_event(&hub, agent, json!({"n": 1})).await;
    wait_delivery_status(&hub, id, "dead").await;
    let s = hub
        .get(&format!("/api/webhooks/outgoing/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(s["is_active"], false);
    assert!(s["disabled_reason"].as_str().unwrap().contains("410"));
    assert_eq!(events_of_type(&hub, "subscription.disabled").await.len(), 1);
    post_event(&hub, agent, json!({"n": 2})).await;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.received().len(),
        1,
        "a disabled subscription takes no more deliveries"
    );
}

#[actix_rt::test]
async fn dead_letters_are_replayed_and_retried_by_hand() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.set_default(Reply::status(500));
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(&hub, json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 1, "retry_delay": 0.05,
                                     "failure_threshold": 100})).await;
    let id = sub["id"].as_i64().unwrap();
    for n in 0..3 {
        post_event(&hub, agent, json!({"n": n})).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while deliveries(&hub, id)
        .await
        .iter()
        .filter(|d| d["status"] == "dead")
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "deliveries did not all die");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    let first_ids: Vec<String> = sink
        .received()
        .iter()
        .map(|r| r.header("x-webhook-message-id").unwrap().to_string())
        .collect();
    assert_eq!(sink.received().len(), 6, "2 attempts each");
    let dead = hub
        .get("/api/deliveries?status=dead", ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(dead.as_array().unwrap().len(), 3);

    sink.set_default(Reply::status(200));
    let dry = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{id}/replay"),
            ADMIN_TOKEN,
            &json!({"dry_run": true}),
        )
        .await;
    assert_eq!(dry.json()["matched"], 3);
    assert_eq!(sink.received().len(), 6, "a dry run sends nothing");
    let one = dead[0]["id"].as_i64().unwrap();
    let r = hub
        .post_json(
            &format!("/api/deliveries/{one}/retry"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    wait_delivery_status(&hub, id, "delivered").await;
    let r = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{id}/replay"),
            ADMIN_TOKEN,
            &json!({"status": "dead"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["queued"], 2);
    let got = sink
        .wait_until("all delivered", |r| {
            r.iter().filter(|x| x.answered == 200).count() >= 3
        })
        .await;
    let delivered_ids: Vec<&str> = got
        .iter()
        .filter(|x| x.answered == 200)
        .map(|x| x.header("x-webhook-message-id").unwrap())
        .collect();
    for id in &delivered_ids {
        assert!(
            first_ids.iter().any(|f| f == id),
            "a replay keeps the message id"
        );
    }
}

#[actix_rt::test]
async fn the_circuit_opens_holds_deliveries_then_closes_after_a_probe() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::status(500), Reply::status(500)]);
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(&hub, json!({"url": sink.url, "event_types": ["event.created"], "retry_count": 10, "retry_delay": 0.05,
                                     "max_retry_delay": 0.05, "failure_threshold": 2, "circuit_cooldown": 1})).await;
    let id = sub["id"].as_i64().unwrap();
    post_event(&hub, agent, json!({"n": 1})).await;
    sink.wait_for(2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while events_of_type(&hub, "subscription.circuit_opened")
        .await
        .is_empty()
    {
        assert!(Instant::now() < deadline, "circuit did not open");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    let opened_at = Instant::now();
    let stats = hub
        .get(
            &format!("/api/webhooks/{id}/statistics?webhook_type=outgoing"),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(stats["circuit_state"], "open");
    let got = sink.wait_for(3).await;
    assert!(
        got[2].at.duration_since(got[1].at) >= Duration::from_millis(900),
        "the probe waited for the cooldown"
    );
    let d = wait_delivery_status(&hub, id, "delivered").await;
    assert_eq!(
        d["attempts"], 3,
        "waiting in an open circuit spends no attempts"
    );
    while events_of_type(&hub, "subscription.circuit_closed")
        .await
        .is_empty()
    {
        assert!(
            opened_at.elapsed() < Duration::from_secs(10),
            "circuit did not close"
        );
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
}

#[actix_rt::test]
async fn ordered_mode_holds_later_events_behind_a_failing_head() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::status(500), Reply::status(500)]);
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(
        &hub,
        json!({"url": sink.url, "event_types": ["event.created"], "ordered": true, "retry_count": 5,
                                     "retry_delay": 0.1, "failure_threshold": 100}),
    )
    .await;
    for n in 0..5 {
        post_event(&hub, agent, json!({"n": n})).await;
    }
    let got = sink
        .wait_until("5 successes", |r| {
            r.iter().filter(|x| x.answered == 200).count() >= 5
        })
        .await;
    let order: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        order,
        [0, 0, 0, 1, 2, 3, 4],
        "the head is retried before anything behind it goes"
    );
    wait_delivery_status(&hub, sub["id"].as_i64().unwrap(), "delivered").await;
}

#[actix_rt::test]
async fn filters_agent_scope_and_system_events() {
    let hub = hub().await;
    let sink = Sink::start();
    let a = webhook_agent(&hub).await;
    let b = webhook_agent(&hub).await;
    subscribe(&hub, json!({"url": format!("{}/high", sink.url), "event_types": ["event.created"], "filters": {"data.level": "high"}})).await;
    subscribe(&hub, json!({"url": format!("{}/ops", sink.url), "event_types": ["event.created"],
                           "filters": [{"field": "data.n", "operator": "greater_than", "value": 5}]})).await;
    subscribe(
        &hub,
        json!({"url": format!("{}/b", sink.url), "event_types": ["*"], "agent_id": b}),
    )
    .await;
    subscribe(
        &hub,
        json!({"url": format!("{}/agents", sink.url), "event_types": ["agent.*"]}),
    )
    .await;
    post_event(&hub, a, json!({"level": "high", "n": 1})).await;
    post_event(&hub, a, json!({"level": "low", "n": 9})).await;
    post_event(&hub, b, json!({"level": "low", "n": 0})).await;
    hub.add_agent(
        ADMIN_TOKEN,
        json!({"type": "webhook", "name": "late", "options": {"secret": "x"}}),
    )
    .await;
    let got = sink.wait_for(4).await;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let got_now = sink.received();
    assert_eq!(got_now.len(), 4, "{got:?}");
    let path_of = |p: &str| {
        got_now
            .iter()
            .filter(|r| r.path.ends_with(p))
            .map(|r| r.json())
            .collect::<Vec<_>>()
    };
    assert_eq!(path_of("/high").len(), 1);
    assert_eq!(path_of("/high")[0]["data"]["n"], 1);
    assert_eq!(path_of("/ops")[0]["data"]["n"], 9);
    assert_eq!(path_of("/b")[0]["agent_id"], b);
    let agent_events = path_of("/agents");
    assert_eq!(agent_events[0]["event_type"], "agent.created");
    assert_eq!(agent_events[0]["data"]["agent"]["name"], "late");
}

#[actix_rt::test]
async fn private_targets_are_refused_by_default() {
    let hub = TestHub::start_with(|c| c.delivery.poll_interval_ms = 50).await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    // A subscription to it is refused when saved (tests/target_guard.rs has every form)...
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "event_types": ["event.created"]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("loopback"), "{}", r.text());
    // ...and a URL only known once rendered is refused at the send.
    hub.add_agent(
        ADMIN_TOKEN,
        json!({"type": "post", "name": "p", "source_ids": [agent],
               "options": {"post_url": "http://{{ host }}/x", "content_type": "json"}}),
    )
    .await;
    let host = sink.url.trim_start_matches("http://");
    post_event(&hub, agent, json!({"host": host})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let d = loop {
        let dead = hub
            .get("/api/deliveries?status=dead", ADMIN_TOKEN)
            .await
            .json();
        if let Some(d) = dead.as_array().unwrap().first() {
            break d.clone();
        }
        assert!(Instant::now() < deadline, "no dead delivery");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    };
    assert!(
        d["last_error"].as_str().unwrap().contains("loopback"),
        "{d}"
    );
    assert!(
        d["last_error"]
            .as_str()
            .unwrap()
            .contains("allow_private_targets"),
        "{d}"
    );
    assert!(sink.received().is_empty());
}

#[actix_rt::test]
async fn the_api_validates_and_the_test_endpoint_sends() {
    let hub = hub().await;
    let sink = Sink::start();
    for (body, field) in [
        (json!({"url": "ftp://x/y", "event_types": ["*"]}), "url"),
        (json!({"event_types": ["*"]}), "url"),
        (
            json!({"url": sink.url, "event_types": ["bad type"]}),
            "event_types",
        ),
        (json!({"url": sink.url, "event_types": []}), "event_types"),
        (
            json!({"url": sink.url, "event_types": ["*"], "payload_template": "{{ oops"}),
            "payload_template",
        ),
        (
            json!({"url": sink.url, "event_types": ["*"], "filters": [{"field": "data.x", "operator": "regex", "value": "("}]}),
            "filters",
        ),
        (
            json!({"url": sink.url, "event_types": ["*"], "signature_scheme": "md5"}),
            "signature_scheme",
        ),
        (
            json!({"url": sink.url, "event_types": ["*"], "rate_limit": "fast"}),
            "rate_limit",
        ),
        // No silent "*": the event types are asked for.
        (json!({"url": sink.url}), "event_types"),
    ] {
        let r = hub
            .post_json("/api/webhooks/outgoing", ADMIN_TOKEN, &body)
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{}",
            r.text()
        );
    }
    let sub = subscribe(&hub, json!({"url": sink.url, "event_types": ["*"], "payload_template": "{\"text\": \"{{ event_type }}: {{ data.message }}\"}"})).await;
    let r = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{}/test", sub["id"]),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], 200);
    assert_eq!(r.json()["success"], true);
    let got = sink.wait_for(1).await;
    assert_eq!(
        got[0].json(),
        json!({"text": "test.webhook: This is a test webhook from muninn."})
    );
    let types = hub
        .get("/api/webhooks/event-types", ADMIN_TOKEN)
        .await
        .json();
    let names: Vec<&str> = types["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    for n in [
        "event.created",
        "agent.created",
        "delivery.dead",
        "subscription.disabled",
        "subscription.circuit_opened",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    let paused = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{}/pause", sub["id"]),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(paused.json()["paused"], true);
}

#[actix_rt::test]
async fn the_simple_registration_api_manages_the_same_subscriptions() {
    let hub = hub().await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    let r = hub
        .post_json(
            "/webhooks/register",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "events": ["agent.created"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let list = hub.get("/webhooks", ADMIN_TOKEN).await.json();
    assert_eq!(list[0]["events"], json!(["agent.created"]));
    let r = hub
        .post_json(
            &format!("/webhooks/{id}/events"),
            ADMIN_TOKEN,
            &json!({"events": ["event.created"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    post_event(&hub, agent, json!({"x": 1})).await;
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].json()["event_type"], "event.created");
    assert_eq!(
        hub.get(&format!("/api/webhooks/outgoing/{id}"), ADMIN_TOKEN)
            .await
            .json()["event_types"],
        json!(["event.created"])
    );
    assert_eq!(
        hub.delete(&format!("/webhooks/{id}"), ADMIN_TOKEN)
            .await
            .status,
        204
    );
    assert_eq!(
        hub.get(&format!("/api/webhooks/outgoing/{id}"), ADMIN_TOKEN)
            .await
            .status,
        404
    );
}

#[actix_rt::test]
async fn a_hanging_target_delays_no_one_else_and_times_out_into_a_retry() {
    let hub = hub().await;
    let slow = Sink::start();
    let fast = Sink::start();
    slow.script([Reply::hang(Duration::from_secs(3))]);
    let agent = webhook_agent(&hub).await;
    let s = subscribe(&hub, json!({"url": slow.url, "event_types": ["event.created"], "timeout": 0.3, "retry_delay": 0.05})).await;
    subscribe(
        &hub,
        json!({"url": fast.url, "event_types": ["event.created"]}),
    )
    .await;
    post_event(&hub, agent, json!({"n": 1})).await;
    fast.wait_for(1).await;
    assert!(
        slow.received().is_empty(),
        "the fast target got its delivery while the slow one still hangs"
    );
    let d = wait_delivery_status(&hub, s["id"].as_i64().unwrap(), "delivered").await;
    assert_eq!(d["attempts"], 2);
    let detail = hub
        .get(&format!("/api/deliveries/{}", d["id"]), ADMIN_TOKEN)
        .await
        .json();
    assert!(
        detail["attempt_log"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{detail}"
    );
}

#[actix_rt::test]
async fn a_rate_limit_spaces_deliveries_and_drops_none() {
    let hub = hub().await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    subscribe(
        &hub,
        json!({"url": sink.url, "event_types": ["event.created"], "rate_limit": "2/s"}),
    )
    .await;
    for n in 0..6 {
        post_event(&hub, agent, json!({"n": n})).await;
    }
    let got = sink.wait_for(6).await;
    // A burst of 2, then 2 per second: the sixth cannot come before ~2 s.
    assert!(got[5].at.duration_since(got[0].at) >= Duration::from_millis(1800));
    let mut ns: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, [0, 1, 2, 3, 4, 5]);
}

/// A backlog many times the delivery window, released at once, is delivered in full.
/// On PostgreSQL each refill claims with `SKIP LOCKED`, which passes over the rows whose
/// outcome is being committed: a refill that met one read fewer rows than the window and
/// the subscription stopped with due deliveries left and nothing to wake it (found by
/// the benchmark: 257 of 3 000 delivered; this test got 5 to 17 of 80 before the fix).
#[actix_rt::test]
async fn a_backlog_larger_than_the_window_is_delivered_in_full_after_a_resume() {
    let hub = TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
        c.delivery.window = 4;
    })
    .await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(
        &hub,
        json!({"url": sink.url, "event_types": ["event.created"], "max_in_flight": 4}),
    )
    .await;
    let id = sub["id"].as_i64().unwrap();
    let pause = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{id}/pause"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(pause.status, 200, "{}", pause.text());
    const N: i64 = 80;
    for n in 0..N {
        post_event(&hub, agent, json!({"n": n})).await;
    }
    let resume = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{id}/resume"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    assert_eq!(resume.status, 200, "{}", resume.text());
    let got = sink.wait_for(N as usize).await;
    let mut ns: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    ns.dedup();
    assert_eq!(ns, (0..N).collect::<Vec<_>>());
}

/// Rewrites a column in the running hub's database (its SQLite file, or its PostgreSQL
/// database), as a bad restore or a hand edit would.
fn corrupt(hub: &TestHub, sql: &str) {
    use diesel::{Connection, RunQueryDsl};
    if let Some(pg) = &hub.pg {
        let mut conn = diesel::PgConnection::establish(&pg.url("hub")).unwrap();
        assert_eq!(
            diesel::sql_query(sql).execute(&mut conn).unwrap(),
            1,
            "{sql}"
        );
        return;
    }
    let path = hub.dir.path().join("muninn.db");
    let mut conn = diesel::sqlite::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::sql_query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(
        diesel::sql_query(sql).execute(&mut conn).unwrap(),
        1,
        "{sql}"
    );
}

#[actix_rt::test]
async fn a_corrupt_secrets_column_stops_the_delivery_with_its_reason_never_sends_unsigned() {
    let hub = hub().await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    let sub = subscribe(
        &hub,
        json!({"url": format!("{}/std", sink.url), "event_types": ["event.created"],
                                     "signature_scheme": "standard", "retry_count": 0}),
    )
    .await;
    let id = sub["id"].as_i64().unwrap();
    // Only an expired secret left: the hub would once have signed with nothing.
    corrupt(
        &hub,
        &format!(
            r#"UPDATE subscriptions SET secrets = '[{{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","expires_at":"2001-01-01T00:00:00"}}]' WHERE id = {id}"#
        ),
    );
    // Pausing and resuming reloads the stored row into the running webhook.
    for action in ["pause", "resume"] {
        let r = hub
            .post_json(
                &format!("/api/webhooks/outgoing/{id}/{action}"),
                ADMIN_TOKEN,
                &json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    post_event(&hub, agent, json!({"n": 1})).await;
    let d = wait_delivery_status(&hub, id, "dead").await;
    let detail = hub
        .get(&format!("/api/deliveries/{}", d["id"]), ADMIN_TOKEN)
        .await
        .json();
    let error = detail["attempt_log"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("cannot sign"), "{detail}");
    assert!(
        d["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot sign"),
        "{d}"
    );
    assert!(
        sink.received().is_empty(),
        "nothing reached the target unsigned: {:?}",
        sink.received().len()
    );
}
