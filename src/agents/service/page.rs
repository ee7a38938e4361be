//! The liquid_output agent's page, as its web-request URL serves it: find the agent
//! (its owner in the query), check the secret, read what the page shows (the agent's
//! remembered event or, in `Last X events` mode, its sources' newest events), render,
//! and decide the answer — the page with its headers, or "your copy is current" when
//! the client's `If-None-Match` names the page's ETag, as Huginn does.
//!
//! Rendering per request, as Huginn does, keeps the page exact: it shows the memory the
//! agent committed last, whatever order the event and the request arrive in.

use actix_web::http::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::agents::liquid_output::{LiquidOutput, Mode, NAME, Page};
use crate::ids::AgentId;
use crate::store::{Store, StoreError, agents, credential_cache, events};

/// What a page request is refused with. Each message is the text the client reads.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No such agent of this user (deleted since the registry saw it).
    #[error("agent not found")]
    NotFound,
    /// The secret in the URL is not the agent's.
    #[error("Not Authorized")]
    NotAuthorized,
    /// The agent's stored options do not make a page.
    #[error("This {NAME} agent's options are invalid ({0}); fix the agent's options")]
    BadOptions(String),
    /// The `content` (or `response_headers`) template failed on this data.
    #[error("The page's content template failed: {0}")]
    Render(String),
    #[error("The page could not be read: {0}; retry shortly")]
    Store(#[from] StoreError),
}

/// What a page request is answered with.
#[derive(Debug)]
pub enum PageAnswer {
    /// The client's copy (its `If-None-Match`) is current: 304 with this ETag.
    NotModified { etag: String },
    /// The page. Its `content_type` and `headers` are ones HTTP can carry: a content
    /// type it cannot is replaced by `text/html; charset=utf-8`, a header it cannot is
    /// left out.
    Fresh {
        page: Page,
        /// The `Last-Modified` HTTP date: the agent's last change or last receipt.
        last_modified: String,
    },
}

/// RFC 9110's weak comparison over an `If-None-Match` list.
fn matches(if_none_match: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

/// Keeps what an HTTP response can carry; `response_headers` override the defaults, as
/// Huginn's do, so a name or value HTTP cannot carry is left out rather than refused.
fn carriable(mut page: Page) -> Page {
    if HeaderValue::from_str(&page.content_type).is_err() {
        page.content_type = "text/html; charset=utf-8".into();
    }
    page.headers.retain(|(name, value)| {
        HeaderName::from_bytes(name.as_bytes()).is_ok() && HeaderValue::from_str(value).is_ok()
    });
    page
}

/// The page of liquid_output agent `agent_id` of `user_id`, asked for with `secret`
/// and the client's `If-None-Match` header, if any.
pub async fn liquid_page(
    store: &Store,
    agent_id: AgentId,
    user_id: i64,
    secret: String,
    if_none_match: Option<String>,
) -> Result<PageAnswer, PageError> {
    let credentials = credential_cache::source_for(store, user_id);
    let rendered = store
        .read(move |c| {
            let Some(row) = agents::find_owned(c, Some(user_id), agent_id)? else {
                return Ok(Err(PageError::NotFound));
            };
            let agent = match row
                .options_json()
                .map_err(|e| e.to_string())
                .and_then(|o| LiquidOutput::new(&o).map_err(|e| e.to_string()))
            {
                Ok(a) => a,
                Err(e) => return Ok(Err(PageError::BadOptions(e))),
            };
            if !agent.authorized(&secret, credentials.clone()) {
                return Ok(Err(PageError::NotAuthorized));
            }
            let mut shown = Vec::new();
            if agent.mode() == Mode::LastXEvents {
                let after = agent.shown_after(crate::store::now());
                let limit = agent.count_limit();
                let mut rows = events::latest_of_sources(c, agent_id, limit as i64)?;
                rows.retain(|e| after.is_none_or(|t| e.created_at > t));
                // Newest first, as Huginn's `received_events`.
                rows.sort_by_key(|e| std::cmp::Reverse(e.id));
                rows.truncate(limit);
                shown = rows
                    .iter()
                    .filter_map(|e| e.payload_json().ok())
                    .collect::<Vec<Value>>();
            }
            let memory = row.memory_json().unwrap_or(Value::Null);
            let modified = row
                .last_receive_at
                .map_or(row.updated_at, |r| r.max(row.updated_at));
            Ok(agent
                .render(&memory, shown, credentials)
                .map(|page| (page, modified))
                .map_err(|e| PageError::Render(e.to_string())))
        })
        .await?;
    let (page, modified) = rendered?;
    if if_none_match.is_some_and(|inm| matches(&inm, &page.etag)) {
        return Ok(PageAnswer::NotModified { etag: page.etag });
    }
    Ok(PageAnswer::Fresh {
        page: carriable(page),
        last_modified: modified
            .and_utc()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::{Page, PageError, carriable, matches};

    #[test]
    fn refusals_read_as_before() {
        assert_eq!(
            PageError::BadOptions("x".into()).to_string(),
            "This liquid_output agent's options are invalid (x); fix the agent's options"
        );
        assert_eq!(PageError::NotFound.to_string(), "agent not found");
        assert_eq!(PageError::NotAuthorized.to_string(), "Not Authorized");
    }

    #[test]
    fn if_none_match_lists() {
        assert!(matches("\"a\"", "\"a\""));
        assert!(matches("\"x\", W/\"a\"", "\"a\""));
        assert!(matches("*", "\"a\""));
        assert!(!matches("\"b\"", "\"a\""));
    }

    #[test]
    fn what_http_cannot_carry_is_replaced_or_left_out() {
        let page = Page {
            body: String::new(),
            content_type: "text/plain\n; charset=utf-8".into(),
            etag: "\"e\"".into(),
            max_age: 0,
            headers: vec![
                ("X-Ok".into(), "yes".into()),
                ("Bad Name".into(), "v".into()),
                ("X-Bad-Value".into(), "a\nb".into()),
            ],
        };
        let page = carriable(page);
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        assert_eq!(page.headers, vec![("X-Ok".to_string(), "yes".to_string())]);
    }
}
