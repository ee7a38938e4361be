//! `http_status` end to end against a local server: the status, the headers asked
//! for and the elapsed time of each check; redirects followed or not; `changes_only`;
//! an unreachable URL reported as no response. Requests go through the agents' fetch
//! machinery (the target guard: the test hub allows 127.0.0.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

async fn hub() -> TestHub {
    TestHub::start_with(|c| c.delivery.allow_private_targets = true).await
}

async fn run(hub: &TestHub, agent: i64) {
    let r = hub
        .request(
            "POST",
            &format!("/api/agents/{agent}/run"),
            Some(ADMIN_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// Waits (bounded) until the agent has `n` events; returns their payloads.
async fn wait_events(hub: &TestHub, agent: i64, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = hub.payloads(ADMIN_TOKEN, agent).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn agent(hub: &TestHub, options: Value) -> i64 {
    hub.add_agent(
        ADMIN_TOKEN,
        json!({"type": "Agents::HttpStatusAgent", "name": "status", "options": options}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

#[actix_rt::test]
async fn reports_status_headers_and_time() {
    let hub = hub().await;
    let sink = Sink::start();
    let mut ok = Reply::status(200);
    ok.headers.push(("X-Served-By".into(), "sink".into()));
    sink.script([ok]);
    let url = format!("{}/up", sink.url);
    let id = agent(
        &hub,
        json!({"url": url, "headers_to_save": "x-served-by, X-Missing"}),
    )
    .await;
    run(&hub, id).await;
    let got = wait_events(&hub, id, 1).await;
    let e = &got[0];
    assert_eq!(e["url"], json!(url));
    assert_eq!(e["response_received"], json!(true));
    assert_eq!(e["status"], json!("200"));
    assert_eq!(e["final_url"], json!(url));
    assert_eq!(e["redirected"], json!(false));
    assert_eq!(
        e["headers"],
        json!({"x-served-by": "sink", "X-Missing": null})
    );
    assert!(e["elapsed_time"].as_f64().unwrap() >= 0.0);
    let row = hub
        .get(&format!("/api/agents/{id}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(row["memory"]["last_status"], json!("200"));
    assert_eq!(row["working"], json!(true));
}

#[actix_rt::test]
async fn redirects_are_followed_unless_disabled() {
    let hub = hub().await;
    let sink = Sink::start();
    let mut moved = Reply::status(301);
    moved.headers.push(("Location".into(), "there".into()));
    sink.script([moved.clone(), Reply::status(200), moved]);
    let url = format!("{}/here", sink.url);
    let follow = agent(&hub, json!({"url": url})).await;
    run(&hub, follow).await;
    let e = &wait_events(&hub, follow, 1).await[0];
    assert_eq!(e["status"], json!("200"));
    assert_eq!(e["final_url"], json!(format!("{}/there", sink.url)));
    assert_eq!(e["redirected"], json!(true));
    assert!(e.get("headers").is_none());

    let stay = agent(&hub, json!({"url": url, "disable_redirect_follow": "true"})).await;
    run(&hub, stay).await;
    let e = &wait_events(&hub, stay, 1).await[0];
    assert_eq!(e["status"], json!("301"));
    assert_eq!(e["final_url"], json!(url));
    assert_eq!(e["redirected"], json!(false));
    assert_eq!(sink.received().len(), 3);
}

#[actix_rt::test]
async fn changes_only_and_an_unreachable_url() {
    let hub = hub().await;
    let sink = Sink::start();
    sink.script([Reply::status(200), Reply::status(500), Reply::status(500)]);
    let id = agent(
        &hub,
        json!({"url": format!("{}/x", sink.url), "changes_only": "true"}),
    )
    .await;
    run(&hub, id).await;
    wait_events(&hub, id, 1).await;
    run(&hub, id).await;
    wait_events(&hub, id, 2).await;
    // The same status again: no event (whichever answer is handled first).
    run(&hub, id).await;
    sink.wait_for(3).await;
    let got = wait_events(&hub, id, 2).await;
    let statuses: Vec<&Value> = got.iter().map(|e| &e["status"]).collect();
    assert_eq!(statuses, vec![&json!("200"), &json!("500")]);

    // Nothing listens on the port of a dropped listener: no response.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = agent(&hub, json!({"url": format!("http://127.0.0.1:{port}/")})).await;
    run(&hub, down).await;
    let e = &wait_events(&hub, down, 1).await[0];
    assert_eq!(e["response_received"], json!(false));
    assert!(e.get("status").is_none());
    let row = hub
        .get(&format!("/api/agents/{down}"), ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(row["memory"]["last_status"], Value::Null);
    assert_eq!(row["working"], json!(false));
}
