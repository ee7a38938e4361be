//! Replays every case in fixtures/cases/: each file sets up users and agents through
//! the API, sends requests, and checks the responses and the events agents emitted.
//! The format is described in fixtures/README.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::sink::{Reply, Sink};
use common::{ADMIN_TOKEN, TestHub, json_contains};
use serde_json::Value;

/// Names a case can refer to as `${name}`: user ids and agent ids.
#[derive(Default)]
struct Refs {
    ids: BTreeMap<String, i64>,
    tokens: BTreeMap<String, String>,
    /// Values a step saved from a response (`"save": {"name": "json_key"}`).
    saved: BTreeMap<String, String>,
}

impl Refs {
    /// Replaces `${name}` everywhere in the value's text.
    fn fill(&self, v: &Value) -> Value {
        let mut text = v.to_string();
        for (name, id) in &self.ids {
            // A whole string "${name}" becomes the number; inside text, the digits.
            text = text.replace(&format!("\"${{{name}}}\""), &id.to_string());
            text = text.replace(&format!("${{{name}}}"), &id.to_string());
        }
        for (name, value) in &self.saved {
            let escaped = serde_json::to_string(value).unwrap();
            text = text.replace(&format!("${{{name}}}"), &escaped[1..escaped.len() - 1]);
        }
        serde_json::from_str(&text).unwrap()
    }

    fn token(&self, user: Option<&str>) -> Option<String> {
        match user {
            None => None,
            Some("admin") => Some(ADMIN_TOKEN.to_string()),
            Some(name) => Some(
                self.tokens
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.to_string()),
            ),
        }
    }
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixture cases in {}", dir.display());
    files
}

async fn run_case(path: &Path) -> Result<(), String> {
    let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .map_err(|e| format!("not valid JSON: {e}"))?;
    // Cases with sinks deliver to 127.0.0.1, which the hub refuses by default.
    let has_sinks = case.get("sinks").is_some();
    let hub = TestHub::start_with(|c| {
        if has_sinks {
            c.delivery.allow_private_targets = true;
            c.delivery.poll_interval_ms = 50;
        }
    })
    .await;
    let mut refs = Refs::default();
    refs.ids.insert("admin".into(), 1);
    let sinks = start_sinks(&case, &mut refs);
    for user in case["users"].as_array().into_iter().flatten() {
        let name = user.as_str().unwrap();
        let (id, token) = hub.add_user(name).await;
        refs.ids.insert(name.to_string(), id);
        refs.tokens.insert(name.to_string(), token);
    }
    for agent in case["agents"].as_array().into_iter().flatten() {
        let agent = refs.fill(agent);
        let owner = agent["user"].as_str().unwrap_or("admin");
        let mut body = agent.clone();
        let obj = body.as_object_mut().unwrap();
        let name = obj
            .remove("ref")
            .and_then(|r| r.as_str().map(str::to_string));
        obj.remove("user");
        let created = hub.add_agent(&refs.token(Some(owner)).unwrap(), body).await;
        if let Some(name) = name {
            refs.ids.insert(name, created["id"].as_i64().unwrap());
        }
    }
    for (i, step) in case["steps"].as_array().into_iter().flatten().enumerate() {
        let step = refs.fill(step);
        let at = format!(
            "step {i} ({})",
            step.get("note").and_then(Value::as_str).unwrap_or("")
        );
        if let Some(req) = step.get("request") {
            // `"wait": true` repeats the request (bounded) until the expectation holds,
            // for effects that arrive after the answer (propagation, schedules).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let answer = loop {
                match check_request(&hub, &refs, req, &step["expect"]).await {
                    Ok(a) => break a,
                    Err(e) if step["wait"] == true && std::time::Instant::now() < deadline => {
                        let _ = e;
                        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(e) => return Err(format!("{at}: {e}")),
                }
            };
            for (name, key) in step["save"].as_object().into_iter().flatten() {
                let key = key.as_str().unwrap_or_default();
                // Numbers behave like ids (a whole "${name}" becomes the number).
                match answer.as_ref().and_then(|a| a.get(key)) {
                    Some(Value::String(s)) => refs.saved.insert(name.clone(), s.clone()),
                    Some(Value::Number(n)) if n.is_i64() => {
                        refs.ids.insert(name.clone(), n.as_i64().unwrap());
                        None
                    }
                    _ => return Err(format!("{at}: the response has no {key:?} to save")),
                };
            }
        }
        if let Some(expect) = step.get("sink") {
            let name = expect["name"].as_str().unwrap_or_default();
            let want = expect["count"].as_u64().unwrap_or(1) as usize;
            let sink = sinks.get(name).ok_or(format!("{at}: no sink {name:?}"))?;
            sink.wait_until(&format!("{want} requests at sink {name}"), |r| {
                r.len() >= want
            })
            .await;
            check_sink(&sinks, expect).map_err(|e| format!("{at}: {e}"))?;
        }
        if let Some(ev) = step.get("events") {
            let token = refs.token(ev["as"].as_str().or(Some("admin"))).unwrap();
            let agent = ev["agent"]
                .as_i64()
                .ok_or(format!("{at}: events.agent must be an agent ref"))?;
            let want: Vec<Value> = ev["payloads"].as_array().cloned().unwrap_or_default();
            let got = hub.wait_payloads(&token, agent, &want).await;
            if got != want {
                return Err(format!(
                    "{at}: agent {agent} emitted\n  {}\nexpected\n  {}",
                    Value::Array(got),
                    Value::Array(want)
                ));
            }
        }
    }
    Ok(())
}

/// `"sinks": {"name": {"fail": 2, "status": 200}}`: a local receiver per name whose URL
/// is `${sink:name}`; it answers 500 `fail` times, then `status` (200 unless given).
fn start_sinks(case: &Value, refs: &mut Refs) -> BTreeMap<String, Sink> {
    let mut out = BTreeMap::new();
    for (name, how) in case["sinks"].as_object().into_iter().flatten() {
        let sink = Sink::start();
        let fail = how["fail"].as_u64().unwrap_or(0) as usize;
        sink.script(std::iter::repeat_n(Reply::status(500), fail));
        if let Some(status) = how["status"].as_u64() {
            sink.set_default(Reply::status(status as u16));
        }
        refs.saved.insert(format!("sink:{name}"), sink.url.clone());
        out.insert(name.clone(), sink);
    }
    out
}

/// `"sink": {"name": "crm", "count": 1, "requests": [{"json": {...}, "headers": {...}}]}`:
/// once `count` requests arrived (bounded wait), there are exactly that many and each
/// listed one contains the given JSON and headers. Before the wait it only fails
/// when more than `count` arrived already.
fn check_sink(sinks: &BTreeMap<String, Sink>, expect: &Value) -> Result<(), String> {
    let name = expect["name"].as_str().ok_or("sink.name is required")?;
    let sink = sinks.get(name).ok_or(format!("no sink {name:?}"))?;
    let want = expect["count"].as_u64().unwrap_or(1) as usize;
    let got = sink.received();
    if got.len() > want {
        return Err(format!(
            "sink {name} received {} requests, expected {want}: {:?}",
            got.len(),
            got.iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect::<Vec<_>>()
        ));
    }
    if got.len() < want {
        return Ok(());
    }
    for (i, req) in expect["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let r = &got[i];
        let body = String::from_utf8_lossy(&r.body).into_owned();
        if let Some(json) = req.get("json") {
            let actual: Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("sink {name} request {i} is not JSON ({e}): {body}"))?;
            if !json_contains(&actual, json) {
                return Err(format!(
                    "sink {name} request {i}: expected JSON containing {json}; got {body}"
                ));
            }
        }
        for (h, v) in req["headers"].as_object().into_iter().flatten() {
            // An id filled in from `${name}` is a number; a header carries its digits.
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            if r.header(h) != Some(v.as_str()) {
                return Err(format!(
                    "sink {name} request {i}: expected header {h}: {v}, got {:?}",
                    r.header(h)
                ));
            }
        }
        for h in req["has_headers"].as_array().into_iter().flatten() {
            let h = h.as_str().unwrap_or_default();
            if r.header(h).is_none() {
                return Err(format!("sink {name} request {i}: no {h} header"));
            }
        }
    }
    Ok(())
}

async fn check_request(
    hub: &TestHub,
    refs: &Refs,
    req: &Value,
    expect: &Value,
) -> Result<Option<Value>, String> {
    let method = req["method"].as_str().unwrap_or("GET");
    let mut path = req["path"]
        .as_str()
        .ok_or("request.path is required")?
        .to_string();
    if let Some(q) = req.get("query").and_then(Value::as_str) {
        path = format!("{path}?{q}");
    }
    let token = refs.token(req["as"].as_str());
    let mut headers: Vec<(String, String)> = req["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let body = if let Some(j) = req.get("json") {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".into(), "application/json".into()));
        }
        Some(j.to_string().into_bytes())
    } else if let Some(form) = req.get("form").and_then(Value::as_str) {
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        Some(form.as_bytes().to_vec())
    } else {
        req.get("body")
            .and_then(Value::as_str)
            .map(|b| b.as_bytes().to_vec())
    };
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let resp = hub
        .request(method, &path, token.as_deref(), &header_refs, body)
        .await;
    let seen = format!("{method} {path} answered {} {}", resp.status, resp.text());
    if let Some(status) = expect.get("status").and_then(Value::as_u64)
        && resp.status as u64 != status
    {
        return Err(format!("expected status {status}; {seen}"));
    }
    if let Some(body) = expect.get("body").and_then(Value::as_str)
        && resp.text() != body
    {
        return Err(format!("expected body {body:?}; {seen}"));
    }
    if let Some(part) = expect.get("body_contains").and_then(Value::as_str)
        && !resp.text().contains(part)
    {
        return Err(format!("expected the body to contain {part:?}; {seen}"));
    }
    if let Some(json) = expect.get("json")
        && !json_contains(&resp.json(), json)
    {
        return Err(format!("expected JSON containing {json}; {seen}"));
    }
    if let Some(json) = expect.get("json_includes")
        && !json_includes(&resp.json(), json)
    {
        return Err(format!("expected JSON including {json}; {seen}"));
    }
    for (name, value) in expect["headers"].as_object().into_iter().flatten() {
        let want = value.as_str().unwrap_or("");
        if resp.header(name) != Some(want) {
            return Err(format!(
                "expected header {name}: {want}, got {:?}; {seen}",
                resp.header(name)
            ));
        }
    }
    for name in expect["headers_present"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap_or("");
        if resp.header(name).is_none_or(str::is_empty) {
            return Err(format!("expected a {name} header; {seen}"));
        }
    }
    Ok(serde_json::from_slice(&resp.body).ok())
}

/// Like `json_contains`, but an expected array only needs each of its elements to be
/// included in some element of the actual array (in any order, others allowed).
fn json_includes(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| json_includes(av, ev))),
        (Value::Array(a), Value::Array(e)) => {
            e.iter().all(|ev| a.iter().any(|av| json_includes(av, ev)))
        }
        (a, e) => a == e,
    }
}

#[actix_rt::test]
async fn every_fixture_case_passes() {
    let mut failures = Vec::new();
    let files = cases();
    for path in &files {
        if let Err(e) = run_case(path).await {
            failures.push(format!(
                "{}: {e}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixture cases failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
