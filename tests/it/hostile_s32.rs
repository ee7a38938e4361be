//! Hostile-probe leftovers of session 32: one user cannot keep an unlimited number of
//! credentials (through the API or a java_script agent's `this.credential(name, value)`:
//! `[accounts] max_credentials_per_user`), and `this.credential(name, null)` saves
//! nothing (Huginn's save of `nil` fails its validation with an exception the script
//! sees), where it used to save the text "null".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// A hub with java_script agents on and at most `max` credentials per user.
async fn hub_with_limit(max: u64) -> TestHub {
    TestHub::start_with(|c| {
        c.accounts.max_credentials_per_user = max;
        c.insecure_agents.enabled = true;
        c.insecure_agents.timeout_seconds = 5;
        c.insecure_agents.memory_mb = 64;
    })
    .await
}

async fn create(hub: &TestHub, token: &str, name: &str, value: &str) -> common::Resp {
    hub.post_json(
        "/api/credentials",
        token,
        &json!({"credential_name": name, "credential_value": value}),
    )
    .await
}

/// The user's credentials by name, with their values.
async fn values(hub: &TestHub, token: &str) -> Vec<(String, String)> {
    let list = hub.get("/api/credentials?limit=1000", token).await.json();
    let mut out = Vec::new();
    for c in list.as_array().unwrap() {
        let one = hub
            .get(&format!("/api/credentials/{}", c["id"]), token)
            .await
            .json();
        out.push((
            one["credential_name"].as_str().unwrap().to_string(),
            one["credential_value"].as_str().unwrap().to_string(),
        ));
    }
    out.sort();
    out
}

/// Creates a java_script agent of the admin with `code` and runs it once.
async fn run_js(hub: &TestHub, name: &str, code: &str) -> i64 {
    let id = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "java_script", "name": name, "options": {"code": code}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .post_json(&format!("/api/agents/{id}/run"), ADMIN_TOKEN, &json!({}))
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.text());
    id
}

fn pair(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

#[actix_rt::test]
async fn a_user_keeps_at_most_the_configured_number_of_credentials() {
    let hub = hub_with_limit(2).await;
    assert_eq!(create(&hub, ADMIN_TOKEN, "a", "1").await.status, 201);
    assert_eq!(create(&hub, ADMIN_TOKEN, "b", "2").await.status, 201);
    let r = create(&hub, ADMIN_TOKEN, "c", "3").await;
    assert_eq!(r.status, 409, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("you already have 2 credentials")
            && message.contains("[accounts] max_credentials_per_user")
            && message.contains("delete one"),
        "{message}"
    );
    // A taken name is still answered as taken, not as the limit.
    let r = create(&hub, ADMIN_TOKEN, "a", "again").await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("already been taken"), "{}", r.text());

    // Changing a value is not a new credential.
    let id = hub.get("/api/credentials", ADMIN_TOKEN).await.json()[0]["id"].clone();
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/credentials/{id}"),
            ADMIN_TOKEN,
            &json!({"credential_value": "one"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The limit is per user: another user starts from none.
    let (_, bob) = hub.add_user("bob").await;
    assert_eq!(create(&hub, &bob, "a", "x").await.status, 201);
    assert_eq!(create(&hub, &bob, "b", "y").await.status, 201);
    assert_eq!(create(&hub, &bob, "c", "z").await.status, 409);

    // Deleting one makes room again.
    let r = hub
        .delete(&format!("/api/credentials/{id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(create(&hub, ADMIN_TOKEN, "c", "3").await.status, 201);
    assert_eq!(values(&hub, ADMIN_TOKEN).await.len(), 2);
}

#[actix_rt::test]
async fn a_java_script_agent_saves_within_the_limit() {
    let hub = hub_with_limit(2).await;
    assert_eq!(create(&hub, ADMIN_TOKEN, "a", "1").await.status, 201);
    assert_eq!(create(&hub, ADMIN_TOKEN, "b", "2").await.status, 201);
    // At the limit: a new name is refused with an error log naming the setting; an
    // existing name still takes its new value; the run's other work counts.
    let code = "Agent.check = function() {\n  this.credential('a', 'new');\n  this.credential('d', 'secret-d');\n  this.createEvent({ ran: true });\n  this.log('done');\n};";
    let id = run_js(&hub, "saver", code).await;
    hub.wait_log(ADMIN_TOKEN, id, "The credential \"d\" was not saved", 1)
        .await;
    let logs = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .text();
    assert!(logs.contains("max_credentials_per_user"), "{logs}");
    assert!(
        !logs.contains("secret-d"),
        "the value is never logged: {logs}"
    );
    assert_eq!(
        values(&hub, ADMIN_TOKEN).await,
        vec![pair("a", "new"), pair("b", "2")]
    );
    assert_eq!(
        hub.payloads(ADMIN_TOKEN, id).await,
        vec![json!({"ran": true})]
    );
}

#[actix_rt::test]
async fn this_credential_with_null_saves_nothing_and_throws() {
    let hub = hub_with_limit(100).await;
    // Uncaught: the run ends there with an error log; what it did before counts.
    let code = "Agent.check = function() {\n  this.createEvent({ before: 1 });\n  this.credential('x', null);\n  this.createEvent({ after: 1 });\n};";
    let id = run_js(&hub, "nuller", code).await;
    hub.wait_log(ADMIN_TOKEN, id, "JavaScript error", 1).await;
    let logs: Value = hub
        .get(&format!("/api/agents/{id}/logs"), ADMIN_TOKEN)
        .await
        .json();
    assert!(
        logs.to_string()
            .contains("credential_value: can't be blank; the credential was not saved"),
        "{logs}"
    );
    assert_eq!(
        hub.payloads(ADMIN_TOKEN, id).await,
        vec![json!({"before": 1})]
    );
    assert_eq!(values(&hub, ADMIN_TOKEN).await, vec![]);

    // Caught: the script goes on; its other saves are made.
    let code = "Agent.check = function() {\n  try { this.credential('y', null); } catch (e) { this.log('caught: ' + e.message); }\n  this.credential('z', 'ok');\n  this.log('done');\n};";
    let id = run_js(&hub, "catcher", code).await;
    hub.wait_log(ADMIN_TOKEN, id, "done", 1).await;
    hub.wait_log(ADMIN_TOKEN, id, "caught: ", 1).await;
    assert_eq!(values(&hub, ADMIN_TOKEN).await, vec![pair("z", "ok")]);
}
