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
                let sent = client::send_reading(
                    "GET",
                    &f.url,
                    &f.headers,
                    Vec::new(),
                    FETCH_TIMEOUT,
                    allow,
                    FETCH_MAX_BODY,
                )
                .await;
                let got = Fetched {
                    status: sent.status,
                    headers: sent.headers,
                    body: sent.excerpt.unwrap_or_default().into_bytes(),
                    error: sent.error.map(|e| e.to_string()),
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
    pub(super) event_id: i64,
    pub(super) lineage: Lineage,
}
