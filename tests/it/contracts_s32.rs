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

/// AGiXT's debugging section posts to `/api/webhook/{id}` with the API key; muninn's
/// incoming webhooks receive at `/webhook/{token}`, and the 404 says so.
#[actix_rt::test]
async fn the_agixt_debugging_route_says_where_incoming_webhooks_receive() {
    let hub = TestHub::start().await;
    let r = hub
        .request(
            "POST",
            "/api/webhook/your-webhook-id",
            Some(ADMIN_TOKEN),
            &[("content-type", "application/json")],
            Some(br#"{"message": "Test message", "data": {"key": "value"}}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let error = &r.json()["error"];
    assert_eq!(error["code"], "route_not_found");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("/webhook/<token>"), "{message}");
    // Other unknown routes keep the plain answer.
    let r = hub.get("/api/nothing-here", ADMIN_TOKEN).await;
    assert_eq!(
        r.json()["error"]["message"],
        "no route for GET /api/nothing-here"
    );
}

/// The AGiXT document prints `webhook_type` as required; a reader who leaves it out
/// while asking about an outgoing webhook is told what to add.
#[actix_rt::test]
async fn logs_without_webhook_type_for_an_outgoing_webhook_say_what_to_add() {
    let hub = TestHub::start().await;
    let created = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": "https://example.com/webhook", "event_types": ["agent.created"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_i64().unwrap();
    for what in ["logs", "statistics"] {
        let r = hub
            .get(&format!("/api/webhooks/{id}/{what}"), ADMIN_TOKEN)
            .await;
        assert_eq!(r.status, 404, "{what}: {}", r.text());
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("webhook_type=outgoing"),
            "{what}: {message}"
        );
        let r = hub
            .get(
                &format!("/api/webhooks/{id}/{what}?webhook_type=outgoing"),
                ADMIN_TOKEN,
            )
            .await;
        assert_eq!(r.status, 200, "{what}: {}", r.text());
    }
    // Asked for explicitly, an incoming webhook that is not there is a plain 404.
    let r = hub
        .get(
            &format!("/api/webhooks/{id}/logs?webhook_type=incoming"),
            ADMIN_TOKEN,
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(
        !r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhook_type"),
        "{}",
        r.text()
    );
}

/// Huginn's guide prints `expected_receive_period_in_days` as a number, and any number
/// is accepted: a huge one means "always working once it received", and reading the
/// agent (alone, or in the admin's list of everyone's agents) is not a dropped
/// connection.
#[actix_rt::test]
async fn a_huge_expected_receive_period_does_not_break_reading_agents() {
    let hub = TestHub::start().await;
    let (_, bob) = hub.add_user("bob").await;
    let mut ids = Vec::new();
    for days in [json!(1e308), json!(i64::MAX)] {
        let agent = hub
            .add_agent(
                &bob,
                json!({"type": "webhook", "name": "huge", "options": {"secret": "s", "expected_receive_period_in_days": days}}),
            )
            .await;
        ids.push(agent["id"].as_i64().unwrap());
    }
    for id in &ids {
        let r = hub
            .request(
                "POST",
                &format!("/users/2/web_requests/{id}/s"),
                None,
                &[("content-type", "application/json")],
                Some(b"{}".to_vec()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = hub.get(&format!("/api/agents/{id}"), &bob).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["working"], true, "{}", r.text());
    }
    for path in ["/api/agents", "/agents.json"] {
        let r = hub.get(path, ADMIN_TOKEN).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json().as_array().unwrap().len(), 2, "{path}");
    }
}

/// A liquid_output page's `event_limit` ("15 minutes", "1 day") takes any integer: a
/// span past the calendar's ends shows every event (or none when negative) instead
/// of a 503.
#[actix_rt::test]
async fn a_liquid_page_with_an_event_limit_past_the_calendar_is_served() {
    let hub = TestHub::start().await;
    let source = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let r = hub
        .request(
            "POST",
            &format!("/users/1/web_requests/{source}/s"),
            None,
            &[("content-type", "application/json")],
            Some(br#"{"name": "Ada"}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 201);
    for (limit, want) in [
        ("99999999999 days", "n=1"),
        ("9223372036854775807 seconds", "n=1"),
        ("-99999999999 days", "n=0"),
    ] {
        let page = hub
            .add_agent(
                ADMIN_TOKEN,
                json!({"type": "liquid_output", "name": "p", "source_ids": [source],
                       "options": {"secret": "pk", "expected_receive_period_in_days": 2, "mode": "Last X events",
                                   "event_limit": limit, "content": "n={{ events.size }}"}}),
            )
            .await;
        let path = format!("/users/1/web_requests/{}/pk.txt", page["id"]);
        let r = hub.request("GET", &path, None, &[], None).await;
        assert_eq!(r.status, 200, "{limit}: {}", r.text());
        assert_eq!(r.text(), want, "{limit}");
    }
}

/// Huginn's guide maps a payload field to `pubDate`; a date RFC 2822 cannot write (a
/// year past 9999 or before 0) falls back to the event's time instead of a 500, and
/// days have two digits, as Ruby's `rfc2822` (Huginn's feeds) writes them.
#[actix_rt::test]
async fn a_feed_pub_date_out_of_rfc2822_range_falls_back_to_the_event_time() {
    let hub = TestHub::start().await;
    let source = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let feed = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "data_output", "name": "feed", "source_ids": [source],
                   "options": {"secrets": ["fk"], "expected_receive_period_in_days": 2,
                               "template": {"item": {"title": "{{ n }}", "pubDate": "{{ date }}"}}}}),
        )
        .await;
    for (n, date) in [
        (1, "+20000-01-01"),
        (2, "-0001-01-01T00:00:00Z"),
        (3, "2014-11-05 16:47:49 +0530"),
    ] {
        let r = hub
            .request(
                "POST",
                &format!("/users/1/web_requests/{source}/s"),
                None,
                &[("content-type", "application/json")],
                Some(json!({"n": n, "date": date}).to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let path = format!("/users/1/web_requests/{}/fk", feed["id"]);
    // The feed shows what its sources emitted once the events have reached it.
    let mut items = Vec::new();
    for _ in 0..200 {
        let r = hub
            .request("GET", &format!("{path}.json"), None, &[], None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        items = r.json()["items"].as_array().unwrap().clone();
        if items.len() == 3 {
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(items.len(), 3, "{items:?}");
    let by_title = |t: &str| {
        items
            .iter()
            .find(|i| i["title"] == t)
            .unwrap_or_else(|| panic!("no item {t}: {items:?}"))["pubDate"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(by_title("3"), "Wed, 05 Nov 2014 16:47:49 +0530");
    for t in ["1", "2"] {
        let date = by_title(t);
        let parsed = chrono::DateTime::parse_from_rfc2822(&date)
            .unwrap_or_else(|e| panic!("{t}: {date:?}: {e}"));
        assert!(
            (chrono::Utc::now() - parsed.to_utc()).num_seconds().abs() < 3600,
            "{t}: {date}"
        );
    }
    let r = hub
        .request("GET", &format!("{path}.xml"), None, &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The AI Agent API document's receivers check a shared `X-Webhook-Token` header; the
/// registration route takes the headers to send, checked as the full API checks them.
#[actix_rt::test]
async fn register_sends_the_headers_its_receivers_check() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = common::sink::Sink::start();
    let r = hub
        .post_json(
            "/webhooks/register",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "events": ["agent.created"], "payload_format": "event",
                    "headers": {"X-Webhook-Token": "shared-secret"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = hub
        .post_json(
            "/webhooks/register",
            ADMIN_TOKEN,
            &json!({"url": sink.url, "events": ["x"], "headers": {"Bad Header": "x"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("Bad Header"), "{}", r.text());
    hub.add_agent(
        ADMIN_TOKEN,
        json!({"type": "manual_event", "name": "Personality", "options": {}}),
    )
    .await;
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].header("x-webhook-token"), Some("shared-secret"));
    assert_eq!(got[0].json()["event"], "agent.created");
}

/// An incoming webhook's `max_body_bytes` takes any positive number: one beyond what a
/// signed 64-bit column holds is kept as the largest it holds, and the webhook works,
/// rather than being saved (201) and then answering every request 503.
#[actix_rt::test]
async fn an_incoming_webhook_with_a_limit_beyond_i64_still_receives() {
    let hub = TestHub::start().await;
    for limit in [json!(u64::MAX), json!(9_223_372_036_854_775_808_u64)] {
        let (id, token) = incoming(&hub, json!({"name": "big", "max_body_bytes": limit})).await;
        let r = hub
            .get(&format!("/api/webhooks/incoming/{id}"), ADMIN_TOKEN)
            .await;
        assert_eq!(r.json()["max_body_bytes"], i64::MAX, "{}", r.text());
        let r = hub
            .request(
                "POST",
                &format!("/webhook/{token}"),
                None,
                &[("content-type", "application/json")],
                Some(b"{}".to_vec()),
            )
            .await;
        assert_eq!(r.status, 200, "{limit}: {}", r.text());
    }
}

/// A webhook agent's protection options (Huginn's guide prints the agent's options; the
/// protections are muninn's) are refused with the option named once.
#[actix_rt::test]
async fn a_webhook_agents_bad_protection_option_is_named_once() {
    let hub = TestHub::start().await;
    for (option, value, want) in [
        (
            "rate_limit",
            json!(-1),
            "option \"rate_limit\" must be a number of requests per minute",
        ),
        (
            "max_body_bytes",
            json!(0),
            "option \"max_body_bytes\" must be a positive number of bytes",
        ),
        (
            "allowed_ips",
            json!(["1.2.3.4/33"]),
            "option \"allowed_ips\" \"1.2.3.4/33\" is not",
        ),
        (
            "signature",
            json!({"scheme": "md5", "secret": "x"}),
            "option \"signature\" signature.scheme \"md5\" is not known",
        ),
    ] {
        let r = hub
            .post_json(
                "/api/agents",
                ADMIN_TOKEN,
                &json!({"type": "webhook", "name": "w", "options": {"secret": "s", option: value}}),
            )
            .await;
        assert_eq!(r.status, 422, "{option}: {}", r.text());
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(want), "{option}: {message}");
    }
}

/// TagoRUN's and AGiXT's template objects are user input: one with thousands of
/// templated strings is refused at save, naming the bound, instead of keeping a worker
/// compiling for minutes (tera's cost per template grows with those already held).
#[actix_rt::test]
async fn a_template_object_with_too_many_templated_strings_is_a_422() {
    let hub = TestHub::start().await;
    let wide: serde_json::Map<String, Value> = (0..1001)
        .map(|i| (format!("k{i}"), json!("{{ data.a }}-{{ data.b }}")))
        .collect();
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": "https://example.com/hook", "event_types": ["x"], "payload_template": wide}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("more than 1000 templated strings"),
        "{}",
        r.text()
    );
    let agent = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "r", "options": {"instructions": {"a": "b"}}}),
        )
        .await;
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            ADMIN_TOKEN,
            &json!({"name": "wide", "agent_id": agent["id"], "transform_template": wide}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("more than 1000 templated strings"),
        "{}",
        r.text()
    );
    // A template object of a usual size is kept.
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": "https://example.com/hook", "event_types": ["x"],
                    "payload_template": {"id": "{{event.id}}", "who": "{{ user.name }} <{{ user.email }}>"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}
