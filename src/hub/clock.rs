//! The Clock: the hub's periodic work. Runs agents on their schedules, deletes expired
//! events in bounded batches and runs the periodic propagation for agents with
//! `propagate_immediately: false`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::registry::Registry;
use crate::agents::actor::{CatchUp, RunCheck};
use crate::agents::schedule::Schedule;
use crate::cluster::Cluster;
use crate::ops::backoff::{Backoff, Change};
use crate::store::{Store, events};

/// How often the Clock looks for schedules that fell due (the finest schedule is 10 s).
const SCHEDULE_TICK: Duration = Duration::from_millis(500);

const EXPIRY_EVERY: Duration = Duration::from_secs(60);
const EXPIRY_BATCH: i64 = 1000;
/// How often an idle Writer is given a batch to count events into agents' rows in.
const COUNT_NUDGE_EVERY: Duration = Duration::from_secs(1);

pub struct Clock {
    store: Store,
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    propagation_every: Duration,
    /// agent id -> its schedule and next firing.
    schedules: HashMap<i64, (Schedule, DateTime<Utc>)>,
    /// Failed expiry runs in a row: they are retried at the next run anyway, this
    /// keeps the log to one line when they begin, at the cap, and when they recover.
    expiry_retry: Backoff,
}

impl Clock {
    pub fn new(
        store: Store,
        cluster: Arc<Cluster>,
        registry: Arc<Registry>,
        propagation_every: Duration,
    ) -> Self {
        Clock {
            store,
            cluster,
            registry,
            propagation_every,
            schedules: HashMap::new(),
            expiry_retry: Backoff::new(EXPIRY_EVERY, EXPIRY_EVERY * 10),
        }
    }

    /// Fires the ticks that fell due, each once cluster-wide: the tick is recorded
    /// (`schedule_ticks`, checked and set in one statement, and on PostgreSQL only while
    /// this node holds the agent's lease) before the agent runs, so a new owner after a
    /// failover never runs a tick the old one already ran. A tick that cannot be
    /// recorded is skipped rather than risk running twice.
    fn fire_due(&mut self, ctx: &mut Context<Self>) {
        let now = Utc::now();
        let mut due = Vec::new();
        for (id, (schedule, next)) in self.schedules.iter_mut() {
            if *next > now {
                continue;
            }
            due.push((*id, next.naive_utc()));
            match schedule.next_after(now) {
                Some(n) => *next = n,
                // A schedule with no future firing: park it far away.
                None => *next = now + chrono::Duration::days(365 * 100),
            }
        }
        for (agent_id, tick) in due {
            // Only the node that runs the agent's actor (holds its lease) fires it.
            let Some(addr) = self.registry.agent(agent_id).and_then(|e| e.addr) else {
                continue;
            };
            let cluster = self.cluster.clone();
            let fire = async move { cluster.fire_tick(agent_id, tick).await };
            ctx.spawn(fire.into_actor(self).map(move |res, _, _| match res {
                Ok(true) => addr.do_send(RunCheck),
                Ok(false) => tracing::debug!(
                    agent_id,
                    "schedule tick already fired, or the agent moved to another node"
                ),
                Err(e) => tracing::warn!(
                    agent_id,
                    error = %e,
                    "recording a schedule tick failed; this tick is skipped"
                ),
            }));
        }
    }

    fn expire(&mut self, ctx: &mut Context<Self>) {
        let write = self
            .store
            .writer()
            .write(|c, _| events::delete_expired(c, EXPIRY_BATCH));
        ctx.spawn(write.into_actor(self).map(|res, act, ctx| {
            if res.is_ok()
                && let Some(failures) = act.expiry_retry.succeed()
            {
                tracing::info!(failures, "deleting expired events works again");
            }
            match res {
                Ok(n) if n as i64 == EXPIRY_BATCH => {
                    // More to delete: go on soon, one bounded batch at a time.
                    ctx.run_later(Duration::from_millis(50), |act, ctx| act.expire(ctx));
                }
                Ok(n) if n > 0 => tracing::info!(deleted = n, "expired events deleted"),
                Ok(_) => {}
                Err(e) => match act.expiry_retry.fail().1 {
                    Change::Started => tracing::warn!(error = %e, "deleting expired events failed; it is tried again every minute"),
                    Change::Capped => tracing::warn!(error = %e, failures = act.expiry_retry.failures(), "deleting expired events still fails; not logging each failure until it works"),
                    Change::Same => tracing::debug!(error = %e, "deleting expired events failed again"),
                },
            }
        }));
    }

    fn propagate(&mut self) {
        self.registry.for_each_agent(|_, entry| {
            if entry.receives_events
                && !entry.propagate_immediately
                && !entry.disabled
                && let Some(addr) = &entry.addr
            {
                addr.do_send(CatchUp);
            }
        });
    }
}

impl Actor for Clock {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SCHEDULE_TICK, |act, ctx| act.fire_due(ctx));
        ctx.run_interval(EXPIRY_EVERY, |act, ctx| act.expire(ctx));
        ctx.run_interval(self.propagation_every, |act, _| act.propagate());
        // The Writer counts events into their agents' rows in its batches; when no
        // batch comes, this gives it one.
        ctx.run_interval(COUNT_NUDGE_EVERY, |act, _| {
            act.store.writer().nudge_counts()
        });
    }
}

/// Sets (or with `None` removes) the schedule an agent runs on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSchedule {
    pub agent_id: i64,
    pub schedule: Option<Schedule>,
}

impl Handler<SetSchedule> for Clock {
    type Result = ();

    fn handle(&mut self, msg: SetSchedule, _: &mut Context<Self>) {
        match msg.schedule {
            Some(s) => match s.next_after(Utc::now()) {
                Some(next) => {
                    self.schedules.insert(msg.agent_id, (s, next));
                }
                None => {
                    self.schedules.remove(&msg.agent_id);
                }
            },
            None => {
                self.schedules.remove(&msg.agent_id);
            }
        }
    }
}
