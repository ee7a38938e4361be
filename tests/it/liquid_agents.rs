//! Agent options are Liquid, rendered with Huginn's context: `agent` is the agent that
//! created the event, `_agent_` the one rendering; a template that does not parse is a
//! 422 at save naming the option, in Liquid's terms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::json;

#[actix_rt::test]
async fn a_trigger_message_sees_the_agent_that_created_the_event() {
    let hub = TestHub::start().await;
    let hook = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "webhook", "name": "Doorbell", "options": {"secret": "s", "expected_receive_period_in_days": 1}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let trigger = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "trigger", "name": "Ring", "source_ids": [hook], "options": {
                "rules": [{"type": "regex", "path": "who", "value": "."}],
                "message": "{{ agent.name }} ({{ agent.type }}) saw {{ who | upcase }}; {{ _agent_.name }} says so",
                "expected_receive_period_in_days": 2
            }}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"who": "ada"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let want = vec![json!({"message": "Doorbell (Agents::WebhookAgent) saw ADA; Ring says so"})];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, trigger, &want).await, want);
}

#[actix_rt::test]
async fn liquid_that_does_not_parse_is_a_422_naming_the_option() {
    let hub = TestHub::start().await;
    for (options, option) in [
        (
            json!({"rules": [{"type": "regex", "path": "x", "value": "y"}], "message": "{% if x %}never closed"}),
            "options.message:",
        ),
        (
            json!({"instructions": {"title": "{{ x | default: 'a' }}", "body": "{{ x "}}),
            "options.instructions.body:",
        ),
    ] {
        let kind = if options.get("rules").is_some() {
            "trigger"
        } else {
            "event_formatting"
        };
        let r = hub
            .post_json(
                "/api/agents",
                ADMIN_TOKEN,
                &json!({"type": kind, "name": "bad", "options": options}),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text());
        let error = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(error.starts_with(option), "{error}");
        // Not tera's parser speaking ("Failed to parse ...", "tera").
        assert!(!error.contains("Failed to parse"), "{error}");
        assert!(
            !error
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| w.eq_ignore_ascii_case("tera")),
            "{error}"
        );
    }
    // Liquid's own filter syntax is accepted.
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "event_formatting", "name": "ok", "options": {"instructions": {"t": "{{ title | default: 'none' | upcase }}"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[actix_rt::test]
async fn a_webhook_response_reads_the_owners_credentials() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/credentials",
            ADMIN_TOKEN,
            &json!({"credential_name": "greeting", "credential_value": "hello from the vault"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let hook = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "webhook", "name": "Greeter", "options": {
                "secret": "s",
                "expected_receive_period_in_days": 1,
                "response": "{% credential greeting %}, {{ who }}"
            }}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"who": "ada"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.text(), "hello from the vault, ada");
}

/// Huginn's `uri_expand` spec, against a local server: redirects are followed (301, 302,
/// relative and absolute locations), `uri_expand: N` stops after N, and a host that does
/// not answer leaves the URL as it was.
#[actix_rt::test]
async fn uri_expand_follows_redirects_up_to_its_limit() {
    use common::sink::{Reply, Sink};
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let sink = Sink::start();
    let base = sink.url.trim_end_matches("/hook").to_string();
    let moved = |status: u16, to: &str| Reply {
        headers: vec![("Location".into(), to.into())],
        ..Reply::status(status)
    };
    // Instructions render in key order: `a_full` first, then `b_one`, then `c_gone`.
    sink.script([
        moved(301, "/b"),
        moved(302, &format!("{base}/c")),
        Reply::status(200),
        moved(301, "/y"),
    ]);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone", l.local_addr().unwrap())
    };
    let hook = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "webhook", "name": "Links", "options": {"secret": "s", "expected_receive_period_in_days": 1}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let expand = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "Expand", "source_ids": [hook], "options": {
                "instructions": {
                    "a_full": "{{ short | uri_expand }}",
                    "b_one": "{{ short | uri_expand: 1 }}",
                    "c_gone": "{{ gone | uri_expand }}"
                },
                "mode": "clean"
            }}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"short": format!("{base}/a"), "gone": closed}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let want = vec![json!({
        "a_full": format!("{base}/c"),
        "b_one": format!("{base}/y"),
        "c_gone": closed,
    })];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, expand, &want).await, want);
    let paths: Vec<String> = sink.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/a", "/b", "/c", "/a"]);
}

/// `uri_expand` asks through the target guard: with private targets not allowed (the
/// default), a loopback URL is not requested and comes back as it was.
#[actix_rt::test]
async fn uri_expand_does_not_reach_private_addresses_by_default() {
    use common::sink::{Reply, Sink};
    let hub = TestHub::start().await;
    let sink = Sink::start();
    sink.set_default(Reply {
        headers: vec![("Location".into(), "https://example.com/leak".into())],
        ..Reply::status(301)
    });
    let hook = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "webhook", "name": "Links", "options": {"secret": "s", "expected_receive_period_in_days": 1}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let expand = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "event_formatting", "name": "Expand", "source_ids": [hook], "options": {
                "instructions": {"expanded": "{{ short | uri_expand }}"},
                "mode": "clean"
            }}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"short": sink.url}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let want = vec![json!({"expanded": sink.url})];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, expand, &want).await, want);
    assert!(
        sink.received().is_empty(),
        "the guard let a request through"
    );
}
