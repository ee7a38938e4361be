//! URLs the target guard refuses at every send (loopback, private, link-local, cloud
//! metadata) are refused when they are saved too, with a 422 that says why: outgoing
//! webhooks, the registration API, post and rss agents, and scenario imports. The hub
//! here runs with the guard on (`delivery.allow_private_targets = false`, the default);
//! every other test turns it off to reach its local sink, and saving works there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

fn error(r: &common::Resp) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[actix_rt::test]
async fn guarded_targets_are_refused_when_saved() {
    let hub = TestHub::start().await;
    let cases = [
        ("http://127.0.0.1:9/hook", "(loopback)"),
        ("http://localhost:9/hook", "(loopback)"),
        ("http://10.1.2.3/hook", "(private)"),
        (
            "http://169.254.169.254/latest/meta-data",
            "(cloud metadata)",
        ),
        ("http://[::ffff:192.168.0.1]/hook", "(private)"),
    ];
    for (url, reason) in cases {
        let r = hub
            .post_json(
                "/api/webhooks/outgoing",
                ADMIN_TOKEN,
                &json!({"url": url, "event_types": ["*"]}),
            )
            .await;
        assert_eq!(r.status, 422, "{url}: {}", r.text());
        let e = error(&r);
        assert!(e.starts_with("url: refused: target"), "{url}: {e}");
        assert!(e.contains(reason), "{url}: {e}");
        assert!(
            e.contains("delivery.allow_private_targets = true"),
            "{url}: {e}"
        );
        let r = hub
            .post_json(
                "/webhooks/register",
                ADMIN_TOKEN,
                &json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(r.status, 422, "register {url}: {}", r.text());
        assert!(error(&r).contains(reason), "register {url}: {}", r.text());
    }
    assert_eq!(
        hub.get("/api/webhooks/outgoing", ADMIN_TOKEN).await.json(),
        json!([]),
        "nothing was saved"
    );

    // A public address is saved; changing it to a private one is refused and changes
    // nothing. (It only fires on dead deliveries, so nothing is sent from this test.)
    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            ADMIN_TOKEN,
            &json!({"url": "http://93.184.216.34/hook", "event_types": ["delivery.dead"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/webhooks/outgoing/{id}"),
            ADMIN_TOKEN,
            &json!({"url": "http://192.168.1.1/hook"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(error(&r).contains("(private)"), "{}", r.text());
    let r = hub
        .get(&format!("/api/webhooks/outgoing/{id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.json()["url"], "http://93.184.216.34/hook");

    // Agents: a post agent's post_url, an rss agent's url (or any of its urls).
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "post", "name": "p", "source_ids": [hook], "options": {"post_url": "http://127.0.0.1:8080/x"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        error(&r),
        "option \"post_url\": refused: target 127.0.0.1 resolves to 127.0.0.1 (loopback); set delivery.allow_private_targets = true to allow private targets"
    );
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "rss", "name": "r", "options": {"url": ["http://93.184.216.34/feed", "http://172.16.0.1/feed"]}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(error(&r).starts_with("option \"url\": refused: target 172.16.0.1"));
    // A templated URL is only known when rendered: saved, and checked at each send.
    let post = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "post", "name": "p", "source_ids": [hook], "options": {"post_url": "http://{{ host }}/x"}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{post}"),
            ADMIN_TOKEN,
            &json!({"options": {"post_url": "http://169.254.169.254/x"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(error(&r).contains("(cloud metadata)"), "{}", r.text());

    // A scenario's agent with such a URL is imported disabled, with the reason.
    let file = json!({
        "schema_version": 1, "name": "internal", "guid": "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0",
        "agents": [{"type": "Agents::PostAgent", "name": "Poster", "guid": "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1",
                    "options": {"post_url": "http://10.0.0.1/hook"}, "propagate_immediately": true}],
        "links": [], "control_links": []
    });
    let r = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, &file)
        .await;
    assert!(r.status < 300, "{}", r.text());
    let result: Value = r.json();
    assert_eq!(result["problems"][0]["option"], "post_url", "{result}");
    assert!(
        result["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("10.0.0.1 (private)"),
        "{result}"
    );
    assert_eq!(result["agents"][0]["disabled"], true, "{result}");
}
