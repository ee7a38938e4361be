//! `ANY /users/{user_id}/web_requests/{agent_id}/{secret}` — Huginn's web-request URL.
//! Finds the agent in the registry (no database read) and hands the request to its
//! endpoint actor (or, for a `data_output` agent, serves its feed). Answers are text,
//! as Huginn's are.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::AppState;
use super::error::Envelope;
use super::inbound::{admit_and_read, inbound_request, request_ip, respond};
use crate::endpoints::{HandleWebRequest, WebResponse};
use crate::feeds::json::JsonFeed;
use crate::telemetry::{self, Endpoint, IngestKind};

/// Huginn's JSON refusal, as a feed or page asked for as `.json` answers a wrong secret:
/// `{"error": "Not Authorized"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HuginnError {
    pub error: &'static str,
}

impl HuginnError {
    pub const NOT_AUTHORIZED: HuginnError = HuginnError {
        error: "Not Authorized",
    };
}

/// A JSON 401 of a web-request URL: muninn's own signature refusal, or Huginn's answer
/// of a feed or page. Only the document uses this; each is sent as its own type.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
enum JsonUnauthorized<'a> {
    Refusal(Envelope<'a>),
    Huginn(HuginnError),
}

/// The JSON a web-request URL answers: a data_output agent's `.json` feed
/// ([`JsonFeed`]), or whatever JSON a liquid_output page is configured to serve — any
/// of the two, so a schema of its own. Only the document uses this.
#[allow(dead_code)]
struct WebRequestJson;

impl PartialSchema for WebRequestJson {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(JsonFeed::name()))
            .item(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
            .description(Some(
                "A data_output agent's `.json` feed, or a liquid_output page's own JSON",
            ))
            .into()
    }
}

impl ToSchema for WebRequestJson {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((JsonFeed::name().into_owned(), JsonFeed::schema()));
        <JsonFeed as ToSchema>::schemas(schemas);
    }
}

/// Everything under `/users`; what is not a web-request URL is not found.
///
/// Huginn's answers are its plain text (`Not Authorized`, `Please use POST requests
/// only`, `user not found`, `agent not found`, `not implemented`) and the agent's
/// configured response; muninn's own refusals (options Huginn does not have: rate
/// limits, `allowed_ips`, `signature`, body limits; unreadable bodies; a busy hub) are
/// the API's error shape.
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/users/{user_id}/web_requests/{agent_id}/{secret}",
    operation_id = "web_requests_handle",
    tag = "web_requests",
    params(("user_id" = i64, Path), ("agent_id" = i64, Path), ("secret" = String, Path)),
    responses(
        (status = 200, description = "The agent's answer, as it is configured: a webhook agent's rendered `response` (text) when its `code` is 200; a data_output agent's feed (`.xml`: RSS in its `rss_content_type`; `.json`: JSON); a liquid_output agent's page in its `mime_type`",
            content(
                (String = "text/plain"),
                (WebRequestJson = "application/json"),
                (String = "application/rss+xml"),
                (String = "text/html"),
                (String = "*/*")
            ),
            headers(("ETag" = String, description = "A feed's or page's version, for `If-None-Match`"))),
        (status = 201, description = "A webhook agent's answer with its default `code`: its rendered `response`, `Event Created` when it has none", body = String, content_type = "text/plain"),
        (status = 302, description = "A webhook agent whose `code` is a redirect (301, 302, …): `Location` is its `response`, resolved against the request's URL",
            headers(("Location" = String))),
        (status = 304, description = "The copy the client has is current (`If-None-Match`; for a feed also `If-Modified-Since`)"),
        (status = 400, description = "`invalid_json` (a JSON body that does not parse) or `bad_request` (an unreadable body, an idempotency key too long)", body = Envelope),
        (status = 401, description = "Huginn's text `Not Authorized` (wrong secret, failed reCAPTCHA) or `Please use POST requests only` (a verb the agent does not take); Huginn's `{\"error\": \"Not Authorized\"}` for a `.json` feed or page; `invalid_signature` or `stale_timestamp` in the error shape when the agent's `signature` check fails",
            content((String = "text/plain"), (JsonUnauthorized = "application/json"))),
        (status = 403, description = "`ip_not_allowed`: the client is not in the agent's `allowed_ips`", body = Envelope),
        (status = 404, description = "Huginn's text `user not found`, `agent not found`, or `not implemented` (an agent type that takes no web requests)", body = String, content_type = "text/plain"),
        (status = 408, description = "`request_timeout`: the body did not arrive in time", body = Envelope),
        (status = 413, description = "`payload_too_large`: a body larger than the agent's `max_body_bytes` (default `server.max_body_bytes`)", body = Envelope),
        (status = 415, description = "`unsupported_media_type`: a body that is neither JSON, a form nor text", body = Envelope),
        (status = 422, description = "`validation_failed`: `payload_path` selected something that cannot be an event", body = Envelope),
        (status = 429, description = "`rate_limited`: over the agent's `rate_limit`; `Retry-After` says when to retry", body = Envelope,
            headers(("Retry-After" = u32, description = "Seconds until a request is accepted again"))),
        (status = 500, description = "`internal_error`: the event could not be stored; the cause is in the server log", body = Envelope),
        (status = 503, description = "`unavailable` (busy or stopping; `Retry-After`), `endpoint_misconfigured` (the agent's options are invalid) or `feed_misconfigured`", body = Envelope,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when retrying can help")))
    )
)]
pub async fn handle(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some(path) = web_request_path(req.match_info().unprocessed()) else {
        return HttpResponse::NotFound().finish();
    };
    let stats = state.addrs.registry.stats.clone();
    let (resp, endpoint) = answer(state, req, path, payload).await;
    telemetry::inbound(&stats, IngestKind::Huginn, endpoint, resp.status().as_u16());
    resp
}

/// `/{user_id}/web_requests/{agent_id}/{last}` (or `webhooks` in the middle), the path
/// after `/users`: its three parameters, percent-decoded as actix decodes path
/// parameters. The path is as actix requoted it, so an encoded `/` is still `%2F` here
/// and cannot split a segment.
fn web_request_path(rest: &str) -> Option<(String, String, String)> {
    let mut segments = rest.strip_prefix('/')?.split('/');
    let user = segments.next()?;
    let kind = segments.next()?;
    let agent = segments.next()?;
    let last = segments.next()?;
    let shaped = segments.next().is_none()
        && matches!(kind, "web_requests" | "webhooks")
        && ![user, agent, last].iter().any(|s| s.is_empty());
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    shaped.then(|| (decode(user), decode(agent), decode(last)))
}

async fn answer(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: (String, String, String),
    payload: web::Payload,
) -> (HttpResponse, Option<Endpoint>) {
    let received = Instant::now();
    let (user_id, agent_id, last) = path;
    let registry = &state.addrs.registry;
    let user_id = user_id.parse::<i64>().ok();
    let entry = agent_id
        .parse::<crate::ids::AgentId>()
        .ok()
        .and_then(|id| registry.web_target(id))
        .filter(|e| Some(e.user_id) == user_id);
    let Some((entry_id, entry)) = agent_id.parse::<crate::ids::AgentId>().ok().zip(entry) else {
        let r = match user_id.filter(|id| registry.has_user(*id)) {
            Some(_) => WebResponse::text(404, "agent not found"),
            None => WebResponse::text(404, "user not found"),
        };
        return (respond(r), None);
    };
    // The console counts what reached this endpoint, refusals included.
    let endpoint = Some(Endpoint {
        agent_id: entry_id,
        user_id: entry.user_id,
    });
    // Rails treats everything after the first '.' of the last segment as the format.
    let secret = last.split('.').next().unwrap_or_default().to_string();
    if let Some(feed) = entry.feed {
        let ext = last.split_once('.').map(|(_, ext)| ext);
        let resp = super::feed_requests::serve(&state, &req, feed, entry_id, secret, ext).await;
        return (resp, endpoint);
    }
    if crate::agents::kind(entry.agent_type).is_some_and(|k| k.serves_page()) {
        let ext = last.split_once('.').map(|(_, ext)| ext);
        let resp =
            super::page_requests::serve(&state, &req, entry_id, entry.user_id, secret, ext).await;
        return (resp, endpoint);
    }
    let Some(core) = entry.core else {
        // Huginn's answer for agent types that take no web requests.
        return (respond(WebResponse::text(404, "not implemented")), None);
    };
    // The endpoint's checks run here, on this worker, not in its actor (see
    // `endpoints::actor`).
    let ip = request_ip(&state, &req);
    let admitted = admit_and_read(&core, &req, payload, Some(secret.clone()), ip, received).await;
    let body = match admitted {
        Ok(b) => b,
        Err(r) => {
            // Refused before the body was read (secret, rate, size, address): the
            // console counts these with the rest. A CORS preflight is not a request.
            let preflight = req.method() == actix_web::http::Method::OPTIONS;
            return (respond(r), endpoint.filter(|_| !preflight));
        }
    };
    let request = inbound_request(&req, body, ip, received, core.redirects());
    let secret = Some(secret);
    let r = core.handle(HandleWebRequest { secret, request }).await;
    (respond(r), endpoint)
}

#[cfg(test)]
mod tests {
    use super::web_request_path;

    fn owned(p: (&str, &str, &str)) -> Option<(String, String, String)> {
        Some((p.0.into(), p.1.into(), p.2.into()))
    }

    #[test]
    fn both_url_forms_and_their_parameters_decoded() {
        assert_eq!(
            web_request_path("/1/web_requests/22/s.xml"),
            owned(("1", "22", "s.xml"))
        );
        assert_eq!(
            web_request_path("/1/webhooks/22/a%20b%2Fc"),
            owned(("1", "22", "a b/c"))
        );
    }

    #[test]
    fn other_shapes_are_not_web_request_urls() {
        for rest in [
            "",
            "/",
            "/1/web_requests/22",
            "/1/web_requests/22/",
            "/1/web_requests/22/s/",
            "/1/web_requests//s",
            "/1/events/22/s",
            "/1/web_requests/22/s/more",
        ] {
            assert_eq!(web_request_path(rest), None, "{rest:?}");
        }
    }
}
