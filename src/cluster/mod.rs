//! Several muninn nodes on one PostgreSQL database, every node equal (issue 19).
//!
//! Any node ingests and serves the API; what must happen once runs on exactly one node
//! through a lease in the `leases` table: each agent ("agent:ID": its schedule, the
//! events it receives, its memory) and each outgoing webhook ("subscription:ID": its
//! window, rate limit and circuit). Every heartbeat a node records that it is alive,
//! renews its leases and takes free or expired ones up to its fair share (see
//! [`round`]); the Hub starts the actors of what it gained and stops those of what it
//! lost. A node that dies stops renewing, and a live node takes its leases within
//! `lease_seconds` plus one heartbeat.
//!
//! On SQLite there is one node: the same rounds run through the one Writer and always
//! win everything, so nothing changes for a single hub.
//!
//! One node id is one process: a process started with the id of a live node refuses
//! to start ([`Cluster::join`]), and a running process whose id another process took
//! (it was stalled for a whole lease) stops owning anything (see [`instance`]).

pub mod instance;
pub mod round;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::Addr;
use chrono::NaiveDateTime;

use crate::config::{ClusterConfig, ConfigError};
use crate::ids::{AgentId, SubscriptionId};
use crate::store::leases;
use crate::store::nodes::{self, NodeRow};
use crate::store::{Conn, Read, Reader, Store, StoreError, StoreOptions};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Who this node is and how long its claims last.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub id: String,
    pub lease: Duration,
    pub heartbeat: Duration,
}

impl NodeSettings {
    pub fn from_config(c: &ClusterConfig) -> Result<NodeSettings, ConfigError> {
        c.check()?;
        Ok(NodeSettings {
            id: c.resolved_node_id()?,
            lease: Duration::from_secs(c.lease_seconds),
            heartbeat: Duration::from_secs(c.heartbeat_seconds),
        })
    }

    /// How long a delivery claim lasts: past the attempt's whole `timeout`, and past
    /// a missed renewal, so a slow target never has its delivery taken mid-request.
    pub fn claim_lease(&self, timeout: Duration) -> Duration {
        timeout + self.lease
    }
}

/// Where the node's own statements run: its own connection on PostgreSQL (heartbeats
/// must not wait behind a busy Writer, or a loaded node would lose its leases), the
/// Writer on SQLite.
#[derive(Clone)]
enum Db {
    Own(Addr<Reader>),
    Writer(Store),
}

impl Db {
    fn run<R, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = Result<R, StoreError>> + use<R, F>
    where
        R: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    {
        let db = self.clone();
        async move {
            match db {
                Db::Own(reader) => reader
                    .send(Read(Box::new(f)))
                    .await
                    .map_err(|_| StoreError::WriterGone)?,
                Db::Writer(store) => store.writer().write(move |c, _| f(c)).await,
            }
        }
    }
}

/// What this node owns and sees, as of its last round (for `/worker_status`, `/metrics`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct View {
    pub owned_agents: Vec<AgentId>,
    pub owned_subscriptions: Vec<SubscriptionId>,
    pub claimed_deliveries: i64,
    pub live_nodes: usize,
    pub nodes: Vec<NodeRow>,
    /// Why the last round failed, if it did (leases then expire unless a round works).
    pub error: Option<String>,
}

/// This node: its settings, its connection and its view of the cluster.
pub struct Cluster {
    pub settings: NodeSettings,
    /// True on PostgreSQL, where other nodes may share the database.
    pub shared: bool,
    started_at: NaiveDateTime,
    db: Db,
    view: RwLock<View>,
    /// Set by [`Cluster::leave`]: no round takes a lease again.
    leaving: AtomicBool,
    /// This process's token in the `nodes` row (see [`instance`]).
    instance: String,
    /// Another process took this node id: this one owns nothing from then on.
    displaced: AtomicBool,
}

impl Cluster {
    /// The node of a hub whose store is `store`, opened with `opts`.
    pub fn new(
        settings: NodeSettings,
        opts: &StoreOptions,
        store: &Store,
    ) -> Result<Arc<Cluster>, StoreError> {
        let shared = opts.pg_url.is_some();
        let db = if shared {
            Db::Own(crate::store::private_reader(opts)?)
        } else {
            Db::Writer(store.clone())
        };
        Ok(Arc::new(Cluster {
            settings,
            shared,
            started_at: crate::store::now(),
            db,
            view: RwLock::new(View::default()),
            leaving: AtomicBool::new(false),
            instance: instance::new_token(),
            displaced: AtomicBool::new(false),
        }))
    }

    /// True once another process took this node id: the Hub stops every actor, and
    /// no round, lease or tick is taken again by this process.
    pub fn is_displaced(&self) -> bool {
        self.displaced.load(Ordering::Acquire)
    }

    fn plan(&self) -> round::Plan {
        round::Plan {
            node: self.settings.id.clone(),
            instance: self.instance.clone(),
            started_at: self.started_at,
            lease: self.settings.lease,
            shared: self.shared,
        }
    }

    /// Claims this node id for this process before anything starts (PostgreSQL). When
    /// another process holds it, watches its heartbeat: one that beats again is alive,
    /// and this process refuses to start (`StoreError::NodeIdInUse`, saying what to
    /// do); one that stays silent for its lease (a crashed node being restarted) is
    /// taken over. A process of this machine that has exited is taken over at once.
    pub async fn join(&self) -> Result<(), StoreError> {
        if !self.shared {
            return Ok(());
        }
        let (lease, heartbeat) = (self.settings.lease, self.settings.heartbeat);
        let deadline = std::time::Instant::now() + lease + 2 * heartbeat;
        let poll = (heartbeat / 4).max(Duration::from_millis(100));
        let mut first_seen: Option<NaiveDateTime> = None;
        loop {
            let plan = self.plan();
            let row = match self.db.run(move |c| round::join(c, &plan)).await? {
                round::Joined::Yes => return Ok(()),
                round::Joined::HeldBy(row) => row,
                round::Joined::Again if std::time::Instant::now() < deadline => {
                    actix_rt::time::sleep(poll).await;
                    continue;
                }
                round::Joined::Again => {
                    return Err(StoreError::NodeIdInUse(format!(
                        "node id \"{}\" kept changing hands while this process started: \
                         another process is starting with it. Give each process its own \
                         [cluster] node_id (or MUNINN_CLUSTER_NODE_ID).",
                        self.id()
                    )));
                }
            };
            let beating = first_seen.is_some_and(|t| row.heartbeat_at > t);
            if beating || std::time::Instant::now() >= deadline {
                return Err(StoreError::NodeIdInUse(in_use(&self.settings, &row)));
            }
            if first_seen.is_none() {
                tracing::warn!(
                    node_id = self.id(),
                    last_heartbeat = %row.heartbeat_at,
                    "another process ran as this node id; waiting to see whether it is still alive"
                );
                first_seen = Some(row.heartbeat_at);
            }
            actix_rt::time::sleep(poll).await;
        }
    }

    /// True once the node began to stop cleanly (its leases are given up).
    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Acquire)
    }

    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// A copy of the last round's view.
    pub fn view(&self) -> View {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One heartbeat: records this node alive, renews its leases, gives up what is no
    /// longer `wanted` or above its share, takes free ones up to its share. Answers the
    /// resources it holds now.
    pub async fn round(&self, wanted: Vec<String>) -> Result<HashSet<String>, StoreError> {
        if self.is_leaving() {
            return Err(StoreError::WriterGone);
        }
        if self.is_displaced() {
            return Err(StoreError::NodeIdInUse(taken_over(self.id(), None)));
        }
        let plan = self.plan();
        let res = self.db.run(move |c| round::run(c, &plan, &wanted)).await;
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        match res {
            Ok(done) => {
                let ids = |prefix: &str| {
                    let mut v: Vec<i64> = done
                        .mine
                        .iter()
                        .filter_map(|r| r.strip_prefix(prefix)?.parse().ok())
                        .collect();
                    v.sort_unstable();
                    v
                };
                *view = View {
                    owned_agents: ids("agent:").into_iter().map(AgentId).collect(),
                    owned_subscriptions: ids("subscription:")
                        .into_iter()
                        .map(SubscriptionId)
                        .collect(),
                    claimed_deliveries: done.claimed,
                    live_nodes: done.live,
                    nodes: done.nodes,
                    error: None,
                };
                Ok(done.mine)
            }
            Err(e) => {
                if let StoreError::NodeIdInUse(why) = &e
                    && !self.displaced.swap(true, Ordering::AcqRel)
                {
                    tracing::error!(node_id = self.id(), "{why}");
                    view.owned_agents.clear();
                    view.owned_subscriptions.clear();
                }
                view.error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Takes (or renews) one resource now: a node that saves a new agent or webhook
    /// starts it at once when it is free. True when this node holds it.
    pub async fn acquire(&self, resource: String) -> Result<bool, StoreError> {
        if self.is_displaced() {
            return Ok(false);
        }
        let (node, lease) = (self.settings.id.clone(), self.settings.lease);
        self.db
            .run(move |c| {
                let now = nodes::db_now(c)?;
                leases::acquire(c, &resource, &node, now, now + chrono_len(lease))
            })
            .await
    }

    /// Gives one resource up (its agent or webhook was deleted, or the node stops it).
    pub async fn release(&self, resource: String) -> Result<(), StoreError> {
        let node = self.settings.id.clone();
        self.db
            .run(move |c| leases::release(c, &resource, &node))
            .await
    }

    /// Records that `agent_id`'s schedule fired `tick`, unless that tick (or a later
    /// one) already fired anywhere; on PostgreSQL only while this node holds the agent.
    /// True: run it.
    pub async fn fire_tick(
        &self,
        agent_id: AgentId,
        tick: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        if self.is_displaced() {
            return Ok(false);
        }
        let (node, shared) = (self.settings.id.clone(), self.shared);
        self.db
            .run(move |c| {
                let holder = if shared {
                    Some((node.as_str(), nodes::db_now(c)?))
                } else {
                    None
                };
                leases::fire_tick(c, agent_id, tick, holder)
            })
            .await
    }

    /// A clean stop: gives every lease up and leaves the node list, so the other nodes
    /// take over at their next heartbeat instead of after the lease. A process whose
    /// node id another one took leaves both alone: they are that process's now.
    pub async fn leave(&self) -> Result<usize, StoreError> {
        self.leaving.store(true, Ordering::Release);
        if self.is_displaced() {
            return Ok(0);
        }
        let (node, instance) = (self.settings.id.clone(), self.instance.clone());
        self.db
            .run(move |c| {
                let n = leases::release_all(c, &node)?;
                nodes::remove(c, &node, &instance)?;
                Ok(n)
            })
            .await
    }
}

/// Why a process cannot start as node `settings.id`: `row`'s process beats as it.
fn in_use(settings: &NodeSettings, row: &NodeRow) -> String {
    format!(
        "node id \"{id}\" is in use: another muninn process on this database runs as \"{id}\" \
         (started {started} UTC, version {version}, last heartbeat {beat} UTC). Two processes \
         with one node id would share its leases and run the same agents and webhooks \
         twice, so this one does not start. Give each process its own [cluster] node_id \
         (or MUNINN_CLUSTER_NODE_ID); if that process has just been stopped, start this one \
         again after {lease} s, when its heartbeat has expired.",
        id = settings.id,
        started = row.started_at.format("%Y-%m-%d %H:%M:%S"),
        version = row.version,
        beat = row.heartbeat_at.format("%Y-%m-%d %H:%M:%S"),
        lease = settings.lease.as_secs(),
    )
}

/// Why a running process stops owning: another one took its node id.
pub(crate) fn taken_over(id: &str, holder: Option<&NodeRow>) -> String {
    let since = holder.map_or_else(String::new, |r| {
        format!(
            " (it started {} UTC)",
            r.started_at.format("%Y-%m-%d %H:%M:%S")
        )
    });
    format!(
        "node id \"{id}\" was taken by another muninn process{since}: this process missed its \
         heartbeats for a whole lease, or both were started with one node id. It stops \
         running agents and webhooks rather than share them, and keeps serving the API; \
         give each process its own [cluster] node_id and restart this one."
    )
}

/// A lease length as chrono counts it.
pub(crate) fn chrono_len(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("settings", &self.settings)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}
