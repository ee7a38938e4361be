//! Feeds: what a `data_output` agent publishes at its web-request URL — RSS 2.0
//! (`.xml`) and Huginn's JSON (`.json`) — rendered from the newest events of its
//! source agents and cached per agent until something changes.
//!
//! - [`actor`]: the `FeedActor`, one per data_output agent: the cache, and renders on a miss.
//! - [`cache`]: a rendered body with its ETag, and conditional-GET evaluation.
//! - [`order`]: Huginn's sort keys (`events_order`, `events_list_order`).
//! - [`item`]: item templates rendered per event (guid, pubDate).
//! - [`rss`], [`json`]: the two output formats.
//! - [`time`]: date parsing and the RFC 2822 / RFC 3339 forms.

pub mod actor;
pub mod cache;
pub mod item;
pub mod json;
pub mod order;
pub mod rss;
pub mod spec;
pub mod time;

use crate::template::RenderCtx as Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

pub use actor::{FeedActor, FeedChanged, FeedError, ServeFeed};
pub use cache::Rendered;

use crate::agent_kind::Kind;
use crate::store::events::EventRow;
use crate::template::liquid::CredentialSource;
use item::Node;
use spec::FeedSpec;
use std::sync::Arc;

/// Whether agent `id` is a data_output agent (a feed) of the caller: `scope` is the
/// owner (None for an admin, who sees every feed). Owner and type are in the query.
pub async fn is_owned_feed(
    store: &crate::store::Store,
    scope: Option<i64>,
    id: crate::ids::AgentId,
) -> Result<bool, crate::store::StoreError> {
    Ok(store
        .read(move |c| crate::store::agents::find_owned(c, scope, id))
        .await?
        .is_some_and(|r| Kind::parse(&r.agent_type) == Some(Kind::DataOutput)))
}

/// The two formats a feed is served in.
/// A feed URL's extension that names no format; the message is the 404's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no feed format \".{0}\": this feed is served as .xml (RSS 2.0) or .json")]
pub struct UnknownFormat(pub String);

/// Why a built feed could not be written out.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the RSS feed could not be written: {0}")]
    Rss(#[from] ::rss::Error),
    #[error("the JSON feed could not be written: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedFormat {
    Rss,
    Json,
}

impl FeedFormat {
    /// From the URL's extension (`.xml`, `.json`); no extension gives RSS unless the
    /// client's `Accept` asks for JSON and not XML. Anything else is refused with a
    /// message for the 404.
    pub fn from_request(
        ext: Option<&str>,
        accept: Option<&str>,
    ) -> Result<FeedFormat, UnknownFormat> {
        match ext.map(str::to_ascii_lowercase).as_deref() {
            Some("xml") => Ok(FeedFormat::Rss),
            Some("json") => Ok(FeedFormat::Json),
            Some(other) => Err(UnknownFormat(other.chars().take(40).collect())),
            None => {
                let accept = accept.unwrap_or("").to_ascii_lowercase();
                if accept.contains("json") && !accept.contains("xml") {
                    Ok(FeedFormat::Json)
                } else {
                    Ok(FeedFormat::Rss)
                }
            }
        }
    }
}

/// Who the feed belongs to, for defaults and the self link, and whose credentials
/// its templates read with `{% credential NAME %}` (as Huginn's DataOutputAgent's do).
#[derive(Clone)]
pub struct FeedAgent {
    pub id: crate::ids::AgentId,
    pub user_id: i64,
    pub name: String,
    pub credentials: Arc<dyn CredentialSource>,
}

impl std::fmt::Debug for FeedAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedAgent")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Everything both formats show, rendered once per cache miss.
#[derive(Debug, Clone)]
pub struct FeedDoc {
    pub title: String,
    pub description: String,
    pub link: String,
    pub icon: String,
    pub self_url: String,
    pub built_at: DateTime<Utc>,
    pub items: Vec<Vec<(String, Node)>>,
    /// When the first shown event expires: the cached feed is stale from then on.
    pub stale_at: Option<NaiveDateTime>,
}

/// A part of the channel (title, ...) from its template, or `fallback` when it has
/// none, renders empty, or fails (the failure is logged, the feed still served).
fn channel_part(
    spec: &FeedSpec,
    agent_id: crate::ids::AgentId,
    part: &Option<crate::template::TemplateId>,
    ctx: &Context,
    fallback: impl FnOnce() -> String,
) -> String {
    match part.as_ref().map(|t| spec.templates.render(t, ctx)) {
        Some(Ok(s)) if !s.trim().is_empty() => s,
        Some(Err(e)) => {
            tracing::warn!(agent_id = agent_id.0, error = %e, "a feed channel template failed; using the default");
            fallback()
        }
        _ => fallback(),
    }
}

/// Chooses, orders and renders the events: `events_order` picks the window (the last
/// `events_to_show` after sorting), `events_list_order` orders the items shown.
/// `events` are the candidates, oldest first.
// One idea: one feed document: choose the window, order it, render each item, then the channel
// fields; the steps share every local and read as one pass.
pub fn build_doc(
    spec: &FeedSpec,
    agent: &FeedAgent,
    events: Vec<EventRow>,
    secret: &str,
    base: &str,
    now: DateTime<Utc>,
) -> FeedDoc {
    let parsed: Vec<(EventRow, Value)> = events
        .into_iter()
        .filter_map(|e| match e.payload_json() {
            Ok(p) => Some((e, p)),
            Err(err) => {
                tracing::warn!(agent_id = agent.id.0, event_id = e.id.0, error = %err, "skipping an event with an unreadable payload");
                None
            }
        })
        .collect();
    let ctx_of = |(e, p): &(EventRow, Value), _: usize| {
        item::event_context(e, p).with_credentials(agent.credentials.clone())
    };
    let mut window = order::sort(&spec.templates, &spec.events_order, parsed, ctx_of);
    if window.len() > spec.events_to_show {
        window.drain(..window.len() - spec.events_to_show);
    }
    let shown = order::sort(&spec.templates, &spec.events_list_order, window, ctx_of);
    let events_value = Value::Array(shown.iter().map(|(_, p)| p.clone()).collect());
    let mut channel_ctx = Context::new().with_credentials(agent.credentials.clone());
    channel_ctx.insert("events", &events_value);

    let title = channel_part(spec, agent.id, &spec.title, &channel_ctx, || {
        format!("{} Event Feed", agent.name)
    });
    let description = channel_part(spec, agent.id, &spec.description, &channel_ctx, || {
        format!(
            "A feed of Events received by the '{}' muninn Agent",
            agent.name
        )
    });
    let link = channel_part(spec, agent.id, &spec.link, &channel_ctx, || {
        base.to_string()
    });
    let icon = channel_part(spec, agent.id, &spec.icon, &channel_ctx, || {
        format!("{}/favicon.ico", link.trim_end_matches('/'))
    });
    // Huginn builds the default self link on `link`; the hub's own URL is the one that
    // actually serves the feed.
    let self_url = channel_part(spec, agent.id, &spec.self_url, &channel_ctx, || {
        format!(
            "{}/users/{}/web_requests/{}/{secret}.xml",
            base.trim_end_matches('/'),
            agent.user_id,
            agent.id
        )
    });

    let stale_at = shown.iter().filter_map(|(e, _)| e.expires_at).min();
    let items = shown
        .iter()
        .filter_map(|(event, payload)| {
            let mut ctx =
                item::event_context(event, payload).with_credentials(agent.credentials.clone());
            if spec.item_uses_events {
                ctx.insert("events", &events_value);
            }
            match item::render_tree(&spec.templates, &spec.item, &ctx) {
                Ok(Node::Object(fields)) => Some(item::finish(fields, event)),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(agent_id = agent.id.0, event_id = event.id.0, error = %e, "a feed item template failed for this event; the item is left out (give absent keys a default: {{{{ x | default: '' }}}})");
                    None
                }
            }
        })
        .collect();
    FeedDoc {
        title,
        description,
        link,
        icon,
        self_url,
        built_at: now,
        items,
        stale_at,
    }
}

/// Renders the document in one format, with the headers a client gets.
pub fn render(spec: &FeedSpec, doc: &FeedDoc, format: FeedFormat) -> Result<Rendered, RenderError> {
    let (body, content_type) = match format {
        FeedFormat::Rss => (rss::render(doc, spec)?, spec.rss_content_type.clone()),
        FeedFormat::Json => (
            json::render(doc)?,
            "application/json; charset=utf-8".to_string(),
        ),
    };
    Ok(Rendered::new(
        body.into_bytes(),
        content_type,
        doc.built_at,
        doc.stale_at,
        spec.ttl_minutes * 60,
        spec.response_headers.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_extension_and_accept() {
        assert_eq!(
            FeedFormat::from_request(Some("xml"), None),
            Ok(FeedFormat::Rss)
        );
        assert_eq!(
            FeedFormat::from_request(Some("JSON"), None),
            Ok(FeedFormat::Json)
        );
        assert_eq!(
            FeedFormat::from_request(None, Some("text/html")),
            Ok(FeedFormat::Rss)
        );
        assert_eq!(
            FeedFormat::from_request(None, Some("application/json")),
            Ok(FeedFormat::Json)
        );
        let e = FeedFormat::from_request(Some("atom"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(".atom") && e.contains(".json"), "{e}");
    }
}
