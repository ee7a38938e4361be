//! The email family against a local SMTP sink, through the real server: an email
//! agent mails each received event (rendered subject/body, recipients defaulting to
//! the owner, content types), a refused send is retried then delivered, email_digest
//! mails everything it collected in one message on run, digest emits its event, and
//! the option cases from Huginn's specs (fixtures/email/cases.json).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::smtp::SmtpSink;
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

fn cases() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/email/cases.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn hub_with(sink: &SmtpSink) -> TestHub {
    let port = sink.port;
    TestHub::start_with(move |c| {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.tls = muninn::config::SmtpTls::None;
        c.smtp.from = "Huginn <hub@example.com>".into();
        c.smtp.retry_base_ms = 100;
        c.smtp.max_attempts = 3;
    })
    .await
}

/// A user with an address, and its token.
async fn bob(hub: &TestHub) -> String {
    let r = hub
        .post_json(
            "/api/users",
            ADMIN_TOKEN,
            &json!({"name": "bob", "email": "bob@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["email"], "bob@example.com");
    r.json()["token"].as_str().unwrap().to_string()
}

async fn agent(hub: &TestHub, token: &str, body: Value) -> i64 {
    hub.add_agent(token, body).await["id"].as_i64().unwrap()
}

async fn logs(hub: &TestHub, token: &str, id: i64) -> Vec<String> {
    hub.get(&format!("/api/agents/{id}/logs"), token)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_log(hub: &TestHub, token: &str, id: i64, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let l = logs(hub, token, id).await;
        if l.iter().any(|m| m.contains(needle)) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no log containing {needle:?}: {l:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The text of the part with this content type (or of the whole single-part body).
fn part(mail: &common::smtp::Mail, content_type: &str) -> String {
    let decoded = mail.decoded();
    let at = decoded
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part: {decoded}"));
    let rest = &decoded[at..];
    let body = rest.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    body.split("\r\n--").next().unwrap_or("").trim().to_string()
}

#[actix_rt::test]
async fn email_agents_send_huginns_spec_cases() {
    let sink = SmtpSink::start();
    let hub = hub_with(&sink).await;
    let token = bob(&hub).await;
    let hook = agent(
        &hub,
        &token,
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await;
    let mut expected = 0;
    for case in cases()["email"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let id = agent(&hub, &token, json!({"type": "Agents::EmailAgent", "name": name, "source_ids": [hook], "options": case["options"]})).await;
        hub.send_to_webhook(&token, hook, &case["event"]).await;
        let want_to: Vec<&str> = case["to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        expected += want_to.len();
        let mails = sink.wait_for(expected).await;
        let mine = &mails[expected - want_to.len()..expected];
        let mut got_to: Vec<String> = mine.iter().flat_map(|m| m.to.clone()).collect();
        got_to.sort();
        assert_eq!(got_to, want_to, "{name}");
        let m = &mine[0];
        assert_eq!(m.from, "hub@example.com", "{name}");
        assert_eq!(
            m.header("Subject").as_deref(),
            case["subject"].as_str(),
            "{name}"
        );
        if let Some(text) = case["text"].as_str() {
            assert_eq!(part(m, "text/plain"), text, "{name}");
        }
        if let Some(html) = case["html"].as_str() {
            assert!(
                part(m, "text/html").contains(html),
                "{name}: {}",
                part(m, "text/html")
            );
        }
        match case["content_type"].as_str() {
            Some(ct) => {
                assert_eq!(m.header("Content-Type").as_deref(), Some(ct), "{name}");
            }
            None => assert!(
                m.header("Content-Type")
                    .unwrap()
                    .starts_with("multipart/alternative"),
                "{name}"
            ),
        }
        wait_log(&hub, &token, id, &format!("Sent mail to {}", want_to[0])).await;
        // The agent is no longer sending to the next case's events.
        let r = hub
            .send_json(
                "PATCH",
                &format!("/api/agents/{id}"),
                &token,
                &json!({"disabled": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for case in cases()["invalid"].as_array().unwrap() {
        let r = hub
            .post_json(
                "/api/agents",
                &token,
                &json!({"type": case["type"], "name": "bad", "options": case["options"]}),
            )
            .await;
        assert_eq!(r.status, 422, "{case}");
        let err = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            err.contains(case["error"].as_str().unwrap()),
            "{case}: {err}"
        );
    }
}

#[actix_rt::test]
async fn a_refused_send_is_retried_then_delivered_and_a_final_refusal_is_logged() {
    let sink = SmtpSink::start();
    let hub = hub_with(&sink).await;
    let token = bob(&hub).await;
    let hook = agent(
        &hub,
        &token,
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await;
    let mail = agent(
        &hub,
        &token,
        json!({"type": "email", "name": "m", "source_ids": [hook],
        "options": {"subject": "Alert: {{ title }}", "expected_receive_period_in_days": 1}}),
    )
    .await;
    sink.refuse_next(2);
    hub.send_to_webhook(&token, hook, &json!({"title": "disk full"}))
        .await;
    let mails = sink.wait_for(1).await;
    assert_eq!(sink.refused(), 2);
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("Alert: disk full")
    );
    assert_eq!(mails[0].to, vec!["bob@example.com"]);
    let l = wait_log(
        &hub,
        &token,
        mail,
        "Sent mail to bob@example.com with event",
    )
    .await;
    assert!(
        l.iter()
            .any(|m| m.contains("(451): 4.3.0 Try again later") && m.contains("attempt 1 of 3")),
        "{l:?}"
    );

    // A 5xx answer is final: one attempt, an error log, nothing delivered.
    sink.refuse_with(1, "550 5.1.1 No such user");
    hub.send_to_webhook(&token, hook, &json!({"title": "second"}))
        .await;
    let l = wait_log(&hub, &token, mail, "gave up after 1 attempt").await;
    assert!(
        l.iter().any(|m| m.contains("(550): 5.1.1 No such user")),
        "{l:?}"
    );
    assert_eq!(sink.mails().len(), 1);
    let status = hub.get(&format!("/api/agents/{mail}"), &token).await.json();
    assert_eq!(
        status["working"], false,
        "an error log means not working: {status}"
    );
}

#[actix_rt::test]
async fn email_digest_sends_one_mail_per_run_and_digest_emits_one_event() {
    let sink = SmtpSink::start();
    let hub = hub_with(&sink).await;
    let token = bob(&hub).await;
    let hook = agent(
        &hub,
        &token,
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await;
    let dig = agent(&hub, &token, json!({"type": "Agents::EmailDigestAgent", "name": "d", "source_ids": [hook],
        "options": {"subject": "You have some notifications!", "headline": "Your notifications:", "expected_receive_period_in_days": "2"}})).await;
    let digest = agent(&hub, &token, json!({"type": "digest", "name": "g", "source_ids": [hook],
        "options": {"message": "{{ events | map: 'message' | join: ', ' }}", "expected_receive_period_in_days": "2"}})).await;
    // Nothing collected: a run sends nothing and emits nothing.
    for id in [dig, digest] {
        assert_eq!(
            hub.post_json(&format!("/api/agents/{id}/run"), &token, &json!({}))
                .await
                .status
                / 100,
            2
        );
    }
    for p in [
        json!({"message": "hi!", "data": "one"}),
        json!({"data": "Something else"}),
    ] {
        hub.send_to_webhook(&token, hook, &p).await;
    }
    // Both payloads are held before the run.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = hub.get(&format!("/api/agents/{dig}"), &token).await.json();
        let b = hub
            .get(&format!("/api/agents/{digest}"), &token)
            .await
            .json();
        if a["memory"]["queue"].as_array().map(Vec::len) == Some(2)
            && b["memory"]["queue"].as_array().map(Vec::len) == Some(2)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{a} {b}");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(sink.mails().is_empty(), "the digest waits for its run");
    for id in [dig, digest] {
        assert_eq!(
            hub.post_json(&format!("/api/agents/{id}/run"), &token, &json!({}))
                .await
                .status
                / 100,
            2
        );
    }
    let mails = sink.wait_for(1).await;
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("You have some notifications!")
    );
    assert_eq!(
        part(&mails[0], "text/plain"),
        "Your notifications:\r\n\r\nhi!\r\n  data: one\r\n\r\nEvent\r\n  data: Something else"
    );
    let got = hub.wait_payloads(&token, digest, &[json!({"events": [{"message": "hi!", "data": "one"}, {"data": "Something else"}], "message": "hi!, "})]).await;
    assert_eq!(got.len(), 1);
    // Emptied: the next run sends nothing more.
    hub.post_json(&format!("/api/agents/{dig}/run"), &token, &json!({}))
        .await;
    wait_log(
        &hub,
        &token,
        dig,
        "Sent mail to bob@example.com with events",
    )
    .await;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails().len(), 1);
}

#[actix_rt::test]
async fn without_smtp_an_email_agent_saves_and_its_mail_fails_with_a_clear_log() {
    let hub = TestHub::start().await;
    let r = hub
        .post_json(
            "/api/users",
            ADMIN_TOKEN,
            &json!({"name": "amy", "email": "not an address"}),
        )
        .await;
    assert_eq!(r.status, 422);
    let (_, token) = hub.add_user("amy").await;
    let hook = agent(
        &hub,
        &token,
        json!({"type": "webhook", "name": "in", "options": {"secret": "s"}}),
    )
    .await;
    let mail = agent(
        &hub,
        &token,
        json!({"type": "email", "name": "m", "source_ids": [hook],
        "options": {"subject": "s", "expected_receive_period_in_days": 1}}),
    )
    .await;
    hub.send_to_webhook(&token, hook, &json!({"x": 1})).await;
    let l = wait_log(&hub, &token, mail, "SMTP is not configured").await;
    assert!(
        l.iter()
            .any(|m| m.contains("[smtp]") && m.contains("MUNINN_SMTP_HOST")),
        "{l:?}"
    );
    // The owner gets an address through PATCH /api/me.
    let r = hub
        .send_json(
            "PATCH",
            "/api/me",
            &token,
            &json!({"email": "amy@example.com"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["email"], "amy@example.com");
}
