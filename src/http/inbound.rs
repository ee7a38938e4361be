//! `/webhook/{token}` (incoming webhooks) and the pieces both inbound URL forms share:
//! the client address (the socket peer; `X-Forwarded-For` only from
//! `[inbound] trusted_proxies`), admission before the body is read, and reading the
//! body as a stream that stops at the endpoint's limit (413 without buffering it all).

use std::net::IpAddr;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::AppState;
use crate::endpoints::guard::{client_ip, too_large};
use crate::endpoints::{
    Admit, EndpointCore, HandleWebRequest, InboundRequest, NoteTooLarge, WebResponse,
};

pub fn respond(r: WebResponse) -> HttpResponse {
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
            e if super::body::is_timeout(&e) => WebResponse::text(408, e.to_string()),
            e => WebResponse::text(400, format!("the request body could not be read: {e}")),
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

/// Rejections of `/webhook/{token}` are JSON `{"error": ...}` like the rest of the API.
fn json_errors(r: WebResponse) -> WebResponse {
    if r.status < 400 || r.content_type.starts_with("application/json") {
        return r;
    }
    let mut out = WebResponse::json(r.status, &serde_json::json!({ "error": r.body }));
    out.headers = r.headers;
    out
}

/// `ANY /webhook/{token}`: every method reaches the endpoint, which takes POST (and
/// answers the OPTIONS preflight) and refuses the others with 405 and `Allow`.
#[utoipa::path(
    method(post, get, put, patch, delete),
    path = "/webhook/{token}",
    operation_id = "inbound_webhook",
    tag = "inbound",
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "OK"),
        (status = 405, description = "A method other than POST: `Allow: POST, OPTIONS`"),
        (status = 400, description = "Refused by the endpoint's own checks: `{\"error\": \"<sentence>\"}`"),
        (status = 401, description = "A signature or secret that does not verify"),
        (status = 404, description = "Unknown or inactive token: `{\"error\": \"<sentence>\"}`"),
        (status = 413, description = "A body larger than the endpoint takes"),
        (status = 429, description = "Over the endpoint's rate limit"),
        (status = 503, description = "The endpoint is busy or misconfigured; retry later")
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
        return respond(json_errors(WebResponse::text(
            404,
            "unknown or inactive webhook token",
        )));
    };
    let ip = request_ip(&state, &req);
    let body = match admit_and_read(&core, &req, payload, None, ip, received).await {
        Ok(b) => b,
        Err(r) => return respond(json_errors(r)),
    };
    // Incoming webhooks answer from their own settings and never redirect.
    let request = inbound_request(&req, body, ip, received, false);
    let secret = None;
    respond(json_errors(
        core.handle(HandleWebRequest { secret, request }).await,
    ))
}
