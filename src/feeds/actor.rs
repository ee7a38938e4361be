//! `FeedActor`: one per `data_output` agent. It owns the agent's feed cache: a
//! rendered body per (format, secret, base URL), valid until the Router reports a new
//! event from a source, the Hub reports changed options or links, or a shown event
//! expires. A hit costs one message and no database read, no render and no write.
//!
//! On a miss it reads the sources' newest events and renders them on a reader thread
//! (`Store::read`), so the actor keeps answering hits meanwhile; concurrent misses for
//! the same key share one render. A render that started before a change is handed to
//! the requests that were waiting for it but not cached.
//!
//! Across nodes (PostgreSQL, issue 19) the cache is invalidated by the same
//! `FeedChanged`, sent by the Router when the node's listener hears that another node
//! committed events of the feed's sources (`hub::remote`). The alternative, checking
//! the sources' newest event id on every request, is exact but turns every hit into a
//! database read, which is what this cache exists to avoid; the notification costs
//! nothing per hit, and a feed is stale only for as long as a notification takes to
//! arrive (or, if the listener's connection is down, until its fallback poll or
//! reconnect, which invalidates every feed).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;
use tokio::sync::oneshot;

use super::spec::FeedSpec;
use super::{FeedAgent, FeedFormat, Rendered, build_doc, render};
use crate::options::OptionError;
use crate::store::agents::AgentRow;
use crate::store::{Store, events};

/// Renders kept per feed; more (clients reaching the hub under many host names with
/// no `public_url` configured) empties the cache rather than growing it.
const MAX_ENTRIES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedError {
    /// No secret matched.
    NotAuthorized,
    /// The stored options do not compile (they are checked on save, so this is rare).
    BadOptions(String),
    /// Reading or rendering failed.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    format: FeedFormat,
    secret: usize,
    base: String,
}

type Waiter = oneshot::Sender<Result<Arc<Rendered>, FeedError>>;

pub struct FeedActor {
    agent: FeedAgent,
    spec: Result<Arc<FeedSpec>, OptionError>,
    store: Store,
    /// Bumped on every change; a render is cached only if none happened meanwhile.
    generation: u64,
    cache: HashMap<CacheKey, Arc<Rendered>>,
    pending: HashMap<(CacheKey, u64), Vec<Waiter>>,
}

impl FeedActor {
    pub fn new(row: &AgentRow, store: Store) -> FeedActor {
        let mut actor = FeedActor {
            agent: FeedAgent {
                id: row.id,
                user_id: row.user_id,
                name: row.name.clone(),
                credentials: crate::template::context::no_credentials(),
            },
            spec: Err(OptionError::new("options", "not loaded")),
            store,
            generation: 0,
            cache: HashMap::new(),
            pending: HashMap::new(),
        };
        actor.configure(row);
        actor
    }

    fn configure(&mut self, row: &AgentRow) {
        self.agent.name = row.name.clone();
        self.spec = row
            .options_json()
            .map_err(|e| OptionError::new("options", e.to_string()))
            .and_then(|o| FeedSpec::new(&o))
            .map(Arc::new);
        if let Err(e) = &self.spec {
            tracing::error!(agent_id = row.id.0, error = %e, "data_output agent has invalid options; its feed answers 503 until they are fixed");
        }
        self.invalidate();
    }

    fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.cache.clear();
    }

    fn start_render(
        &mut self,
        key: CacheKey,
        secret: String,
        spec: Arc<FeedSpec>,
        ctx: &mut Context<Self>,
    ) {
        let generation = self.generation;
        let mut agent = self.agent.clone();
        // The owner's credentials as they are now: a saved credential is seen by the
        // next render (the cache keeps what was rendered until the feed changes).
        agent.credentials = crate::store::credential_cache::source_for(&self.store, agent.user_id);
        let (format, base) = (key.format, key.base.clone());
        let per_source = (spec.events_to_show as i64).saturating_mul(2);
        let read = self.store.read(move |c| {
            let rows = events::latest_of_sources(c, agent.id, per_source)?;
            let doc = build_doc(&spec, &agent, rows, &secret, &base, Utc::now());
            Ok(render(&spec, &doc, format))
        });
        ctx.spawn(read.into_actor(self).map(move |res, act, _| {
            let res = match res {
                Ok(Ok(r)) => Ok(Arc::new(r)),
                Ok(Err(e)) => Err(FeedError::Failed(e.to_string())),
                Err(e) => Err(FeedError::Failed(format!(
                    "the feed's events could not be read: {e}"
                ))),
            };
            if let Ok(r) = &res {
                tracing::debug!(agent_id = act.agent.id.0, format = ?key.format, bytes = r.body.len(), etag = %r.etag, "feed rendered");
            }
            match &res {
                Ok(r) if act.generation == generation => {
                    if act.cache.len() >= MAX_ENTRIES {
                        act.cache.clear();
                    }
                    act.cache.insert(key.clone(), r.clone());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(agent_id = act.agent.id.0, error = ?e, "feed render failed");
                }
            }
            for waiter in act.pending.remove(&(key, generation)).unwrap_or_default() {
                let _ = waiter.send(res.clone());
            }
        }));
    }
}

impl Actor for FeedActor {
    type Context = Context<Self>;
}

impl Supervised for FeedActor {}

/// A request for the feed: the secret from the URL, the format, and the base URL the
/// self link is built on.
#[derive(Message)]
#[rtype(result = "Result<Arc<Rendered>, FeedError>")]
pub struct ServeFeed {
    pub secret: String,
    pub format: FeedFormat,
    pub base: String,
}

impl Handler<ServeFeed> for FeedActor {
    type Result = ResponseFuture<Result<Arc<Rendered>, FeedError>>;

    fn handle(&mut self, msg: ServeFeed, ctx: &mut Context<Self>) -> Self::Result {
        let spec = match &self.spec {
            Ok(s) => s.clone(),
            Err(e) => {
                let e = FeedError::BadOptions(e.to_string());
                return Box::pin(async move { Err(e) });
            }
        };
        let Some(secret) = spec.secret_index(&msg.secret) else {
            return Box::pin(async { Err(FeedError::NotAuthorized) });
        };
        let key = CacheKey {
            format: msg.format,
            secret,
            base: msg.base,
        };
        if let Some(hit) = self.cache.get(&key) {
            if hit.is_fresh(Utc::now().naive_utc()) {
                crate::ops::metrics::feed_cache_hit();
                let hit = hit.clone();
                return Box::pin(async move { Ok(hit) });
            }
            self.invalidate();
        }
        let (tx, rx) = oneshot::channel();
        let waiters = self
            .pending
            .entry((key.clone(), self.generation))
            .or_default();
        waiters.push(tx);
        if waiters.len() == 1 {
            self.start_render(key, msg.secret, spec, ctx);
        }
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(FeedError::Failed(
                    "the feed restarted while rendering; retry".into(),
                ))
            })
        })
    }
}

/// Something the feed shows changed (a source committed an event; links changed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FeedChanged;

impl Handler<FeedChanged> for FeedActor {
    type Result = ();

    fn handle(&mut self, _: FeedChanged, _: &mut Context<Self>) {
        self.invalidate();
    }
}

/// The agent's row changed: new options, name.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReloadFeed(pub AgentRow);

impl Handler<ReloadFeed> for FeedActor {
    type Result = ();

    fn handle(&mut self, msg: ReloadFeed, _: &mut Context<Self>) {
        self.configure(&msg.0);
    }
}

/// The agent was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopFeed;

impl Handler<StopFeed> for FeedActor {
    type Result = ();

    fn handle(&mut self, _: StopFeed, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::agents::{self as agents_table, NewAgent};
    use crate::store::events::NewEvent;
    use crate::store::{links, users};
    use serde_json::json;

    async fn setup(dir: &std::path::Path) -> (Store, AgentRow, crate::ids::AgentId) {
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.to_path_buf();
        let store = Store::open(
            &config.store_options(),
            std::sync::Arc::new(crate::store::NoHook),
            Box::new(|_| {}),
        )
        .unwrap();
        let agent = |t: &str, options: serde_json::Value| NewAgent {
            user_id: 1,
            agent_type: t.into(),
            name: t.into(),
            options: options.to_string(),
            schedule: None,
            disabled: false,
            keep_events_for: 0,
            propagate_immediately: true,
            guid: None,
        };
        let (source, feed) = (
            agent("webhook", json!({"secret": "in"})),
            agent(
                "data_output",
                json!({"secrets": ["s"], "template": {"item": {"title": "{{ t }}"}}}),
            ),
        );
        store
            .writer()
            .write(move |c, _| {
                users::insert(c, "u", true)?;
                let source = agents_table::insert(c, &source)?;
                let feed = agents_table::insert(c, &feed)?;
                links::insert(c, source.id, feed.id)?;
                Ok((feed, source.id))
            })
            .await
            .map(|(feed, source)| (store.clone(), feed, source))
            .unwrap()
    }

    async fn add_event(store: &Store, source: crate::ids::AgentId, t: &str) {
        let e = NewEvent {
            user_id: 1,
            agent_id: Some(source),
            event_type: "event.created".into(),
            payload: json!({ "t": t }).to_string(),
            keep_for_seconds: 0,
        };
        store
            .writer()
            .write(move |c, out| out.insert(c, &[e], 0))
            .await
            .unwrap();
    }

    fn ask(format: FeedFormat, secret: &str) -> ServeFeed {
        ServeFeed {
            secret: secret.into(),
            format,
            base: "http://h".into(),
        }
    }

    #[actix_rt::test]
    async fn hits_share_one_render_until_something_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, row, source) = setup(dir.path()).await;
        add_event(&store, source, "one").await;
        let feed = FeedActor::new(&row, store.clone()).start();

        assert_eq!(
            feed.send(ask(FeedFormat::Rss, "nope")).await.unwrap().err(),
            Some(FeedError::NotAuthorized)
        );
        let first = feed
            .send(ask(FeedFormat::Json, "s"))
            .await
            .unwrap()
            .unwrap();
        let again = feed
            .send(ask(FeedFormat::Json, "s"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "a hit is the cached render itself"
        );
        let rss = feed.send(ask(FeedFormat::Rss, "s")).await.unwrap().unwrap();
        assert_ne!(rss.etag, first.etag);

        // Concurrent misses after a change share one render that shows the change.
        add_event(&store, source, "two").await;
        feed.send(FeedChanged).await.unwrap();
        let answers =
            futures_util::future::join_all((0..8).map(|_| feed.send(ask(FeedFormat::Json, "s"))))
                .await;
        let answers: Vec<Arc<Rendered>> =
            answers.into_iter().map(|a| a.unwrap().unwrap()).collect();
        assert!(answers.iter().all(|a| Arc::ptr_eq(a, &answers[0])));
        assert!(!Arc::ptr_eq(&answers[0], &first));
        let body: serde_json::Value = serde_json::from_slice(&answers[0].body).unwrap();
        assert_eq!(body["items"][0]["title"], "two");
        assert_eq!(body["items"][1]["title"], "one");
    }
}
