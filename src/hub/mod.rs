//! The Hub: the supervisor of the actor tree. It starts an `AgentActor` (and an
//! `EndpointActor` for agents that take web requests) per agent, spread over a pool of
//! arbiters, restarts them through actix's `Supervisor`, and keeps the registry that
//! maps ids to addresses.

pub mod clock;
pub mod event_types;
pub mod registry;
pub mod router;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::agents::actor::{AgentActor, AgentSettings, AgentShared, Reload, Shutdown};
use crate::agents::kind;
use crate::config::Config;
use crate::delivery::actor::{Reconfigure as ReconfigureSubscription, Stop as StopSubscription};
use crate::delivery::{
    DeliverySettings, Spec, SubscriptionActor, SubscriptionIndex, SubscriptionShared,
};
use crate::endpoints::{EndpointActor, Reconfigure};
use crate::store::agents::AgentRow;
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::{Store, StoreError, agents, users};
pub use clock::Clock;
pub use registry::{AgentEntry, Registry, SubscriptionEntry};
pub use router::{ReloadLinks, Route, Router};

/// The addresses of the tree, built once at start and handed to whoever needs them.
#[derive(Clone)]
pub struct Addrs {
    pub hub: Addr<Hub>,
    pub router: Addr<Router>,
    pub clock: Addr<Clock>,
    pub store: Store,
    pub registry: Arc<Registry>,
    pub subscriptions: Arc<SubscriptionIndex>,
}

pub struct Hub {
    store: Store,
    registry: Arc<Registry>,
    router: Addr<Router>,
    arbiters: Vec<Arbiter>,
    settings: AgentSettings,
    subscriptions: Arc<SubscriptionIndex>,
    delivery: DeliverySettings,
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Hub {
    fn arbiter_for(&self, id: i64) -> ArbiterHandle {
        let n = self.arbiters.len().max(1);
        match self.arbiters.get(id.unsigned_abs() as usize % n) {
            Some(a) => a.handle(),
            None => Arbiter::current(),
        }
    }

    fn spawn_agent(&self, row: AgentRow) {
        let arbiter = self.arbiter_for(row.id);
        let shared = Arc::new(AgentShared::default());
        let k = kind(&row.agent_type);
        let addr = {
            let (row, store, settings, shared) = (
                row.clone(),
                self.store.clone(),
                self.settings.clone(),
                shared.clone(),
            );
            Supervisor::start_in_arbiter(&arbiter, move |_| {
                AgentActor::new(row, store, settings, shared)
            })
        };
        let endpoint = k.filter(|k| k.takes_web_requests).map(|_| {
            let (row, store, log_length) =
                (row.clone(), self.store.clone(), self.settings.log_length);
            Supervisor::start_in_arbiter(&arbiter, move |_| {
                EndpointActor::new(&row, store, log_length)
            })
        });
        self.registry.insert_agent(
            row.id,
            AgentEntry {
                user_id: row.user_id,
                agent_type: k.map_or("unknown", |k| k.name),
                disabled: row.disabled,
                propagate_immediately: row.propagate_immediately,
                receives_events: k.is_some_and(|k| k.can_receive_events),
                addr,
                endpoint,
                shared,
            },
        );
    }
}

impl Hub {
    fn spawn_subscription(&self, row: &SubscriptionRow) {
        let spec = match Spec::from_row(row) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(subscription_id = row.id, error = %e, "subscription is invalid; it will not send until fixed");
                return;
            }
        };
        self.subscriptions.upsert(spec.clone());
        let arbiter = self.arbiter_for(row.id);
        let shared = Arc::new(SubscriptionShared::default());
        let addr = {
            let (row, store, index, settings, shared) = (
                row.clone(),
                self.store.clone(),
                self.subscriptions.clone(),
                self.delivery.clone(),
                shared.clone(),
            );
            Supervisor::start_in_arbiter(&arbiter, move |_| {
                SubscriptionActor::new(&row, spec, store, index, settings, shared)
            })
        };
        self.registry.insert_subscription(
            row.id,
            SubscriptionEntry {
                user_id: row.user_id,
                addr,
                shared,
            },
        );
    }
}

/// A subscription was created or changed (or its deliveries re-queued).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscriptionSaved(pub SubscriptionRow);

impl Handler<SubscriptionSaved> for Hub {
    type Result = ();

    fn handle(&mut self, msg: SubscriptionSaved, _: &mut Context<Self>) {
        let row = msg.0;
        match self.registry.subscription(row.id) {
            Some(entry) => {
                if let Ok(spec) = Spec::from_row(&row) {
                    self.subscriptions.upsert(Arc::new(spec));
                }
                entry.addr.do_send(ReconfigureSubscription(row));
            }
            None => self.spawn_subscription(&row),
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscriptionRemoved(pub i64);

impl Handler<SubscriptionRemoved> for Hub {
    type Result = ();

    fn handle(&mut self, msg: SubscriptionRemoved, _: &mut Context<Self>) {
        self.subscriptions.remove(msg.0);
        if let Some(entry) = self.registry.remove_subscription(msg.0) {
            entry.addr.do_send(StopSubscription);
        }
    }
}

/// An agent was created or changed: start or reconfigure its actors, then reload links.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct AgentSaved(pub AgentRow);

impl Handler<AgentSaved> for Hub {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: AgentSaved, _: &mut Context<Self>) -> Self::Result {
        let row = msg.0;
        self.registry.add_user(row.user_id);
        match self.registry.agent(row.id) {
            Some(mut entry) => {
                entry.disabled = row.disabled;
                entry.propagate_immediately = row.propagate_immediately;
                if let Some(ep) = &entry.endpoint {
                    ep.do_send(Reconfigure(row.clone()));
                }
                entry.addr.do_send(Reload(row.clone()));
                self.registry.insert_agent(row.id, entry);
            }
            None => self.spawn_agent(row),
        }
        let router = self.router.clone();
        Box::pin(async move {
            router
                .send(ReloadLinks)
                .await
                .map_err(|_| StoreError::WriterGone)?
        })
    }
}

/// An agent was deleted: stop its actors, then reload links.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct AgentRemoved(pub i64);

impl Handler<AgentRemoved> for Hub {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: AgentRemoved, _: &mut Context<Self>) -> Self::Result {
        if let Some(entry) = self.registry.remove_agent(msg.0) {
            entry.addr.do_send(Shutdown);
        }
        let router = self.router.clone();
        Box::pin(async move {
            router
                .send(ReloadLinks)
                .await
                .map_err(|_| StoreError::WriterGone)?
        })
    }
}

/// Links changed: reload the graph before answering.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct LinksChanged;

impl Handler<LinksChanged> for Hub {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, _: LinksChanged, _: &mut Context<Self>) -> Self::Result {
        let router = self.router.clone();
        Box::pin(async move {
            router
                .send(ReloadLinks)
                .await
                .map_err(|_| StoreError::WriterGone)?
        })
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct UserAdded(pub i64);

impl Handler<UserAdded> for Hub {
    type Result = ();

    fn handle(&mut self, msg: UserAdded, _: &mut Context<Self>) {
        self.registry.add_user(msg.0);
    }
}

/// Starts the Router's consumers, the Hub with every stored agent, and the Clock.
/// `router` must already be running (the Writer reports commits to it).
pub async fn start(
    config: &Config,
    store: Store,
    registry: Arc<Registry>,
    router: Addr<Router>,
    subscriptions: Arc<SubscriptionIndex>,
) -> Result<Addrs, StoreError> {
    for id in store.read(users::all_ids).await? {
        registry.add_user(id);
    }
    router
        .send(ReloadLinks)
        .await
        .map_err(|_| StoreError::WriterGone)??;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hub = Hub {
        store: store.clone(),
        registry: registry.clone(),
        router: router.clone(),
        arbiters: (0..threads).map(|_| Arbiter::new()).collect(),
        settings: AgentSettings {
            max_depth: config.agents.max_propagation_depth,
            log_length: config.agents.log_length,
            mailbox_capacity: config.agents.mailbox_capacity,
        },
        subscriptions: subscriptions.clone(),
        delivery: DeliverySettings {
            allow_private_targets: config.delivery.allow_private_targets,
            poll_interval: Duration::from_millis(config.delivery.poll_interval_ms.max(10)),
            window: config.delivery.window.max(1),
            stats: registry.stats.clone(),
        },
    };
    // Subscriptions first: agents may emit events as soon as they start, and those
    // events must find every subscription they owe deliveries to.
    let subs = store.read(|c| subscriptions::list(c, None)).await?;
    for row in &subs {
        hub.spawn_subscription(row);
    }
    let rows = store.read(|c| agents::list(c, None)).await?;
    let count = rows.len();
    for row in rows {
        hub.spawn_agent(row);
    }
    tracing::info!(
        agents = count,
        subscriptions = subs.len(),
        arbiters = threads,
        "agents and subscriptions started"
    );
    let clock = Clock::new(
        store.clone(),
        registry.clone(),
        Duration::from_secs(config.agents.propagation_interval_seconds.max(1)),
    )
    .start();
    Ok(Addrs {
        hub: hub.start(),
        router,
        clock,
        store,
        registry,
        subscriptions,
    })
}
