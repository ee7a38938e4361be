//! The wild corpus (fixtures/scenarios/wild/, sources in SOURCES.md): scenario files that
//! Huginn users published, imported through the real API as a new user would. Issue 16's
//! contract: each file's import report names nothing but the agents that
//! fixtures/scenarios/wild/expected.json allows to be left out (types muninn does not have
//! yet, agents that need a dead third-party API) and links that touch them, and the
//! Huginn options it lists as not built yet for an agent that is created; every other
//! agent, link and control link is created. Run with `-- --ignored --nocapture` for a
//! per-file report of every problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::TestHub;
use serde_json::Value;

fn wild_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/wild")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The scenario files of the corpus, by file name.
fn corpus() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(wild_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| p.file_name().is_some_and(|n| n != "expected.json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read_json(&p),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// An agent of a file that may be left out, as expected.json lists it.
struct Allowed {
    index: usize,
    name: String,
    why: String,
    /// Listed under `kept_disabled`: created, but disabled with a problem, because its
    /// options are broken in the file itself (e.g. a jq filter jq refuses too).
    kept_disabled: bool,
}

fn allowed_for(
    expected: &Value,
    file: &str,
    doc: &Value,
    failures: &mut Vec<String>,
) -> Vec<Allowed> {
    let Some(entries) = expected["files"][file]["not_created"].as_array() else {
        failures.push(format!("expected.json has no entry for {file}"));
        return Vec::new();
    };
    let agents = doc["agents"].as_array().unwrap();
    let kept = expected["files"][file]["kept_disabled"].as_array();
    let kept_len = kept.map_or(0, Vec::len);
    let mut out = Vec::new();
    for (n, e) in entries.iter().chain(kept.into_iter().flatten()).enumerate() {
        let index = e["index"].as_u64().unwrap() as usize;
        let name = e["name"].as_str().unwrap().to_string();
        let in_file = agents.get(index).map(|a| (&a["name"], &a["type"]));
        if in_file != Some((&e["name"], &e["type"])) {
            failures.push(format!(
                "expected.json is out of date: agent {index} of the file is not {name:?} ({})",
                e["type"]
            ));
        }
        let why = e["why"].as_str().unwrap().to_string();
        out.push(Allowed {
            index,
            name,
            why,
            kept_disabled: n >= entries.len() && kept_len > 0,
        });
    }
    out
}

/// The options expected.json lists under `options_not_built` for a file: Huginn options
/// of an agent that is created (its type is built) but that muninn does not implement
/// yet, each reported by the import as a problem. `(agent index, option)`.
fn options_not_built(
    expected: &Value,
    file: &str,
    doc: &Value,
    failures: &mut Vec<String>,
) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let agents = doc["agents"].as_array().unwrap();
    for e in expected["files"][file]["options_not_built"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let index = e["index"].as_u64().unwrap() as usize;
        let in_file = agents.get(index).map(|a| (&a["name"], &a["type"]));
        if in_file != Some((&e["name"], &e["type"])) {
            failures.push(format!(
                "expected.json is out of date: agent {index} of the file is not {} ({})",
                e["name"], e["type"]
            ));
        }
        for o in e["options"].as_array().into_iter().flatten() {
            out.push((index, o.as_str().unwrap().to_string()));
        }
    }
    out
}

/// Whether a problem is the import's report of one of those options.
fn option_not_built(p: &Value, partial: &[(usize, String)]) -> bool {
    p["kind"] == "option"
        && partial.iter().any(|(i, o)| {
            p["index"].as_u64() == Some(*i as u64) && p["option"].as_str() == Some(o.as_str())
        })
}

/// Agent indices and names a problem refers to: structured fields first (`index`,
/// `agent`, a link's `source`/`receiver`/`controller`/`control_target`, as numbers,
/// names or objects carrying them), whatever shape the report gives them.
fn referenced(v: &Value, key: &str, indices: &mut BTreeSet<usize>, names: &mut BTreeSet<String>) {
    const KEYS: [&str; 8] = [
        "index",
        "agent",
        "source",
        "receiver",
        "controller",
        "control_target",
        "name",
        "agent_name",
    ];
    let wanted = KEYS.iter().any(|k| key == *k || key.ends_with("_index"));
    match v {
        Value::Number(n) if wanted => {
            if let Some(i) = n.as_u64() {
                indices.insert(i as usize);
            }
        }
        Value::String(s) if wanted => {
            names.insert(s.clone());
        }
        Value::Object(m) => {
            for (k, x) in m {
                referenced(x, k, indices, names);
            }
        }
        Value::Array(items) => {
            for x in items {
                referenced(x, key, indices, names);
            }
        }
        _ => {}
    }
}

fn all_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a problem is one the contract allows: it names an agent that may be left out.
/// Problems that name no agent in a structured field are matched on their text.
fn problem_is_allowed(p: &Value, allowed: &[Allowed]) -> bool {
    let (mut indices, mut names) = (BTreeSet::new(), BTreeSet::new());
    referenced(p, "", &mut indices, &mut names);
    if indices.is_empty() && names.is_empty() {
        let text = all_text(p);
        return allowed.iter().any(|a| text.contains(&a.name));
    }
    allowed
        .iter()
        .any(|a| indices.contains(&a.index) || names.contains(&a.name))
}

/// Gathers every `problems` list of the report, wherever it sits; a problem listed under
/// an agent's entry (`{"index": 2, "name": "x", "problems": ["..."]}`) gets that entry's
/// index and name. Returns whether the report had any `problems` list at all.
fn collect_problems(v: &Value, out: &mut Vec<Value>) -> bool {
    let mut found = false;
    match v {
        Value::Object(m) => {
            if let Some(list) = m.get("problems").and_then(Value::as_array) {
                found = true;
                let owner = m.get("name").or_else(|| m.get("agent"));
                for p in list {
                    match (m.get("index"), owner) {
                        (Some(i), Some(n)) if !p.is_object() => {
                            out.push(serde_json::json!({"index": i, "agent": n, "problem": p}));
                        }
                        _ => out.push(p.clone()),
                    }
                }
            }
            for (k, x) in m {
                if k != "problems" {
                    found |= collect_problems(x, out);
                }
            }
        }
        Value::Array(items) => {
            for x in items {
                found |= collect_problems(x, out);
            }
        }
        _ => {}
    }
    found
}

/// Whether some problem names this left-out agent (the import may not drop it silently).
fn is_named(a: &Allowed, problems: &[Value]) -> bool {
    problems.iter().any(|p| {
        let (mut indices, mut names) = (BTreeSet::new(), BTreeSet::new());
        referenced(p, "", &mut indices, &mut names);
        names.contains(&a.name) || all_text(p).contains(&a.name)
    })
}

/// Whether a muninn type name (`de_duplication`) is the Huginn type (`Agents::DeDuplicationAgent`).
fn same_type(muninn: &str, huginn: &str) -> bool {
    let m = muninn.replace('_', "").to_lowercase();
    let h = huginn.rsplit("::").next().unwrap_or(huginn).to_lowercase();
    h == m || h == format!("{m}agent")
}

/// What the hub holds for one user after the import.
struct Imported {
    agents: Vec<Value>,
    links: BTreeSet<(i64, i64)>,
    control_links: BTreeSet<(i64, i64)>,
    scenario_agent_ids: BTreeSet<i64>,
}

async fn imported(hub: &TestHub, token: &str) -> Imported {
    let agents = hub.get("/api/agents", token).await.json();
    let agents = agents.as_array().cloned().unwrap_or_default();
    let links = hub.get("/api/links", token).await.json();
    let links = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["source_id"].as_i64().unwrap(),
                l["receiver_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let control_links = agents
        .iter()
        .flat_map(|a| {
            let id = a["id"].as_i64().unwrap();
            let targets = a["control_target_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            targets.into_iter().map(move |t| (id, t.as_i64().unwrap()))
        })
        .collect();
    let scenarios = hub.get("/api/scenarios", token).await.json();
    let scenario_agent_ids = scenarios
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["agent_ids"].as_array().cloned().unwrap_or_default())
        .map(|id| id.as_i64().unwrap())
        .collect();
    Imported {
        agents,
        links,
        control_links,
        scenario_agent_ids,
    }
}

/// Checks the agents: every one that may not be left out was created, enabled as the file
/// says, with its type; every one that may be left out was.
fn check_agents(
    doc: &Value,
    allowed: &[Allowed],
    got: &Imported,
    failures: &mut Vec<String>,
) -> BTreeMap<usize, i64> {
    let mut ids = BTreeMap::new();
    for (i, a) in doc["agents"].as_array().unwrap().iter().enumerate() {
        let name = a["name"].as_str().unwrap();
        let row = got.agents.iter().find(|r| r["name"] == name);
        let kept_disabled = allowed.iter().any(|x| x.index == i && x.kept_disabled);
        let may_be_left_out = allowed.iter().any(|x| x.index == i && !x.kept_disabled);
        match (row, may_be_left_out) {
            (None, true) => {}
            (Some(r), true) => failures.push(format!(
                "agent {i} {name:?} ({}) was created although expected.json lists it as left out: \
                 update expected.json",
                r["type"]
            )),
            (None, false) => failures.push(format!(
                "agent {i} {name:?} ({}) was not created",
                a["type"]
            )),
            (Some(r), false) => {
                let id = r["id"].as_i64().unwrap();
                ids.insert(i, id);
                let t = r["type"].as_str().unwrap_or_default();
                if !same_type(t, a["type"].as_str().unwrap()) {
                    failures.push(format!(
                        "agent {i} {name:?} was created as {t}, not {}",
                        a["type"]
                    ));
                }
                let wanted = kept_disabled || a["disabled"].as_bool().unwrap_or(false);
                if r["disabled"].as_bool() != Some(wanted) {
                    failures.push(format!(
                        "agent {i} {name:?} is disabled={} after the import; the file says {wanted}",
                        r["disabled"]
                    ));
                }
                if !got.scenario_agent_ids.contains(&id) {
                    failures.push(format!(
                        "agent {i} {name:?} is not in the imported scenario"
                    ));
                }
            }
        }
    }
    if got.agents.len() != ids.len() {
        failures.push(format!(
            "the user has {} agents after the import; {} were expected",
            got.agents.len(),
            ids.len()
        ));
    }
    ids
}

/// The file's (from, to) pairs of `list` whose both ends were created, as agent ids.
fn wanted_pairs(
    list: &Value,
    from: &str,
    to: &str,
    ids: &BTreeMap<usize, i64>,
) -> BTreeSet<(i64, i64)> {
    list.as_array()
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| {
            let s = ids.get(&(l[from].as_u64()? as usize))?;
            let r = ids.get(&(l[to].as_u64()? as usize))?;
            Some((*s, *r))
        })
        .collect()
}

fn check_pairs(
    what: &str,
    want: &BTreeSet<(i64, i64)>,
    got: &BTreeSet<(i64, i64)>,
    failures: &mut Vec<String>,
) {
    for p in want.difference(got) {
        failures.push(format!(
            "{what} {} -> {} (agent ids) between created agents is missing",
            p.0, p.1
        ));
    }
    for p in got.difference(want) {
        failures.push(format!(
            "{what} {} -> {} (agent ids) is not in the file",
            p.0, p.1
        ));
    }
}

/// Imports one file as a fresh user; returns the report lines and the contract failures.
async fn check_file(
    hub: &TestHub,
    n: usize,
    file: &str,
    doc: &Value,
    expected: &Value,
) -> (Vec<String>, Vec<String>) {
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    let allowed = allowed_for(expected, file, doc, &mut failures);
    let (_, token) = hub.add_user(&format!("wild{n}")).await;
    let r = hub.post_json("/api/scenarios/import", &token, doc).await;
    if r.status != 200 && r.status != 201 {
        failures.push(format!("import answered {}: {}", r.status, r.text()));
        return (lines, failures);
    }
    let body = r.json();
    let mut problems = Vec::new();
    if !collect_problems(&body, &mut problems) {
        failures.push(format!("the import report has no problems list: {body}"));
    }
    let partial = options_not_built(expected, file, doc, &mut failures);
    for p in &problems {
        let ok = problem_is_allowed(p, &allowed) || option_not_built(p, &partial);
        lines.push(format!(
            "    [{}] {}",
            if ok { "allowed" } else { "NOT ALLOWED" },
            p
        ));
        if !ok {
            failures.push(format!("problem about an agent that must come over: {p}"));
        }
    }
    for (index, option) in &partial {
        if !problems
            .iter()
            .any(|p| option_not_built(p, &[(*index, option.clone())]))
        {
            failures.push(format!(
                "agent {index}'s option {option:?} is listed under options_not_built but no \
                 problem names it: remove it from expected.json"
            ));
        }
    }
    for a in &allowed {
        if !is_named(a, &problems) {
            failures.push(format!(
                "agent {} {:?} ({}) was left out but no problem names it",
                a.index, a.name, a.why
            ));
        }
        // An agent kept disabled because insecure agents are off: the report says how
        // to enable them.
        if a.why == "insecure_agents_off"
            && !problems
                .iter()
                .any(|p| p.to_string().contains("[insecure_agents] enabled = true"))
        {
            failures.push(format!(
                "agent {} {:?} is an insecure type but no problem says how to enable them",
                a.index, a.name
            ));
        }
        // A sentiment agent kept disabled for want of a lexicon: the report says which
        // setting names one.
        if a.why == "lexicon_not_configured"
            && !problems
                .iter()
                .any(|p| p.to_string().contains("[sentiment] lexicon_path"))
        {
            failures.push(format!(
                "agent {} {:?} needs a lexicon but no problem says how to configure one",
                a.index, a.name
            ));
        }
    }
    let got = imported(hub, &token).await;
    let ids = check_agents(doc, &allowed, &got, &mut failures);
    let links = wanted_pairs(&doc["links"], "source", "receiver", &ids);
    check_pairs("link", &links, &got.links, &mut failures);
    let controls = wanted_pairs(&doc["control_links"], "controller", "control_target", &ids);
    check_pairs("control link", &controls, &got.control_links, &mut failures);
    let total = doc["agents"].as_array().unwrap().len();
    lines.insert(
        0,
        format!(
            "  agents: {} of {total} created ({} may be left out); links: {} of {} (both ends created: {}); \
             control links: {} of {}; problems: {}",
            ids.len(),
            allowed.len(),
            got.links.len(),
            doc["links"].as_array().map_or(0, Vec::len),
            links.len(),
            got.control_links.len(),
            doc["control_links"].as_array().map_or(0, Vec::len),
            problems.len()
        ),
    );
    (lines, failures)
}

#[actix_rt::test]
async fn every_wild_scenario_imports_whole_but_for_types_not_built_and_dead_apis() {
    // Safe mode: the API and the store run, no agent does, so nothing fetches the real
    // sites these scenarios name; the target guard is off so no host name is looked up.
    let hub = TestHub::start_with(|c| {
        c.safe_mode = true;
        c.delivery.allow_private_targets = true;
    })
    .await;
    let expected = read_json(&wild_dir().join("expected.json"));
    let files = corpus();
    assert!(files.len() >= 20, "the corpus has {} files", files.len());
    let mut failed = Vec::new();
    for (n, (file, doc)) in files.iter().enumerate() {
        let (lines, failures) = check_file(&hub, n, file, doc, &expected).await;
        let verdict = if failures.is_empty() { "ok" } else { "FAILS" };
        println!("== {file}: {verdict}");
        for l in &lines {
            println!("{l}");
        }
        for f in &failures {
            println!("  - {f}");
        }
        if !failures.is_empty() {
            failed.push(file.clone());
        }
    }
    let listed: Vec<&String> = expected["files"].as_object().unwrap().keys().collect();
    for name in listed {
        if !files.iter().any(|(f, _)| f == name) {
            failed.push(format!("{name} (in expected.json, but no such file)"));
        }
    }
    println!(
        "{} of {} files import as issue 16 says",
        files.len() - failed.len(),
        files.len()
    );
    assert!(
        failed.is_empty(),
        "files that do not import as issue 16 says: {failed:#?}"
    );
}
