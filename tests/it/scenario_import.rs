//! An import accounts for every piece of the file: agents of missing types, the links
//! and control links that touch them, options that are wrong or not implemented; an
//! agent disabled for its options cannot be re-enabled without fixing them; and
//! Huginn's matching rules (scenario by guid per user, agents by guid, schema_version
//! < 1 in days, links once).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

fn scenario(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn agent<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no agent {name}: {result}"))
}

fn messages(result: &Value) -> Vec<String> {
    result["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn every_piece_is_created_or_named_with_its_reason() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let r = hub
        .post_json(
            "/api/scenarios/import",
            ADMIN_TOKEN,
            &scenario("incomplete.json"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let result = r.json();
    assert_eq!(result["complete"], false);
    assert_eq!(
        result["counts"],
        json!({"agents_created": 5, "agents_updated": 0, "agents_not_created": 1,
               "links_made": 1, "links_not_made": 3,
               "control_links_made": 1, "control_links_not_made": 2})
    );
    let shop = agent(&result, "Shop page");
    assert_eq!(shop["action"], "skipped");
    assert_eq!(shop["type"], "Agents::TwitterStreamAgent");
    assert_eq!(
        shop["reason"],
        "unknown type Agents::TwitterStreamAgent (not available in muninn)"
    );
    assert_eq!(
        messages(&result),
        [
            "agent 'Shop page' was not created: unknown type Agents::TwitterStreamAgent (not available in muninn)",
            "option 'message' of agent 'Cheap enough': Variable '{{' at line 1, column 5 was not properly terminated with '}}'",
            "option 'force_encoding' of agent 'Shop news' is not implemented; it is kept and has no effect",
            "link 'Shop page' -> 'Cheap enough' was not made: source 'Shop page' was not created: unknown type Agents::TwitterStreamAgent",
            "link 'Headline' -> 'Inbox' was not made: receiver 'Inbox' is a webhook agent, which cannot receive events",
            "link 'Headline' -> '' was not made: receiver the file has no agent at index 9 (it has 6)",
            "control link 'Business hours' -> 'Shop page' was not made: control target 'Shop page' was not created: unknown type Agents::TwitterStreamAgent",
            "control link 'Cheap enough' -> 'Headline' was not made: controller 'Cheap enough' is a trigger agent, which cannot control other agents",
        ]
    );
    // Machine-readable: kinds, both ends of a link, the missing type.
    let p = &result["problems"];
    assert_eq!(p[0]["kind"], "agent");
    assert_eq!(p[0]["agent_type"], "Agents::TwitterStreamAgent");
    assert_eq!(p[1]["kind"], "option");
    assert_eq!(p[1]["option"], "message");
    // A key the type does not take is kept, as Huginn keeps it, and said in warnings.
    assert!(
        result["warnings"].as_array().unwrap().iter().any(|w| w
            == "option 'colour' of agent 'Cheap enough' is not an option of a trigger agent; its options are: rules, message, keep_event, must_match, expected_receive_period_in_days; it is kept, as Huginn keeps it, and has no effect"),
        "{result}"
    );
    assert_eq!(p[3]["kind"], "link");
    assert_eq!(p[3]["source"], json!({"index": 0, "name": "Shop page"}));
    assert_eq!(
        p[3]["receiver"],
        json!({"index": 1, "name": "Cheap enough"})
    );
    assert_eq!(
        p[3]["problem"],
        "source 'Shop page' was not created: unknown type Agents::TwitterStreamAgent"
    );
    assert_eq!(p[6]["kind"], "control_link");
    assert_eq!(p[6]["controller"]["name"], "Business hours");
    assert_eq!(p[6]["control_target"]["name"], "Shop page");

    // The link that could be made is there once, though the file lists it twice.
    let news = agent(&result, "Shop news")["id"].as_i64().unwrap();
    let headline = agent(&result, "Headline")["id"].as_i64().unwrap();
    let a = hub
        .get(&format!("/api/agents/{news}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["receiver_ids"], json!([headline]));
    assert_eq!(a["controller_ids"].as_array().unwrap().len(), 1);
    // An unimplemented Huginn option keeps the agent running; a broken template does not.
    assert_eq!(agent(&result, "Shop news")["disabled"], false);
    let trigger = agent(&result, "Cheap enough");
    assert_eq!(trigger["disabled"], true);

    // Enabling re-validates: a plain PUT is refused with the reason.
    let tid = trigger["id"].as_i64().unwrap();
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{tid}"),
            ADMIN_TOKEN,
            &json!({"disabled": false}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let error = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        error.starts_with(&format!("agent {tid} cannot be enabled: options.message: ")),
        "{error}"
    );
    assert_eq!(
        hub.get(&format!("/api/agents/{tid}"), ADMIN_TOKEN)
            .await
            .json()["disabled"],
        true
    );
    // Fixing the options enables it.
    let mut options = hub
        .get(&format!("/api/agents/{tid}"), ADMIN_TOKEN)
        .await
        .json()["options"]
        .clone();
    options.as_object_mut().unwrap().remove("colour");
    options["message"] = json!("Now {{price}}");
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{tid}"),
            ADMIN_TOKEN,
            &json!({"disabled": false, "options": options}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["disabled"], false);
}

#[actix_rt::test]
async fn the_api_refuses_unknown_options_and_warns_of_unimplemented_ones() {
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "rss", "name": "n", "options": {"url": "http://127.0.0.1:9/f", "colour": 1}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]["message"].as_str().unwrap().starts_with(
            "option \"colour\" is not an option of a rss agent; its options are: url,"
        ),
        "{}",
        r.text()
    );
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "rss", "name": "n", "options": {"url": "http://127.0.0.1:9/f", "force_encoding": "iso-8859-1"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["warnings"],
        json!([
            "option \"force_encoding\" is a Huginn option muninn does not implement; it is kept and has no effect"
        ])
    );
    let id = r.json()["id"].as_i64().unwrap();
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{id}"),
            ADMIN_TOKEN,
            &json!({"options": {"url": "http://127.0.0.1:9/f", "events_order": "{{title}}"}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("option \"events_order\" must be a list of sort keys"),
        "{}",
        r.text()
    );
}

#[actix_rt::test]
async fn a_scheduler_does_not_enable_an_agent_with_invalid_options() {
    let hub = TestHub::start().await;
    let file = json!({
        "schema_version": 1, "name": "ctl", "guid": "c0ffee00c0ffee00c0ffee00c0ffee02",
        "agents": [
            {"type": "Agents::SchedulerAgent", "name": "Opener", "guid": "c0ffee00c0ffee00c0ffee00c0ffee20",
             "options": {"action": "enable", "schedule": "0 9 * * *"}},
            {"type": "Agents::TriggerAgent", "name": "Broken", "guid": "c0ffee00c0ffee00c0ffee00c0ffee21",
             "disabled": true,
             "options": {"rules": [{"type": "regex", "path": "x", "value": "y"}], "message": "{{ m"}}
        ],
        "links": [],
        "control_links": [{"controller": 0, "control_target": 1}]
    });
    let result = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, &file)
        .await
        .json();
    let opener = agent(&result, "Opener")["id"].as_i64().unwrap();
    let broken = agent(&result, "Broken")["id"].as_i64().unwrap();
    hub.post_json(
        &format!("/api/agents/{opener}/run"),
        ADMIN_TOKEN,
        &json!({}),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let logs = loop {
        let logs = hub
            .get(&format!("/api/agents/{opener}/logs"), ADMIN_TOKEN)
            .await
            .json();
        if !logs.as_array().unwrap().is_empty() {
            break logs;
        }
        assert!(std::time::Instant::now() < deadline, "no log line");
        actix_rt::time::sleep(std::time::Duration::from_millis(30)).await;
    };
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Agent enable refused for 'Broken': options.message: "),
        "{logs}"
    );
    assert_eq!(
        hub.get(&format!("/api/agents/{broken}"), ADMIN_TOKEN)
            .await
            .json()["disabled"],
        true
    );
}

#[actix_rt::test]
async fn huginn_rules_guid_per_user_days_and_links_once() {
    let hub = TestHub::start().await;
    let file = json!({
        "schema_version": 0, "name": "old", "guid": "c0ffee00c0ffee00c0ffee00c0ffee03",
        "agents": [
            {"type": "Agents::WebhookAgent", "name": "In", "guid": "c0ffee00c0ffee00c0ffee00c0ffee30",
             "options": {"secret": "s", "expected_receive_period_in_days": 1}, "keep_events_for": 3},
            {"type": "Agents::EventFormattingAgent", "name": "Out", "guid": "c0ffee00c0ffee00c0ffee00c0ffee31",
             "options": {"instructions": {"m": "{{ a }}"}, "mode": "clean"}, "keep_events_for": 0}
        ],
        "links": [{"source": 0, "receiver": 1}, {"source": 0, "receiver": 1}]
    });
    let first = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, &file)
        .await;
    assert_eq!(first.status, 201);
    let first = first.json();
    assert_eq!(first["complete"], true, "{first}");
    let input = agent(&first, "In")["id"].as_i64().unwrap();
    let a = hub
        .get(&format!("/api/agents/{input}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["keep_events_for"], 3 * 86_400, "schema_version 0: days");
    assert_eq!(a["receiver_ids"].as_array().unwrap().len(), 1);

    // The same file again: the same scenario and agents (by guid), the link not doubled.
    let again = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, &file)
        .await;
    assert_eq!(again.status, 200);
    let again = again.json();
    assert_eq!(again["scenario"]["id"], first["scenario"]["id"]);
    assert_eq!(agent(&again, "In")["id"], input);
    assert_eq!(agent(&again, "In")["action"], "updated");
    let a = hub
        .get(&format!("/api/agents/{input}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(a["receiver_ids"].as_array().unwrap().len(), 1);

    // Another user importing it gets a scenario and agents of their own.
    let (_, bob) = hub.add_user("bob").await;
    let theirs = hub.post_json("/api/scenarios/import", &bob, &file).await;
    assert_eq!(theirs.status, 201, "{}", theirs.text());
    let theirs = theirs.json();
    assert_ne!(theirs["scenario"]["id"], first["scenario"]["id"]);
    assert_ne!(agent(&theirs, "In")["id"], input);
    assert_eq!(agent(&theirs, "In")["action"], "created");
    let mine = hub
        .get(&format!("/api/agents/{input}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(mine["user_id"], 1);
}

fn ids(list: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// Two users import a scenario with the same guids; each import finds only the
/// importing user's own scenario and agents, also after the other user's agents (which
/// held the guids first) are deleted: a re-import updates the user's agents, it does
/// not make a second set.
#[actix_rt::test]
async fn two_users_with_the_same_guids_each_import_into_their_own() {
    let hub = TestHub::start().await;
    let file = |name: &str| {
        json!({
            "schema_version": 1, "name": name, "guid": "c0ffee00c0ffee00c0ffee00c0ffee04",
            "agents": [
                {"type": "Agents::ManualEventAgent", "name": name, "guid": "c0ffee00c0ffee00c0ffee00c0ffee40",
                 "options": {}}
            ]
        })
    };
    let (_, alice) = hub.add_user("alice").await;
    let (_, bob) = hub.add_user("bob").await;
    let import = |token: String, name: &'static str| {
        let hub = &hub;
        let body = file(name);
        async move {
            let r = hub.post_json("/api/scenarios/import", &token, &body).await;
            assert!(r.status == 200 || r.status == 201, "{}", r.text());
            (r.status, r.json())
        }
    };
    let (status, a1) = import(alice.clone(), "alice's").await;
    assert_eq!(status, 201);
    let (status, b1) = import(bob.clone(), "bob's").await;
    assert_eq!(status, 201);
    let alice_agent = agent(&a1, "alice's")["id"].as_i64().unwrap();
    let bob_agent = agent(&b1, "bob's")["id"].as_i64().unwrap();
    assert_ne!(alice_agent, bob_agent);
    assert_ne!(a1["scenario"]["id"], b1["scenario"]["id"]);

    // Bob's re-import updates his agent; Alice's is not touched.
    let (status, b2) = import(bob.clone(), "bob's again").await;
    assert_eq!(status, 200);
    assert_eq!(b2["scenario"]["id"], b1["scenario"]["id"]);
    assert_eq!(agent(&b2, "bob's again")["id"], bob_agent);
    assert_eq!(agent(&b2, "bob's again")["action"], "updated");
    let a = hub.get(&format!("/api/agents/{alice_agent}"), &alice).await;
    assert_eq!(a.json()["name"], "alice's");

    // Alice deletes her agent (the first holder of the guid); Bob's next import still
    // finds his own agent.
    let r = hub
        .delete(&format!("/api/agents/{alice_agent}"), &alice)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let (_, b3) = import(bob.clone(), "bob's third").await;
    assert_eq!(agent(&b3, "bob's third")["id"], bob_agent);
    assert_eq!(agent(&b3, "bob's third")["action"], "updated");

    // Each sees only their own scenario and agents.
    let bob_agents = hub.get("/api/agents", &bob).await.json();
    assert_eq!(ids(&bob_agents), vec![bob_agent]);
    assert_eq!(bob_agents[0]["name"], "bob's third");
    let bob_scenarios = hub.get("/api/scenarios", &bob).await.json();
    assert_eq!(bob_scenarios.as_array().unwrap().len(), 1);
    assert_eq!(bob_scenarios[0]["id"], b1["scenario"]["id"]);
    assert_eq!(
        ids(&hub.get("/api/agents", &alice).await.json()),
        Vec::<i64>::new()
    );
    let alice_scenarios = hub.get("/api/scenarios", &alice).await.json();
    assert_eq!(alice_scenarios.as_array().unwrap().len(), 1);
    assert_eq!(alice_scenarios[0]["id"], a1["scenario"]["id"]);
}
