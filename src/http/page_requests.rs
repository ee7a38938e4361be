//! `ANY /users/{user_id}/web_requests/{agent_id}/{secret}.{any}` for a `liquid_output`
//! agent: reads the agent's row (its remembered event) and, in `Last X events` mode,
//! its sources' newest events, renders the page on a reader thread, and answers it —
//! or 304 when the client's `If-None-Match` names the page's ETag, as Huginn does.
//!
//! Rendering per request, as Huginn does, keeps the page exact: it shows the memory the
//! agent committed last, whatever order the event and the request arrive in.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use serde_json::Value;

use super::AppState;
use crate::agents::liquid_output::{LiquidOutput, Mode, NAME, Page};
use crate::store::{agents, events};

enum Outcome {
    Gone,
    BadOptions(String),
    NotAuthorized,
    Failed(String),
    Page(Page, NaiveDateTime),
}

fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(body.into())
}

/// RFC 9110's weak comparison over an `If-None-Match` list.
fn matches(if_none_match: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

// One idea: one page request as Huginn's data_output serves it: the checks, the conditional-
// request branch and the headers, each an answer a client sees.
pub async fn serve(
    state: &AppState,
    req: &HttpRequest,
    agent_id: crate::ids::AgentId,
    user_id: i64,
    secret: String,
    ext: Option<&str>,
) -> HttpResponse {
    let store = state.addrs.store.clone();
    let credentials = crate::store::credential_cache::source_for(&store, user_id);
    let read = store.read(move |c| {
        let Some(row) = agents::find(c, agent_id)? else {
            return Ok(Outcome::Gone);
        };
        let agent = match row
            .options_json()
            .map_err(|e| e.to_string())
            .and_then(|o| LiquidOutput::new(&o).map_err(|e| e.to_string()))
        {
            Ok(a) => a,
            Err(e) => return Ok(Outcome::BadOptions(e)),
        };
        if !agent.authorized(&secret, credentials.clone()) {
            return Ok(Outcome::NotAuthorized);
        }
        let mut shown = Vec::new();
        if agent.mode() == Mode::LastXEvents {
            let after = agent.shown_after(crate::store::now());
            let mut rows = events::latest_of_sources(c, agent_id, agent.count_limit() as i64)?;
            rows.retain(|e| after.is_none_or(|t| e.created_at > t));
            // Newest first, as Huginn's `received_events`.
            rows.sort_by_key(|e| std::cmp::Reverse(e.id));
            rows.truncate(agent.count_limit());
            shown = rows
                .iter()
                .filter_map(|e| e.payload_json().ok())
                .collect::<Vec<Value>>();
        }
        let memory = row.memory_json().unwrap_or(Value::Null);
        let modified = row
            .last_receive_at
            .map_or(row.updated_at, |r| r.max(row.updated_at));
        Ok(match agent.render(&memory, shown, credentials) {
            Ok(page) => Outcome::Page(page, modified),
            Err(e) => Outcome::Failed(e.to_string()),
        })
    });
    let outcome = match read.await {
        Ok(o) => o,
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The page could not be read: {e}; retry shortly"),
            );
        }
    };
    let json = ext.is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let (page, modified) = match outcome {
        Outcome::Page(p, m) => (p, m),
        Outcome::Gone => return text(StatusCode::NOT_FOUND, "agent not found"),
        Outcome::NotAuthorized if json => {
            return HttpResponse::Unauthorized()
                .json(super::web_requests::HuginnError::NOT_AUTHORIZED);
        }
        Outcome::NotAuthorized => return text(StatusCode::UNAUTHORIZED, "Not Authorized"),
        Outcome::BadOptions(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("This {NAME} agent's options are invalid ({e}); fix the agent's options"),
            );
        }
        Outcome::Failed(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The page's content template failed: {e}"),
            );
        }
    };
    let current = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|inm| matches(inm, &page.etag));
    if current {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, page.etag.as_str()))
            .finish();
    }
    let mut resp = HttpResponse::Ok();
    resp.insert_header((
        header::LAST_MODIFIED,
        modified
            .and_utc()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    ))
    .insert_header((header::ETAG, page.etag.as_str()))
    .insert_header((header::CACHE_CONTROL, format!("max-age={}", page.max_age)));
    match HeaderValue::from_str(&page.content_type) {
        Ok(v) => resp.insert_header((header::CONTENT_TYPE, v)),
        Err(_) => resp.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8")),
    };
    // `response_headers` override the defaults, as Huginn's do; a name or value HTTP
    // cannot carry is left out.
    for (name, value) in &page.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.insert_header((n, v));
        }
    }
    resp.body(page.body)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn if_none_match_lists() {
        assert!(matches("\"a\"", "\"a\""));
        assert!(matches("\"x\", W/\"a\"", "\"a\""));
        assert!(matches("*", "\"a\""));
        assert!(!matches("\"b\"", "\"a\""));
    }
}
