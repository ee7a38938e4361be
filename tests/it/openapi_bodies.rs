//! The document's request and response schemas are the handlers' own types: real
//! answers of the tokens, users, subscriptions, deliveries, circuit and incoming-webhook
//! routes carry every member their schema requires and none it does not list, and the
//! bodies those handlers refuse unknown members of say `additionalProperties: false`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN as T, TestHub};
use serde_json::{Value, json};

/// The schema named by `op`'s answer at `status` (an array's items for a list).
fn answer_schema<'a>(doc: &'a Value, path: &str, method: &str, status: &str) -> &'a Value {
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
fn fits(doc: &Value, schema: &Value, body: &Value, what: &str) {
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: no properties in {schema}"));
    let obj = body.as_object().unwrap_or_else(|| panic!("{what}: {body}"));
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap();
        assert!(obj.contains_key(name), "{what}: {name} missing from {body}");
    }
    for (name, value) in obj {
        let prop = props
            .get(name)
            .unwrap_or_else(|| panic!("{what}: {name} is not in the schema"));
        let target = resolve(doc, prop);
        if value.is_object() && target["properties"].is_object() {
            fits(doc, target, value, &format!("{what}.{name}"));
        }
    }
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
