//! Safe defaults of subscriptions: no signing chosen signs with Standard Webhooks and a
//! generated secret shown once; the event types are required (no silent `*`); the
//! attempt log shows every header that was sent, secrets masked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::sink::Sink;
use common::{ADMIN_TOKEN as T, TestHub};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

async fn hub() -> TestHub {
    TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        c.delivery.poll_interval_ms = 50;
    })
    .await
}

#[actix_rt::test]
async fn no_signing_chosen_signs_standard_and_the_log_shows_every_header() {
    let hub = hub().await;
    let sink = Sink::start();
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            T,
            &json!({"url": sink.url, "event_types": ["event.created"],
                    "headers": {"X-Api-Token": "tok-8d1f2a", "X-Team": "ops"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let sub = r.json();
    assert_eq!(sub["signature_scheme"], "standard", "{sub}");
    let secret = sub["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{sub}");
    let id = sub["id"].as_i64().unwrap();
    // Shown once: not in later reads or lists.
    let again = hub.get(&format!("/api/webhooks/outgoing/{id}"), T).await;
    assert!(!again.text().contains(&secret), "{}", again.text());
    assert!(
        !hub.get("/api/webhooks/outgoing", T)
            .await
            .text()
            .contains(&secret)
    );

    let agent = hub.add_webhook_agent(T).await;
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{agent}/s"),
            T,
            &json!({"n": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let got = sink.wait_for(1).await;
    let req = &got[0];
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signed = [
        req.header("webhook-id").unwrap().as_bytes(),
        b".",
        req.header("webhook-timestamp").unwrap().as_bytes(),
        b".",
        &req.body,
    ]
    .concat();
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac256(&key, &signed))
    );
    assert_eq!(req.header("webhook-signature"), Some(expected.as_str()));

    // The attempt log: every header the receiver got (but those the HTTP client adds
    // for the connection itself), with the signature and the token masked.
    let logs = format!("/api/webhooks/{id}/logs?webhook_type=outgoing");
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let l = hub.get(&logs, T).await.json();
        if let Some(first) = l.as_array().unwrap().first() {
            break first.clone();
        }
        assert!(Instant::now() < deadline, "the attempt was not logged");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    let logged = log["request_headers"].as_object().unwrap();
    let find = |name: &str| {
        logged
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let connection = [
        "host",
        "content-length",
        "date",
        "accept-encoding",
        "connection",
    ];
    for (name, value) in &req.headers {
        if connection.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        let shown = find(name).unwrap_or_else(|| panic!("{name} was sent, not logged: {log}"));
        match name.to_ascii_lowercase().as_str() {
            "webhook-signature" | "x-api-token" => assert_eq!(shown, json!("[masked]")),
            _ => assert_eq!(shown, json!(value), "{name}"),
        }
    }
    assert!(
        find("user-agent")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("muninn/"),
        "{log}"
    );
    let text = log.to_string();
    assert!(
        !text.contains("tok-8d1f2a") && !text.contains(&secret),
        "{text}"
    );
}

#[actix_rt::test]
async fn a_secret_without_a_scheme_keeps_agixt_hex_and_event_types_are_required() {
    let hub = hub().await;
    let sink = Sink::start();
    // The AGiXT document's create body, as printed: a secret, no scheme.
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            T,
            &json!({"url": sink.url, "event_types": ["chat.message.received"],
                    "is_active": true, "description": "My webhook",
                    "headers": {"X-Custom-Header": "value"}, "secret": "webhook-secret",
                    "retry_count": 3, "retry_delay": 60}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["signature_scheme"], "hex");

    for (path, body, field) in [
        (
            "/api/webhooks/outgoing",
            json!({"url": sink.url}),
            "event_types",
        ),
        ("/webhooks/register", json!({"url": sink.url}), "events"),
    ] {
        let r = hub.post_json(path, T, &body).await;
        assert_eq!(r.status, 422, "{path}: {}", r.text());
        let error: Value = r.json()["error"].clone();
        assert!(error.to_string().contains(field), "{path}: {error}");
    }
    // `["*"]` said out loud still subscribes to everything; register shows its secret.
    let r = hub
        .post_json(
            "/webhooks/register",
            T,
            &json!({"url": sink.url, "events": ["*"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["secret"].as_str().unwrap().starts_with("whsec_"));
}
