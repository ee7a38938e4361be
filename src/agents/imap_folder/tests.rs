//! The mail cases of `fixtures/agents/imap_folder.json` (Huginn's spec, mails judged as
//! a run judges them; the session itself is tested against a scripted server in
//! tests/imap_folder_agent.rs), and the memory a run leaves.

use base64::Engine;
use serde_json::{Value, json};

use super::session::{RunResult, settle};
use super::*;
use crate::agents::event_formatting::tests_support::row;

const FIXTURE: &str = include_str!("../../../fixtures/agents/imap_folder.json");

fn run_mails(case: &Value) -> Result<(), String> {
    let settings = Settings::parse(&case["options"]).map_err(|e| e.to_string())?;
    let mut out = RunResult::default();
    let mails: Vec<&str> = case["mails"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for raw in &mails {
        let verdict = mail::judge(
            raw.as_bytes(),
            "INBOX",
            &settings.conditions,
            &settings.shape,
            &mut out.logs,
        );
        settle(verdict, &mut out);
    }
    if let Some(want) = case.get("emits") {
        let got = Value::Array(out.events.clone());
        if &got != want {
            return Err(format!("emitted {got:#}, want {want:#}"));
        }
    }
    if let Some(want) = case.get("notified")
        && json!(out.notified) != *want
    {
        return Err(format!("notified {:?}, want {want}", out.notified));
    }
    if let Some(i) = case["raw_mail_of"].as_u64() {
        let got = out.events.first().and_then(|e| e["raw_mail"].as_str());
        let got = got.ok_or("no raw_mail")?;
        if got.lines().any(|l| l.len() > 60) || !got.ends_with('\n') {
            return Err(format!("raw_mail is not in 60-character lines: {got:?}"));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(got.replace('\n', ""))
            .map_err(|e| e.to_string())?;
        if decoded != mails[i as usize].as_bytes() {
            return Err("raw_mail does not decode to the mail".into());
        }
    }
    Ok(())
}

#[test]
fn mail_cases_from_the_huginn_spec() {
    let doc: Value = serde_json::from_str(FIXTURE).unwrap_or(Value::Null);
    let cases = doc["mail_cases"].as_array().cloned().unwrap_or_default();
    assert!(!cases.is_empty());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_mails(c).err().map(|e| format!("{}: {e}", c["name"])))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn done(result: RunResult) -> TaskOutput {
    Box::new(result)
}

#[test]
fn a_run_leaves_lastseen_and_notified_in_memory() {
    let options = json!({"host": "h", "username": "u", "password": "p", "conditions": {}});
    let mut agent = build(&options).unwrap();
    let row = row();
    let mut memory = json!({"seen": {"1": 2}, "lastseen": {"7": 3}});
    let mut ctx = AgentCtx::new(&row, &mut memory);
    agent.check(&mut ctx);
    assert_eq!(ctx.tasks.len(), 1, "a check starts one session");
    // A second check while the first runs does not start another.
    agent.check(&mut ctx);
    assert_eq!(ctx.tasks.len(), 1);
    let mut result = RunResult::default();
    result.lastseen.insert(7, 9);
    result.notified.push("a@b".into());
    result.events.push(json!({"subject": "s"}));
    agent.task_done(&mut ctx, done(result));
    assert_eq!(ctx.emitted, vec![json!({"subject": "s"})]);
    drop(ctx);
    assert_eq!(memory, json!({"lastseen": {"7": 9}, "notified": ["a@b"]}));
}

#[test]
fn a_failed_run_keeps_the_folders_it_did_not_reach() {
    let options = json!({"host": "h", "username": "u", "password": "p", "conditions": {}});
    let mut agent = build(&options).unwrap();
    let row = row();
    let mut memory = json!({"lastseen": {"7": 3, "8": 5}});
    let mut ctx = AgentCtx::new(&row, &mut memory);
    agent.check(&mut ctx);
    let mut result = RunResult::default();
    result.lastseen.insert(7, 4);
    result.error = Some(super::session::ImapError::Command {
        command: "SELECT \"Other\"".into(),
        source: async_imap::error::Error::No("nope".into()),
    });
    agent.task_done(&mut ctx, done(result));
    assert!(
        ctx.logs
            .iter()
            .any(|l| l.message.contains("SELECT \"Other\" failed"))
    );
    drop(ctx);
    assert_eq!(memory["lastseen"], json!({"7": 4, "8": 5}));
}

#[test]
fn options_render_with_liquid_at_each_run() {
    let options = json!({"host": "h", "username": "u", "password": "{{ 'p' | upcase }}", "conditions": {}, "port": "{% if true %}143{% endif %}"});
    // A templated port is only known when rendered: refused at save, as Huginn would.
    assert!(validate(&options).is_err());
    let options =
        json!({"host": "h", "username": "u", "password": "{{ 'p' | upcase }}", "conditions": {}});
    assert!(validate(&options).is_ok());
}
