//! Every error of muninn's own API has one shape, `{"error": {"code", "message",
//! "field"?}}`: object errors, validation, bodies that are not JSON or not the route's
//! shape, query parameters that cannot be read (named), and actix's own 404 and 405
//! answers, which had no body; the feed URL's own refusals too, while Huginn's
//! plain-text answers stay as its guide prints them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{ADMIN_TOKEN, Resp, TestHub};
use serde_json::{Value, json};

/// The error object of `r`, after checking its status and that it is JSON.
fn error(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{}",
        r.text()
    );
    let e = r.json()["error"].clone();
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text()
    );
    e
}

#[actix_rt::test]
async fn routes_and_methods_that_do_not_exist_answer_the_error_shape() {
    let hub = TestHub::start().await;
    let e = error(&hub.get("/api/nothing-here", ADMIN_TOKEN).await, 404);
    assert_eq!(e["code"], "route_not_found");
    assert!(e["message"].as_str().unwrap().contains("/api/nothing-here"));
    assert_eq!(e.get("field"), None);

    // A resource without the method: actix's bodiless 405, now with a body.
    let e = error(&hub.delete("/api/agents", ADMIN_TOKEN).await, 405);
    assert_eq!(e["code"], "method_not_allowed");
    assert!(e["message"].as_str().unwrap().contains("DELETE"), "{e}");
    let e = error(
        &hub.send_json("PUT", "/api/links", ADMIN_TOKEN, &json!({}))
            .await,
        405,
    );
    assert_eq!(e["code"], "method_not_allowed");
    // A path registered as a route for one method (actix answers those with 404).
    let e = error(
        &hub.post_json("/api/events", ADMIN_TOKEN, &json!({})).await,
        405,
    );
    assert_eq!(e["code"], "method_not_allowed");
    // Outside /api too: the registration API and paths nothing serves.
    let e = error(&hub.get("/webhooks/1", ADMIN_TOKEN).await, 405);
    assert_eq!(e["code"], "method_not_allowed");
    let e = error(&hub.get("/agents.json/x", ADMIN_TOKEN).await, 404);
    assert_eq!(e["code"], "route_not_found");
    let e = error(&hub.get("/no/such/page", ADMIN_TOKEN).await, 404);
    assert_eq!(e["code"], "route_not_found");
}

#[actix_rt::test]
async fn a_query_parameter_that_cannot_be_read_is_named() {
    let hub = TestHub::start().await;
    let e = error(&hub.get("/api/events?limit=abc", ADMIN_TOKEN).await, 400);
    assert_eq!(e["code"], "invalid_query_parameter");
    assert_eq!(e["field"], "limit");
    assert!(e["message"].as_str().unwrap().contains("limit"), "{e}");
    let e = error(
        &hub.get("/api/deliveries?webhook_id=x", ADMIN_TOKEN).await,
        400,
    );
    assert_eq!(e["field"], "webhook_id");
    // Readable ones still work.
    assert_eq!(
        hub.get("/api/events?limit=2", ADMIN_TOKEN).await.status,
        200
    );
}

#[actix_rt::test]
async fn bodies_that_are_not_json_or_not_the_shape_say_so() {
    let hub = TestHub::start().await;
    let r = hub
        .request(
            "POST",
            "/api/links",
            Some(ADMIN_TOKEN),
            &[("content-type", "application/json")],
            Some(b"{\"source_id\": ".to_vec()),
        )
        .await;
    assert_eq!(error(&r, 400)["code"], "invalid_json");

    let r = hub
        .post_json(
            "/api/links",
            ADMIN_TOKEN,
            &json!({"source_id": 1, "receiver_id": 2, "sourceids": [1]}),
        )
        .await;
    let e = error(&r, 422);
    assert_eq!(
        (&e["code"], &e["field"]),
        (&json!("invalid_body"), &json!("sourceids"))
    );
    let r = hub
        .post_json("/api/links", ADMIN_TOKEN, &json!({"source_id": 1}))
        .await;
    assert_eq!(error(&r, 422)["field"], "receiver_id");

    let r = hub
        .request(
            "POST",
            "/api/links",
            Some(ADMIN_TOKEN),
            &[("content-type", "text/plain")],
            Some(b"x".to_vec()),
        )
        .await;
    assert_eq!(error(&r, 415)["code"], "unsupported_media_type");
}

#[actix_rt::test]
async fn object_auth_and_validation_errors_carry_their_codes() {
    let hub = TestHub::start().await;
    let e = error(&hub.get("/api/agents/987654", ADMIN_TOKEN).await, 404);
    assert_eq!(e["code"], "not_found");
    let r = hub.request("GET", "/api/agents", None, &[], None).await;
    assert_eq!(error(&r, 401)["code"], "unauthorized");
    let r = hub
        .post_json(
            "/api/agents",
            ADMIN_TOKEN,
            &json!({"type": "webhook", "name": "w", "options": {"payload_path": "x"}}),
        )
        .await;
    let e = error(&r, 422);
    assert_eq!(
        (&e["code"], &e["field"]),
        (&json!("validation_failed"), &json!("options"))
    );
}

#[actix_rt::test]
async fn feed_urls_keep_huginns_sentences_and_give_muninns_own_the_shape() {
    let hub = TestHub::start().await;
    let feed = hub
        .add_agent(
            ADMIN_TOKEN,
            json!({"type": "data_output", "name": "Out", "options": {"secrets": ["s1"], "expected_receive_period_in_days": 2, "template": {"title": "t", "description": "d", "item": {"title": "{{title}}"}}}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let url = |last: &str| format!("/users/1/web_requests/{feed}/{last}");
    // Huginn's own answer, as its guide prints it.
    let r = hub.request("GET", &url("wrong.xml"), None, &[], None).await;
    assert_eq!((r.status, r.text().as_str()), (401, "Not Authorized"));
    // Huginn's DataOutputAgent answers JSON this way, and a Huginn client reads it.
    let r = hub
        .request("GET", &url("wrong.json"), None, &[], None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"error": "Not Authorized"}));
    // muninn's own refusals.
    let r = hub.request("DELETE", &url("s1.xml"), None, &[], None).await;
    let e = error(&r, 405);
    assert_eq!(e["code"], "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let e = error(
        &hub.request("GET", &url("s1.csv"), None, &[], None).await,
        404,
    );
    assert_eq!(e["code"], "not_found");
    // An unknown agent is Huginn's plain text.
    let r = hub
        .request(
            "GET",
            "/users/1/web_requests/999999/s1.xml",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (404, "agent not found"));
}
