//! `ANY /users/{user_id}/web_requests/{agent_id}/{secret}` — Huginn's web-request URL.
//! Finds the agent in the registry (no database read) and hands the request to its
//! endpoint actor. Answers are text, as Huginn's are.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::endpoints::{HandleWebRequest, InboundRequest, WebResponse};
use crate::ops::metrics::{self, IngestKind};

fn respond(r: WebResponse) -> HttpResponse {
    metrics::ingest(IngestKind::Huginn, r.status);
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

/// The full URL the client called, for resolving relative redirect targets.
fn full_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}{}", info.scheme(), info.host(), req.uri())
}

pub async fn handle(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (user_id, agent_id, last) = path.into_inner();
    let registry = &state.addrs.registry;
    let user_id = user_id.parse::<i64>().ok();
    let entry = agent_id
        .parse::<i64>()
        .ok()
        .and_then(|id| registry.agent(id))
        .filter(|e| Some(e.user_id) == user_id);
    let Some(entry) = entry else {
        return respond(match user_id.filter(|id| registry.has_user(*id)) {
            Some(_) => WebResponse::text(404, "agent not found"),
            None => WebResponse::text(404, "user not found"),
        });
    };
    // Rails treats everything after the first '.' of the last segment as the format.
    let secret = last.split('.').next().unwrap_or_default().to_string();
    let Some(endpoint) = entry.endpoint else {
        return respond(WebResponse::text(401, "Not Authorized"));
    };
    let request = InboundRequest {
        method: req.method().as_str().to_string(),
        url: full_url(&req),
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
    };
    match endpoint.send(HandleWebRequest { secret, request }).await {
        Ok(r) => respond(r),
        Err(_) => respond(
            WebResponse::text(503, "The endpoint is restarting; retry shortly")
                .with_header("Retry-After", "1"),
        ),
    }
}
