//! The live objects of the hub, by id: which users exist and, per agent, its actor
//! addresses. The Hub writes it; HTTP handlers and the Router read it, so the ingest
//! path needs no database read to find its endpoint.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use actix::Addr;

use crate::agents::actor::{AgentActor, AgentShared};
use crate::delivery::{SubscriptionActor, SubscriptionShared};
use crate::endpoints::{Endpoint, EndpointActor, EndpointCore};
use crate::feeds::FeedActor;
use crate::ids::{AgentId, IncomingWebhookId, SubscriptionId};
use crate::telemetry::stats::Stats;

/// What a `/webhook/{token}` token leads to. A token replaced by a rotation carries
/// the end of its grace period.
#[derive(Clone)]
pub struct TokenEntry {
    pub webhook_id: IncomingWebhookId,
    /// The agent that receives the webhook's events.
    pub agent_id: AgentId,
    pub expires_at: Option<chrono::NaiveDateTime>,
    pub endpoint: Endpoint,
}

#[derive(Clone)]
pub struct AgentEntry {
    pub user_id: i64,
    pub agent_type: &'static str,
    pub disabled: bool,
    pub propagate_immediately: bool,
    pub receives_events: bool,
    /// The row's `updated_at` this entry was built from: a newer one in the database
    /// was saved through another node (see `ownership`).
    pub updated_at: chrono::NaiveDateTime,
    /// The agent's actor, on the node that holds its lease (see `cluster`); `None` on
    /// the others, which still take its web requests and serve its feed.
    pub addr: Option<Addr<AgentActor>>,
    pub endpoint: Option<Endpoint>,
    /// Set for agents that serve a feed (`data_output`).
    pub feed: Option<Addr<FeedActor>>,
    pub shared: Arc<AgentShared>,
}

#[derive(Clone)]
pub struct SubscriptionEntry {
    pub user_id: i64,
    pub addr: Addr<SubscriptionActor>,
    pub shared: Arc<SubscriptionShared>,
}

#[derive(Default)]
pub struct Registry {
    agents: RwLock<HashMap<AgentId, AgentEntry>>,
    users: RwLock<HashSet<i64>>,
    subscriptions: RwLock<HashMap<SubscriptionId, SubscriptionEntry>>,
    tokens: RwLock<HashMap<String, TokenEntry>>,
    /// Live counters and the event stream (see `stats`).
    pub stats: Arc<Stats>,
}

// A panic while holding the lock cannot leave these maps half-updated (every write is
// a single insert or remove), so a poisoned lock is still safe to use.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// What a Huginn web-request URL needs of its agent: a reference to its endpoint's
/// core or its feed, without cloning the whole entry (each actor address clone and
/// drop is a pair of atomic operations that the HTTP workers would contend on).
pub struct WebTarget {
    pub user_id: i64,
    pub core: Option<Arc<EndpointCore>>,
    pub feed: Option<Addr<FeedActor>>,
    /// The agent's type (a `liquid_output` agent answers with its page).
    pub agent_type: &'static str,
}

impl Registry {
    pub fn agent(&self, id: AgentId) -> Option<AgentEntry> {
        read(&self.agents).get(&id).cloned()
    }

    pub fn web_target(&self, id: AgentId) -> Option<WebTarget> {
        read(&self.agents).get(&id).map(|e| WebTarget {
            user_id: e.user_id,
            core: e.endpoint.as_ref().map(|ep| ep.core.clone()),
            feed: e.feed.clone(),
            agent_type: e.agent_type,
        })
    }

    pub fn insert_agent(&self, id: AgentId, entry: AgentEntry) {
        write(&self.agents).insert(id, entry);
    }

    pub fn remove_agent(&self, id: AgentId) -> Option<AgentEntry> {
        write(&self.agents).remove(&id)
    }

    /// Sets (or with `None` takes away) the actor of agent `id`; answers the one it had.
    pub fn set_agent_actor(
        &self,
        id: AgentId,
        addr: Option<Addr<AgentActor>>,
    ) -> Option<Addr<AgentActor>> {
        let mut map = write(&self.agents);
        let entry = map.get_mut(&id)?;
        std::mem::replace(&mut entry.addr, addr)
    }

    /// The ids of every agent known here, and of those whose actor runs here.
    pub fn agent_ids(&self) -> (Vec<AgentId>, Vec<AgentId>) {
        let map = read(&self.agents);
        let all = map.keys().copied().collect();
        let running = map
            .iter()
            .filter(|(_, e)| e.addr.is_some())
            .map(|(id, _)| *id)
            .collect();
        (all, running)
    }

    pub fn agent_count(&self) -> usize {
        read(&self.agents).len()
    }

    /// Calls `f` on every agent entry (under the read lock: keep `f` short).
    pub fn for_each_agent(&self, mut f: impl FnMut(AgentId, &AgentEntry)) {
        for (id, e) in read(&self.agents).iter() {
            f(*id, e);
        }
    }

    pub fn subscription(&self, id: SubscriptionId) -> Option<SubscriptionEntry> {
        read(&self.subscriptions).get(&id).cloned()
    }

    pub fn insert_subscription(&self, id: SubscriptionId, entry: SubscriptionEntry) {
        write(&self.subscriptions).insert(id, entry);
    }

    pub fn remove_subscription(&self, id: SubscriptionId) -> Option<SubscriptionEntry> {
        write(&self.subscriptions).remove(&id)
    }

    /// The endpoint core of an incoming-webhook token (given as its digest, see
    /// `secrets::token_digest`), unless its grace period is over. Only the core: the
    /// request path needs nothing else (see [`WebTarget`]).
    pub fn token(&self, digest: &str) -> Option<Arc<EndpointCore>> {
        read(&self.tokens)
            .get(digest)
            .filter(|e| e.expires_at.is_none_or(|t| t > crate::store::now()))
            .map(|e| e.endpoint.core.clone())
    }

    /// Points exactly `tokens` at incoming webhook `webhook_id` (replacing its old ones).
    pub fn set_tokens(&self, webhook_id: IncomingWebhookId, tokens: Vec<(String, TokenEntry)>) {
        let mut map = write(&self.tokens);
        map.retain(|_, e| e.webhook_id != webhook_id);
        map.extend(tokens);
    }

    /// The endpoint actor of incoming webhook `webhook_id`, if it is running.
    pub fn incoming_endpoint(&self, webhook_id: IncomingWebhookId) -> Option<Addr<EndpointActor>> {
        self.incoming(webhook_id).map(|e| e.addr)
    }

    /// The endpoint of incoming webhook `webhook_id`, if it is running.
    pub fn incoming(&self, webhook_id: IncomingWebhookId) -> Option<Endpoint> {
        read(&self.tokens)
            .values()
            .find(|e| e.webhook_id == webhook_id)
            .map(|e| e.endpoint.clone())
    }

    /// Forgets the tokens of every incoming webhook that feeds `agent_id` (the agent
    /// was deleted, and its webhooks with it); returns their endpoints.
    pub fn remove_tokens_for_agent(&self, agent_id: AgentId) -> Vec<Addr<EndpointActor>> {
        let mut map = write(&self.tokens);
        let mut gone: Vec<(IncomingWebhookId, Addr<EndpointActor>)> = Vec::new();
        map.retain(|_, e| {
            if e.agent_id != agent_id {
                return true;
            }
            if !gone.iter().any(|(id, _)| *id == e.webhook_id) {
                gone.push((e.webhook_id, e.endpoint.addr.clone()));
            }
            false
        });
        gone.into_iter().map(|(_, a)| a).collect()
    }

    /// Forgets the tokens of incoming webhook `webhook_id`; returns its endpoint.
    pub fn remove_tokens(&self, webhook_id: IncomingWebhookId) -> Option<Addr<EndpointActor>> {
        let mut map = write(&self.tokens);
        let addr = map
            .values()
            .find(|e| e.webhook_id == webhook_id)
            .map(|e| e.endpoint.addr.clone());
        map.retain(|_, e| e.webhook_id != webhook_id);
        addr
    }

    /// A snapshot of every subscription entry (clones, so no lock is held after).
    pub fn subscriptions(&self) -> Vec<SubscriptionEntry> {
        read(&self.subscriptions).values().cloned().collect()
    }

    /// Tells every subscription to start no new attempt and waits, at most `deadline`,
    /// for the attempts in flight to have their outcome committed (graceful shutdown).
    /// Returns how many subscriptions had not settled by then.
    pub async fn drain_deliveries(&self, deadline: std::time::Duration) -> usize {
        let waits = self
            .subscriptions()
            .into_iter()
            .map(|e| async move {
                // An actor that is gone has nothing in flight either.
                let _ = e.addr.send(crate::delivery::Drain).await;
            })
            .collect();
        crate::ops::shutdown::settle_within(waits, deadline).await
    }

    /// The ids of the subscriptions whose actor runs here.
    pub fn subscription_ids(&self) -> Vec<SubscriptionId> {
        read(&self.subscriptions).keys().copied().collect()
    }

    pub fn subscription_count(&self) -> usize {
        read(&self.subscriptions).len()
    }

    pub fn has_user(&self, id: i64) -> bool {
        read(&self.users).contains(&id)
    }

    pub fn add_user(&self, id: i64) {
        write(&self.users).insert(id);
    }

    /// Events pushed to agents and not handled yet, across all agents.
    pub fn backlog(&self) -> usize {
        read(&self.agents)
            .values()
            .map(|e| e.shared.backlog.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }
}
