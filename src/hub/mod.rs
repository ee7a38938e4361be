//! The Hub: the supervisor of the actor tree. It starts an `AgentActor` (and an
//! `EndpointActor` for agents that take web requests) per agent, spread over a pool of
//! arbiters, restarts them through actix's `Supervisor`, and keeps the registry that
//! maps ids to addresses.

pub mod clock;
pub mod forward;
pub mod incoming;
pub mod ownership;
pub mod registry;
pub mod remote;
pub mod router;
pub mod running;
mod spawn;
pub mod startup;
pub mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::agents::actor::{AgentSettings, ControlTargets, Reload, Shutdown, SubscriptionTouched};
use crate::cluster::{Cluster, NodeSettings};
use crate::config::Config;
use crate::delivery::actor::Stop as StopSubscription;
use crate::delivery::{DeliverySettings, SubscriptionIndex};
use crate::endpoints::{InboundSettings, Reconfigure, StopEndpoint};
use crate::feeds::{FeedChanged, actor::ReloadFeed, actor::StopFeed};
use crate::ids::SubscriptionId;
use crate::store::agents::AgentRow;
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::{Store, StoreError, agents, incoming_webhooks, leases, users};
pub use clock::{Clock, SetSchedule};
pub use incoming::{IncomingRemoved, IncomingSaved};
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
    /// This node of the cluster (one node on SQLite).
    pub cluster: Arc<Cluster>,
    /// Actions asked here for actors that run on another node, and the reverse.
    pub forward: Arc<forward::Forward>,
}

pub struct Hub {
    me: Addr<Hub>,
    clock: Addr<Clock>,
    /// The time zone schedules are read in.
    tz: chrono_tz::Tz,
    store: Store,
    registry: Arc<Registry>,
    router: Addr<Router>,
    arbiters: Vec<Arbiter>,
    settings: AgentSettings,
    subscriptions: Arc<SubscriptionIndex>,
    delivery: DeliverySettings,
    inbound: Arc<InboundSettings>,
    cluster: Arc<Cluster>,
    /// Asks for actors on other nodes (a controller's targets may run there).
    forward: Arc<forward::Forward>,
    /// A lease round is running (they never overlap).
    round_running: bool,
    /// When a lease round last worked.
    last_round_ok: std::time::Instant,
    /// The `updated_at` of each subscription as this node applied it (see
    /// `ownership`): one changed through another node is read again and reconfigured.
    applied: std::collections::HashMap<SubscriptionId, chrono::NaiveDateTime>,
    /// Each subscription's count of circuits closed by hand elsewhere, as last seen.
    resets_seen: std::collections::HashMap<SubscriptionId, i64>,
    /// `serve --safe`: nothing is started, not even what the API saves, so a row that
    /// breaks the hub can be fixed or deleted.
    safe_mode: bool,
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_rounds(ctx);
    }
}

/// A subscription was created or changed (or its deliveries re-queued).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscriptionSaved(pub SubscriptionRow);

impl Handler<SubscriptionSaved> for Hub {
    type Result = ResponseFuture<()>;

    /// Answers once a new subscription's actor started (or runs on another node).
    fn handle(&mut self, msg: SubscriptionSaved, ctx: &mut Context<Self>) -> Self::Result {
        let row = msg.0;
        match self.registry.subscription(row.id) {
            Some(_) => {
                self.reconfigure_subscription(row);
                Box::pin(std::future::ready(()))
            }
            None => {
                self.spawn_subscription(&row, false);
                let started = self.take_now(ctx, ownership::Start::Subscription(row));
                Box::pin(async move {
                    let _ = started.await;
                })
            }
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscriptionRemoved(pub SubscriptionId);

impl Handler<SubscriptionRemoved> for Hub {
    type Result = ();

    fn handle(&mut self, msg: SubscriptionRemoved, _: &mut Context<Self>) {
        self.applied.remove(&msg.0);
        self.resets_seen.remove(&msg.0);
        self.subscriptions.remove(msg.0);
        if let Some(entry) = self.registry.remove_subscription(msg.0) {
            entry.addr.do_send(StopSubscription);
        }
    }
}

/// Tells the feeds of `user_id` (or all feeds) that what they show may have changed:
/// links, a source deleted or reconfigured. Each re-renders on its next request.
pub fn feeds_changed(registry: &Registry, user_id: Option<i64>) {
    registry.for_each_agent(|_, e| {
        if let Some(feed) = &e.feed
            && user_id.is_none_or(|u| u == e.user_id)
        {
            feed.do_send(FeedChanged);
        }
    });
}

/// An agent was created or changed: start or reconfigure its actors, then reload links.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct AgentSaved(pub AgentRow);

impl Handler<AgentSaved> for Hub {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: AgentSaved, ctx: &mut Context<Self>) -> Self::Result {
        let row = msg.0;
        self.registry.add_user(row.user_id);
        let started = match self.registry.agent(row.id) {
            Some(mut entry) => {
                entry.disabled = row.disabled;
                entry.propagate_immediately = row.propagate_immediately;
                entry.updated_at = row.updated_at;
                if let Some(ep) = &entry.endpoint {
                    ep.addr.do_send(Reconfigure(row.clone()));
                }
                if let Some(feed) = &entry.feed {
                    feed.do_send(ReloadFeed(row.clone()));
                }
                self.settings.directory.set(&row);
                if let Some(addr) = &entry.addr {
                    addr.do_send(Reload(row.clone()));
                    self.set_schedule(&row);
                }
                self.registry.insert_agent(row.id, entry);
                None
            }
            None => {
                self.spawn_agent(row.clone(), false);
                Some(self.take_now(ctx, ownership::Start::Agent(row.clone())))
            }
        };
        let router = self.router.clone();
        let (store, directory) = (self.store.clone(), self.settings.directory.clone());
        let (registry, user_id) = (self.registry.clone(), row.user_id);
        Box::pin(async move {
            // A new agent: answer once its actor started here (or runs elsewhere).
            if let Some(started) = started {
                let _ = started.await;
            }
            router
                .send(ReloadLinks)
                .await
                .map_err(|_| StoreError::WriterGone)??;
            reload_control_links(&store, &directory).await?;
            feeds_changed(&registry, Some(user_id));
            Ok(())
        })
    }
}

/// An agent was deleted: stop its actors, then reload links.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct AgentRemoved(pub crate::ids::AgentId);

impl Handler<AgentRemoved> for Hub {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: AgentRemoved, _: &mut Context<Self>) -> Self::Result {
        let removed = self.registry.remove_agent(msg.0);
        self.settings.directory.remove(msg.0);
        if let Some(entry) = &removed {
            if let Some(addr) = &entry.addr {
                addr.do_send(Shutdown);
            }
            self.clock.do_send(SetSchedule {
                agent_id: msg.0,
                schedule: None,
            });
            if let Some(feed) = &entry.feed {
                feed.do_send(StopFeed);
            }
            // Its timers would otherwise keep it (and its log buffer) alive forever.
            if let Some(ep) = &entry.endpoint {
                ep.addr.do_send(StopEndpoint);
            }
        }
        self.agent_gone(msg.0);
        let router = self.router.clone();
        let (store, directory) = (self.store.clone(), self.settings.directory.clone());
        let (registry, user_id) = (self.registry.clone(), removed.map(|e| e.user_id));
        Box::pin(async move {
            router
                .send(ReloadLinks)
                .await
                .map_err(|_| StoreError::WriterGone)??;
            reload_control_links(&store, &directory).await?;
            feeds_changed(&registry, user_id);
            Ok(())
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
        let (store, directory) = (self.store.clone(), self.settings.directory.clone());
        let registry = self.registry.clone();
        Box::pin(async move {
            router
                .send(ReloadLinks)
                .await
                .map_err(|_| StoreError::WriterGone)??;
            reload_control_links(&store, &directory).await?;
            feeds_changed(&registry, None);
            Ok(())
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
// One idea: the start-up order of the actor tree (addresses first, then the actors that need
// them); its steps must stay in this order, read top to bottom.
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
    let node = NodeSettings::from_config(&config.cluster).map_err(|e| StoreError::Open {
        path: "[cluster]".into(),
        reason: e.to_string(),
    })?;
    let cluster = Cluster::new(node, &config.store_options(), &store)?;
    if !config.safe_mode {
        // Refuses to start when another live process runs as this node id.
        cluster.join().await?;
    }
    tracing::info!(
        node_id = cluster.id(),
        shared = cluster.shared,
        "cluster node"
    );
    let clock = Clock::new(
        store.clone(),
        cluster.clone(),
        registry.clone(),
        Duration::from_secs(config.agents.propagation_interval_seconds.max(1)),
        Duration::from_secs(config.agents.expiry_interval_seconds.max(1)),
    )
    .start();
    let forward = Arc::new(forward::Forward::new(
        store.clone(),
        registry.clone(),
        cluster.clone(),
    ));
    // The Hub's address exists before it runs: its agents send it their control actions.
    let hub_ctx = Context::<Hub>::new();
    let mut hub = Hub {
        me: hub_ctx.address(),
        clock: clock.clone(),
        tz: config.timezone().unwrap_or(chrono_tz::Tz::UTC),
        store: store.clone(),
        registry: registry.clone(),
        router: router.clone(),
        arbiters: (0..threads).map(|_| Arbiter::new()).collect(),
        settings: AgentSettings {
            max_depth: config.agents.max_propagation_depth,
            log_length: config.agents.log_length,
            mailbox_capacity: config.agents.mailbox_capacity,
            allow_private_targets: config.delivery.allow_private_targets,
            insecure: crate::agents::insecure::Limits::from_config(&config.insecure_agents),
            // `serve` read it before the hub started (a bad file stops it there).
            sentiment: crate::agents::sentiment::lexicon::shared(&config.sentiment)
                .ok()
                .flatten(),
            // Checked when the config was loaded; a file changed since is reported here.
            jabber_roots: Arc::new(config.jabber.extra_roots().unwrap_or_else(|e| {
                tracing::error!("{e}; the jabber agent trusts only the public authorities");
                Vec::new()
            })),
            directory: Arc::default(),
            apis: Arc::new(config.apis.clone()),
            files: Arc::new(crate::agents::files::FilePolicy::from_config(
                &config.files,
                true,
            )),
            mailer: (!config.safe_mode).then(|| {
                crate::mail::Outbox::new(
                    store.clone(),
                    crate::mail::SmtpSettings::from_config(&config.smtp),
                    config.agents.log_length,
                )
                .start()
                .recipient()
            }),
            fanout: Arc::new(crate::agents::fanout::FanOut::new(
                crate::agents::fanout::FanOutSettings {
                    max_events_per_root: config.agents.max_events_per_root,
                    agent_events_per_minute: config.agents.max_events_per_agent_per_minute,
                    user_events_per_minute: config.agents.max_events_per_user_per_minute,
                },
            )),
            max_credentials_per_user: config.accounts.max_credentials_per_user,
        },
        subscriptions: subscriptions.clone(),
        delivery: DeliverySettings {
            allow_private_targets: config.delivery.allow_private_targets,
            poll_interval: Duration::from_millis(config.delivery.poll_interval_ms.max(10)),
            window: config.delivery.window.max(1),
            stats: registry.stats.clone(),
            on_response: crate::agents::post::response_hook(),
            claims: cluster.shared.then(|| cluster.clone()),
        },
        inbound: Arc::new(config.inbound_settings()),
        cluster: cluster.clone(),
        forward: forward.clone(),
        round_running: false,
        last_round_ok: std::time::Instant::now(),
        applied: Default::default(),
        resets_seen: Default::default(),
        safe_mode: config.safe_mode,
    };
    if config.safe_mode {
        tracing::warn!(
            "safe mode (--safe): no agents, subscriptions or incoming webhooks are started; \
             the API is up to fix or delete the one that breaks the hub; restart without --safe when done"
        );
    } else {
        reload_control_links(&store, &hub.settings.directory).await?;
        spawn_stored(&mut hub, &store, threads).await?;
    }
    Ok(Addrs {
        hub: hub_ctx.run(hub),
        router,
        clock,
        store,
        registry,
        subscriptions,
        cluster,
        forward,
    })
}

/// Reads the control links into the directory: the agents a key_value_store controls
/// see its store in their templates.
async fn reload_control_links(
    store: &Store,
    directory: &crate::agents::drops::AgentDirectory,
) -> Result<(), StoreError> {
    let pairs = store
        .read(|c| crate::store::control_links::list(c, None))
        .await?;
    directory.set_control_links(&pairs);
    Ok(())
}

/// Starts every stored subscription, agent and incoming webhook; one whose
/// configuration cannot be loaded is disabled first (see [`startup`]).
async fn spawn_stored(hub: &mut Hub, store: &Store, threads: usize) -> Result<(), StoreError> {
    // Subscriptions first: agents may emit events as soon as they start, and those
    // events must find every subscription they owe deliveries to.
    // The circuit resets counted so far, read before the rows: one counted later is
    // one the actors started from these rows have not seen.
    hub.resets_seen = (store.read(subscriptions::revisions).await?.into_iter())
        .map(|(id, _, resets)| (id, resets))
        .collect();
    let subs = startup::subscriptions(store, store.read(subscriptions::list_all).await?).await?;
    let rows = store.read(|c| agents::list(c, None)).await?;
    let rows = upgrade::agent_options(store, rows).await?;
    let rows = startup::agents(store, rows, hub.settings.insecure.is_some()).await?;
    // The first round before anything starts: on one node (SQLite) it wins everything,
    // as a single hub always started everything.
    let wanted = subs
        .iter()
        .map(|r| leases::subscription(r.id))
        .chain(rows.iter().map(|r| leases::agent(r.id)))
        .collect();
    let mine = hub.cluster.round(wanted).await?;
    for row in &subs {
        hub.spawn_subscription(row, mine.contains(&leases::subscription(row.id)));
    }
    let count = rows.len();
    for row in rows {
        let run = mine.contains(&leases::agent(row.id));
        hub.spawn_agent(row, run);
    }
    tracing::info!(
        agents = count,
        subscriptions = subs.len(),
        arbiters = threads,
        "agents and subscriptions started"
    );
    let incoming = store.read(|c| incoming_webhooks::list(c, None)).await?;
    for row in startup::incoming(store, incoming).await? {
        hub.spawn_incoming(row);
    }
    Ok(())
}

impl Handler<ControlTargets> for Hub {
    type Result = ();

    /// Carries out a controller's actions on its control targets (Huginn's `control!`)
    /// through the agents service, as an API save would.
    fn handle(&mut self, msg: ControlTargets, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let allow_private_targets = self.settings.allow_private_targets;
        let files = self.settings.files.clone();
        let insecure = self.settings.insecure;
        let sentiment = self.settings.sentiment.is_some();
        let inside = running::FromInside {
            hub: self.me.clone(),
            registry: self.registry.clone(),
            forward: self.forward.clone(),
        };
        let controller = msg.controller_id;
        let work = async move {
            let d = crate::agents::service::Deps {
                store: &store,
                allow_private_targets,
                files,
                insecure,
                sentiment,
                running: &inside,
            };
            crate::agents::service::control::carry_out(&d, controller, msg.actions).await
        };
        ctx.spawn(work.into_actor(self).map(move |res, _, _| {
            if let Err(e) = res {
                tracing::error!(agent_id = controller.0, error = %e, "carrying out control actions failed");
            }
        }));
    }
}

impl Handler<SubscriptionTouched> for Hub {
    type Result = ();

    fn handle(&mut self, msg: SubscriptionTouched, ctx: &mut Context<Self>) {
        match self.registry.subscription(msg.row.id) {
            Some(entry) => entry.addr.do_send(crate::delivery::actor::Wake),
            None => {
                self.spawn_subscription(&msg.row, false);
                self.take_now(ctx, ownership::Start::Subscription(msg.row));
            }
        }
    }
}
