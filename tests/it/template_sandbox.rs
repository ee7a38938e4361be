//! Issue 24's template reproductions against the real hub: each hostile template is
//! refused at save with a 422 naming the option and the bound, or fails at render time
//! with an error naming the bound, while the hub keeps answering another user. The tera
//! sandbox is reached through subscription payload templates; agent options are Liquid.

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

const MACRO: &str = "{% macro f(n) %}{{ self::f(n=n+1) }}{% endmacro f %}{{ self::f(n=0) }}";
const INCLUDE: &str = r#"{% include "0#instructions.m" %}"#;
const GET_ENV: &str = r#"{{ get_env(name="MUNINN_ADMIN_TOKEN") }}"#;
// Agent options are Liquid: these two run in agents and must be stopped by its limits.
const DOUBLING: &str = r#"{% assign s = "x" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}"#;
const NESTED: &str = "{% for i in (1..10000) %}{% for j in (1..10000) %}{% for k in (1..10000) %}{% endfor %}{% endfor %}{% endfor %}";

async fn refused(hub: &TestHub, token: &str, path: &str, body: Value, want: &[&str]) {
    let r = hub.post_json(path, token, &body).await;
    assert_eq!(r.status, 422, "{path} {body}: {}", r.text());
    let text = r.text();
    for w in want {
        assert!(text.contains(w), "{path}: {text:?} should mention {w:?}");
    }
}

#[actix_rt::test]
async fn hostile_templates_are_refused_at_save() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let (_, token) = hub.add_user("mallory").await;
    // tera (the sandboxed language) is what subscription payload templates take.
    for (source, why) in [
        (MACRO, "macros"),
        (INCLUDE, "include"),
        (GET_ENV, "get_env"),
    ] {
        let body = json!({"name": "x", "url": "http://127.0.0.1:9/x", "event_types": ["event.created"],
                          "payload_template": {"m": source}});
        refused(
            &hub,
            &token,
            "/api/webhooks/outgoing",
            body,
            &["payload_template.m", why],
        )
        .await;
    }
    // Agent options are Liquid: these sources do not parse there.
    for source in [MACRO, GET_ENV] {
        let body = json!({"type": "event_formatting", "name": "x",
                          "options": {"instructions": {"m": source}}});
        refused(
            &hub,
            &token,
            "/api/agents",
            body,
            &["options.instructions.m:"],
        )
        .await;
        let body = json!({"type": "event_formatting", "options": {"instructions": {"m": source}},
                          "event": {"a": 1}});
        refused(
            &hub,
            &token,
            "/api/agents/dry_run",
            body,
            &["options.instructions.m:"],
        )
        .await;
    }
    let body = json!({"type": "data_output", "name": "feed",
                      "options": {"secrets": ["s"], "template": {"title": GET_ENV, "item": {"title": "x"}}}});
    refused(
        &hub,
        &token,
        "/api/agents",
        body,
        &["options.template.title:"],
    )
    .await;
    let body =
        json!({"type": "webhook", "name": "w", "options": {"secret": "s", "response": MACRO}});
    refused(&hub, &token, "/api/agents", body, &["options.response:"]).await;
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(20_000), ")".repeat(20_000));
    let body =
        json!({"type": "event_formatting", "name": "x", "options": {"instructions": {"m": deep}}});
    refused(
        &hub,
        &token,
        "/api/agents",
        body,
        &["options.instructions.m:"],
    )
    .await;
    // The hub is still up and nothing was stored.
    assert_eq!(hub.get("/healthz", ADMIN_TOKEN).await.status, 200);
    let agents = hub.get("/api/agents", &token).await.json();
    assert_eq!(agents.as_array().map(Vec::len), Some(0), "{agents}");
}

/// Polls an agent's log until a line contains one of `want`; returns the lines seen last.
async fn wait_log(hub: &TestHub, token: &str, agent: i64, want: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = hub
            .get(&format!("/api/agents/{agent}/logs"), token)
            .await
            .json();
        let text = logs.to_string();
        if want.iter().any(|w| text.contains(w)) || Instant::now() > deadline {
            return logs;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn runaway_templates_fail_at_render_and_other_users_are_served() {
    let hub = TestHub::start().await;
    let (uid, token) = hub.add_user("mallory").await;
    let (_, other) = hub.add_user("alice").await;
    let hook = hub
        .add_agent(
            &token,
            json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let fmt = |name: &str, source: &str| {
        json!({"type": "event_formatting", "name": name, "source_ids": [hook],
               "options": {"instructions": {"m": source}}})
    };
    let doubling = hub.add_agent(&token, fmt("doubling", DOUBLING)).await["id"]
        .as_i64()
        .unwrap();
    let nested = hub.add_agent(&token, fmt("nested", NESTED)).await["id"]
        .as_i64()
        .unwrap();
    // A webhook agent whose response runs on an unauthenticated request.
    let answer = hub
        .add_agent(
            &token,
            json!({"type": "webhook", "name": "answer", "options": {"secret": "s", "response": NESTED}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();

    let post = |agent: i64| {
        let hub = &hub;
        async move {
            hub.request(
                "POST",
                &format!("/users/{uid}/web_requests/{agent}/s"),
                None,
                &[("content-type", "application/json")],
                Some(br#"{"x": 1}"#.to_vec()),
            )
            .await
        }
    };
    let hostile = async {
        assert_eq!(post(hook).await.status, 201);
        let r = post(answer).await;
        // The event is created; the failed response is logged, not sent to the caller.
        assert_eq!((r.status, r.text()), (201, "Event Created".to_string()));
    };
    let bystander = async {
        for _ in 0..5 {
            let started = Instant::now();
            assert_eq!(hub.get("/healthz", &other).await.status, 200);
            assert_eq!(hub.get("/api/agents", &other).await.status, 200);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the hub stalled for another user"
            );
            actix_rt::time::sleep(Duration::from_millis(200)).await;
        }
    };
    futures_util::join!(hostile, bystander);

    let logs = wait_log(&hub, &token, doubling, &["limit"]).await;
    assert!(logs.to_string().contains("instructions.m: "), "{logs}");
    // Whichever of the work and time bounds breaks first (unoptimised builds are slow).
    let bounds = ["limit"];
    let logs = wait_log(&hub, &token, nested, &bounds).await;
    let text = logs.to_string();
    assert!(text.contains("instructions.m: "), "{logs}");
    assert!(bounds.iter().any(|b| text.contains(b)), "{logs}");
    let logs = wait_log(&hub, &token, answer, &bounds).await;
    let text = logs.to_string();
    assert!(text.contains("response"), "{logs}");
    assert!(bounds.iter().any(|b| text.contains(b)), "{logs}");
    assert_eq!(hub.get("/healthz", &other).await.status, 200);
}
