//! `GET|HEAD /users/{user_id}/web_requests/{agent_id}/{secret}.xml|.json` for a
//! `data_output` agent: asks the agent's `FeedActor` for the rendered feed and answers
//! it, or 304 when the client's copy is current. No database access here.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use super::AppState;
use super::api::agents::base_url;
use super::error::{ApiError, ErrorCode};
use crate::feeds::{FeedActor, FeedError, FeedFormat, ServeFeed};
use crate::telemetry;

fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(body.into())
}

/// muninn's own refusals (Huginn's feed has none of these) carry the API's error body.
fn api_error(code: ErrorCode, message: String) -> HttpResponse {
    ApiError::Coded {
        code,
        message,
        field: None,
    }
    .error_response()
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub async fn serve(
    state: &AppState,
    req: &HttpRequest,
    feed: actix::Addr<FeedActor>,
    agent_id: crate::ids::AgentId,
    secret: String,
    ext: Option<&str>,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let resp = answer(state, req, feed, secret, ext).await;
    let status = resp.status().as_u16();
    // The request itself is counted by the web-request face (`telemetry::inbound`).
    telemetry::feed_request(
        &state.addrs.registry.stats,
        telemetry::FeedRequest {
            agent_id,
            source_ip: super::inbound::request_ip(state, req),
            method: req.method().as_str(),
            status,
            processing_ms: started.elapsed().as_millis() as u64,
        },
    );
    resp
}

// One idea: one feed request, from the secret and format to the cached or rendered answer and
// Huginn's exact refusals; every branch is an answer a client sees.
async fn answer(
    state: &AppState,
    req: &HttpRequest,
    feed: actix::Addr<FeedActor>,
    secret: String,
    ext: Option<&str>,
) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = api_error(
            ErrorCode::MethodNotAllowed,
            "A feed is read with GET (or HEAD)".into(),
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let format = match FeedFormat::from_request(ext, header_str(req, header::ACCEPT)) {
        Ok(f) => f,
        Err(e) => return api_error(ErrorCode::NotFound, e.to_string()),
    };
    let asked = ServeFeed {
        secret,
        format,
        base: base_url(state, req),
    };
    let rendered = match feed.send(asked).await {
        Ok(Ok(r)) => r,
        Ok(Err(FeedError::NotAuthorized)) => {
            return match format {
                // Huginn's answers, as its DataOutputAgent gives them: `{"error": "Not
                // Authorized"}` for JSON (a Huginn client reads that), the sentence for RSS.
                FeedFormat::Json => HttpResponse::Unauthorized()
                    .json(super::web_requests::HuginnError::NOT_AUTHORIZED),
                FeedFormat::Rss => text(StatusCode::UNAUTHORIZED, "Not Authorized"),
            };
        }
        Ok(Err(FeedError::BadOptions(e))) => {
            return api_error(
                ErrorCode::FeedMisconfigured,
                format!("This feed's options are invalid ({e}); fix the agent's options"),
            );
        }
        Ok(Err(FeedError::Failed(e))) => {
            return api_error(
                ErrorCode::InternalError,
                format!("The feed could not be rendered: {e}"),
            );
        }
        Err(_) => {
            return ApiError::Unavailable {
                message: "The feed is restarting; retry shortly".into(),
                retry_after: 1,
            }
            .error_response();
        }
    };
    let fresh = rendered.not_modified(
        header_str(req, header::IF_NONE_MATCH),
        header_str(req, header::IF_MODIFIED_SINCE),
    );
    let mut resp = HttpResponse::build(if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    resp.insert_header((header::ETAG, rendered.etag.as_str()))
        .insert_header((header::LAST_MODIFIED, rendered.last_modified_http()))
        .insert_header((
            header::CACHE_CONTROL,
            format!("max-age={}", rendered.max_age_seconds),
        ));
    if ext.is_none() {
        resp.insert_header((header::VARY, "Accept"));
    }
    if !fresh {
        resp.insert_header((header::CONTENT_TYPE, rendered.content_type.as_str()));
    }
    for (name, value) in &rendered.extra_headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.insert_header((name.as_str(), v));
        }
    }
    if fresh {
        resp.finish()
    } else {
        resp.body(rendered.body.clone())
    }
}
