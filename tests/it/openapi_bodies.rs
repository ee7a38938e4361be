//! The document's request and response schemas are the handlers' own types: real
//! answers of the tokens, users, subscriptions, deliveries, circuit and incoming-webhook
//! routes carry every member their schema requires and none it does not list, and the
//! bodies those handlers refuse unknown members of say `additionalProperties: false`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::sink::Sink;
use common::{ADMIN_TOKEN as T, TestHub};
use serde_json::{Value, json};

/// The schema named by `op`'s answer at `status` (an array's items for a list).
pub(crate) fn answer_schema<'a>(
    doc: &'a Value,
    path: &str,
    method: &str,
    status: &str,
) -> &'a Value {
    let schema =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    let schema = if schema["type"] == "array" {
        &schema["items"]
    } else {
        schema
    };
    resolve(doc, schema)
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// Every required member is there and every member is documented.
pub(crate) fn fits(doc: &Value, schema: &Value, body: &Value, what: &str) {
    if let Err(e) = conforms(doc, schema, body) {
        panic!("{what}: {e}");
    }
}

/// The JSON types a value has in a schema's `type` (an integer is a number too).
fn types_of(v: &Value) -> &'static [&'static str] {
    match v {
        Value::Null => &["null"],
        Value::Bool(_) => &["boolean"],
        Value::Number(n) if n.is_i64() || n.is_u64() => &["integer", "number"],
        Value::Number(_) => &["number"],
        Value::String(_) => &["string"],
        Value::Array(_) => &["array"],
        Value::Object(_) => &["object"],
    }
}

/// Whether `body` is what `schema` describes: its type, an object's required members
/// and no undocumented member, an array's items, exactly one `oneOf` variant, at
/// least one `anyOf` variant. Formats and bounds are left to schemathesis.
fn conforms(doc: &Value, schema: &Value, body: &Value) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(variants) = schema["oneOf"].as_array() {
        let fitting = variants
            .iter()
            .filter(|v| conforms(doc, v, body).is_ok())
            .count();
        return match fitting {
            1 => Ok(()),
            n => Err(format!("{body} fits {n} of oneOf {schema}")),
        };
    }
    if let Some(variants) = schema["anyOf"].as_array() {
        return match variants.iter().any(|v| conforms(doc, v, body).is_ok()) {
            true => Ok(()),
            false => Err(format!("{body} fits none of anyOf {schema}")),
        };
    }
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !allowed.is_empty() && !types_of(body).iter().any(|t| allowed.contains(t)) {
        return Err(format!("{body} is not of type {allowed:?}"));
    }
    if let (Some(items), Some(values)) = (schema.get("items"), body.as_array()) {
        for v in values {
            conforms(doc, items, v)?;
        }
    }
    let (Some(props), Some(obj)) = (schema["properties"].as_object(), body.as_object()) else {
        return Ok(());
    };
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap();
        if !obj.contains_key(name) {
            return Err(format!("{name} missing from {body}"));
        }
    }
    for (name, value) in obj {
        let prop = props
            .get(name)
            .ok_or_else(|| format!("{name} is not in the schema {schema}"))?;
        conforms(doc, prop, value).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

#[actix_rt::test]
async fn answers_fit_the_schemas_of_their_types() {
    // The subscription's target is this machine (nothing is delivered to it).
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let doc = hub
        .request("GET", "/api/openapi.json", None, &[], None)
        .await
        .json();

    let r = hub
        .post_json("/api/tokens", T, &json!({"name": "ci", "scope": "read"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    fits(
        &doc,
        answer_schema(&doc, "/api/tokens", "post", "201"),
        &r.json(),
        "token",
    );
    let r = hub.get("/api/tokens", T).await;
    for t in r.json().as_array().unwrap() {
        fits(
            &doc,
            answer_schema(&doc, "/api/tokens", "get", "200"),
            t,
            "tokens",
        );
    }
    let r = hub.get("/api/me", T).await;
    fits(
        &doc,
        answer_schema(&doc, "/api/me", "get", "200"),
        &r.json(),
        "me",
    );

    let agent = hub
        .add_agent(
            T,
            json!({"type": "event_formatting", "name": "rcv",
                   "options": {"instructions": {"a": "b"}}}),
        )
        .await["id"]
        .clone();
    let r = hub
        .post_json(
            "/api/webhooks/incoming",
            T,
            &json!({"name": "in", "agent_id": agent}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let schema = answer_schema(&doc, "/api/webhooks/incoming", "post", "201");
    fits(&doc, schema, &r.json(), "incoming webhook");

    let r = hub
        .post_json(
            "/api/webhooks/outgoing",
            T,
            &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["event.created"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let schema = answer_schema(&doc, "/api/webhooks/outgoing", "post", "201");
    fits(&doc, schema, &r.json(), "subscription");
    let path = format!("/api/webhooks/outgoing/{id}/reset-circuit");
    let r = hub.post_json(&path, T, &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let schema = answer_schema(
        &doc,
        "/api/webhooks/outgoing/{id}/reset-circuit",
        "post",
        "200",
    );
    fits(&doc, schema, &r.json(), "circuit reset");
    let r = hub.get("/api/webhooks/event-types", T).await;
    let schema = answer_schema(&doc, "/api/webhooks/event-types", "get", "200");
    fits(&doc, schema, &r.json(), "event types");
}

/// The schema of `path`'s `method` answer at `status` in `media`, unresolved.
fn media_schema<'a>(
    doc: &'a Value,
    path: &str,
    method: &str,
    status: &str,
    media: &str,
) -> &'a Value {
    let schema = &doc["paths"][path][method]["responses"][status]["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status} {media}: no schema"
    );
    schema
}

/// Polls a log (the inbound ones are written in batches) until it has a line.
async fn some_lines(hub: &TestHub, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = hub.get(path, T).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let lines = r.json();
        if !lines.as_array().unwrap().is_empty() {
            return lines;
        }
        assert!(Instant::now() < deadline, "{path} stayed empty");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The log and statistics of one endpoint fit the operations' schemas, and the line
/// is the variant of its kind (an inbound line has `received_at`, an attempt
/// `delivery_id`).
async fn log_fits(hub: &TestHub, doc: &Value, id: i64, kind: &str, marker: &str) {
    let lines = some_lines(hub, &format!("/api/webhooks/{id}/logs?webhook_type={kind}")).await;
    let schema = media_schema(
        doc,
        "/api/webhooks/{id}/logs",
        "get",
        "200",
        "application/json",
    );
    fits(doc, schema, &lines, &format!("{kind} log"));
    assert!(lines[0].get(marker).is_some(), "{kind}: {lines}");
    let r = hub
        .get(
            &format!("/api/webhooks/{id}/statistics?webhook_type={kind}"),
            T,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let schema = media_schema(
        doc,
        "/api/webhooks/{id}/statistics",
        "get",
        "200",
        "application/json",
    );
    fits(doc, schema, &r.json(), &format!("{kind} statistics"));
}

#[actix_rt::test]
async fn inbound_answers_and_logs_fit_their_schemas() {
    let sink = Sink::start();
    let hub = TestHub::start_with(|c| c.delivery.allow_private_targets = true).await;
    let doc = hub
        .request("GET", "/api/openapi.json", None, &[], None)
        .await
        .json();

    // An incoming webhook answers its receipt, on POST only.
    let receiver = hub
        .add_agent(
            T,
            json!({"type": "event_formatting", "name": "rcv",
                   "options": {"instructions": {"a": "b"}}}),
        )
        .await["id"]
        .clone();
    let w = hub
        .post_json(
            "/api/webhooks/incoming",
            T,
            &json!({"name": "in", "agent_id": receiver}),
        )
        .await
        .json();
    let token = w["token"].as_str().unwrap();
    let r = hub
        .post_json(&format!("/webhook/{token}"), T, &json!({"n": 1}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let receipt = media_schema(&doc, "/webhook/{token}", "post", "200", "application/json");
    fits(&doc, receipt, &r.json(), "receipt");
    assert_eq!(r.json()["event_ids"].as_array().unwrap().len(), 1);
    let get = &doc["paths"]["/webhook/{token}"]["get"]["responses"];
    assert!(get["200"].is_null() && get["405"].is_object(), "{get}");
    let r = hub
        .request("GET", &format!("/webhook/{token}"), None, &[], None)
        .await;
    assert_eq!(r.status, 405);
    log_fits(
        &hub,
        &doc,
        w["id"].as_i64().unwrap(),
        "incoming",
        "received_at",
    )
    .await;

    // A webhook agent answers its configured text, 201 by default.
    let hook = hub.add_webhook_agent(T).await;
    let path = "/users/{user_id}/web_requests/{agent_id}/{secret}";
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            T,
            &json!({"m": 1}),
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (201, "Event Created"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    media_schema(&doc, path, "post", "201", "text/plain");
    log_fits(&hub, &doc, hook, "agent", "received_at").await;

    // A data_output agent's JSON feed is the document's feed schema.
    let feed = hub
        .add_agent(
            T,
            json!({"type": "data_output", "name": "Out", "source_ids": [hook],
                   "options": {"secrets": ["f"], "template": {"item": {"title": "{{ m }}"}}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let r = hub
        .request(
            "GET",
            &format!("/users/1/web_requests/{feed}/f.json"),
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let any = media_schema(&doc, path, "get", "200", "application/json");
    fits(&doc, any, &r.json(), "feed");
    // The anyOf's free-form half takes anything; the feed fits its own half too.
    let own = resolve(&doc, any).pointer("/anyOf/0").unwrap();
    fits(&doc, own, &r.json(), "feed as JsonFeed");
    for media in ["text/plain", "application/rss+xml", "text/html", "*/*"] {
        media_schema(&doc, path, "get", "200", media);
    }
    log_fits(&hub, &doc, feed, "feed", "received_at").await;

    // A subscription's attempts.
    let sub = hub
        .post_json(
            "/api/webhooks/outgoing",
            T,
            &json!({"url": sink.url, "event_types": ["event.created"]}),
        )
        .await;
    assert_eq!(sub.status, 201, "{}", sub.text());
    let r = hub
        .post_json(
            &format!("/users/1/web_requests/{hook}/s"),
            T,
            &json!({"m": 2}),
        )
        .await;
    assert_eq!(r.status, 201);
    sink.wait_for(1).await;
    let id = sub.json()["id"].as_i64().unwrap();
    log_fits(&hub, &doc, id, "outgoing", "delivery_id").await;
}

#[test]
fn bodies_that_refuse_unknown_members_say_so() {
    let doc: Value = serde_json::from_str(muninn::http::openapi::json()).unwrap();
    for (path, method) in [
        ("/api/tokens", "post"),
        ("/api/users", "post"),
        ("/api/me", "patch"),
        ("/api/webhooks/outgoing", "post"),
        ("/api/webhooks/outgoing/{id}", "put"),
        ("/api/webhooks/outgoing/{id}/replay", "post"),
        ("/api/webhooks/outgoing/{id}/rotate-secret", "post"),
        ("/api/webhooks/incoming", "post"),
    ] {
        let schema =
            &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
        let schema = match schema["oneOf"].as_array() {
            // An optional body: the type, or none.
            Some(any) => any.iter().find(|s| s["$ref"].is_string()).unwrap(),
            None => schema,
        };
        let body = resolve(&doc, schema);
        assert_eq!(
            body["additionalProperties"],
            json!(false),
            "{method} {path}: {body}"
        );
    }
    // Enums are enums: a token's scope, a delivery's status (the names the store keeps).
    assert_eq!(
        doc["components"]["schemas"]["Scope"]["enum"],
        json!(["read", "full", "admin"])
    );
    assert_eq!(
        doc["components"]["schemas"]["DeliveryStatus"]["enum"],
        json!(muninn::store::deliveries::STATUSES)
    );
}
