//! The cases of `fixtures/agents/jabber.json` (Huginn's spec): options refused with
//! their message, and what each received event queues to send (server, port,
//! receiver, body) and logs; and Huginn's `working?` rule. The sessions themselves are
//! tested against a scripted XMPP server in tests/jabber_agent.rs.

use serde_json::{Value, json};

use super::*;
use crate::agents::event_formatting::tests_support::{event, row};
use crate::agents::{Health, health, kind};
use crate::store::agent_logs::LEVEL_ERROR;

const FIXTURE: &str = include_str!("../../../fixtures/agents/jabber.json");

fn merged(base: &Value, extra: &Value) -> Value {
    let mut out = base.clone();
    for (k, v) in extra.as_object().into_iter().flatten() {
        out[k] = v.clone();
    }
    out
}

fn run_case(base: &Value, case: &Value) -> Result<(), String> {
    let options = merged(base, &case["options"]);
    let k = kind("jabber").ok_or("no jabber kind")?;
    if let Some(want) = case["invalid"].as_str() {
        return match k.validate(&options) {
            Ok(()) => Err(format!("accepted; want an error with {want:?}")),
            Err(e) if e.to_string().contains(want) => Ok(()),
            Err(e) => Err(format!(
                "error {:?} does not contain {want:?}",
                e.to_string()
            )),
        };
    }
    k.validate(&options).map_err(|e| format!("refused: {e}"))?;
    let mut agent = Jabber::new(&options).map_err(|e| format!("refused: {e}"))?;
    let row = row();
    let mut memory = json!({});
    let (mut logs, mut errors) = (Vec::new(), Vec::new());
    for (i, p) in case["events"].as_array().into_iter().flatten().enumerate() {
        let mut ev = event(p);
        ev.id = crate::ids::EventId(i as i64 + 1);
        let mut ctx = AgentCtx::new(&row, &mut memory);
        agent.receive(&mut ctx, &ev, p);
        for l in ctx.logs {
            if l.level == LEVEL_ERROR {
                errors.push(l.message);
            } else {
                logs.push(l.message);
            }
        }
    }
    let in_flight = agent
        .in_flight
        .iter()
        .flat_map(|(a, batch)| batch.iter().map(move |m| (a, m)));
    let sends: Vec<Value> = in_flight
        .chain(agent.queue.iter().map(|(a, m)| (a, m)))
        .map(|(a, m)| {
            json!({"server": a.server, "port": a.port, "to": m.receiver.to_string(), "body": m.body})
        })
        .collect();
    if let Some(want) = case.get("sends")
        && &Value::Array(sends.clone()) != want
    {
        return Err(format!("sends {sends:?}, want {want} (errors: {errors:?})"));
    }
    if let Some(want) = case.get("logs")
        && &json!(logs) != want
    {
        return Err(format!("logs {logs:?}, want {want}"));
    }
    if let Some(want) = case["error_logged"].as_str()
        && !errors.iter().any(|e| e.contains(want))
    {
        return Err(format!("no error log with {want:?}: {errors:?}"));
    }
    if case.get("error_logged").is_none() && !errors.is_empty() {
        return Err(format!("unexpected errors: {errors:?}"));
    }
    Ok(())
}

#[test]
fn the_cases_of_the_fixture() {
    let all: Value = serde_json::from_str(FIXTURE).unwrap();
    let mut failed = Vec::new();
    for case in all["cases"].as_array().unwrap() {
        if let Err(e) = run_case(&all["base"], case) {
            failed.push(format!("{}: {e}", case["name"]));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Huginn's spec: not working before any event, working just after one, not working
/// once `expected_receive_period_in_days` has passed without one; an error log since
/// the last event (a failed session) makes it not working either.
#[test]
fn working_follows_the_expected_receive_period_and_errors() {
    let k = kind("jabber").unwrap();
    assert!(matches!(k.health, Health::Received { .. }));
    let options = json!({"expected_receive_period_in_days": "2"});
    let now = crate::store::now();
    let mut r = row();
    assert!(!health::working(k.health, &r, &options, now));
    r.last_receive_at = Some(now);
    assert!(health::working(k.health, &r, &options, now));
    let later = now + chrono::Duration::days(2) + chrono::Duration::seconds(1);
    assert!(!health::working(k.health, &r, &options, later));
    r.last_error_at = Some(now);
    assert!(!health::working(k.health, &r, &options, now));
}

/// A session's result: a failure names the events whose messages were not sent, and
/// the next queued messages start their own session.
#[test]
fn a_failed_session_names_the_unsent_events_and_the_queue_goes_on() {
    let options = merged(
        &serde_json::from_str::<Value>(FIXTURE).unwrap()["base"],
        &json!({}),
    );
    let mut agent = Jabber::new(&options).unwrap();
    let row = row();
    let mut memory = json!({});
    let mut ctx = AgentCtx::new(&row, &mut memory);
    for id in 1..=3 {
        let p = json!({"title": id, "url": "u"});
        let mut ev = event(&p);
        ev.id = crate::ids::EventId(id);
        agent.receive(&mut ctx, &ev, &p);
    }
    assert_eq!(ctx.tasks.len(), 1, "one session at a time");
    assert_eq!(agent.queue.len(), 2);
    let mut ctx = AgentCtx::new(&row, &mut memory);
    let done = Delivered {
        sent: 0,
        error: Some(super::error::XmppError::Handshake {
            domain: "localhost".into(),
            source: std::io::Error::other("x"),
        }),
    };
    agent.task_done(&mut ctx, Box::new(done));
    let errors: Vec<&str> = ctx
        .logs
        .iter()
        .filter(|l| l.level == LEVEL_ERROR)
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(
        errors,
        [
            "The Jabber session failed: the TLS handshake for localhost failed: x. Not sent: the IM for event 1"
        ]
    );
    assert_eq!(
        ctx.tasks.len(),
        1,
        "the two waiting messages share the next session"
    );
    assert!(agent.queue.is_empty());
    let mut ctx = AgentCtx::new(&row, &mut memory);
    agent.task_done(
        &mut ctx,
        Box::new(Delivered {
            sent: 2,
            error: None,
        }),
    );
    assert_eq!(
        ctx.logs
            .iter()
            .map(|l| l.message.as_str())
            .collect::<Vec<_>>(),
        ["Sent 2 IMs"]
    );
    assert!(ctx.tasks.is_empty());
}
