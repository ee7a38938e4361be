//! Standard Webhooks `v1a` (ed25519) end to end: a subscription signs with a key pair
//! the hub generates, the owner gets only the `whpk_` public key, a sink's captured
//! request verifies with it (ed25519-dalek here, and Python's `cryptography`, an
//! independent implementation, when it is installed); rotation signs with every key
//! in its grace period; bad key material is a 422 naming the field; an incoming
//! endpoint trusts `whpk_` keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::sink::Sink;
use common::{ADMIN_TOKEN, TestHub};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};

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
    let path = format!("/users/1/web_requests/{agent}/s");
    let r = hub.post_json(&path, ADMIN_TOKEN, &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

fn public_key(whpk: &str) -> VerifyingKey {
    let raw = B64.decode(whpk.strip_prefix("whpk_").unwrap()).unwrap();
    VerifyingKey::from_bytes(&raw.try_into().unwrap()).unwrap()
}

/// The `v1a` entries of a request's signature header and the bytes they sign.
fn v1a_entries(r: &common::sink::Received) -> (Vec<Vec<u8>>, Vec<u8>) {
    let sigs = r
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .map(|e| {
            let (v, s) = e.split_once(',').unwrap();
            assert_eq!(v, "v1a", "only v1a entries: {e}");
            B64.decode(s).unwrap()
        })
        .collect();
    let signed = [
        r.header("webhook-id").unwrap().as_bytes(),
        b".",
        r.header("webhook-timestamp").unwrap().as_bytes(),
        b".",
        &r.body,
    ]
    .concat();
    (sigs, signed)
}

fn verifies(whpk: &str, sig: &[u8], signed: &[u8]) -> bool {
    let sig = Signature::from_slice(sig).unwrap();
    public_key(whpk).verify_strict(signed, &sig).is_ok()
}

/// Python's `cryptography` (OpenSSL) verifies the signature, or None when it is not
/// installed here.
fn python_verifies(whpk: &str, sig: &[u8], signed: &[u8]) -> Option<bool> {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("python3 with cryptography is not installed: independent check skipped");
        return None;
    }
    let script = "import sys,base64\n\
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey\n\
pk=Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[1][5:]))\n\
try:\n  pk.verify(base64.b64decode(sys.argv[2]), sys.stdin.buffer.read()); print('ok')\n\
except Exception: print('bad')\n";
    let mut child = Command::new("python3")
        .args(["-c", script, whpk, &B64.encode(sig)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(signed).unwrap();
    let out = child.wait_with_output().unwrap();
    Some(String::from_utf8_lossy(&out.stdout).trim() == "ok")
}

#[actix_rt::test]
async fn a_v1a_delivery_verifies_with_the_returned_public_key() {
    let hub = hub().await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "event_types": ["event.created"], "signature_scheme": "standard-v1a"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let sub = r.json();
    assert_eq!(sub["signature_scheme"], "standard-v1a");
    assert!(
        sub.get("secret").is_none(),
        "the private key stays in the hub: {sub}"
    );
    let whpk = sub["public_key"].as_str().unwrap().to_string();
    assert!(whpk.starts_with("whpk_"), "{sub}");
    assert_eq!(sub["public_keys"], json!([whpk]));
    let shown = hub
        .get(
            &format!("/api/webhooks/outgoing/{}", sub["id"]),
            ADMIN_TOKEN,
        )
        .await
        .json();
    assert_eq!(
        shown["public_key"],
        whpk.as_str(),
        "the public key can be read again"
    );
    assert!(!shown.to_string().contains("whsk_"), "{shown}");

    post_event(&hub, agent, json!({"n": 1, "text": "héllo"})).await;
    let got = sink.wait_for(1).await;
    let (sigs, signed) = v1a_entries(&got[0]);
    assert_eq!(sigs.len(), 1);
    assert!(verifies(&whpk, &sigs[0], &signed));
    let mut tampered = signed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(!verifies(&whpk, &sigs[0], &tampered));
    if let Some(ok) = python_verifies(&whpk, &sigs[0], &signed) {
        assert!(ok, "Python's cryptography verifies the hub's v1a signature");
        assert_eq!(python_verifies(&whpk, &sigs[0], &tampered), Some(false));
    }
}

#[actix_rt::test]
async fn v1a_rotation_signs_with_the_new_and_the_old_key() {
    let hub = hub().await;
    let sink = Sink::start();
    let agent = webhook_agent(&hub).await;
    let sub = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "event_types": ["event.created"], "signature_scheme": "v1a"}),
        )
        .await
        .json();
    let old = sub["public_key"].as_str().unwrap().to_string();
    let r = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{}/rotate-secret", sub["id"]),
            ADMIN_TOKEN,
            &json!({"grace_period_seconds": 3600}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert!(answer.get("secret").is_none(), "{answer}");
    let new = answer["public_key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(answer["subscription"]["public_keys"], json!([new, old]));

    post_event(&hub, agent, json!({"n": 1})).await;
    let got = sink.wait_for(1).await;
    let (sigs, signed) = v1a_entries(&got[0]);
    assert_eq!(
        sigs.len(),
        2,
        "new and old key both sign during the grace period"
    );
    assert!(
        verifies(&new, &sigs[0], &signed),
        "the newest key signs first"
    );
    assert!(verifies(&old, &sigs[1], &signed));
    assert!(!verifies(&old, &sigs[0], &signed));
}

#[actix_rt::test]
async fn bad_key_material_is_a_422_naming_the_field() {
    let hub = hub().await;
    let svix_pk = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=";
    let svix_sk = "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg==";
    for (scheme, secret) in [
        ("standard-v1a", svix_pk),
        ("standard-v1a", "whsk_%%%"),
        ("standard-v1a", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
        ("standard", svix_sk),
    ] {
        let r = hub
            .post_json(
                "/api/webhooks/outgoing",
                ADMIN_TOKEN,
                &json!({"url": "http://127.0.0.1:9/", "event_types": ["*"], "signature_scheme": scheme, "secret": secret}),
            )
            .await;
        assert_eq!(r.status, 422, "{scheme} {secret}: {}", r.text());
        assert!(r.text().contains("secret"), "{}", r.text());
        assert!(
            !r.text().contains(&secret[5..]),
            "key material is not echoed: {}",
            r.text()
        );
    }
    // A whsk_ of the owner's own is accepted, and only its public key comes back.
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": "http://127.0.0.1:9/", "event_types": ["*"], "signature_scheme": "standard-v1a", "secret": svix_sk}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["public_key"], svix_pk);
    assert!(!r.text().contains("whsk_"), "{}", r.text());
    let r = hub
        .post_json(
            &format!("/api/webhooks/outgoing/{}/rotate-secret", r.json()["id"]),
            ADMIN_TOKEN,
            &json!({"secret": svix_pk}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("secret"), "{}", r.text());
}

#[actix_rt::test]
async fn switching_from_v1_to_v1a_brings_a_key_pair() {
    let hub = hub().await;
    let sub = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": "http://127.0.0.1:9/", "event_types": ["*"], "signature_scheme": "standard"}),
        )
        .await
        .json();
    assert!(sub["secret"].as_str().unwrap().starts_with("whsec_"));
    assert!(sub.get("public_key").is_none());
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/webhooks/outgoing/{}", sub["id"]),
            ADMIN_TOKEN,
            &json!({"signature_scheme": "standard-v1a"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert!(
        out["public_key"].as_str().unwrap().starts_with("whpk_"),
        "{out}"
    );
    assert!(out.get("secret").is_none(), "{out}");
    // Back to an HMAC scheme: the private key (never shown) is not used as an HMAC
    // secret; a new secret is generated and shown once.
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/webhooks/outgoing/{}", sub["id"]),
            ADMIN_TOKEN,
            &json!({"signature_scheme": "sha256"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert!(
        out["secret"].as_str().unwrap().starts_with("whsec_"),
        "{out}"
    );
    assert!(out.get("public_key").is_none(), "{out}");
}

#[actix_rt::test]
async fn an_incoming_endpoint_trusts_whpk_keys() {
    let hub = TestHub::start().await;
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "Receiver",
                   "options": {"instructions": {"seen": "yes"}, "mode": "merge"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let whpk = format!("whpk_{}", B64.encode(key.verifying_key().as_bytes()));
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            ADMIN_TOKEN,
            &json!({"name": "v1a", "agent_id": agent, "signature": {"scheme": "standard", "secret": "whpk_AAAA"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("signature.secret"), "{}", r.text());
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            ADMIN_TOKEN,
            &json!({"name": "v1a", "agent_id": agent, "signature": {"scheme": "standard", "secret": whpk}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    let body = br#"{"b": 1}"#;
    let ts = chrono::Utc::now().timestamp().to_string();
    let signed = [b"msg_v1a".as_slice(), b".", ts.as_bytes(), b".", body].concat();
    let good = format!("v1a,{}", B64.encode(key.sign(&signed).to_bytes()));
    let other = SigningKey::from_bytes(&[8u8; 32]);
    let forged = format!("v1a,{}", B64.encode(other.sign(&signed).to_bytes()));
    let send = |sig: String| {
        let ts = ts.clone();
        let token = token.clone();
        let hub = &hub;
        async move {
            hub.request(
                "POST",
                &format!("/webhook/{token}"),
                None,
                &[
                    ("content-type", "application/json"),
                    ("webhook-id", "msg_v1a"),
                    ("webhook-timestamp", ts.as_str()),
                    ("webhook-signature", sig.as_str()),
                ],
                Some(body.to_vec()),
            )
            .await
        }
    };
    let r = send(forged).await;
    assert_eq!(
        r.status,
        401,
        "another key's signature is refused: {}",
        r.text()
    );
    let r = send(format!("{} {good}", "v1a,AAAA")).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
