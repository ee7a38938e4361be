//! `ANY /users/{user_id}/web_requests/{agent_id}/{secret}` — Huginn's web-request URL.
//! Finds the agent in the registry (no database read) and hands the request to its
//! endpoint actor (or, for a `data_output` agent, serves its feed). Answers are text,
//! as Huginn's are.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::inbound::{admission, inbound_request, read_body, request_ip, respond};
use crate::endpoints::{HandleWebRequest, NoteTooLarge, WebResponse};
use crate::ops::metrics::{self, IngestKind};

pub async fn handle(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let resp = answer(state, req, path, payload).await;
    metrics::ingest(IngestKind::Huginn, resp.status().as_u16());
    resp
}

async fn answer(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let received = Instant::now();
    let (user_id, agent_id, last) = path.into_inner();
    let registry = &state.addrs.registry;
    let user_id = user_id.parse::<i64>().ok();
    let entry = agent_id
        .parse::<i64>()
        .ok()
        .and_then(|id| registry.web_target(id))
        .filter(|e| Some(e.user_id) == user_id);
    let Some((entry_id, entry)) = agent_id.parse::<i64>().ok().zip(entry) else {
        return respond(match user_id.filter(|id| registry.has_user(*id)) {
            Some(_) => WebResponse::text(404, "agent not found"),
            None => WebResponse::text(404, "user not found"),
        });
    };
    // Rails treats everything after the first '.' of the last segment as the format.
    let secret = last.split('.').next().unwrap_or_default().to_string();
    if let Some(feed) = entry.feed {
        let ext = last.split_once('.').map(|(_, ext)| ext);
        return super::feed_requests::serve(&state, &req, feed, secret, ext).await;
    }
    let Some(core) = entry.core else {
        // Huginn's answer for agent types that take no web requests.
        return respond(WebResponse::text(404, "not implemented"));
    };
    // The endpoint's checks run here, on this worker, not in its actor (see
    // `endpoints::actor`).
    let ip = request_ip(&state, &req);
    let admit = admission(&req, Some(secret.clone()), ip, received);
    let method = admit.method.clone();
    let admitted = match core.admit(admit) {
        Ok(limit) => {
            read_body(payload, limit, || {
                core.note_too_large(NoteTooLarge {
                    method,
                    ip,
                    received,
                })
            })
            .await
        }
        Err(r) => Err(r),
    };
    let body = match admitted {
        Ok(b) => b,
        Err(r) => {
            // Refused before the body was read (secret, rate, size, address): the
            // console counts these with the rest. A CORS preflight is not a request.
            if req.method() != actix_web::http::Method::OPTIONS {
                registry
                    .stats
                    .record_inbound(entry_id, entry.user_id, r.status);
            }
            return respond(r);
        }
    };
    let request = inbound_request(&req, body, ip, received, core.redirects());
    let r = core.handle(HandleWebRequest { secret, request }).await;
    registry
        .stats
        .record_inbound(entry_id, entry.user_id, r.status);
    respond(r)
}
