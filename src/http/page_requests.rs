//! `ANY /users/{user_id}/web_requests/{agent_id}/{secret}.{any}` for a `liquid_output`
//! agent: hands the request to the agents service (`agents::service::page`), which finds,
//! checks and renders the page, and answers what it decided — the page, 304 for a
//! current copy, or a refusal in Huginn's words.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::AppState;
use crate::agents::service::page::{self as service, PageAnswer, PageError};

pub async fn serve(
    state: &AppState,
    req: &HttpRequest,
    agent_id: crate::ids::AgentId,
    user_id: i64,
    secret: String,
    ext: Option<&str>,
) -> HttpResponse {
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let store = &state.addrs.store;
    match service::liquid_page(store, agent_id, user_id, secret, if_none_match).await {
        Ok(PageAnswer::NotModified { etag }) => HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish(),
        Ok(PageAnswer::Fresh {
            page,
            last_modified,
        }) => {
            let mut resp = HttpResponse::Ok();
            resp.insert_header((header::LAST_MODIFIED, last_modified))
                .insert_header((header::ETAG, page.etag))
                .insert_header((header::CACHE_CONTROL, format!("max-age={}", page.max_age)))
                .insert_header((header::CONTENT_TYPE, page.content_type));
            // The service kept only headers HTTP can carry; they override the defaults.
            for (name, value) in page.headers {
                resp.insert_header((name, value));
            }
            resp.body(page.body)
        }
        Err(e) => refusal(e, ext.is_some_and(|e| e.eq_ignore_ascii_case("json"))),
    }
}

fn refusal(e: PageError, json: bool) -> HttpResponse {
    let status = match e {
        PageError::NotAuthorized if json => {
            return HttpResponse::Unauthorized()
                .json(super::web_requests::HuginnError::NOT_AUTHORIZED);
        }
        PageError::NotFound => StatusCode::NOT_FOUND,
        PageError::NotAuthorized => StatusCode::UNAUTHORIZED,
        PageError::BadOptions(_) | PageError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        PageError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(e.to_string())
}
