//! The jabber agent through the real server, against `FakeXmpp` — a scripted XMPP
//! server in tests/common/xmpp.rs, not a real one: each event received becomes one
//! `chat` message stanza to the receiver, after STARTTLS (trusting the fake's
//! certificate through `[jabber] extra_ca_files`), SASL PLAIN and resource binding,
//! with the password from a credential; a wrong password, an untrusted certificate, a
//! server without STARTTLS and the target guard are each an error log that makes the
//! agent not working, and no message. With `connect_to_receiver`, the agent joins the
//! receiver as a chat room while it is enabled and emits an event per thing said in it
//! (Huginn's event shape), and leaves when it is disabled or deleted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::xmpp::{FakeXmpp, ROOM_LIVE, Received};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// A hub that may reach 127.0.0.1 and trusts `fake`'s certificate (when `trust`).
async fn hub_for(fake: &FakeXmpp, trust: bool, dir: &tempfile::TempDir) -> TestHub {
    let pem = dir.path().join("fake-xmpp-ca.pem");
    std::fs::write(&pem, &fake.cert_pem).unwrap();
    TestHub::start_with(|c| {
        c.delivery.allow_private_targets = true;
        if trust {
            c.jabber.extra_ca_files = vec![pem];
        }
    })
    .await
}

async fn post_event(hub: &TestHub, hook: i64, payload: &Value) {
    let me = hub.get("/api/me", ADMIN_TOKEN).await.json();
    let r = hub
        .post_json(
            &format!("/users/{}/web_requests/{hook}/s", me["id"]),
            ADMIN_TOKEN,
            payload,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

async fn jabber(hub: &TestHub, fake: &FakeXmpp, hook: i64, extra: Value) -> i64 {
    let mut options = json!({
        "jabber_server": "127.0.0.1", "jabber_port": fake.port.to_string(),
        "jabber_sender": "foo@localhost", "jabber_receiver": "bar@localhost",
        "jabber_password": "password", "message": "Warning! {{title}} - {{url}}",
        "expected_receive_period_in_days": "2"
    });
    for (k, v) in extra.as_object().unwrap() {
        options[k] = v.clone();
    }
    hub.add_agent(
        ADMIN_TOKEN,
        json!({"type": "Agents::JabberAgent", "name": "im", "source_ids": [hook], "options": options}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn working(hub: &TestHub, id: i64) -> Value {
    hub.get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json()["working"]
        .clone()
}

#[actix_rt::test]
async fn each_event_is_one_chat_message_over_starttls_with_the_password_from_a_credential() {
    let fake = FakeXmpp::start("foo", "s3cret pass");
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&fake, true, &dir).await;
    let r = hub
        .post_json(
            "/api/credentials",
            ADMIN_TOKEN,
            &json!({"credential_name": "xmpp_password", "credential_value": "s3cret pass"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let id = jabber(
        &hub,
        &fake,
        hook,
        json!({"jabber_password": "{% credential xmpp_password %}"}),
    )
    .await;
    assert_eq!(working(&hub, id).await, false, "no event received yet");

    post_event(
        &hub,
        hook,
        &json!({"title": "Weather Alert!", "url": "http://www.weather.com/"}),
    )
    .await;
    hub.wait_log(ADMIN_TOKEN, id, "Sent 1 IM", 1).await;
    post_event(
        &hub,
        hook,
        &json!({"title": "Another <Weather> Alert & more", "url": "http://www.weather.com/we-are-screwed"}),
    )
    .await;
    hub.wait_log(ADMIN_TOKEN, id, "Sent 1 IM", 2).await;

    let got = fake.messages();
    let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "Warning! Weather Alert! - http://www.weather.com/",
            "Warning! Another <Weather> Alert & more - http://www.weather.com/we-are-screwed"
        ]
    );
    for Received { to, kind, id, .. } in &got {
        assert_eq!((to.as_str(), kind.as_str()), ("bar@localhost", "chat"));
        assert!(id.starts_with("muninn-event-"), "{id}");
    }
    assert!(
        fake.raw()[1].contains("&lt;Weather&gt;") || fake.raw()[1].contains("&lt;Weather>"),
        "the body is escaped on the wire: {:?}",
        fake.raw()
    );
    // One session per event here (the first was done before the second came), each
    // walking the whole negotiation and ending the stream.
    for steps in fake.steps() {
        assert_eq!(
            steps,
            [
                "stream",
                "starttls",
                "tls",
                "auth PLAIN foo ok",
                "bind",
                "message",
                "end"
            ]
        );
    }
    assert_eq!(working(&hub, id).await, true);
    let logs = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .text();
    assert!(
        logs.contains("Sending IM to bar@localhost with event"),
        "{logs}"
    );
    assert!(
        !logs.contains("s3cret"),
        "the password is not logged: {logs}"
    );
}

#[actix_rt::test]
async fn a_refused_login_is_an_error_log_and_the_agent_is_not_working() {
    let fake = FakeXmpp::start("foo", "right");
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&fake, true, &dir).await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let id = jabber(&hub, &fake, hook, json!({"jabber_password": "wrong"})).await;
    post_event(&hub, hook, &json!({"title": "t", "url": "u"})).await;
    hub.wait_log(ADMIN_TOKEN, id, "The Jabber session failed", 1)
        .await;
    let logs = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .text();
    assert!(
        logs.contains("logging in as foo@localhost failed"),
        "{logs}"
    );
    assert!(logs.contains("Not sent: the IM for event"), "{logs}");
    assert!(fake.messages().is_empty());
    assert_eq!(fake.steps()[0].last().unwrap(), "auth PLAIN foo refused");
    assert_eq!(working(&hub, id).await, false);
}

#[actix_rt::test]
async fn an_untrusted_certificate_or_no_starttls_sends_nothing() {
    // Not trusted: the handshake fails before any password is sent.
    let fake = FakeXmpp::start("foo", "password");
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&fake, false, &dir).await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let id = jabber(&hub, &fake, hook, json!({})).await;
    post_event(&hub, hook, &json!({"title": "t", "url": "u"})).await;
    hub.wait_log(ADMIN_TOKEN, id, "The Jabber session failed", 1)
        .await;
    let logs = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .text();
    assert!(
        logs.contains("the TLS handshake for localhost failed"),
        "{logs}"
    );
    assert_eq!(fake.steps()[0], ["stream", "starttls"]);
    assert!(fake.messages().is_empty());

    // A server that offers no STARTTLS never gets the password in the clear.
    let plain = FakeXmpp::without_starttls("foo", "password");
    let id = jabber(&hub, &plain, hook, json!({})).await;
    post_event(&hub, hook, &json!({"title": "t", "url": "u"})).await;
    hub.wait_log(ADMIN_TOKEN, id, "does not offer STARTTLS", 1)
        .await;
    let steps = plain.steps();
    assert_eq!(steps[0][0], "stream");
    assert!(
        !steps[0].iter().any(|s| s.starts_with("auth")),
        "no login in the clear: {steps:?}"
    );
    assert_eq!(working(&hub, id).await, false);
}

#[actix_rt::test]
async fn the_target_guard_refuses_a_loopback_server_by_default() {
    let fake = FakeXmpp::start("foo", "password");
    let hub = TestHub::start().await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let id = jabber(&hub, &fake, hook, json!({})).await;
    post_event(&hub, hook, &json!({"title": "t", "url": "u"})).await;
    hub.wait_log(ADMIN_TOKEN, id, "The Jabber session failed", 1)
        .await;
    let logs = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .text();
    assert!(logs.contains("127.0.0.1"), "{logs}");
    assert!(
        fake.steps().is_empty(),
        "nothing dialled: {:?}",
        fake.steps()
    );
}

/// The fake's connection `n`'s steps once its last one is `last` (bounded wait).
async fn wait_step(fake: &FakeXmpp, n: usize, last: &str) -> Vec<String> {
    for _ in 0..400 {
        let steps = fake.steps();
        if let Some(s) = steps.get(n)
            && s.last().map(String::as_str) == Some(last)
        {
            return s.clone();
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("connection {n} never reached {last:?}: {:?}", fake.steps());
}

#[actix_rt::test]
async fn connect_to_receiver_joins_the_room_and_emits_what_is_said_until_disabled() {
    let room = "quakes@conference.localhost";
    let fake = FakeXmpp::with_room("foo", "password", room);
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&fake, true, &dir).await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let id = jabber(
        &hub,
        &fake,
        hook,
        json!({"jabber_receiver": format!("{room}/muninn"), "connect_to_receiver": "true",
               "connect_to_receiver_radio": "true"}),
    )
    .await;
    // What the room replayed on join (an occupant, history, the subject) is not
    // reported; what came after is, in Huginn's shape.
    let said = |event: &str, nick: Value, message: Value| json!({"event": event, "time": null, "nick": nick, "message": message});
    assert_eq!(ROOM_LIVE.len(), 5);
    let want = vec![
        said("on_message", json!("alice"), json!("Hello from huginn.")),
        said("on_join", json!("bob"), Value::Null),
        said("on_message", json!("bob"), json!("a < b & c")),
        said(
            "on_room_message",
            Value::Null,
            json!("The room is now logged"),
        ),
        said("on_leave", json!("bob"), Value::Null),
        json!({"event": "on_message", "time": "2026-12-01T10:00:00Z", "nick": "carol",
               "message": "late"}),
    ];
    assert_eq!(hub.wait_payloads(ADMIN_TOKEN, id, &want).await, want);
    let steps = wait_step(&fake, 0, "sent").await;
    assert_eq!(
        steps,
        [
            "stream",
            "starttls",
            "tls",
            "auth PLAIN foo ok",
            "bind",
            &format!("join {room}/muninn"),
            "sent"
        ]
    );
    hub.wait_log(ADMIN_TOKEN, id, &format!("Joined {room} as muninn"), 1)
        .await;

    // Disabled: it leaves the room; nothing more is emitted.
    let put = |disabled: bool| {
        let hub = &hub;
        async move {
            let r = hub
                .send_json(
                    "PUT",
                    &format!("/api/agents/{id}"),
                    ADMIN_TOKEN,
                    &json!({"disabled": disabled}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    };
    put(true).await;
    wait_step(&fake, 0, "closed").await;
    assert_eq!(fake.steps().len(), 1, "no new connection while disabled");

    // Enabled again: it joins again (a new connection); deleted: it leaves.
    put(false).await;
    wait_step(&fake, 1, "sent").await;
    let r = hub.delete(&format!("/api/agents/{id}"), ADMIN_TOKEN).await;
    assert!(r.status < 300, "{} {}", r.status, r.text());
    wait_step(&fake, 1, "closed").await;
    assert_eq!(fake.steps().len(), 2);
}

#[actix_rt::test]
async fn without_connect_to_receiver_nothing_listens() {
    let fake = FakeXmpp::with_room("foo", "password", "quakes@conference.localhost");
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_for(&fake, true, &dir).await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let id = jabber(
        &hub,
        &fake,
        hook,
        json!({"jabber_receiver": "quakes@conference.localhost/muninn", "connect_to_receiver": "false"}),
    )
    .await;
    // A sent message proves the agent ran; the only connection is its session.
    post_event(&hub, hook, &json!({"title": "t", "url": "u"})).await;
    hub.wait_log(ADMIN_TOKEN, id, "Sent 1 IM", 1).await;
    let steps = fake.steps();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(!steps[0].iter().any(|s| s.starts_with("join")), "{steps:?}");
    assert!(hub.payloads(ADMIN_TOKEN, id).await.is_empty());
}
