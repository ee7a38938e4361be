//! An agent's fetches (an rss or website agent's requests), made off the mailbox.

use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use super::write::Outcome;
use super::{AgentActor, AgentCtx};
use crate::agents::rss::{Fetch, Fetched};
use crate::delivery::client;
use crate::store::events::Lineage;

/// How long one fetch (an rss agent's) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body a fetch keeps.
const FETCH_MAX_BODY: usize = 8 * 1024 * 1024;

/// Redirects a fetch that follows them takes at most (Faraday's default in Huginn).
const MAX_REDIRECTS: usize = 3;

/// A fetch that kept being redirected.
#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
struct TooManyRedirects;

/// Makes `f`'s request, following redirects when it asks to (each hop a request of
/// its own through the target guard); gives the last response and its URL, or why
/// there is none (too many redirects).
async fn fetch_following(
    f: &Fetch,
    allow: bool,
) -> (Result<client::Sent, TooManyRedirects>, String) {
    let mut url = f.url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let sent = client::send_reading(
            "GET",
            &url,
            &f.headers,
            Vec::new(),
            FETCH_TIMEOUT,
            allow,
            FETCH_MAX_BODY,
        )
        .await;
        let next = sent
            .status
            .filter(|s| f.follow_redirects && matches!(s, 301 | 302 | 303 | 307 | 308))
            .and_then(|_| {
                sent.headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("location"))
            })
            .and_then(|(_, to)| url::Url::parse(&url).ok()?.join(to).ok());
        match next {
            Some(to) => url = to.to_string(),
            None => return (Ok(sent), url),
        }
    }
    (Err(TooManyRedirects), url)
}

impl AgentActor {
    /// Makes the fetches a behaviour asked for, off the mailbox, then hands each
    /// response back to it and commits what it made of them.
    pub(super) fn fetch_all(
        &mut self,
        fetches: Vec<(Fetch, Option<FetchCause>)>,
        ctx: &mut Context<Self>,
    ) {
        let allow = self.settings.allow_private_targets;
        let work = async move {
            let mut out = Vec::with_capacity(fetches.len());
            for (f, cause) in fetches {
                let started = std::time::Instant::now();
                let (sent, final_url) = fetch_following(&f, allow).await;
                let got = match sent {
                    Ok(sent) => Fetched {
                        status: sent.status,
                        headers: sent.headers,
                        body: sent.excerpt.unwrap_or_default().into_bytes(),
                        error: sent.error.map(|e| e.to_string()),
                        elapsed: started.elapsed(),
                        final_url,
                    },
                    Err(error) => Fetched {
                        error: Some(error.to_string()),
                        elapsed: started.elapsed(),
                        final_url,
                        ..Fetched::default()
                    },
                };
                out.push((f, got, cause));
            }
            out
        };
        ctx.spawn(work.into_actor(self).map(|results, act, ctx| {
            let mut actx = Self::agent_ctx(&act.row, &mut act.memory, &act.settings, &act.store);
            let mut caused = Vec::new();
            if let Ok(b) = &mut act.behavior {
                for (f, got, cause) in &results {
                    // An event's fetch: its logs name the event, its events descend from it
                    // (a run's fetches share one context: the rss agent sorts them together).
                    actx.inbound = cause.map(|c| c.event_id);
                    b.fetched(&mut actx, f, got);
                    if let Some(c) = cause {
                        caused.extend(actx.emitted.drain(..).map(|p| (p, c.lineage)));
                    }
                }
            }
            let AgentCtx {
                emitted,
                logs,
                memory_changed,
                ..
            } = actx;
            let mut emitted: Vec<(Value, Lineage)> = emitted
                .into_iter()
                .map(|p| (p, Lineage::default()))
                .collect();
            emitted.extend(caused);
            act.persist(
                Outcome {
                    emitted,
                    logs,
                    memory_changed,
                    ..Outcome::default()
                },
                ctx,
            );
        }));
    }
}

/// The event a fetch was made for (a website agent's `url_from_event`).
#[derive(Debug, Clone, Copy)]
pub(super) struct FetchCause {
    pub(super) event_id: crate::ids::EventId,
    pub(super) lineage: Lineage,
}
