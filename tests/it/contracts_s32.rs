//! What an outside reviewer of the public contracts met when sending their requests,
//! and hostile variants of them, against the real server: each test is one finding
//! of session 32's probe, asserting what the user sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// An incoming webhook (`/webhook/{token}`) with its answer's token.
async fn incoming(hub: &TestHub, body: Value) -> (i64, String) {
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "r", "options": {"instructions": {"a": "b"}}}),
        )
        .await;
    let mut body = body;
    body["agent_id"] = agent["id"].clone();
    let r = hub
        .post_json("/api/webhooks/incoming", ADMIN_TOKEN, &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    (
        j["id"].as_i64().unwrap(),
        j["token"].as_str().unwrap().to_string(),
    )
}

/// A Standard Webhooks sender's timestamp is any text it likes: one at the ends of
/// the 64-bit range is a clear 401, not an overflow that drops the connection.
#[actix_rt::test]
async fn an_extreme_signature_timestamp_is_a_401_not_a_dropped_connection() {
    let hub = TestHub::start().await;
    let (_, token) = incoming(
        &hub,
        json!({"name": "sig", "signature": {"scheme": "standard", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}}),
    )
    .await;
    for ts in ["-9223372036854775808", "9223372036854775807"] {
        let r = hub
            .request(
                "POST",
                &format!("/webhook/{token}"),
                None,
                &[
                    ("content-type", "application/json"),
                    ("webhook-id", "msg_1"),
                    ("webhook-timestamp", ts),
                    ("webhook-signature", "v1,AAAA"),
                ],
                Some(b"{}".to_vec()),
            )
            .await;
        assert_eq!(r.status, 401, "{ts}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "stale_timestamp", "{ts}");
    }
}
