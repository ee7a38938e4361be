//! Fan-out bounds through the real hub: a link cycle with fan-out stays within the root
//! event's propagation budget and says why in the agent log; the emission rate limits;
//! a link that closes a cycle is accepted with a warning naming the cycle's agents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

fn formatter(name: &str, sources: &[i64], receivers: &[i64]) -> Value {
    json!({"type": "event_formatting", "name": name, "source_ids": sources,
           "receiver_ids": receivers,
           "options": {"mode": "merge", "instructions": {"via": name}}})
}

async fn logs_of(hub: &TestHub, agent: i64) -> Vec<String> {
    hub.get(&format!("/api/agents/{agent}/logs"), ADMIN_TOKEN)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn event_count(hub: &TestHub, agents: &[i64]) -> usize {
    let mut n = 0;
    for a in agents {
        n += hub.payloads(ADMIN_TOKEN, *a).await.len();
    }
    n
}

#[actix_rt::test]
async fn a_cycle_with_fan_out_stops_at_the_root_budget_and_says_why() {
    let hub = TestHub::start_with(|c| c.agents.max_events_per_root = 300).await;
    let (_, other) = hub.add_user("other").await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let a = hub
        .add_agent(ADMIN_TOKEN, formatter("a", &[hook], &[]))
        .await;
    let a = a["id"].as_i64().unwrap();
    // b and c both take a's events and feed a again: every a event makes two more.
    let b = hub.add_agent(ADMIN_TOKEN, formatter("b", &[a], &[a])).await;
    let warnings = b["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "link cycle: b (#{0}) -> a (#{a}) -> b (#{0})",
            b["id"]
        )),
        "{b}"
    );
    let b = b["id"].as_i64().unwrap();
    let c = hub.add_agent(ADMIN_TOKEN, formatter("c", &[a], &[a])).await;
    assert!(c["warnings"].to_string().contains("link cycle"), "{c}");
    let c = c["id"].as_i64().unwrap();

    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            ADMIN_TOKEN,
            &json!({"n": 1}),
        )
        .await;
    assert_eq!(r.status, 201);

    // Without the budget this is 2^16 events of a alone before the depth cap.
    let deadline = Instant::now() + Duration::from_secs(20);
    let why = loop {
        let started = Instant::now();
        assert_eq!(
            hub.request("GET", "/healthz", None, &[], None).await.status,
            200
        );
        assert_eq!(hub.get("/api/agents", &other).await.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the hub stalled"
        );
        let mut all = Vec::new();
        for agent in [a, b, c] {
            all.extend(logs_of(&hub, agent).await);
        }
        if let Some(line) = all
            .iter()
            .find(|m| m.contains("agents.max_events_per_root"))
        {
            break line.clone();
        }
        assert!(Instant::now() < deadline, "no budget line in the logs");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(why.starts_with("Stopped propagating event"), "{why}");
    // Settled: nothing more arrives, and the tree stayed within the budget.
    let mut last = event_count(&hub, &[a, b, c]).await;
    loop {
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        let now = event_count(&hub, &[a, b, c]).await;
        if now == last {
            break;
        }
        last = now;
    }
    assert!(last <= 300, "{last} events descend from one request");
    assert!(last >= 250, "the budget was spent, not cut short: {last}");
    let metrics = hub.request("GET", "/metrics", None, &[], None).await.text();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("muninn_agent_emissions_refused_total{reason=\"root_budget\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn the_agent_emission_rate_drops_the_excess_with_one_line() {
    let hub = TestHub::start_with(|c| c.agents.max_events_per_agent_per_minute = 3).await;
    let hook = hub.add_webhook_agent(ADMIN_TOKEN).await;
    let f = hub
        .add_agent(ADMIN_TOKEN, formatter("f", &[hook], &[]))
        .await;
    let f = f["id"].as_i64().unwrap();
    for n in 0..6 {
        let r = hub
            .post_json(
                &format!("/users/1/web_requests/{hook}/s"),
                ADMIN_TOKEN,
                &json!({ "n": n }),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let logs = logs_of(&hub, f).await;
        if logs.iter().any(|m| m.contains("Emitting too fast")) || Instant::now() > deadline {
            break logs;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<&String> = logs
        .iter()
        .filter(|m| m.contains("Emitting too fast"))
        .collect();
    assert_eq!(lines.len(), 1, "{logs:?}");
    assert!(
        lines[0].contains("3 events per minute (agents.max_events_per_agent_per_minute)"),
        "{}",
        lines[0]
    );
    assert_eq!(hub.payloads(ADMIN_TOKEN, f).await.len(), 3);
}

#[actix_rt::test]
async fn a_link_that_closes_a_cycle_is_made_with_a_warning() {
    let hub = TestHub::start().await;
    let x = hub.add_agent(ADMIN_TOKEN, formatter("x", &[], &[])).await["id"]
        .as_i64()
        .unwrap();
    let y = hub.add_agent(ADMIN_TOKEN, formatter("y", &[x], &[])).await;
    assert!(y.get("warnings").is_none(), "no cycle yet: {y}");
    let y = y["id"].as_i64().unwrap();
    let r = hub
        .post_json(
            "/api/links",
            ADMIN_TOKEN,
            &json!({"source_id": y, "receiver_id": x}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let warnings = r.json()["warnings"].clone();
    assert_eq!(
        warnings[0].as_str().unwrap().split(';').next().unwrap(),
        format!("link cycle: y (#{y}) -> x (#{x}) -> y (#{y})")
    );
    // PUT that re-links reports it too.
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/agents/{x}"),
            ADMIN_TOKEN,
            &json!({"source_ids": [y]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["warnings"][0]
            .as_str()
            .unwrap()
            .contains("link cycle")
    );
}

#[actix_rt::test]
async fn a_scenario_import_with_a_cycle_answers_a_warning() {
    let hub = TestHub::start().await;
    let agent = |name: &str, guid: &str| {
        json!({"type": "Agents::EventFormattingAgent", "name": name, "guid": guid,
               "options": {"instructions": {"via": name}, "mode": "merge"}, "propagate_immediately": true})
    };
    let file = json!({
        "schema_version": 1, "name": "loop", "guid": "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0",
        "agents": [agent("p", "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"), agent("q", "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2")],
        "links": [{"source": 0, "receiver": 1}, {"source": 1, "receiver": 0}],
        "control_links": []
    });
    let r = hub
        .post_json("/api/scenarios/import", ADMIN_TOKEN, &file)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    let warning = body["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.starts_with("link cycle: p (#"), "{body}");
    assert!(warning.contains("-> q (#"), "{body}");
}
