//! Starting and stopping what runs of an agent or a subscription on this node: every
//! node keeps an agent's web-request endpoint and feed and a subscription's place in
//! the index; the node holding the lease (see `ownership`) also runs the actors.

use std::sync::Arc;

use actix::prelude::*;

use super::{AgentEntry, Hub, SetSchedule, SubscriptionEntry};
use crate::agents::actor::{AgentActor, AgentShared, Shutdown};
use crate::agents::schedule::Schedule;
use crate::agents::{KindInfo, kind};
use crate::delivery::{Spec, SubscriptionActor, SubscriptionShared};
use crate::endpoints::{Endpoint, EndpointActor};
use crate::feeds::FeedActor;
use crate::store::agents::AgentRow;
use crate::store::subscriptions::SubscriptionRow;

impl Hub {
    /// Tells the Clock when this agent runs (or that it does not).
    pub(super) fn set_schedule(&self, row: &AgentRow) {
        let schedule = crate::agents::schedule_of(row).and_then(|text| match Schedule::parse(&text, self.tz) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(agent_id = row.id.0, error = %e, "agent schedule is invalid; it will not run on a schedule");
                None
            }
        });
        let schedule = schedule.filter(|_| !row.disabled);
        self.clock.do_send(SetSchedule {
            agent_id: row.id,
            schedule,
        });
    }

    pub(super) fn arbiter_for(&self, id: i64) -> ArbiterHandle {
        let n = self.arbiters.len().max(1);
        match self.arbiters.get(id.unsigned_abs() as usize % n) {
            Some(a) => a.handle(),
            None => Arbiter::current(),
        }
    }

    /// Starts what every node keeps of an agent (its web-request endpoint, its feed, its
    /// registry entry), and its actor when `run` (this node holds its lease).
    pub(super) fn spawn_agent(&self, row: AgentRow, run: bool) {
        if self.safe_mode {
            return;
        }
        let arbiter = self.arbiter_for(row.id.0);
        self.settings.directory.set(&row);
        let shared = Arc::new(AgentShared::default());
        let k = kind(&row.agent_type);
        let endpoint = k.filter(|k| k.takes_web_requests).map(|_| {
            let core = Arc::new(crate::endpoints::actor::web_request_core(
                &row,
                self.store.clone(),
                self.settings.log_length,
                self.inbound.clone(),
            ));
            let actor_core = core.clone();
            let addr =
                Supervisor::start_in_arbiter(&arbiter, move |_| EndpointActor::new(actor_core));
            Endpoint { core, addr }
        });
        let feed = k.filter(|k| k.serves_feed()).map(|_| {
            let (row, store) = (row.clone(), self.store.clone());
            Supervisor::start_in_arbiter(&arbiter, move |_| FeedActor::new(&row, store))
        });
        self.registry.insert_agent(
            row.id,
            AgentEntry {
                user_id: row.user_id,
                agent_type: k.map_or("unknown", KindInfo::name),
                disabled: row.disabled,
                propagate_immediately: row.propagate_immediately,
                receives_events: k.is_some_and(|k| k.can_receive_events),
                updated_at: row.updated_at,
                addr: None,
                endpoint,
                feed,
                shared,
            },
        );
        if run {
            self.run_agent(row);
        }
    }

    /// Starts the actor of an agent whose entry exists (this node took its lease), from
    /// `row` as stored now: memory and the last handled event are the previous owner's.
    pub(super) fn run_agent(&self, row: AgentRow) {
        let Some(entry) = self.registry.agent(row.id) else {
            return;
        };
        if entry.addr.is_some() || self.safe_mode {
            return;
        }
        let arbiter = self.arbiter_for(row.id.0);
        let addr = {
            let (row, store, settings, shared) = (
                row.clone(),
                self.store.clone(),
                self.settings.clone(),
                entry.shared.clone(),
            );
            let (controls, touched) = (self.me.clone().recipient(), self.me.clone().recipient());
            Supervisor::start_in_arbiter(&arbiter, move |_| {
                AgentActor::new(row, store, settings, shared).with_hub(controls, touched)
            })
        };
        self.registry.set_agent_actor(row.id, Some(addr));
        self.set_schedule(&row);
    }

    /// Stops the actor of agent `id` (its lease went to another node); what every node
    /// keeps of it stays.
    pub(super) fn stop_agent(&self, id: crate::ids::AgentId) {
        if let Some(addr) = self.registry.set_agent_actor(id, None) {
            addr.do_send(Shutdown);
        }
        self.clock.do_send(SetSchedule {
            agent_id: id,
            schedule: None,
        });
    }
}

impl Hub {
    /// Puts the subscription in the index every node's writer makes deliveries from,
    /// and starts its actor when `run` (this node holds its lease).
    pub(super) fn spawn_subscription(&mut self, row: &SubscriptionRow, run: bool) {
        if self.safe_mode {
            return;
        }
        // Also when invalid: read again once it changes, not every heartbeat.
        self.applied_subscription(row);
        let spec = match Spec::from_row(row, self.store.keys()) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(subscription_id = row.id.0, error = %e, "subscription is invalid; it will not send until fixed");
                return;
            }
        };
        self.subscriptions.upsert(spec.clone());
        if !run || self.registry.subscription(row.id).is_some() {
            return;
        }
        let arbiter = self.arbiter_for(row.id.0);
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
