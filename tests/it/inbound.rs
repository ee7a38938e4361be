//! Inbound webhooks end to end: the incoming-webhooks API, `POST /webhook/{token}`
//! and the protections on both URL forms. Every signature here is computed in the
//! test itself with the hmac/sha2/base64 crates from each sender's published format,
//! independently of the code under test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{ADMIN_TOKEN, Resp, TestHub};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const T: &str = ADMIN_TOKEN;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An agent that receives events and re-emits each payload plus `"seen": "yes"`.
async fn receiver(hub: &TestHub) -> i64 {
    hub.add_agent(
        T,
        json!({"type": "event_formatting", "name": "Receiver",
               "options": {"instructions": {"seen": "yes"}, "mode": "merge"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn create(hub: &TestHub, body: Value) -> Value {
    let r = hub.post_json("/api/webhooks/incoming", T, &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

async fn post(hub: &TestHub, token: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    hub.request(
        "POST",
        &format!("/webhook/{token}"),
        None,
        headers,
        Some(body.to_vec()),
    )
    .await
}

async fn post_json(hub: &TestHub, token: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    post(hub, token, &h, body.as_bytes()).await
}

/// Payloads of the `webhook.received` events of the admin, oldest first.
async fn received(hub: &TestHub) -> Vec<Value> {
    let r = hub
        .get("/api/events?type=webhook.received&limit=1000", T)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].clone())
        .collect()
}

#[actix_rt::test]
async fn incoming_webhook_api_and_delivery_to_the_agent() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let w = create(
        &hub,
        json!({"name": "CI", "agent_id": agent, "description": "builds"}),
    )
    .await;
    let token = w["token"].as_str().unwrap().to_string();
    // >= 32 random bytes, URL-safe.
    assert!(token.len() >= 43, "{token}");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    assert!(
        w["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/webhook/{token}"))
    );
    for k in [
        "id",
        "name",
        "agent_id",
        "description",
        "is_active",
        "transform_template",
        "created_at",
    ] {
        assert!(w.get(k).is_some(), "missing {k} in {w}");
    }
    assert_eq!(w["is_active"], json!(true));
    let id = w["id"].as_i64().unwrap();

    // JSON, form and text bodies.
    let r = post_json(&hub, &token, &[], r#"{"text": "hello", "n": 1}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["success"], json!(true));
    let r = post(
        &hub,
        &token,
        &[("content-type", "application/x-www-form-urlencoded")],
        b"a=1&b[c]=2",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        &hub,
        &token,
        &[("content-type", "text/plain")],
        b"plain words",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        received(&hub).await,
        vec![
            json!({"text": "hello", "n": 1}),
            json!({"a": "1", "b": {"c": "2"}}),
            json!({"body": "plain words"})
        ]
    );
    // The agent received them as if over a link.
    let got = hub
        .wait_payloads(
            T,
            agent,
            &[
                json!({"text": "hello", "n": 1, "seen": "yes"}),
                json!({"a": "1", "b": {"c": "2"}, "seen": "yes"}),
                json!({"body": "plain words", "seen": "yes"}),
            ],
        )
        .await;
    assert_eq!(got.len(), 3, "{got:?}");

    // Read, list, update, other verbs, unsupported types, unknown tokens.
    // The token is shown once (only its digest is stored): reads show no token or URL.
    let r = hub.get(&format!("/api/webhooks/incoming/{id}"), T).await;
    assert_eq!(r.json()["token"], json!(null));
    assert_eq!(r.json()["url"], json!(null));
    assert_eq!(r.json()["name"], json!("CI"));
    let r = hub.get("/api/webhooks/incoming", T).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = hub
        .request("GET", &format!("/webhook/{token}"), None, &[], None)
        .await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").unwrap().contains("POST"));
    let r = post(
        &hub,
        &token,
        &[("content-type", "application/octet-stream")],
        b"\x00\x01",
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "unsupported_media_type");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not supported")
    );
    let r = post_json(&hub, "whk_nope", &[], "{}").await;
    assert_eq!(r.status, 404);
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/webhooks/incoming/{id}"),
            T,
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(post_json(&hub, &token, &[], "{}").await.status, 404);
    // Another user cannot see it; a target that takes no events is refused.
    let (_, bob) = hub.add_user("bob").await;
    assert_eq!(
        hub.get(&format!("/api/webhooks/incoming/{id}"), &bob)
            .await
            .status,
        404
    );
    let hook = hub
        .add_agent(
            T,
            json!({"type": "webhook", "name": "H", "options": {"secret": "s"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            T,
            &json!({"name": "x", "agent_id": hook}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = hub.delete(&format!("/api/webhooks/incoming/{id}"), T).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        hub.get(&format!("/api/webhooks/incoming/{id}"), T)
            .await
            .status,
        404
    );
    assert_eq!(received(&hub).await.len(), 3);
}

#[actix_rt::test]
async fn transforms_render_agixt_templates_and_refuse_bad_output() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            T,
            &json!({"name": "bad", "agent_id": agent, "transform_template": "{{ data.text "}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("transform_template")
    );

    let w = create(
        &hub,
        json!({"name": "t", "agent_id": agent, "transform_template":
            "{\"message\": \"{{ data.text }}\", \"priority\": \"{{ priority | default(value='medium') }}\", \"via\": \"{{ headers['x-source'] }}\", \"q\": \"{{ query.k }}\", \"all\": {{ data | json_encode() }}{% if data.tags %}, \"tags\": [{% for t in data.tags %}\"{{ t }}\"{% if not loop.last %},{% endif %}{% endfor %}]{% endif %}}"}),
    )
    .await;
    let token = w["token"].as_str().unwrap();
    let r = hub
        .request(
            "POST",
            &format!("/webhook/{token}?k=v"),
            None,
            &[("content-type", "application/json"), ("x-source", "ci")],
            Some(br#"{"text": "hi", "tags": ["a", "b"]}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        received(&hub).await,
        vec![
            json!({"message": "hi", "priority": "medium", "via": "ci", "q": "v",
                    "all": {"text": "hi", "tags": ["a", "b"]}, "tags": ["a", "b"]})
        ]
    );

    // A template whose output is not JSON: 422 with the reason, nothing stored, logged.
    let w = create(
        &hub,
        json!({"name": "nojson", "agent_id": agent, "transform_template": "text: {{ data.text }}"}),
    )
    .await;
    let r = post_json(&hub, w["token"].as_str().unwrap(), &[], r#"{"text": "x"}"#).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["code"], "transform_failed");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not produce JSON"),
        "{}",
        r.text()
    );
    assert_eq!(received(&hub).await.len(), 1);
    let logs = wait_logs(&hub, w["id"].as_i64().unwrap(), 1).await;
    assert_eq!(logs[0]["status"], json!(422));
    assert!(
        logs[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("transform_failed")
    );
}

async fn wait_logs(hub: &TestHub, id: i64, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = hub
            .get(
                &format!("/api/webhooks/{id}/logs?webhook_type=incoming&limit=100"),
                T,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let logs = r.json().as_array().unwrap().clone();
        if logs.len() >= n || Instant::now() > deadline {
            return logs;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn size_rate_and_address_limits() {
    let hub = TestHub::start_with(|c| {
        c.inbound.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let agent = receiver(&hub).await;

    // Body size: declared and streamed (chunked, no Content-Length).
    let w = create(
        &hub,
        json!({"name": "small", "agent_id": agent, "max_body_bytes": 64}),
    )
    .await;
    let token = w["token"].as_str().unwrap();
    let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(200));
    let r = post_json(&hub, token, &[], &big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let chunks = futures_util::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(actix_web::web::Bytes::from_static(b"aaaaaaaaaa"))),
    );
    let r = awc::Client::new()
        .post(format!("{}/webhook/{token}", hub.base))
        .insert_header(("content-type", "text/plain"))
        .send_stream(chunks)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(
        post_json(&hub, token, &[], r#"{"ok": 1}"#).await.status,
        200
    );

    // Rate limit: 2 a minute, the third is 429 with Retry-After.
    let w = create(
        &hub,
        json!({"name": "slow", "agent_id": agent, "rate_limit": 2}),
    )
    .await;
    let token = w["token"].as_str().unwrap();
    assert_eq!(post_json(&hub, token, &[], "{}").await.status, 200);
    assert_eq!(post_json(&hub, token, &[], "{}").await.status, 200);
    let r = post_json(&hub, token, &[], "{}").await;
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));

    // Allowlist: v4/v6 and ranges; the client address is the socket's, or
    // X-Forwarded-For from a trusted proxy (the test client is 127.0.0.1, trusted here).
    let w = create(
        &hub,
        json!({"name": "ips", "agent_id": agent, "allowed_ips": ["203.0.113.0/24", "2001:db8::/32"]}),
    )
    .await;
    let token = w["token"].as_str().unwrap();
    assert_eq!(w["allowed_ips"], json!(["203.0.113.0/24", "2001:db8::/32"]));
    let r = post_json(&hub, token, &[], "{}").await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post_json(&hub, token, &[("x-forwarded-for", "203.0.113.7")], "{}").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post_json(&hub, token, &[("x-forwarded-for", "2001:db8::5")], "{}").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post_json(&hub, token, &[("x-forwarded-for", "198.51.100.1")], "{}").await;
    assert_eq!(r.status, 403);
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            T,
            &json!({"name": "bad", "agent_id": agent, "allowed_ips": ["300.1.1.1"]}),
        )
        .await;
    assert_eq!(r.status, 422);

    // Statistics count the rejections by reason.
    let id = w["id"].as_i64().unwrap();
    wait_logs(&hub, id, 4).await;
    let s = hub
        .get(
            &format!("/api/webhooks/{id}/statistics?webhook_type=incoming"),
            T,
        )
        .await
        .json();
    assert_eq!(s["received"], json!(4), "{s}");
    assert_eq!(s["accepted"], json!(2), "{s}");
    assert_eq!(s["rejected_by_reason"]["ip_not_allowed"], json!(2), "{s}");
    // The id of an incoming webhook names no outgoing one.
    let r = hub
        .get(&format!("/api/webhooks/{id}/logs?webhook_type=outgoing"), T)
        .await;
    assert_eq!(r.status, 404);
    let r = hub
        .get(&format!("/api/webhooks/{id}/logs?webhook_type=sideways"), T)
        .await;
    assert_eq!(r.status, 422);
}

#[actix_rt::test]
async fn untrusted_peers_cannot_claim_an_address() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let w = create(
        &hub,
        json!({"name": "ips", "agent_id": agent, "allowed_ips": ["203.0.113.0/24"]}),
    )
    .await;
    let r = post_json(
        &hub,
        w["token"].as_str().unwrap(),
        &[("x-forwarded-for", "203.0.113.7")],
        "{}",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let w = create(
        &hub,
        json!({"name": "local", "agent_id": agent, "allowed_ips": ["127.0.0.1", "::1"]}),
    )
    .await;
    assert_eq!(
        post_json(&hub, w["token"].as_str().unwrap(), &[], "{}")
            .await
            .status,
        200
    );
}

struct Signed {
    headers: Vec<(String, String)>,
}

impl Signed {
    fn refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect()
    }
}

fn github(secret: &str, body: &[u8], header: &str, prefix: bool) -> Signed {
    let sig = hex::encode(hmac(secret.as_bytes(), body));
    let v = if prefix { format!("sha256={sig}") } else { sig };
    Signed {
        headers: vec![(header.into(), v)],
    }
}

fn stripe(secret: &str, body: &[u8], t: i64) -> Signed {
    let mut data = format!("{t}.").into_bytes();
    data.extend_from_slice(body);
    let sig = hex::encode(hmac(secret.as_bytes(), &data));
    Signed {
        headers: vec![(
            "Stripe-Signature".into(),
            format!("t={t},v1={sig},v0=deadbeef"),
        )],
    }
}

fn slack(secret: &str, body: &[u8], t: i64) -> Signed {
    let mut data = format!("v0:{t}:").into_bytes();
    data.extend_from_slice(body);
    let sig = hex::encode(hmac(secret.as_bytes(), &data));
    Signed {
        headers: vec![
            ("X-Slack-Signature".into(), format!("v0={sig}")),
            ("X-Slack-Request-Timestamp".into(), t.to_string()),
        ],
    }
}

fn standard(secret: &str, id: &str, body: &[u8], t: i64) -> Signed {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut data = format!("{id}.{t}.").into_bytes();
    data.extend_from_slice(body);
    let sig = B64.encode(hmac(&key, &data));
    Signed {
        headers: vec![
            ("webhook-id".into(), id.into()),
            ("webhook-timestamp".into(), t.to_string()),
            ("webhook-signature".into(), format!("v1,AAAA v1,{sig}")),
        ],
    }
}

fn shopify(secret: &str, body: &[u8]) -> Signed {
    Signed {
        headers: vec![(
            "X-Shopify-Hmac-Sha256".into(),
            B64.encode(hmac(secret.as_bytes(), body)),
        )],
    }
}

#[actix_rt::test]
async fn every_signature_scheme_accepts_good_and_refuses_bad_requests() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let body = br#"{"event":"ping","n":1}"#;
    let tampered = br#"{"event":"ping","n":2}"#;
    let std_secret = format!("whsec_{}", B64.encode(b"0123456789abcdef01234567"));
    let other_std = format!("whsec_{}", B64.encode(b"another-secret-of-24-byt"));
    let stale = now() - 3600;
    type Sign = Box<dyn Fn(&str, &[u8], i64) -> Signed>;
    let cases: Vec<(Value, String, String, Sign, bool)> = vec![
        (
            json!({"scheme": "hmac-sha256", "secret": "gh-secret", "header": "X-Hub-Signature-256"}),
            "gh-secret".into(),
            "wrong".into(),
            Box::new(|s, b, _| github(s, b, "X-Hub-Signature-256", true)),
            false,
        ),
        (
            json!({"scheme": "hmac-sha256", "secret": "agixt-secret-value"}),
            "agixt-secret-value".into(),
            "wrong".into(),
            Box::new(|s, b, _| github(s, b, "X-Webhook-Signature", false)),
            false,
        ),
        (
            json!({"scheme": "hmac-sha256", "secret": "agent-factory-secret", "header": "X-AgentFactory-Signature"}),
            "agent-factory-secret".into(),
            "wrong".into(),
            Box::new(|s, b, _| github(s, b, "X-AgentFactory-Signature", true)),
            false,
        ),
        (
            json!({"scheme": "stripe", "secret": "whsec_stripe_test"}),
            "whsec_stripe_test".into(),
            "whsec_other".into(),
            Box::new(stripe),
            true,
        ),
        (
            json!({"scheme": "slack", "secret": "slack-signing"}),
            "slack-signing".into(),
            "wrong".into(),
            Box::new(slack),
            true,
        ),
        (
            json!({"scheme": "standard", "secret": std_secret.clone()}),
            std_secret.clone(),
            other_std.clone(),
            Box::new(|s, b, t| standard(s, "msg_test1", b, t)),
            true,
        ),
        (
            json!({"scheme": "shopify", "secret": "shopify-app-secret"}),
            "shopify-app-secret".into(),
            "wrong".into(),
            Box::new(|s, b, _| shopify(s, b)),
            false,
        ),
    ];
    let mut accepted = 0;
    for (signature, secret, wrong, sign, timed) in cases {
        let scheme = signature["scheme"].as_str().unwrap().to_string();
        let w = create(
            &hub,
            json!({"name": scheme, "agent_id": agent, "signature": signature}),
        )
        .await;
        assert_eq!(w["signature"]["scheme"], json!(scheme));
        assert!(!w.to_string().contains(&secret), "secret shown: {w}");
        let token = w["token"].as_str().unwrap();
        let good = sign(&secret, body, now());
        let r = post_json(
            &hub,
            token,
            &good.refs(),
            std::str::from_utf8(body).unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{scheme} good: {}", r.text());
        accepted += 1;
        let r = post_json(
            &hub,
            token,
            &sign(&wrong, body, now()).refs(),
            std::str::from_utf8(body).unwrap(),
        )
        .await;
        assert_eq!(r.status, 401, "{scheme} wrong secret: {}", r.text());
        let r = post_json(
            &hub,
            token,
            &good.refs(),
            std::str::from_utf8(tampered).unwrap(),
        )
        .await;
        assert_eq!(r.status, 401, "{scheme} tampered: {}", r.text());
        let r = post_json(&hub, token, &[], std::str::from_utf8(body).unwrap()).await;
        assert_eq!(r.status, 401, "{scheme} missing: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_signature");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("missing"),
            "{}",
            r.text()
        );
        if timed {
            let r = post_json(
                &hub,
                token,
                &sign(&secret, body, stale).refs(),
                std::str::from_utf8(body).unwrap(),
            )
            .await;
            assert_eq!(r.status, 401, "{scheme} stale: {}", r.text());
            assert_eq!(r.json()["error"]["code"], "stale_timestamp");
            assert!(
                r.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("stale"),
                "{}",
                r.text()
            );
        }
        // The log shows reasons, never the secret.
        let logs = wait_logs(&hub, w["id"].as_i64().unwrap(), if timed { 5 } else { 4 }).await;
        let text = Value::Array(logs.clone()).to_string();
        assert!(!text.contains(&secret), "{text}");
        assert!(text.contains("bad_signature"), "{text}");
        if timed {
            assert!(text.contains("stale_timestamp"), "{text}");
        }
    }
    assert_eq!(received(&hub).await.len(), accepted);
}

#[actix_rt::test]
async fn idempotency_keys_replay_the_first_answer() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let w = create(&hub, json!({"name": "idem", "agent_id": agent})).await;
    let token = w["token"].as_str().unwrap();
    let first = post_json(
        &hub,
        token,
        &[("Idempotency-Key", "order-1")],
        r#"{"a": 1}"#,
    )
    .await;
    assert_eq!(first.status, 200);
    let again = post_json(
        &hub,
        token,
        &[("Idempotency-Key", "order-1")],
        r#"{"a": 1}"#,
    )
    .await;
    assert_eq!((again.status, again.text()), (first.status, first.text()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = post_json(
        &hub,
        token,
        &[("Idempotency-Key", "order-2")],
        r#"{"a": 2}"#,
    )
    .await;
    assert_ne!(other.text(), first.text());
    assert_eq!(received(&hub).await, vec![json!({"a": 1}), json!({"a": 2})]);

    // Under the standard scheme, webhook-id is the key.
    let secret = format!("whsec_{}", B64.encode(b"idempotent-secret-24byte"));
    let w = create(&hub, json!({"name": "std", "agent_id": agent, "signature": {"scheme": "standard", "secret": secret}})).await;
    let token = w["token"].as_str().unwrap();
    let body = br#"{"b": 1}"#;
    let s = standard(&secret, "msg_dup", body, now());
    let a = post_json(&hub, token, &s.refs(), r#"{"b": 1}"#).await;
    let s = standard(&secret, "msg_dup", body, now());
    let b = post_json(&hub, token, &s.refs(), r#"{"b": 1}"#).await;
    assert_eq!((a.status, a.text()), (b.status, b.text()));
    assert_eq!(received(&hub).await.len(), 3);
}

#[actix_rt::test]
async fn rotation_keeps_the_old_token_for_the_grace_period() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let w = create(&hub, json!({"name": "rot", "agent_id": agent})).await;
    let id = w["id"].as_i64().unwrap();
    let old = w["token"].as_str().unwrap().to_string();
    let r = hub
        .post_json(
            &format!("/api/webhooks/incoming/{id}/rotate"),
            T,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new = r.json()["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(r.json()["previous_token_expires_at"].is_string());
    assert_eq!(post_json(&hub, &new, &[], "{}").await.status, 200);
    assert_eq!(post_json(&hub, &old, &[], "{}").await.status, 200);

    let hub = TestHub::start_with(|c| c.inbound.token_rotation_grace_seconds = 0).await;
    let agent = receiver(&hub).await;
    let w = create(&hub, json!({"name": "rot", "agent_id": agent})).await;
    let id = w["id"].as_i64().unwrap();
    let old = w["token"].as_str().unwrap().to_string();
    let r = hub
        .post_json(
            &format!("/api/webhooks/incoming/{id}/rotate"),
            T,
            &json!({}),
        )
        .await;
    let new = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(post_json(&hub, &old, &[], "{}").await.status, 404);
    assert_eq!(post_json(&hub, &new, &[], "{}").await.status, 200);
}

#[actix_rt::test]
async fn a_disabled_target_gets_its_events_when_enabled() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let w = create(&hub, json!({"name": "later", "agent_id": agent})).await;
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{agent}"),
            T,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        post_json(&hub, w["token"].as_str().unwrap(), &[], r#"{"k": 1}"#)
            .await
            .status,
        200
    );
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    assert!(hub.payloads(T, agent).await.is_empty());
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{agent}"),
            T,
            &json!({"disabled": false}),
        )
        .await;
    assert_eq!(r.status, 200);
    let got = hub
        .wait_payloads(T, agent, &[json!({"k": 1, "seen": "yes"})])
        .await;
    assert_eq!(got, vec![json!({"k": 1, "seen": "yes"})]);
}

#[actix_rt::test]
async fn huginn_urls_take_the_same_protections() {
    let hub = TestHub::start().await;
    let hook = hub
        .add_agent(
            T,
            json!({"type": "webhook", "name": "Guarded", "options": {
                "secret": "s", "rate_limit": 4, "max_body_bytes": 64,
                "allowed_ips": ["127.0.0.0/8", "::1"],
                "signature": {"scheme": "hmac-sha256", "secret": "gh", "header": "X-Hub-Signature-256"},
                "response_headers": {"Access-Control-Allow-Origin": "*"}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/users/1/web_requests/{hook}/s");
    let body = br#"{"a":1}"#;
    let sig = github("gh", body, "X-Hub-Signature-256", true);
    let mut h = sig.refs();
    h.push(("content-type", "application/json"));
    h.push(("Idempotency-Key", "k1"));
    let r = hub
        .request("POST", &path, None, &h, Some(body.to_vec()))
        .await;
    assert_eq!((r.status, r.text().as_str()), (201, "Event Created"));
    let r = hub
        .request("POST", &path, None, &h, Some(body.to_vec()))
        .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (201, "Event Created"),
        "duplicate key replays"
    );
    let r = hub
        .request(
            "POST",
            &path,
            None,
            &[
                ("content-type", "application/json"),
                ("X-Hub-Signature-256", "sha256=00"),
            ],
            Some(body.to_vec()),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = hub
        .request(
            "POST",
            &path,
            None,
            &[("content-type", "application/json")],
            Some(vec![b'a'; 100]),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = hub
        .request("POST", &path, None, &h, Some(body.to_vec()))
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // CORS preflight answers from response_headers.
    let r = hub.request("OPTIONS", &path, None, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(hub.payloads(T, hook).await, vec![json!({"a": 1})]);
    // The Huginn URL's own request log and totals.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let s = hub
            .get(
                &format!("/api/webhooks/{hook}/statistics?webhook_type=agent"),
                T,
            )
            .await
            .json();
        if s["received"].as_i64() >= Some(5) || Instant::now() > deadline {
            break s;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stats["accepted"], json!(1), "{stats}");
    assert_eq!(stats["duplicates"], json!(1), "{stats}");
    assert_eq!(
        stats["rejected_by_reason"]["bad_signature"],
        json!(1),
        "{stats}"
    );
    assert_eq!(
        stats["rejected_by_reason"]["body_too_large"],
        json!(1),
        "{stats}"
    );
    assert_eq!(
        stats["rejected_by_reason"]["rate_limited"],
        json!(1),
        "{stats}"
    );
    let logs = hub
        .get(
            &format!("/api/webhooks/{hook}/logs?webhook_type=agent&limit=2"),
            T,
        )
        .await
        .json();
    assert_eq!(logs.as_array().unwrap().len(), 2);
    assert_eq!(logs[0]["status"], json!(429));
    assert!(!logs.to_string().contains("\"gh\""));

    // Blocked address.
    let other = hub
        .add_agent(T, json!({"type": "webhook", "name": "Far", "options": {"secret": "s", "allowed_ips": "10.0.0.0/8"}}))
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .request(
            "POST",
            &format!("/users/1/web_requests/{other}/s"),
            None,
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(r.status, 403);
    // Options are checked when saved.
    let r = hub
        .post_json("/api/agents", T, &json!({"type": "webhook", "name": "Bad", "options": {"secret": "s", "signature": {"scheme": "md5", "secret": "x"}}}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

/// A stand-in for Google's siteverify: success when the token is "good"; a score for "v3".
fn recaptcha_stub() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            actix_web::HttpServer::new(|| {
                actix_web::App::new().route(
                    "/siteverify",
                    actix_web::web::post().to(|form: actix_web::web::Form<std::collections::HashMap<String, String>>| async move {
                        let ok = form.get("secret").map(String::as_str) == Some("captcha-secret");
                        let reply = match form.get("response").map(String::as_str) {
                            Some("good") if ok => json!({"success": true}),
                            Some("v3-high") if ok => json!({"success": true, "score": 0.9}),
                            Some("v3-low") if ok => json!({"success": true, "score": 0.1}),
                            _ => json!({"success": false}),
                        };
                        actix_web::HttpResponse::Ok().json(reply)
                    }),
                )
            })
            .listen(listener)
            .unwrap()
            .workers(1)
            .run()
            .await
            .unwrap();
        });
    });
    url
}

#[actix_rt::test]
async fn recaptcha_is_verified_against_the_configured_url() {
    let url = recaptcha_stub();
    let hub = TestHub::start_with(move |c| c.inbound.recaptcha_verify_url = url).await;
    let hook = hub
        .add_agent(
            T,
            json!({"type": "webhook", "name": "Form", "options": {
            "secret": "s", "recaptcha_secret": "captcha-secret", "score_threshold": 0.5}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/users/1/web_requests/{hook}/s");
    let form = |t: &str| format!("name=ada&g-recaptcha-response={t}").into_bytes();
    let ct = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(
        hub.request("POST", &path, None, &ct, Some(form("good")))
            .await
            .status,
        201
    );
    assert_eq!(
        hub.request("POST", &path, None, &ct, Some(form("v3-high")))
            .await
            .status,
        201
    );
    let r = hub
        .request("POST", &path, None, &ct, Some(form("v3-low")))
        .await;
    assert_eq!((r.status, r.text().as_str()), (401, "Not Authorized"));
    assert_eq!(
        hub.request("POST", &path, None, &ct, Some(form("bad")))
            .await
            .status,
        401
    );
    assert_eq!(
        hub.request("POST", &path, None, &ct, Some(b"name=ada".to_vec()))
            .await
            .status,
        401
    );
    // The token is not part of the event.
    assert_eq!(
        hub.payloads(T, hook).await,
        vec![json!({"name": "ada"}), json!({"name": "ada"})]
    );
}

#[actix_rt::test]
async fn preflight_on_the_token_url() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let w = create(
        &hub,
        json!({"name": "cors", "agent_id": agent,
               "response_headers": {"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Headers": "content-type"}}),
    )
    .await;
    let token = w["token"].as_str().unwrap();
    let r = hub
        .request("OPTIONS", &format!("/webhook/{token}"), None, &[], None)
        .await;
    assert_eq!(r.status, 204);
    assert!(r.header("allow").unwrap().contains("POST"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type")
    );
    let r = post_json(&hub, token, &[], "{}").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            T,
            &json!({"name": "bad", "agent_id": agent, "response_headers": {"X-A": "line\nbreak"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

/// A 2xx from `/webhook/{token}` means the event is committed and addressed to the
/// agent: after SIGKILL and a restart the token still works (the registry is rebuilt
/// from the table) and the (disabled, then enabled) agent handles every event once.
#[actix_rt::test]
async fn acknowledged_incoming_events_survive_sigkill_and_reach_the_agent() {
    use common::process::{HubProcess, client};
    const TOKEN: &str = "inbound-durability-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let env = [("MUNINN_ADMIN_TOKEN", TOKEN)];
    let hub = HubProcess::start(dir.path(), &env);
    let c = client();
    let api = |method: &str, path: &str| {
        c.request(method.parse().unwrap(), format!("{}{path}", hub.base))
            .insert_header(("Authorization", format!("Bearer {TOKEN}")))
    };
    let mut r = api("POST", "/api/agents")
        .send_json(
            &json!({"type": "event_formatting", "name": "rcv", "disabled": true,
                           "options": {"mode": "merge", "instructions": {"seen": "yes"}}}),
        )
        .await
        .unwrap();
    let agent: Value = r.json().await.unwrap();
    let agent = agent["id"].as_i64().unwrap();
    let mut r = api("POST", "/api/webhooks/incoming")
        .send_json(&json!({"name": "d", "agent_id": agent}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let w: Value = r.json().await.unwrap();
    let token = w["token"].as_str().unwrap().to_string();
    for n in 0..5 {
        let r = c
            .post(format!("{}/webhook/{token}", hub.base))
            .send_json(&json!({"n": n}))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    hub.kill();

    let hub = HubProcess::start(dir.path(), &env);
    let r = c
        .post(format!("{}/webhook/{token}", hub.base))
        .send_json(&json!({"n": 5}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the token works after a restart");
    let r = c
        .put(format!("{}/api/agents/{agent}", hub.base))
        .insert_header(("Authorization", format!("Bearer {TOKEN}")))
        .send_json(&json!({"disabled": false}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let want: Vec<Value> = (0..6).map(|n| json!({"n": n, "seen": "yes"})).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        let mut r = c
            .get(format!("{}/api/agents/{agent}/events?limit=100", hub.base))
            .insert_header(("Authorization", format!("Bearer {TOKEN}")))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        got = body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["payload"].clone())
            .collect();
        if got.len() >= want.len() {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        got, want,
        "each acknowledged event handled exactly once, in order"
    );
}

#[actix_rt::test]
async fn deleting_the_agent_retires_its_incoming_webhooks() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let w = create(&hub, json!({"name": "gone", "agent_id": agent})).await;
    let token = w["token"].as_str().unwrap();
    assert_eq!(post_json(&hub, token, &[], "{}").await.status, 200);
    assert_eq!(
        hub.delete(&format!("/api/agents/{agent}"), T).await.status,
        204
    );
    assert_eq!(post_json(&hub, token, &[], "{}").await.status, 404);
    let r = hub.get("/api/webhooks/incoming", T).await;
    assert_eq!(r.json(), json!([]));
}

/// Every answer of an incoming webhook (refusals, replays, successes) carries its
/// `response_headers` and is a line in its log with its reason; a changed webhook
/// answers the next request with its new options.
#[actix_rt::test]
async fn incoming_answers_carry_the_headers_and_are_logged_with_their_reasons() {
    let hub = TestHub::start().await;
    let agent = receiver(&hub).await;
    let w = create(
        &hub,
        json!({"name": "decorated", "agent_id": agent, "response_headers": {"X-Hook": "one"}}),
    )
    .await;
    let (id, token) = (w["id"].as_i64().unwrap(), w["token"].as_str().unwrap());
    let r = hub
        .request("GET", &format!("/webhook/{token}"), None, &[], None)
        .await;
    assert_eq!((r.status, r.header("x-hook")), (405, Some("one")));
    let r = post(
        &hub,
        token,
        &[("content-type", "application/octet-stream")],
        b"\x00",
    )
    .await;
    assert_eq!((r.status, r.header("x-hook")), (415, Some("one")));
    let key = [("Idempotency-Key", "k-1")];
    let first = post_json(&hub, token, &key, r#"{"a": 1}"#).await;
    assert_eq!((first.status, first.header("x-hook")), (200, Some("one")));
    let again = post_json(&hub, token, &key, r#"{"a": 1}"#).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("x-hook"), Some("one"));
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/webhooks/incoming/{id}"),
            T,
            &json!({"response_headers": {"X-Hook": "two"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post_json(&hub, token, &[], r#"{"a": 2}"#).await;
    assert_eq!((r.status, r.header("x-hook")), (200, Some("two")));
    assert_eq!(received(&hub).await, vec![json!({"a": 1}), json!({"a": 2})]);

    let logs = wait_logs(&hub, id, 5).await;
    let mut seen: Vec<(i64, String)> = logs
        .iter()
        .map(|l| {
            let reason = l["reason"].as_str().unwrap_or("").to_string();
            (l["status"].as_i64().unwrap(), reason)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (200, String::new()),
            (200, String::new()),
            (200, "duplicate".into()),
            (405, "method_not_allowed".into()),
            (415, "unsupported_media_type".into()),
        ],
        "{logs:?}"
    );
}
