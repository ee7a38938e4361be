//! `/api/openapi.json` describes the router exactly: every route the router has is a
//! path of the document, every documented operation answers (never the router's
//! `route_not_found`/`method_not_allowed`), and no method answers that the document
//! leaves out. The error codes of the API are listed in the document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{App, HttpRequest, test, web};
use common::TestHub;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The full patterns of the router's resources, read from actix's resource map.
///
/// actix has no public listing of its routes; its `ResourceMap` prints as a tree of
/// `ResourceMap { pattern: ResourceDef { .. patterns: Single("..") .. }, .. nodes: .. }`.
/// A resource is a node with no child nodes; its full pattern is its ancestors' joined.
/// If actix prints it otherwise, the count check below fails rather than passing empty.
async fn router_patterns() -> BTreeSet<String> {
    let config = muninn::Config::default();
    let app = test::init_service(
        App::new()
            .configure(|cfg| muninn::http::routes(cfg, &config))
            .route(
                "/__resource_map",
                web::get()
                    .to(|req: HttpRequest| async move { format!("{:?}", req.resource_map()) }),
            ),
    )
    .await;
    let req = test::TestRequest::get().uri("/__resource_map").to_request();
    let tree = String::from_utf8(test::call_and_read_body(&app, req).await.to_vec()).unwrap();
    let mut found = BTreeSet::new();
    for pattern in leaf_patterns(&tree) {
        if pattern != "/__resource_map" {
            found.insert(pattern);
        }
    }
    found
}

/// Walks the printed tree: brackets outside strings give the depth; each
/// `ResourceMap {` opens a node whose first `patterns: Single("…")` is its pattern.
fn leaf_patterns(tree: &str) -> Vec<String> {
    struct Node {
        depth: usize,
        pattern: Option<String>,
        children: usize,
    }
    let bytes = tree.as_bytes();
    let mut stack: Vec<Node> = Vec::new();
    let mut leaves = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &tree[i..];
        if rest.starts_with("ResourceMap {") {
            if let Some(parent) = stack.last_mut() {
                parent.children += 1;
            }
            depth += 1;
            stack.push(Node {
                depth,
                pattern: None,
                children: 0,
            });
            i += "ResourceMap {".len();
            continue;
        }
        if let Some(after) = rest.strip_prefix("patterns: Single(\"") {
            let end = string_end(after);
            if let Some(node) = stack.last_mut()
                && node.pattern.is_none()
            {
                node.pattern = Some(unescape(&after[..end]));
            }
            // Past the closing quote and parenthesis.
            i += "patterns: Single(\"".len() + end + 2;
            continue;
        }
        match bytes[i] {
            b'"' => {
                i += 1 + string_end(&tree[i + 1..]) + 1;
                continue;
            }
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => {
                if stack.last().is_some_and(|n| n.depth == depth) {
                    let node = stack.pop().unwrap();
                    if node.children == 0 && !stack.is_empty() {
                        let mut full: String =
                            stack.iter().filter_map(|n| n.pattern.clone()).collect();
                        full.push_str(node.pattern.as_deref().unwrap_or(""));
                        leaves.push(full);
                    }
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    leaves
}

/// Length of a printed string's contents (up to its closing unescaped quote).
fn string_end(s: &str) -> usize {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return i,
            _ => escaped = false,
        }
    }
    s.len()
}

fn unescape(s: &str) -> String {
    s.replace("\\\\", "\\")
}

/// `{id:\d+}` as OpenAPI writes it: `{id}`.
fn openapi_path(pattern: &str) -> String {
    regex::Regex::new(r"\{(\w+):[^}]*\}")
        .unwrap()
        .replace_all(pattern, "{$1}")
        .into_owned()
}

/// A concrete path for a template: every parameter a number no row has.
fn concrete(template: &str) -> String {
    regex::Regex::new(r"\{\w+\}")
        .unwrap()
        .replace_all(template, "987654")
        .into_owned()
}

/// What a template matches: each parameter one path segment (or part of one).
fn template_regex(template: &str) -> regex::Regex {
    let re = regex::escape(template);
    let re = regex::Regex::new(r"\\\{\w+\\\}")
        .unwrap()
        .replace_all(&re, "[^/]+");
    regex::Regex::new(&format!("^{re}$")).unwrap()
}

/// Whether the router sent `method path` to a handler (anything but its own 404/405).
async fn answered(hub: &TestHub, method: &str, path: &str) -> bool {
    let r = hub
        .request(&method.to_uppercase(), path, None, &[], None)
        .await;
    let code = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    let router_refused = matches!(
        (r.status, code.as_deref()),
        (404, Some("route_not_found")) | (405, Some("method_not_allowed"))
    );
    !router_refused
}

#[actix_rt::test]
async fn the_document_lists_every_route_and_every_documented_route_answers() {
    let hub = TestHub::start().await;
    let r = hub
        .request("GET", "/api/openapi.json", None, &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    let mut documented: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                documented.entry(path.clone()).or_default().insert(method);
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(operation_ids.insert(id.clone()), "operationId {id} twice");
            }
        }
    }

    let router = router_patterns().await;
    for known in [
        "/healthz",
        "/users",
        "/api/agents/{id}",
        "/agents/{id:\\d+}.json",
    ] {
        assert!(
            router.contains(known),
            "{known} not read from the router: {router:?}"
        );
    }
    let matchers: Vec<(&String, regex::Regex)> =
        documented.keys().map(|p| (p, template_regex(p))).collect();
    let mut problems = Vec::new();
    // Every resource of the router is a documented path, or (a scope one handler serves
    // whole, like `/users`) has documented paths under it.
    for pattern in &router {
        let path = openapi_path(pattern);
        let under = format!("{path}/");
        if !documented.contains_key(&path) && !documented.keys().any(|p| p.starts_with(&under)) {
            problems.push(format!("{pattern}: in the router, not in the document"));
        }
    }
    // Every documented path is the router's, and answers exactly the documented methods
    // (a method no operation documents may still reach another documented route, as
    // `GET /api/agents/dry_run` reaches `GET /api/agents/{id}`).
    for (path, methods) in &documented {
        let covered = router.iter().any(|p| openapi_path(p) == *path)
            || router
                .iter()
                .any(|p| path.starts_with(&format!("{}/", openapi_path(p))));
        if !covered {
            problems.push(format!("{path}: in the document, not in the router"));
        }
        let url = concrete(path);
        for method in METHODS {
            let answers = answered(&hub, method, &url).await;
            if methods.contains(method) && !answers {
                problems.push(format!(
                    "{method} {path}: documented, the router refuses it"
                ));
            }
            let elsewhere = matchers
                .iter()
                .any(|(p, re)| *p != path && documented[*p].contains(method) && re.is_match(&url));
            if !methods.contains(method) && answers && !elsewhere {
                problems.push(format!("{method} {path}: answers, not documented"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One pagination for every list: each answer that is a JSON array documents `limit`
/// and a cursor (`after`/`before`, or `offset` for the logs kept as rings).
#[actix_rt::test]
async fn every_list_documents_its_limit_and_cursor() {
    let doc: Value = serde_json::from_str(muninn::http::openapi::json()).unwrap();
    let mut lists = 0;
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else {
            continue;
        };
        let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
        if schema["type"] != "array" {
            continue;
        }
        lists += 1;
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        let cursor = ["after", "before", "offset"]
            .iter()
            .any(|c| names.contains(c));
        if !names.contains(&"limit") || !cursor {
            problems.push(format!("GET {path}: parameters {names:?}"));
        }
    }
    assert!(lists >= 15, "only {lists} lists in the document");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[actix_rt::test]
async fn the_document_lists_the_error_codes_and_the_error_shape() {
    let hub = TestHub::start().await;
    let doc = hub
        .request("GET", "/api/openapi.json", None, &[], None)
        .await
        .json();
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "route_not_found",
        "method_not_allowed",
        "invalid_query_parameter",
        "not_found",
    ] {
        assert!(codes.contains(code), "{code} missing from {codes:?}");
    }
    assert_eq!(codes.len(), muninn::http::ErrorCode::ALL.len());
    // Every operation documents the shared errors with the Error schema.
    let op = &doc["paths"]["/api/agents/{id}"]["get"];
    let not_found = &op["responses"]["404"];
    assert_eq!(
        not_found["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    let text = not_found["description"].as_str().unwrap();
    assert!(
        text.contains("`not_found`") && text.contains("`route_not_found`"),
        "{text}"
    );
    // The inbound URLs document their own errors: muninn's refusals in the error shape,
    // Huginn's answers as its text. Their codes are listed there, not on the API's routes.
    let inbound = &doc["paths"]["/webhook/{token}"]["post"]["responses"];
    assert_eq!(
        inbound["429"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    assert!(
        inbound["429"]["headers"]["Retry-After"].is_object(),
        "{inbound}"
    );
    let huginn =
        &doc["paths"]["/users/{user_id}/web_requests/{agent_id}/{secret}"]["post"]["responses"];
    assert!(
        huginn["404"]["content"]["text/plain"].is_object(),
        "{huginn}"
    );
    assert!(
        huginn["401"]["content"]["text/plain"].is_object(),
        "{huginn}"
    );
    assert!(
        huginn["401"]["content"]["application/json"].is_object(),
        "{huginn}"
    );
    let api_429 = &doc["paths"]["/api/agents/{id}"]["get"]["responses"]["429"];
    assert!(api_429.is_null(), "{api_429}");
    // A query struct's parameters, named as the handler reads them.
    let params: Vec<&str> = doc["paths"]["/api/events"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"type") && params.contains(&"agent_id"),
        "{params:?}"
    );
    // Huginn's forms carry the operation of the route they share a handler with.
    assert_eq!(
        doc["paths"]["/agents.json"]["get"]["summary"],
        doc["paths"]["/api/agents"]["get"]["summary"]
    );
}

#[actix_rt::test]
async fn the_docs_page_renders_the_document_with_nothing_from_elsewhere() {
    let hub = TestHub::start().await;
    let r = hub.request("GET", "/api/docs", None, &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let page = r.text();
    assert!(
        page.contains("fetch(\"openapi.json\")"),
        "the page loads the document"
    );
    // No asset from another host: no scheme-qualified or protocol-relative URL at all.
    for outside in ["http://", "https://", "src=\"//", "href=\"//"] {
        assert!(!page.contains(outside), "{outside} in the docs page");
    }
    // The document the page fetches is served beside it.
    let doc = hub
        .request("GET", "/api/openapi.json", None, &[], None)
        .await;
    assert_eq!(doc.status, 200);
    assert!(doc.json()["paths"]["/api/docs"]["get"].is_object());
}

/// Operations whose success or request-body schemas are still to be written: none.
/// The list only shrinks: an operation listed here that has its schemas fails the
/// test below, and a new operation without them fails it unless listed.
const SCHEMAS_STILL_MISSING: &[&str] = &[];

/// Whether the handler of `method path` reads a JSON body: sent one that is not JSON
/// from its first byte, it answers `invalid_json` (actix's JSON extractor refused it
/// before the handler ran, so the probe changes nothing). Not JSON from the start, so a
/// streaming parser cannot find another fault (an unknown field) first.
async fn reads_json_body(hub: &TestHub, method: &str, path: &str) -> bool {
    let r = hub
        .request(
            &method.to_uppercase(),
            &concrete(path),
            Some(common::ADMIN_TOKEN),
            &[("Content-Type", "application/json")],
            Some(b"not json".to_vec()),
        )
        .await;
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    body["error"]["code"] == "invalid_json"
}

/// What an operation's description leaves out: a success answer (other than 204) with
/// no content, a JSON answer with no schema, a JSON body read with no schema.
async fn schemas_missing(hub: &TestHub, method: &str, path: &str, op: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (status, response) in op["responses"].as_object().unwrap() {
        if !status.starts_with('2') || status == "204" {
            continue;
        }
        match response["content"].as_object() {
            None => missing.push(format!("the {status} answer has no content")),
            Some(content) => {
                for (media, c) in content {
                    if media.contains("json") && c.get("schema").is_none() {
                        missing.push(format!("the {status} {media} answer has no schema"));
                    }
                }
            }
        }
    }
    if method != "get" && reads_json_body(hub, method, path).await {
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        if schema.is_null() {
            missing.push("it reads a JSON body, which has no schema".into());
        }
    }
    missing
}

#[actix_rt::test]
async fn every_json_answer_and_json_body_has_a_schema() {
    let hub = TestHub::start().await;
    let doc = hub
        .request("GET", "/api/openapi.json", None, &[], None)
        .await
        .json();
    let listed: BTreeSet<&str> = SCHEMAS_STILL_MISSING.iter().copied().collect();
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            let id = op["operationId"].as_str().unwrap();
            seen.insert(id.to_owned());
            let missing = schemas_missing(&hub, method, path, op).await;
            match (missing.is_empty(), listed.contains(id)) {
                (false, false) => problems.push(format!(
                    "{method} {path} ({id}): {}",
                    missing.join("; ")
                )),
                (true, true) => problems.push(format!(
                    "{method} {path} ({id}) has its schemas now: remove it from SCHEMAS_STILL_MISSING"
                )),
                _ => {}
            }
        }
    }
    for id in listed.iter().filter(|id| !seen.contains(**id)) {
        problems.push(format!(
            "{id} in SCHEMAS_STILL_MISSING is no operation of the document"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The schemas are the handlers' types: a body that refuses unknown fields says so,
    // a field that may be absent is not required, one that is always there (even as
    // null) is.
    let schemas = &doc["components"]["schemas"];
    for refusing in [
        "AgentInput",
        "LinkIn",
        "ScenarioIn",
        "RegisterIn",
        "DryRunInput",
    ] {
        assert_eq!(
            schemas[refusing]["additionalProperties"], false,
            "{refusing}: {}",
            schemas[refusing]
        );
    }
    let required = |name: &str| -> BTreeSet<String> {
        schemas[name]["required"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        required("AgentInput").is_empty(),
        "{}",
        schemas["AgentInput"]
    );
    let agent = required("AgentOut");
    assert!(
        agent.contains("schedule") && agent.contains("last_error_at"),
        "{agent:?}"
    );
    assert!(
        !agent.contains("web_request_url") && !agent.contains("warnings"),
        "{agent:?}"
    );
    // Absent when there is none, never null; an always-present one is null when empty.
    let props = &schemas["AgentOut"]["properties"];
    assert_eq!(props["web_request_url"]["type"], "string", "{props}");
    assert_eq!(
        props["schedule"]["type"],
        serde_json::json!(["string", "null"])
    );
    assert_eq!(
        doc["paths"]["/api/agents"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["items"]["$ref"],
        "#/components/schemas/AgentOut"
    );
}
