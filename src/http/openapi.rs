//! The OpenAPI 3.1 document of every route, served at `/api/openapi.json`.
//!
//! utoipa builds it from the handlers' own `#[utoipa::path]` annotations and the types
//! they read (query structs derive `IntoParams`, the error body derives `ToSchema`); this
//! file only lists the handlers and applies what one annotation per function cannot say:
//! the error responses every route shares, the second paths some handlers serve (Huginn's
//! `/agents.json` forms), and operation ids unique per method.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::{Envelope, ErrorBody, ErrorCode};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "muninn",
        description = "The management API of a muninn hub (agents, events, scenarios, \
            inbound and outgoing webhooks, deliveries) and its public routes. Errors are \
            `{\"error\": {\"code\", \"message\", \"field\"}}` with the codes listed per status."
    ),
    paths(
        crate::http::api::status::healthz,
        crate::http::api::status::worker_status,
        crate::http::metrics::metrics,
        crate::http::api::register::register,
        crate::http::api::register::list,
        crate::http::api::subscriptions::delete,
        crate::http::api::register::set_events,
        crate::http::api::tokens::revoke,
        crate::http::api::tokens::rotate,
        crate::http::api::agents::dry_run,
        crate::http::api::agents::logs,
        crate::http::api::agents::run,
        crate::http::api::agents::clear_memory,
        crate::http::api::agents::reemit_events,
        crate::http::api::links::delete,
        crate::http::api::events::list,
        crate::http::api::events::get,
        crate::http::api::subscriptions::event_types,
        crate::http::api::subscriptions::pause,
        crate::http::api::subscriptions::resume,
        crate::http::api::subscriptions::rotate_secret,
        crate::http::api::subscriptions::test,
        crate::http::api::circuit::reset,
        crate::http::api::subscriptions::replay,
        crate::http::api::deliveries::list,
        crate::http::api::deliveries::get,
        crate::http::api::deliveries::retry,
        crate::http::api::scenarios::import,
        crate::http::api::scenarios::export,
        crate::http::api::summary::summary,
        crate::http::api::stream::stream,
        crate::http::api::users::me,
        crate::http::api::users::update_me,
        crate::http::api::users::list,
        crate::http::api::users::create,
        crate::http::api::tokens::list,
        crate::http::api::tokens::create,
        crate::http::api::agents::list,
        crate::http::api::agents::create,
        crate::http::api::agents::get,
        crate::http::api::agents::update,
        crate::http::api::agents::delete,
        crate::http::api::events::for_agent,
        crate::http::api::agents::post_events,
        crate::http::api::agents::delete_events,
        crate::http::api::links::list,
        crate::http::api::links::create,
        crate::http::api::subscriptions::list,
        crate::http::api::subscriptions::create,
        crate::http::api::subscriptions::get,
        crate::http::api::subscriptions::update,
        crate::http::api::scenarios::list,
        crate::http::api::scenarios::create,
        crate::http::api::scenarios::get,
        crate::http::api::scenarios::delete,
        crate::http::api::credentials::list,
        crate::http::api::credentials::create,
        crate::http::api::credentials::get,
        crate::http::api::credentials::update,
        crate::http::api::credentials::delete,
        crate::http::api::incoming_webhooks::rotate,
        crate::http::api::webhook_logs::logs,
        crate::http::api::webhook_logs::statistics,
        crate::http::api::incoming_webhooks::list,
        crate::http::api::incoming_webhooks::create,
        crate::http::api::incoming_webhooks::get,
        crate::http::api::incoming_webhooks::update,
        crate::http::api::incoming_webhooks::delete,
        crate::http::inbound::webhook,
        crate::http::web_requests::handle,
        document,
        docs
    ),
    components(schemas(Envelope, ErrorBody, ErrorCode)),
    modifiers(&SharedErrors, &Aliases, &PostOnly, &UniqueOperationIds)
)]
struct ApiDoc;

/// Second paths served by the handler of a documented operation: (path, method, the
/// documented path, its method). Most are Huginn's forms beside muninn's `/api` ones.
const ALIASES: &[(&str, &str, &str, &str)] = &[
    (
        "/webhooks/{id}",
        "delete",
        "/api/webhooks/outgoing/{id}",
        "delete",
    ),
    ("/agents/{id}/run", "post", "/api/agents/{id}/run", "post"),
    (
        "/agents/{id}/reemit_events",
        "post",
        "/api/agents/{id}/reemit_events",
        "post",
    ),
    (
        "/api/webhooks/test/{id}",
        "post",
        "/api/webhooks/outgoing/{id}/test",
        "post",
    ),
    (
        "/scenarios/{id}/export",
        "get",
        "/api/scenarios/{id}/export",
        "get",
    ),
    ("/agents.json", "get", "/api/agents", "get"),
    ("/agents/{id}.json", "get", "/api/agents/{id}", "get"),
    (
        "/agents/{id}/events.json",
        "get",
        "/api/agents/{id}/events",
        "get",
    ),
    (
        "/agents/{id}/remove_events",
        "delete",
        "/api/agents/{id}/events",
        "delete",
    ),
    (
        "/users/{user_id}/webhooks/{agent_id}/{secret}",
        "get",
        "/users/{user_id}/web_requests/{agent_id}/{secret}",
        "get",
    ),
    (
        "/users/{user_id}/webhooks/{agent_id}/{secret}",
        "post",
        "/users/{user_id}/web_requests/{agent_id}/{secret}",
        "post",
    ),
    (
        "/users/{user_id}/webhooks/{agent_id}/{secret}",
        "put",
        "/users/{user_id}/web_requests/{agent_id}/{secret}",
        "put",
    ),
    (
        "/users/{user_id}/webhooks/{agent_id}/{secret}",
        "patch",
        "/users/{user_id}/web_requests/{agent_id}/{secret}",
        "patch",
    ),
    (
        "/users/{user_id}/webhooks/{agent_id}/{secret}",
        "delete",
        "/users/{user_id}/web_requests/{agent_id}/{secret}",
        "delete",
    ),
];

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        // Serializing a tree of strings, maps and numbers cannot fail; an empty object
        // is still an answer a client can read.
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi_document",
    tag = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", body = Object)
    )
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}

/// The docs page: one HTML file with its script and style inline, rendering this document
/// in the browser. No CDN and no other asset, so it works on a hub cut off from the
/// internet; the policy header keeps it that way.
const DOCS_PAGE: &str = include_str!("openapi_docs.html");

/// `GET /api/docs`: a readable page of this document.
#[utoipa::path(
    get,
    path = "/api/docs",
    operation_id = "openapi_docs",
    tag = "openapi",
    responses(
        (status = 200, description = "An HTML page rendering `/api/openapi.json`", content_type = "text/html")
    )
)]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'",
        ))
        .body(DOCS_PAGE)
}

/// Adds to every operation the error answers any route can give, each listing the codes
/// of its status, so a client learns the whole closed set from the document.
struct SharedErrors;

impl Modify for SharedErrors {
    fn modify(&self, openapi: &mut Document) {
        let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
        for code in ErrorCode::ALL.into_iter().filter(|c| !c.inbound_only()) {
            by_status
                .entry(code.status().as_u16())
                .or_default()
                .push(code.as_str());
        }
        for item in openapi.paths.paths.values_mut() {
            for op in operations_mut(item) {
                let tags = op.tags.as_deref().unwrap_or_default();
                if tags
                    .iter()
                    .any(|t| OWN_ERROR_CONTRACTS.contains(&t.as_str()))
                {
                    continue;
                }
                for (status, codes) in &by_status {
                    let codes: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
                    let response = ResponseBuilder::new()
                        .description(format!("Error; `code` is one of {}", codes.join(", ")))
                        .content(
                            "application/json",
                            Content::new(Some(Ref::from_schema_name("Error"))),
                        )
                        .build();
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert(RefOr::T(response));
                }
            }
        }
    }
}

/// Routes whose errors follow their own contract (Huginn's plain-text web-request
/// answers, the incoming-webhook answers of contracts/webhooks): their handlers document
/// their errors themselves.
const OWN_ERROR_CONTRACTS: [&str; 2] = ["web_requests", "inbound"];

/// Copies each documented operation onto the other paths its handler serves.
struct Aliases;

impl Modify for Aliases {
    fn modify(&self, openapi: &mut Document) {
        for (alias, method, path, documented) in ALIASES {
            let (Some(method), Some(documented)) = (http_method(method), http_method(documented))
            else {
                continue;
            };
            let Some(op) = openapi.paths.get_path_operation(path, documented).cloned() else {
                continue;
            };
            openapi.paths.add_path_operation(alias, vec![method], op);
        }
    }
}

/// Paths whose handler takes every method but succeeds on POST alone (the others are
/// answered 405): their other methods keep the errors and lose the success answers
/// the handler's one annotation gives every method.
const POST_ONLY: [&str; 1] = ["/webhook/{token}"];

struct PostOnly;

impl Modify for PostOnly {
    fn modify(&self, openapi: &mut Document) {
        for path in POST_ONLY {
            let Some(item) = openapi.paths.paths.get_mut(path) else {
                continue;
            };
            for (method, op) in operations_named_mut(item) {
                if method != "post" {
                    op.responses
                        .responses
                        .retain(|status, _| !status.starts_with('2'));
                }
            }
        }
    }
}

/// utoipa gives one operation id to every method and path of a handler; OpenAPI wants
/// them unique, so a repeated id gets the method, then the path, appended.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut Document) {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for item in openapi.paths.paths.values() {
            for (_, op) in operations(item) {
                if let Some(id) = &op.operation_id {
                    *seen.entry(id.clone()).or_default() += 1;
                }
            }
        }
        let mut taken: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in operations_named_mut(item) {
                let Some(id) = op.operation_id.clone() else {
                    continue;
                };
                if seen.get(&id).copied().unwrap_or(0) < 2 {
                    continue;
                }
                let mut unique = format!("{id}_{method}");
                if taken.contains(&unique) {
                    unique = format!("{unique}{}", slug(path));
                }
                taken.insert(unique.clone());
                op.operation_id = Some(unique);
            }
        }
    }
}

fn slug(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn http_method(name: &str) -> Option<HttpMethod> {
    Some(match name {
        "get" => HttpMethod::Get,
        "post" => HttpMethod::Post,
        "put" => HttpMethod::Put,
        "patch" => HttpMethod::Patch,
        "delete" => HttpMethod::Delete,
        _ => return None,
    })
}

fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("patch", &item.patch),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

fn operations_named_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    operations_named_mut(item).into_iter().map(|(_, op)| op)
}
