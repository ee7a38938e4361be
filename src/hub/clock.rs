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

/// The Writer's time one expiry batch may take: every write queued meanwhile (webhooks
/// among them) waits for it, so it is kept to a fraction of a webhook's usual answer.
const EXPIRY_WORK: Duration = Duration::from_millis(1);
/// Bounds of a batch's size, which is fitted to [`EXPIRY_WORK`] as batches go.
const EXPIRY_BATCH_MIN: i64 = 16;
const EXPIRY_BATCH_MAX: i64 = 4096;
/// The pause between batches while expired events remain: the Writer spends at most
/// about EXPIRY_WORK / EXPIRY_PAUSE of its time on expiry.
const EXPIRY_PAUSE: Duration = Duration::from_millis(20);
/// How often an idle Writer is given a batch to count events into agents' rows in.
const COUNT_NUDGE_EVERY: Duration = Duration::from_secs(1);

pub struct Clock {
    store: Store,
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    propagation_every: Duration,
    expiry_every: Duration,
    /// agent id -> its schedule and next firing.
    schedules: HashMap<crate::ids::AgentId, (Schedule, DateTime<Utc>)>,
    /// Failed expiry runs in a row: they are retried at the next run anyway, this
    /// keeps the log to one line when they begin, at the cap, and when they recover.
    expiry_retry: Backoff,
    /// How many expired events the next batch deletes (see [`EXPIRY_WORK`]).
    expiry_batch: i64,
    /// A run of batches is under way: the next interval does not start another.
    expiring: bool,
}

impl Clock {
    pub fn new(
        store: Store,
        cluster: Arc<Cluster>,
        registry: Arc<Registry>,
        propagation_every: Duration,
        expiry_every: Duration,
    ) -> Self {
        Clock {
            store,
            cluster,
            registry,
            propagation_every,
            expiry_every,
            schedules: HashMap::new(),
            expiry_retry: Backoff::new(expiry_every, expiry_every * 10),
            expiry_batch: 256,
            expiring: false,
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
                    agent_id = agent_id.0,
                    "schedule tick already fired, or the agent moved to another node"
                ),
                Err(e) => tracing::warn!(
                    agent_id = agent_id.0,
                    error = %e,
                    "recording a schedule tick failed; this tick is skipped"
                ),
            }));
        }
    }

    fn expire(&mut self, ctx: &mut Context<Self>) {
        let batch = self.expiry_batch;
        let write = self.store.writer().write(move |c, _| {
            let started = std::time::Instant::now();
            let n = events::delete_expired(c, batch)?;
            Ok((n, started.elapsed()))
        });
        ctx.spawn(write.into_actor(self).map(move |res, act, ctx| {
            if res.is_ok()
                && let Some(failures) = act.expiry_retry.succeed()
            {
                tracing::info!(failures, "deleting expired events works again");
            }
            act.expiring = false;
            match res {
                Ok((n, took)) if n as i64 == batch => {
                    act.expiring = true;
                    act.expiry_batch = next_batch(batch, took);
                    // More to delete: go on soon, one bounded batch at a time.
                    ctx.run_later(EXPIRY_PAUSE, |act, ctx| act.expire(ctx));
                }
                Ok((n, _)) if n > 0 => tracing::info!(deleted = n, "expired events deleted"),
                Ok(_) => {}
                Err(e) => match act.expiry_retry.fail().1 {
                    Change::Started => tracing::warn!(error = %e, "deleting expired events failed; it is tried again at the next run"),
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
        ctx.run_interval(self.expiry_every, |act, ctx| {
            if !act.expiring {
                act.expiring = true;
                act.expire(ctx);
            }
        });
        ctx.run_interval(self.propagation_every, |act, _| act.propagate());
        // The Writer counts events into their agents' rows in its batches; when no
        // batch comes, this gives it one.
        ctx.run_interval(COUNT_NUDGE_EVERY, |act, _| {
            act.store.writer().nudge_counts()
        });
    }
}

/// The size of the next expiry batch after one of `batch` events took `took` of the
/// Writer's time: halved when it took longer than [`EXPIRY_WORK`], doubled when it
/// took less than half of it, within the bounds.
fn next_batch(batch: i64, took: Duration) -> i64 {
    if took > EXPIRY_WORK {
        (batch / 2).max(EXPIRY_BATCH_MIN)
    } else if took < EXPIRY_WORK / 2 {
        (batch * 2).min(EXPIRY_BATCH_MAX)
    } else {
        batch
    }
}

/// Sets (or with `None` removes) the schedule an agent runs on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSchedule {
    pub agent_id: crate::ids::AgentId,
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

#[cfg(test)]
mod tests {
    use super::{EXPIRY_BATCH_MAX, EXPIRY_BATCH_MIN, EXPIRY_WORK, next_batch};
    use std::time::Duration;

    /// A batch is fitted to the Writer time it may take, within its bounds.
    #[test]
    fn an_expiry_batch_fits_its_time() {
        assert_eq!(next_batch(256, EXPIRY_WORK * 3), 128);
        assert_eq!(next_batch(256, Duration::ZERO), 512);
        assert_eq!(next_batch(256, EXPIRY_WORK * 3 / 4), 256);
        assert_eq!(
            next_batch(EXPIRY_BATCH_MIN, Duration::from_secs(1)),
            EXPIRY_BATCH_MIN
        );
        assert_eq!(
            next_batch(EXPIRY_BATCH_MAX, Duration::ZERO),
            EXPIRY_BATCH_MAX
        );
    }
}
