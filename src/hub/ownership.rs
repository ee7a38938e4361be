//! Which agents and subscriptions run on this node: every heartbeat a lease round
//! (`cluster`) says what this node holds, and the Hub starts the actors of what it
//! gained and stops those of what it lost. Every node keeps what serves requests
//! (agents' web-request endpoints and feeds, the subscription index every writer makes
//! deliveries from); only the lease holder runs an agent's actor and schedule and a
//! subscription's sender.
//!
//! The round also notices agents and subscriptions created or deleted through another
//! node, and agents changed through one (it reads their ids, and agents' `updated_at`,
//! every heartbeat), and, with several live nodes, asks the
//! owned actors to read what other nodes committed: the Router only pushes this
//! node's own commits.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use actix::prelude::*;

use super::{AgentRemoved, AgentSaved, Hub, ReloadLinks, SubscriptionRemoved};
use crate::agents::actor::CatchUp;
use crate::delivery::actor::Stop as StopSubscription;
use crate::store::agents::{self, AgentRow};
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::{StoreError, leases};

/// What an API save on this node asks to start once its lease is taken.
pub enum Start {
    Agent(AgentRow),
    Subscription(SubscriptionRow),
}

/// What a round found: the ids stored, and the leases this node holds.
struct Found {
    /// The agents and subscriptions this node knew when the round began: only those
    /// can have been deleted elsewhere (one saved here during the round is not).
    known_agents: Vec<i64>,
    known_subscriptions: Vec<i64>,
    agents: Vec<i64>,
    /// Each stored agent's `updated_at`, in `agents`' order.
    versions: Vec<chrono::NaiveDateTime>,
    subscriptions: Vec<i64>,
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
        if self.round_running || self.cluster.is_leaving() {
            return;
        }
        self.round_running = true;
        let (store, cluster) = (self.store.clone(), self.cluster.clone());
        let known_agents = self.registry.agent_ids().0;
        let known_subscriptions = self.subscriptions.ids();
        let work = async move {
            let (stored, subscriptions) = store.read(stored_ids).await?;
            let (agents, versions): (Vec<i64>, Vec<_>) = stored.into_iter().unzip();
            let wanted = subscriptions
                .iter()
                .map(|id| leases::subscription(*id))
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
        let (_, running) = self.registry.agent_ids();
        let subs = self.registry.subscription_ids();
        if running.is_empty() && subs.is_empty() {
            return;
        }
        tracing::error!(
            agents = running.len(),
            subscriptions = subs.len(),
            "no lease round has worked for a whole lease: stopping this node's agents and webhooks until one does"
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
        let stored_agents: HashSet<i64> = found.agents.iter().copied().collect();
        let stored_subs: HashSet<i64> = found.subscriptions.iter().copied().collect();
        let (known_agents, running_agents) = self.registry.agent_ids();
        // Only what the round saw stored: one saved here since runs on its new lease.
        for id in &running_agents {
            if stored_agents.contains(id) && !mine.contains(&leases::agent(*id)) {
                tracing::info!(agent_id = id, "agent moved to another node");
                self.stop_agent(*id);
            }
        }
        for id in self.registry.subscription_ids() {
            if stored_subs.contains(&id) && !mine.contains(&leases::subscription(id)) {
                tracing::info!(subscription_id = id, "subscription moved to another node");
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
        let known: HashSet<i64> = known_agents.into_iter().collect();
        let running: HashSet<i64> = self.registry.agent_ids().1.into_iter().collect();
        let load_agents: Vec<i64> = found
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
        let load_subs: Vec<i64> = found
            .subscriptions
            .iter()
            .copied()
            .filter(|id| {
                (self.subscriptions.get(*id).is_none() && !self.unloadable.contains(id))
                    || (mine.contains(&leases::subscription(*id))
                        && self.registry.subscription(*id).is_none())
            })
            .collect();
        self.poll_other_nodes();
        self.load_and_start(load_agents, load_subs, found.mine, ctx);
    }

    /// Reads the rows of what this node gained or did not know, and starts them.
    fn load_and_start(
        &mut self,
        load_agents: Vec<i64>,
        load_subs: Vec<i64>,
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
            for row in &loaded.subscriptions {
                let run = mine.contains(&leases::subscription(row.id));
                if run {
                    tracing::info!(subscription_id = row.id, "subscription runs on this node");
                }
                act.spawn_subscription(row, run);
                if act.subscriptions.get(row.id).is_none() {
                    // Invalid (logged once): not read again every heartbeat.
                    act.unloadable.insert(row.id);
                }
            }
            for row in loaded.agents {
                let run = mine.contains(&leases::agent(row.id));
                let Some(entry) = act.registry.agent(row.id) else {
                    act.registry.add_user(row.user_id);
                    act.spawn_agent(row, run);
                    continue;
                };
                if run && entry.addr.is_none() {
                    tracing::info!(agent_id = row.id, "agent runs on this node");
                    act.run_agent(row.clone());
                }
                if entry.updated_at != row.updated_at {
                    // Saved through another node: reconfigure what runs of it here.
                    ctx.notify(AgentSaved(row));
                }
            }
        }));
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

/// Every stored agent (with its `updated_at`) and subscription: each one should run
/// somewhere.
type Stored = (Vec<(i64, chrono::NaiveDateTime)>, Vec<i64>);

fn stored_ids(c: &mut crate::store::Conn) -> Result<Stored, StoreError> {
    use crate::store::schema::{agents as a, subscriptions as s};
    use diesel::prelude::*;
    let agents = a::table
        .select((a::id, a::updated_at))
        .order(a::id.asc())
        .load(c)?;
    let subs: Vec<i64> = s::table.select(s::id).order(s::id.asc()).load(c)?;
    Ok((agents, subs))
}
