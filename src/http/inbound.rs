//! `/webhook/{token}` (incoming webhooks) and the pieces both inbound URL forms share:
//! the client address (the socket peer; `X-Forwarded-For` only from
//! `[inbound] trusted_proxies`), admission before the body is read, and reading the
//! body as a stream that stops at the endpoint's limit (413 without buffering it all).

use std::net::IpAddr;
use std::time::Instant;

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::AppState;
use super::error::{ApiError, Envelope, ErrorCode};
use crate::endpoints::form::WebhookReceipt;
use crate::endpoints::guard::{client_ip, too_large};
use crate::endpoints::{
    Admit, EndpointCore, HandleWebRequest, InboundRequest, NoteTooLarge, OwnRefusal, WebResponse,
};

pub fn respond(r: WebResponse) -> HttpResponse {
    if let Some(refusal) = r.refusal {
        return refused(refusal, r);
    }
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = HttpResponse::build(status);
    resp.content_type(r.content_type.as_str());
    for (name, value) in &r.headers {
        resp.append_header((name.as_str(), value.as_str()));
    }
    if let Some(location) = &r.location {
        resp.insert_header((actix_web::http::header::LOCATION, location.as_str()));
    }
    resp.body(r.body)
}

/// muninn's own refusal in the API's error shape, with the endpoint's headers
/// (`Retry-After`, `Allow`, the configured response headers).
fn refused(refusal: OwnRefusal, r: WebResponse) -> HttpResponse {
    let mut resp = ApiError::Coded {
        code: error_code(refusal),
        message: r.body,
        field: None,
    }
    .error_response();
    for (name, value) in &r.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp
}

/// The code each refusal is answered with; its status is the refusal's.
pub fn error_code(refusal: OwnRefusal) -> ErrorCode {
    match refusal {
        OwnRefusal::NotFound => ErrorCode::NotFound,
        OwnRefusal::MethodNotAllowed => ErrorCode::MethodNotAllowed,
        OwnRefusal::IpNotAllowed => ErrorCode::IpNotAllowed,
        OwnRefusal::RateLimited => ErrorCode::RateLimited,
        OwnRefusal::TooLarge => ErrorCode::PayloadTooLarge,
        OwnRefusal::Timeout => ErrorCode::RequestTimeout,
        OwnRefusal::BadRequest => ErrorCode::BadRequest,
        OwnRefusal::InvalidJson => ErrorCode::InvalidJson,
        OwnRefusal::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
        OwnRefusal::InvalidSignature => ErrorCode::InvalidSignature,
        OwnRefusal::StaleTimestamp => ErrorCode::StaleTimestamp,
        OwnRefusal::InvalidPayload => ErrorCode::ValidationFailed,
        OwnRefusal::TransformFailed => ErrorCode::TransformFailed,
        OwnRefusal::Misconfigured => ErrorCode::EndpointMisconfigured,
        OwnRefusal::Unavailable => ErrorCode::Unavailable,
        OwnRefusal::Internal => ErrorCode::InternalError,
    }
}

/// The address the request came from, per `[inbound] trusted_proxies`.
pub fn request_ip(state: &AppState, req: &HttpRequest) -> Option<IpAddr> {
    let xff = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    client_ip(
        req.peer_addr().map(|a| a.ip()),
        xff,
        &state.config.trusted_proxies(),
    )
}

fn content_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Runs the endpoint's pre-body checks, then reads the body up to the limit they give.
/// `Err` is the answer to send. Both run on this worker, against the endpoint's core.
pub async fn admit_and_read(
    core: &EndpointCore,
    req: &HttpRequest,
    payload: web::Payload,
    secret: Option<String>,
    ip: Option<IpAddr>,
    received: Instant,
) -> Result<Bytes, WebResponse> {
    let admit = admission(req, secret, ip, received);
    let method = admit.method.clone();
    let limit = core.admit(admit)?;
    read_body(payload, limit, || {
        core.note_too_large(NoteTooLarge {
            method,
            ip,
            received,
        })
    })
    .await
}

/// The pre-body checks' question for this request.
pub fn admission(
    req: &HttpRequest,
    secret: Option<String>,
    ip: Option<IpAddr>,
    received: Instant,
) -> Admit {
    Admit {
        method: req.method().as_str().to_string(),
        secret,
        ip,
        content_length: content_length(req),
        received,
    }
}

/// Reads the body up to `limit` bytes; past it, calls `on_too_large` (to log the
/// request) and answers 413.
pub async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    on_too_large: impl FnOnce(),
) -> Result<Bytes, WebResponse> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            e if super::body::is_timeout(&e) => {
                WebResponse::refuse(OwnRefusal::Timeout, e.to_string())
            }
            e => WebResponse::refuse(
                OwnRefusal::BadRequest,
                format!("the request body could not be read: {e}"),
            ),
        })?;
        if body.len() + chunk.len() > limit {
            on_too_large();
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The request as endpoints see it; `with_url` when the endpoint needs its full URL
/// (see [`InboundRequest::url`]).
pub fn inbound_request(
    req: &HttpRequest,
    body: Bytes,
    ip: Option<IpAddr>,
    received: Instant,
    with_url: bool,
) -> InboundRequest {
    let url = if with_url {
        let info = req.connection_info();
        format!("{}://{}{}", info.scheme(), info.host(), req.uri())
    } else {
        String::new()
    };
    InboundRequest {
        method: req.method().as_str().to_string(),
        url,
        query: req.query_string().to_string(),
        headers: req
            .headers()
            .iter()
            .filter_map(|(n, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (n.as_str().to_string(), v.to_string()))
            })
            .collect(),
        body,
        client_ip: ip,
        received,
    }
}

/// `ANY /webhook/{token}`: every method reaches the endpoint, which takes POST (and
/// answers the OPTIONS preflight) and refuses the others with 405 and `Allow`. Every
/// refusal is the API's error shape (the webhook contracts print none of their own).
#[utoipa::path(
    method(post, get, put, patch, delete),
    path = "/webhook/{token}",
    operation_id = "inbound_webhook",
    tag = "inbound",
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "POST only: the request's events are stored. A request whose `Idempotency-Key` (or Standard Webhooks `webhook-id`) was seen before is answered the first answer again, with `Idempotent-Replayed: true`, and makes no event",
            body = WebhookReceipt,
            headers(("Idempotent-Replayed" = String, description = "`true` on an answer repeated for a known idempotency key"))),
        (status = 400, description = "`invalid_json` (a JSON body that does not parse) or `bad_request` (an unreadable body, an idempotency key too long)", body = Envelope),
        (status = 401, description = "`invalid_signature` (missing or wrong) or `stale_timestamp`, when the webhook has a `signature` check", body = Envelope),
        (status = 403, description = "`ip_not_allowed`: the client is not in the webhook's `allowed_ips`", body = Envelope),
        (status = 404, description = "`not_found`: an unknown or inactive token", body = Envelope),
        (status = 405, description = "`method_not_allowed`: a method other than POST; `Allow: POST, OPTIONS`", body = Envelope),
        (status = 408, description = "`request_timeout`: the body did not arrive in time", body = Envelope),
        (status = 413, description = "`payload_too_large`: a body larger than the webhook's `max_body_bytes`", body = Envelope),
        (status = 415, description = "`unsupported_media_type`: a body that is neither JSON, a form nor text", body = Envelope),
        (status = 422, description = "`transform_failed`: the webhook's transform failed on this body", body = Envelope),
        (status = 429, description = "`rate_limited`: over the webhook's `rate_limit`; `Retry-After` says when to retry", body = Envelope,
            headers(("Retry-After" = u32, description = "Seconds until a request is accepted again"))),
        (status = 500, description = "`internal_error`: the event could not be stored; the cause is in the server log", body = Envelope),
        (status = 503, description = "`unavailable` (busy or stopping; `Retry-After`) or `endpoint_misconfigured` (the webhook's options are invalid)", body = Envelope,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when retrying can help")))
    )
)]
pub async fn webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let stats = state.addrs.registry.stats.clone();
    let resp = answer_webhook(state, req, token, payload).await;
    // Incoming webhooks have no agent endpoint on the console: metrics only.
    crate::telemetry::inbound(
        &stats,
        crate::telemetry::IngestKind::Incoming,
        None,
        resp.status().as_u16(),
    );
    resp
}

async fn answer_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let received = Instant::now();
    // Only digests are kept; finding the entry by digest tells nothing about the token.
    let Some(core) = state
        .addrs
        .registry
        .token(&crate::secrets::token_digest(&token))
    else {
        return respond(WebResponse::refuse(
            OwnRefusal::NotFound,
            "unknown or inactive webhook token",
        ));
    };
    let ip = request_ip(&state, &req);
    let body = match admit_and_read(&core, &req, payload, None, ip, received).await {
        Ok(b) => b,
        Err(r) => return respond(r),
    };
    // Incoming webhooks answer from their own settings and never redirect.
    let request = inbound_request(&req, body, ip, received, false);
    let secret = None;
    respond(core.handle(HandleWebRequest { secret, request }).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_code_of_its_own_status() {
        for refusal in OwnRefusal::ALL {
            assert_eq!(
                error_code(refusal).status().as_u16(),
                refusal.status(),
                "{refusal:?}"
            );
        }
    }

    #[test]
    fn a_refusal_is_the_error_shape_with_its_headers() {
        let r = WebResponse::refuse(OwnRefusal::RateLimited, "slow down")
            .with_header("Retry-After", "7");
        let resp = respond(r);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok());
        assert_eq!(header("retry-after"), Some("7"));
        assert_eq!(header("content-type"), Some("application/json"));
        // Huginn's answers stay text.
        let huginn = respond(WebResponse::text(401, "Not Authorized"));
        assert_eq!(
            huginn
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/plain; charset=utf-8")
        );
    }
}
