//! The Router: fans committed events out along links to the receiving agents, and
//! hands each event's deliveries to their subscriptions' actors.
//! It keeps the link graph in memory (reloaded when links change) and only ever
//! pushes; when a receiver's mailbox is full it flags the receiver, which then reads
//! the events back from the database, so a slow agent costs no memory here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix::prelude::*;

use super::registry::Registry;
use crate::agents::actor::ReceiveEvents;
use crate::delivery::{Enqueue, Item};
use crate::feeds::FeedChanged;
use crate::ids::{AgentId, SubscriptionId};
use crate::store::{Committed, Store, StoreError, links};

pub struct Router {
    store: Store,
    pub(super) registry: Arc<Registry>,
    /// source agent id -> receiver agent ids
    pub(super) graph: HashMap<AgentId, Vec<AgentId>>,
}

impl Router {
    pub fn new(store: Store, registry: Arc<Registry>) -> Self {
        Router {
            store,
            registry,
            graph: HashMap::new(),
        }
    }
}

impl Actor for Router {
    type Context = Context<Self>;
}

/// Events of one committed batch, in id order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Route(pub Vec<Committed>);

impl Handler<Route> for Router {
    type Result = ();

    fn handle(&mut self, msg: Route, _: &mut Context<Self>) {
        crate::telemetry::events_committed(&self.registry.stats, &msg.0);
        let mut per_subscription: BTreeMap<SubscriptionId, Vec<Item>> = BTreeMap::new();
        for c in &msg.0 {
            for d in c.deliveries.iter() {
                per_subscription
                    .entry(d.subscription_id)
                    .or_default()
                    .push(Item {
                        delivery: d.clone(),
                        event: c.event.clone(),
                    });
            }
        }
        for (id, items) in per_subscription {
            let Some(entry) = self.registry.subscription(id) else {
                continue;
            };
            if entry.addr.try_send(Enqueue(items)).is_err() {
                // Full: the actor reads them from the database instead.
                entry.shared.lagging.store(true, Ordering::Release);
            }
        }
        let mut per_receiver: BTreeMap<AgentId, Vec<Committed>> = BTreeMap::new();
        for c in msg.0 {
            if let Some(target) = c.event.target_agent_id {
                per_receiver.entry(target).or_default().push(c);
                continue;
            }
            let Some(source) = c.event.agent_id else {
                continue;
            };
            if let Some(receivers) = self.graph.get(&source) {
                for r in receivers {
                    per_receiver.entry(*r).or_default().push(c.clone());
                }
            }
        }
        for (receiver, events) in per_receiver {
            let Some(entry) = self.registry.agent(receiver) else {
                continue;
            };
            // A feed reads its sources' events itself: it only needs to know they changed.
            if let Some(feed) = &entry.feed {
                feed.do_send(FeedChanged);
            }
            if entry.disabled || !entry.propagate_immediately {
                // Picked up later: on enable, or by the periodic propagation.
                continue;
            }
            // Its actor runs on another node, which reads the events from the database.
            let Some(addr) = &entry.addr else {
                continue;
            };
            let n = events.len();
            entry.shared.backlog.fetch_add(n, Ordering::Relaxed);
            if addr.try_send(ReceiveEvents(events)).is_err() {
                entry.shared.backlog.fetch_sub(n, Ordering::Relaxed);
                entry.shared.lagging.store(true, Ordering::Release);
            }
        }
    }
}

/// Reload the link graph from the database; answers once the new graph is in use.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ReloadLinks;

impl Handler<ReloadLinks> for Router {
    type Result = ResponseActFuture<Self, Result<(), StoreError>>;

    fn handle(&mut self, _: ReloadLinks, _: &mut Context<Self>) -> Self::Result {
        let read = self.store.read(|c| links::list(c, None));
        Box::pin(read.into_actor(self).map(|res, act, _| {
            let rows = res?;
            let mut graph: HashMap<AgentId, Vec<AgentId>> = HashMap::new();
            for l in rows {
                graph.entry(l.source_id).or_default().push(l.receiver_id);
            }
            act.graph = graph;
            Ok(())
        }))
    }
}
