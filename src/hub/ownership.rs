//! Which agents and subscriptions run on this node: every heartbeat a lease round
//! (`cluster`) says what this node holds, and the Hub starts the actors of what it
//! gained and stops those of what it lost. Every node keeps what serves requests
//! (agents' web-request endpoints and feeds, the subscription index every writer makes
//! deliveries from); only the lease holder runs an agent's actor and schedule and a
//! subscription's sender.
//!
//! The round also notices agents and subscriptions created, changed or deleted through
//! another node (it reads their ids and `updated_at`, which every write that changes
//! one sets, every heartbeat): every node's index follows a changed subscription, and
//! the node that sends it reconfigures its actor (new URL, secrets, pause, resume) and
//! closes its live circuit when a reset was asked elsewhere (a counted reset, see
//! `store::subscriptions::reset_circuit`). With several live
//! nodes it also asks the owned actors to read what other nodes committed: the Router
//! only pushes this node's own commits.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::NaiveDateTime;
use std::sync::atomic::Ordering;

use actix::prelude::*;

use super::{AgentRemoved, AgentSaved, Hub, ReloadLinks, SubscriptionRemoved};
use crate::agents::actor::CatchUp;
use crate::delivery::Spec;
use crate::delivery::actor::{Reconfigure, ResetCircuit, Stop as StopSubscription};
use crate::ids::{AgentId, SubscriptionId};
use crate::store::agents::{self, AgentRow};
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::{StoreError, leases};

/// What an API save on this node asks to start once its lease is taken.
pub enum Start {
    Agent(AgentRow),
    Subscription(SubscriptionRow),
}

/// A stored subscription as the round reads it.
#[derive(Debug, Clone, Copy)]
struct StoredSub {
    id: SubscriptionId,
    /// Set by every write that changes it.
    updated_at: NaiveDateTime,
    /// Circuits closed by hand on a node that did not send it.
    resets: i64,
}

/// What a round found: the ids stored, and the leases this node holds.
struct Found {
    /// The agents and subscriptions this node knew when the round began: only those
    /// can have been deleted elsewhere (one saved here during the round is not).
    known_agents: Vec<AgentId>,
    known_subscriptions: Vec<SubscriptionId>,
    agents: Vec<AgentId>,
    /// Each stored agent's `updated_at`, in `agents`' order.
    versions: Vec<chrono::NaiveDateTime>,
    subscriptions: Vec<StoredSub>,
    mine: HashSet<String>,
}

/// The rows to start or to learn about, read after a round.
struct Loaded {
    agents: Vec<AgentRow>,
    subscriptions: Vec<SubscriptionRow>,
}

impl Hub {
    pub(super) fn start_rounds(&mut self, ctx: &mut Context<Self>) {
        if self.safe_mode {
            return;
        }
        let every = self.cluster.settings.heartbeat;
        ctx.run_interval(every, |act, ctx| act.lease_round(ctx));
    }

    /// Takes the lease of what was just saved here and starts it when won (on SQLite,
    /// always). The answer resolves once that is done, so the API can answer after the
    /// start, as it did before leases.
    pub(super) fn take_now(
        &mut self,
        ctx: &mut Context<Self>,
        start: Start,
    ) -> tokio::sync::oneshot::Receiver<()> {
        let (done, answer) = tokio::sync::oneshot::channel();
        if self.safe_mode {
            let _ = done.send(());
            return answer;
        }
        let resource = match &start {
            Start::Agent(r) => leases::agent(r.id),
            Start::Subscription(r) => leases::subscription(r.id),
        };
        let cluster = self.cluster.clone();
        let take = async move { cluster.acquire(resource).await };
        ctx.wait(take.into_actor(self).map(move |won, act, _| {
            match won {
                Ok(true) => match start {
                    Start::Agent(row) => act.run_agent(row),
                    Start::Subscription(row) => act.spawn_subscription(&row, true),
                },
                // Another node holds it: it runs there.
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "taking a lease failed; the next heartbeat tries again"),
            }
            let _ = done.send(());
        }));
        answer
    }

    fn lease_round(&mut self, ctx: &mut Context<Self>) {
        if self.round_running || self.cluster.is_leaving() || self.cluster.is_displaced() {
            return;
        }
        self.round_running = true;
        let (store, cluster) = (self.store.clone(), self.cluster.clone());
        let known_agents = self.registry.agent_ids().0;
        let known_subscriptions = self.subscriptions.ids();
        let work = async move {
            let (stored, subscriptions) = store.read(stored_ids).await?;
            let (agents, versions): (Vec<AgentId>, Vec<_>) = stored.into_iter().unzip();
            let subscriptions: Vec<StoredSub> = subscriptions
                .into_iter()
                .map(|(id, updated_at, resets)| StoredSub {
                    id,
                    updated_at,
                    resets,
                })
                .collect();
            let wanted = subscriptions
                .iter()
                .map(|s| leases::subscription(s.id))
                .chain(agents.iter().map(|id| leases::agent(*id)))
                .collect();
            let mine = cluster.round(wanted).await?;
            Ok::<_, StoreError>(Found {
                known_agents,
                known_subscriptions,
                agents,
                versions,
                subscriptions,
                mine,
            })
        };
        ctx.spawn(work.into_actor(self).map(|res, act, ctx| match res {
            Ok(found) => {
                act.last_round_ok = std::time::Instant::now();
                act.apply_round(found, ctx);
            }
            Err(_) if act.cluster.is_displaced() => {
                // Logged by the cluster; another process runs as this node id now.
                act.round_running = false;
                act.stop_everything();
            }
            Err(e) => {
                act.round_running = false;
                tracing::warn!(error = %e, "the lease round failed; this node's leases expire unless the next one works");
                act.stop_if_expired();
            }
        }));
    }

    /// With other nodes possible (PostgreSQL): when no round has worked for a whole
    /// lease, this node's leases may be another node's by now, so it stops every actor
    /// rather than run one twice; the next round that works starts what it holds.
    fn stop_if_expired(&mut self) {
        if !self.cluster.shared || self.last_round_ok.elapsed() < self.cluster.settings.lease {
            return;
        }
        self.stop_everything();
    }

    /// Stops every agent and subscription actor this node runs (what serves requests
    /// stays).
    fn stop_everything(&mut self) {
        let (_, running) = self.registry.agent_ids();
        let subs = self.registry.subscription_ids();
        if running.is_empty() && subs.is_empty() {
            return;
        }
        tracing::error!(
            agents = running.len(),
            subscriptions = subs.len(),
            "stopping this node's agents and webhooks: no lease round has worked for a whole lease, or another process took this node id"
        );
        for id in running {
            self.stop_agent(id);
        }
        for id in subs {
            if let Some(entry) = self.registry.remove_subscription(id) {
                entry.addr.do_send(StopSubscription);
            }
        }
    }

    /// Stops what this node lost, forgets what was deleted elsewhere, then reads and
    /// starts what it gained or did not know.
    fn apply_round(&mut self, found: Found, ctx: &mut Context<Self>) {
        let mine = &found.mine;
        let stored_agents: HashSet<AgentId> = found.agents.iter().copied().collect();
        let stored_subs: HashSet<SubscriptionId> =
            found.subscriptions.iter().map(|s| s.id).collect();
        // A deleted subscription is forgotten (one saved here since is read again at
        // the next round, which changes nothing).
        self.applied.retain(|id, _| stored_subs.contains(id));
        self.resets_seen.retain(|id, _| stored_subs.contains(id));
        let (known_agents, running_agents) = self.registry.agent_ids();
        // Only what the round saw stored: one saved here since runs on its new lease.
        for id in &running_agents {
            if stored_agents.contains(id) && !mine.contains(&leases::agent(*id)) {
                tracing::info!(agent_id = id.0, "agent moved to another node");
                self.stop_agent(*id);
            }
        }
        for id in self.registry.subscription_ids() {
            if stored_subs.contains(&id) && !mine.contains(&leases::subscription(id)) {
                tracing::info!(subscription_id = id.0, "subscription moved to another node");
                if let Some(entry) = self.registry.remove_subscription(id) {
                    entry.addr.do_send(StopSubscription);
                }
            }
        }
        for id in found.known_agents.iter() {
            if !stored_agents.contains(id) && self.registry.agent(*id).is_some() {
                ctx.notify(AgentRemoved(*id));
            }
        }
        for id in found.known_subscriptions.iter() {
            if !stored_subs.contains(id) && self.subscriptions.get(*id).is_some() {
                ctx.notify(SubscriptionRemoved(*id));
            }
        }
        self.follow_resets(&found.subscriptions);
        let known: HashSet<AgentId> = known_agents.into_iter().collect();
        let running: HashSet<AgentId> = self.registry.agent_ids().1.into_iter().collect();
        let load_agents: Vec<AgentId> = found
            .agents
            .iter()
            .zip(&found.versions)
            .filter(|(id, version)| {
                !known.contains(id)
                    || (mine.contains(&leases::agent(**id)) && !running.contains(id))
                    || self
                        .registry
                        .agent(**id)
                        .is_some_and(|e| e.updated_at != **version)
            })
            .map(|(id, _)| *id)
            .collect();
        let load_subs = self.subscriptions_to_load(&found.subscriptions, mine);
        self.poll_other_nodes();
        self.load_and_start(load_agents, load_subs, found.mine, ctx);
    }

    /// The stored subscriptions to read: unknown here, changed since this node applied
    /// them, or held here and not running (an invalid one, in no index, waits for a
    /// change instead of being read every heartbeat).
    fn subscriptions_to_load(
        &self,
        stored: &[StoredSub],
        mine: &HashSet<String>,
    ) -> Vec<SubscriptionId> {
        stored
            .iter()
            .filter(|s| {
                self.applied.get(&s.id) != Some(&s.updated_at)
                    || (mine.contains(&leases::subscription(s.id))
                        && self.subscriptions.get(s.id).is_some()
                        && self.registry.subscription(s.id).is_none())
            })
            .map(|s| s.id)
            .collect()
    }

    /// Closes the live circuit of each subscription running here whose circuit was
    /// closed by hand on another node since the last round (the stored one is closed
    /// already). A count seen for the first time is only noted: an actor started since
    /// read its circuit from the row, after the reset.
    fn follow_resets(&mut self, stored: &[StoredSub]) {
        for s in stored {
            let before = self.resets_seen.insert(s.id, s.resets);
            if before.is_some_and(|b| s.resets > b)
                && let Some(entry) = self.registry.subscription(s.id)
            {
                tracing::info!(
                    subscription_id = s.id.0,
                    "circuit closed by hand through another node: closing it here"
                );
                entry.addr.do_send(ResetCircuit);
            }
        }
    }

    /// Reads the rows of what this node gained or did not know, and starts them.
    fn load_and_start(
        &mut self,
        load_agents: Vec<AgentId>,
        load_subs: Vec<SubscriptionId>,
        mine: HashSet<String>,
        ctx: &mut Context<Self>,
    ) {
        if load_agents.is_empty() && load_subs.is_empty() {
            self.round_running = false;
            return;
        }
        let read = self.store.read(move |c| {
            let mut agents_out = Vec::with_capacity(load_agents.len());
            for id in load_agents {
                agents_out.extend(agents::find(c, id)?);
            }
            let mut subs_out = Vec::with_capacity(load_subs.len());
            for id in load_subs {
                subs_out.extend(subscriptions::find(c, id)?);
            }
            Ok(Loaded {
                agents: agents_out,
                subscriptions: subs_out,
            })
        });
        ctx.spawn(read.into_actor(self).map(move |res, act, ctx| {
            act.round_running = false;
            let loaded = match res {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the agents and subscriptions this node gained failed; the next heartbeat tries again");
                    return;
                }
            };
            // Subscriptions first, as at start: agents' events must find them.
            for row in loaded.subscriptions {
                let run = mine.contains(&leases::subscription(row.id));
                act.subscription_loaded(row, run);
            }
            for row in loaded.agents {
                let run = mine.contains(&leases::agent(row.id));
                let Some(entry) = act.registry.agent(row.id) else {
                    act.registry.add_user(row.user_id);
                    act.spawn_agent(row, run);
                    continue;
                };
                if run && entry.addr.is_none() {
                    tracing::info!(agent_id = row.id.0, "agent runs on this node");
                    act.run_agent(row.clone());
                }
                if entry.updated_at != row.updated_at {
                    // Saved through another node: reconfigure what runs of it here.
                    ctx.notify(AgentSaved(row));
                }
            }
        }));
    }

    /// Applies a subscription row the round read: reconfigures the actor running here
    /// when the row changed since (saved through another node), else starts what runs
    /// of it here.
    fn subscription_loaded(&mut self, row: SubscriptionRow, run: bool) {
        let changed = self
            .applied
            .get(&row.id)
            .is_some_and(|at| *at != row.updated_at);
        if changed && self.registry.subscription(row.id).is_some() {
            tracing::info!(
                subscription_id = row.id.0,
                "subscription changed through another node: reconfigured"
            );
            self.reconfigure_subscription(row);
            return;
        }
        if run && self.registry.subscription(row.id).is_none() {
            tracing::info!(subscription_id = row.id.0, "subscription runs on this node");
        }
        self.spawn_subscription(&row, run);
    }

    /// Puts a changed subscription in this node's index and tells its running actor.
    pub(super) fn reconfigure_subscription(&mut self, row: SubscriptionRow) {
        self.applied.insert(row.id, row.updated_at);
        if let Ok(spec) = Spec::from_row(&row, self.store.keys()) {
            self.subscriptions.upsert(Arc::new(spec));
        }
        if let Some(entry) = self.registry.subscription(row.id) {
            entry.addr.do_send(Reconfigure(row));
        }
    }

    /// Records that this node applied `row` (started it, or put it in its index).
    pub(super) fn applied_subscription(&mut self, row: &SubscriptionRow) {
        self.applied.insert(row.id, row.updated_at);
    }

    /// With other live nodes, their commits reach this node's actors only through the
    /// database: the owned subscriptions re-read their due deliveries and the owned
    /// agents catch up, once per heartbeat (LISTEN/NOTIFY makes it sooner).
    fn poll_other_nodes(&self) {
        if self.cluster.view().live_nodes < 2 {
            return;
        }
        // Links saved through another node.
        self.router.do_send(ReloadLinks);
        for entry in self.registry.subscriptions() {
            entry.shared.lagging.store(true, Ordering::Release);
        }
        self.registry.for_each_agent(|_, e| {
            if e.receives_events
                && !e.disabled
                && let Some(addr) = &e.addr
            {
                addr.do_send(CatchUp);
            }
        });
    }
}

/// Every stored agent (with its `updated_at`) and subscription (with its `updated_at`
/// and count of circuit resets): each one should run somewhere.
type Stored = (
    Vec<(AgentId, NaiveDateTime)>,
    Vec<(SubscriptionId, NaiveDateTime, i64)>,
);

fn stored_ids(c: &mut crate::store::Conn) -> Result<Stored, StoreError> {
    use crate::store::schema::agents as a;
    use diesel::prelude::*;
    let agents = a::table
        .select((a::id, a::updated_at))
        .order(a::id.asc())
        .load(c)?;
    Ok((agents, subscriptions::revisions(c)?))
}
