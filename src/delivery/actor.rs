//! `SubscriptionActor`: one per outgoing webhook. It keeps a bounded window of due
//! deliveries in memory (two lanes, first attempts and retries, so retries never starve
//! new work), sends them with at most `max_in_flight` at once through the rate limiter
//! and the circuit breaker, and commits each attempt's outcome through the Writer.
//!
//! The database is the truth: deliveries are read back from it after a restart, when
//! the window overflowed, and when retries fall due. A delivery stays "known" to the
//! actor until its outcome is committed, so a read racing a send never sends it twice.
//!
//! This file is the window and its bookkeeping; `attempt` runs one attempt's steps,
//! `messages` answers the Hub and the API, `test_send` and `reset` the two API actions.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::NaiveDateTime;

use super::breaker::{Breaker, CircuitState};
use super::index::SubscriptionIndex;
use super::prepared::ResponseHook;
use super::spec::Spec;
use crate::cluster::Cluster;
use crate::ids::DeliveryId;
use crate::ops::backoff::{Backoff, Change};
use crate::ops::rate::TokenBucket;
use crate::store::deliveries::{self, DeliveryRow};
use crate::store::events::EventRow;
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::{Store, now};
use crate::telemetry::stats::Stats;

mod attempt;
mod messages;
mod reset;
mod test_send;
pub use messages::{Drain, Enqueue, Reconfigure, Stop, Wake};
pub use reset::ResetCircuit;
pub use test_send::{SendTest, TestOutcome};

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub allow_private_targets: bool,
    pub poll_interval: Duration,
    pub window: usize,
    /// Where committed outcomes are counted and streamed.
    pub stats: Arc<Stats>,
    /// Turns a post agent's final response into its event.
    pub on_response: ResponseHook,
    /// This node, when other nodes may share the database (PostgreSQL): each delivery
    /// is then claimed before it is sent (see `store::claims`). `None` on SQLite, where
    /// the one node owns every subscription.
    ///
    /// With the cluster's leases a subscription runs on one node at a time, so its
    /// window, its rate limit (the token bucket below) and its circuit breaker hold
    /// cluster-wide; the claims cover the handover, when the old owner may still have
    /// an attempt in flight.
    pub claims: Option<Arc<Cluster>>,
}

/// Live numbers the rest of the hub reads without a message round trip.
#[derive(Debug, Default)]
pub struct SubscriptionShared {
    /// Set by the Router when new deliveries did not fit in the mailbox.
    pub lagging: AtomicBool,
    pub in_flight: AtomicUsize,
    pub queued: AtomicUsize,
    pub circuit_open: AtomicBool,
}

/// A delivery with the event it carries.
#[derive(Debug, Clone)]
pub struct Item {
    pub delivery: DeliveryRow,
    pub event: Arc<EventRow>,
}

/// The first wait after the outbox cannot be read or written; it doubles while the
/// failures go on, up to the cap.
const STORE_RETRY_BASE: Duration = Duration::from_millis(500);
const STORE_RETRY_CAP: Duration = Duration::from_secs(60);

pub struct SubscriptionActor {
    spec: Arc<Spec>,
    store: Store,
    index: Arc<SubscriptionIndex>,
    settings: DeliverySettings,
    shared: Arc<SubscriptionShared>,
    fresh: VecDeque<Item>,
    retries: VecDeque<Item>,
    /// Ids in the window or being sent (until their outcome is committed).
    known: HashSet<DeliveryId>,
    /// Ids being sent or whose outcome is being committed.
    sending: HashSet<DeliveryId>,
    /// Ids whose outcome committed since the last refill began: a refill that read them
    /// before that commit must not bring them back.
    done_since_refill: HashSet<DeliveryId>,
    /// Outcomes committed so far. An ordered refill rebuilds the queue from what it
    /// read, so it is discarded if an outcome (a new retry time, say) landed meanwhile.
    settled: u64,
    /// Set when the target answered 410: nothing more is sent until reconfigured.
    gone: bool,
    in_flight: usize,
    retries_in_flight: usize,
    /// Outcomes answered by the target and not yet committed.
    recording: usize,
    breaker: Breaker,
    /// When the circuit last opened (kept across failures while it stays open, so
    /// the API can say when it half-opens).
    opened_at: Option<NaiveDateTime>,
    bucket: Option<TokenBucket>,
    backlog: bool,
    next_wake: Option<NaiveDateTime>,
    refilling: bool,
    /// A refill was asked for while one was running: what it read may predate the
    /// reason for asking, so another runs when it ends.
    refill_again: bool,
    wake_scheduled: bool,
    reload_on_start: bool,
    /// Set on shutdown: no new attempt starts; `drained` is answered once the
    /// attempts in flight have their outcome committed.
    draining: bool,
    drained: Vec<tokio::sync::oneshot::Sender<()>>,
    /// The circuit as last committed (state, consecutive failures). An attempt that
    /// leaves it unchanged (the common case: closed, 0 failures) skips that UPDATE,
    /// which matters because diesel re-prepares every UPDATE statement.
    saved_circuit: Option<(CircuitState, i32)>,
    /// Failed reads of due deliveries and failed records of attempts, in a row. While
    /// they fail (a full disk), refills wait `paused_until`: a delivery whose outcome
    /// could not be recorded is read back and sent again, and without a wait that was
    /// a request to the target and an error line every poll tick.
    store_retry: Backoff,
    paused_until: Option<Instant>,
}

impl SubscriptionActor {
    pub fn new(
        row: &SubscriptionRow,
        spec: Arc<Spec>,
        store: Store,
        index: Arc<SubscriptionIndex>,
        settings: DeliverySettings,
        shared: Arc<SubscriptionShared>,
    ) -> Self {
        let opened_ago = row
            .circuit_opened_at
            .map(|t| (now() - t).to_std().unwrap_or_default());
        report_signing(&spec);
        let breaker = Breaker::new(spec.failure_threshold, spec.cooldown).restore(
            row.circuit_state,
            opened_ago,
            row.consecutive_failures.max(0) as u32,
            Instant::now(),
        );
        let closed = breaker.circuit() == CircuitState::Closed;
        shared.circuit_open.store(!closed, Ordering::Relaxed);
        let restored = (breaker.circuit(), breaker.consecutive_failures as i32);
        // What the breaker restored differs from the row (an open circuit past its
        // cooldown, say): saved again.
        let saved_circuit = (row.circuit_state == restored.0
            && row.consecutive_failures == restored.1)
            .then_some(restored);
        let opened_at = (!closed).then(|| row.circuit_opened_at.unwrap_or_else(now));
        SubscriptionActor {
            saved_circuit,
            opened_at,
            bucket: rate_bucket(&spec),
            spec,
            store,
            index,
            settings,
            shared,
            fresh: VecDeque::new(),
            retries: VecDeque::new(),
            known: HashSet::new(),
            sending: HashSet::new(),
            done_since_refill: HashSet::new(),
            settled: 0,
            gone: false,
            in_flight: 0,
            retries_in_flight: 0,
            recording: 0,
            breaker,
            backlog: true,
            next_wake: None,
            refilling: false,
            refill_again: false,
            wake_scheduled: false,
            reload_on_start: false,
            draining: false,
            drained: Vec::new(),
            store_retry: Backoff::new(STORE_RETRY_BASE, STORE_RETRY_CAP),
            paused_until: None,
        }
    }

    /// Records a failed read or write of the outbox; logs only when failures begin and
    /// when the wait reaches its cap.
    fn store_failed(&mut self, what: &str, e: &crate::store::StoreError) {
        let (wait, change) = self.store_retry.fail();
        self.paused_until = Some(Instant::now() + wait);
        let id = self.spec.id;
        match change {
            Change::Started => tracing::error!(
                subscription_id = id.0,
                error = %e,
                retry_in_ms = wait.as_millis() as u64,
                "{what} failed; deliveries wait, longer while the failures go on"
            ),
            Change::Capped => tracing::error!(
                subscription_id = id.0,
                error = %e,
                failures = self.store_retry.failures(),
                "{what} still fails; retrying every {} s, and not logging each failure until it succeeds",
                wait.as_secs()
            ),
            Change::Same => {
                tracing::debug!(subscription_id = id.0, error = %e, "{what} failed again")
            }
        }
    }

    fn store_ok(&mut self) {
        self.paused_until = None;
        if let Some(failures) = self.store_retry.succeed() {
            tracing::info!(
                subscription_id = self.spec.id.0,
                failures,
                "the outbox is read and written again after {failures} failures"
            );
        }
    }

    fn window_len(&self) -> usize {
        self.fresh.len() + self.retries.len()
    }

    fn answer_drained(&mut self) {
        if self.draining && self.in_flight == 0 && self.recording == 0 {
            for done in self.drained.drain(..) {
                let _ = done.send(());
            }
        }
    }

    fn publish(&self) {
        self.shared
            .in_flight
            .store(self.in_flight, Ordering::Relaxed);
        self.shared
            .queued
            .store(self.window_len(), Ordering::Relaxed);
        self.shared.circuit_open.store(
            self.breaker.circuit() != CircuitState::Closed,
            Ordering::Relaxed,
        );
    }

    fn admit(&mut self, item: Item) -> bool {
        if self.known.contains(&item.delivery.id)
            || self.done_since_refill.contains(&item.delivery.id)
        {
            return true;
        }
        if self.window_len() >= self.settings.window {
            return false;
        }
        self.known.insert(item.delivery.id);
        if item.delivery.attempts > 0 && !self.spec.ordered {
            self.retries.push_back(item);
        } else {
            self.fresh.push_back(item);
        }
        true
    }

    fn refill(&mut self, ctx: &mut Context<Self>) {
        if self.refilling {
            self.refill_again = true;
            return;
        }
        if self.window_len() >= self.settings.window {
            return;
        }
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            self.backlog = true;
            return;
        }
        self.refilling = true;
        // This read covers everything committed so far; what arrives during it sets
        // the flag again.
        self.backlog = false;
        self.done_since_refill.clear();
        let (id, ordered) = (self.spec.id, self.spec.ordered);
        let limit = self.settings.window as i64;
        let at = now();
        let settled = self.settled;
        let held = self.held();
        let claim = self.settings.claims.as_ref().map(|n| {
            (
                n.id().to_string(),
                n.settings.claim_lease(self.spec.timeout),
            )
        });
        let read = self.store.read(move |c| {
            let claimed = match &claim {
                Some((node, lease)) => {
                    crate::store::claims::claim_due(c, id, at, ordered, limit, node, *lease)?
                }
                None => crate::store::claims::unclaimed_due(c, id, at, ordered, limit, &held)?,
            };
            let next = deliveries::next_due_after(c, id, at)?;
            Ok((claimed, next))
        });
        ctx.spawn(read.into_actor(self).map(move |res, act, ctx| {
            act.refilling = false;
            if std::mem::take(&mut act.refill_again) {
                act.backlog = true;
                ctx.run_later(Duration::ZERO, |act, ctx| act.refill(ctx));
            }
            match res {
                Ok(_) if act.spec.ordered && act.settled != settled => {
                    // Stale: read again (the queue kept what it had, in order).
                    act.backlog = true;
                    ctx.run_later(Duration::ZERO, |act, ctx| act.refill(ctx));
                }
                Ok((crate::store::claims::Claimed { rows, more }, next)) => {
                    act.store_ok();
                    act.backlog |= more;
                    act.next_wake = next;
                    if act.spec.ordered {
                        // The order comes from the database: rebuild the queue from it,
                        // keeping only what is being sent.
                        act.fresh.clear();
                        act.known = act.sending.clone();
                    }
                    for (d, e) in rows {
                        let item = Item {
                            delivery: d,
                            event: Arc::new(e),
                        };
                        if !act.admit(item) {
                            act.backlog = true;
                            break;
                        }
                    }
                    act.pump(ctx);
                }
                Err(e) => {
                    act.backlog = true;
                    act.store_failed("reading due deliveries", &e);
                }
            }
        }));
    }

    /// What a refill need not read the events of: what this sender holds now. A row it
    /// still holds when the read comes back is skipped by `admit` either way, and one
    /// settled meanwhile is in `done_since_refill`. Only without claims and order: a
    /// claiming or ordered refill works from every row it reads.
    fn held(&self) -> HashSet<DeliveryId> {
        if self.settings.claims.is_none() && !self.spec.ordered {
            self.known.clone()
        } else {
            HashSet::new()
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.shared.lagging.swap(false, Ordering::AcqRel) {
            self.backlog = true;
        }
        let due = self.next_wake.is_some_and(|t| t <= now());
        if self.backlog || due {
            self.refill(ctx);
        }
        self.pump(ctx);
    }

    fn wake_in(&mut self, d: Duration, ctx: &mut Context<Self>) {
        if self.wake_scheduled {
            return;
        }
        self.wake_scheduled = true;
        ctx.run_later(d, |act, ctx| {
            act.wake_scheduled = false;
            act.pump(ctx);
        });
    }

    /// Sends what may be sent now.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        loop {
            // Secrets that do not open hold the deliveries (never unsigned, never dead):
            // they go once the operator restores the key or sets a new secret.
            if !self.spec.active
                || self.spec.paused
                || self.spec.secrets.is_err()
                || self.gone
                || self.draining
            {
                break;
            }
            let limit = if self.spec.ordered {
                1
            } else {
                self.spec.max_in_flight
            };
            if self.in_flight >= limit {
                break;
            }
            // Retries get at most half the slots while first attempts wait.
            let retry_cap = (limit / 2).max(1);
            let take_retry = !self.retries.is_empty()
                && (self.fresh.is_empty() || self.retries_in_flight < retry_cap);
            let head_due = if take_retry {
                true
            } else {
                match self.fresh.front() {
                    None => break,
                    Some(i) => i.delivery.next_attempt_at <= now(),
                }
            };
            if !head_due {
                // Only an ordered queue holds a not-yet-due head.
                if let Some(i) = self.fresh.front() {
                    let wait = (i.delivery.next_attempt_at - now())
                        .to_std()
                        .unwrap_or_default();
                    self.wake_in(wait, ctx);
                }
                break;
            }
            let t = Instant::now();
            if let Some(bucket) = self.bucket.as_mut()
                && let Err(wait) = bucket.take(t)
            {
                // Up to the next millisecond and one more, so the wake finds the token.
                let ms = wait.as_micros().div_ceil(1000) as u64 + 1;
                self.wake_in(Duration::from_millis(ms), ctx);
                break;
            }
            if !self.breaker.try_acquire(t) {
                if let Some(at) = self.breaker.opens_at() {
                    self.wake_in(at.saturating_duration_since(t), ctx);
                }
                break;
            }
            let item = if take_retry {
                self.retries.pop_front()
            } else {
                self.fresh.pop_front()
            };
            let Some(item) = item else { break };
            self.sending.insert(item.delivery.id);
            self.in_flight += 1;
            if take_retry {
                self.retries_in_flight += 1;
            }
            self.send(item, take_retry, ctx);
        }
        self.publish();
    }

    /// Renews this node's claims on what the window holds and what is being sent, so
    /// they outlive the attempts (a claim that is not renewed returns its delivery to
    /// the pool when its lease ends).
    fn renew_claims(&mut self, ctx: &mut Context<Self>) {
        let Some(node) = self.settings.claims.clone() else {
            return;
        };
        let ids: Vec<DeliveryId> = self.known.iter().copied().collect();
        if ids.is_empty() {
            return;
        }
        let lease = node.settings.claim_lease(self.spec.timeout);
        let id = self.spec.id;
        let renew = self
            .store
            .read(move |c| crate::store::claims::renew(c, node.id(), &ids, lease));
        ctx.spawn(renew.into_actor(self).map(move |res, _, _| {
            if let Err(e) = res {
                tracing::warn!(subscription_id = id.0, error = %e, "renewing delivery claims failed; they are renewed at the next heartbeat");
            }
        }));
    }

    fn free_slot(&mut self, is_retry: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if is_retry {
            self.retries_in_flight = self.retries_in_flight.saturating_sub(1);
        }
    }
}

impl Actor for SubscriptionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(256);
        if self.reload_on_start {
            self.reload_on_start = false;
            let id = self.spec.id;
            let read = self.store.read(move |c| subscriptions::find(c, id));
            ctx.wait(read.into_actor(self).map(|res, act, ctx| match res {
                Ok(Some(row)) => match Spec::from_row(&row, act.store.keys()) {
                    Ok(s) => {
                        report_signing(&s);
                        act.spec = Arc::new(s)
                    }
                    Err(e) => tracing::error!(subscription_id = row.id.0, error = %e, "subscription is invalid"),
                },
                Ok(None) => ctx.stop(),
                Err(e) => tracing::error!(error = %e, "reloading a subscription failed"),
            }));
        }
        self.backlog = true;
        let every = self.settings.poll_interval;
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
        if let Some(node) = &self.settings.claims {
            ctx.run_interval(node.settings.heartbeat, |act, ctx| act.renew_claims(ctx));
        }
        self.refill(ctx);
    }
}

impl Supervised for SubscriptionActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.fresh.clear();
        self.retries.clear();
        self.known.clear();
        self.sending.clear();
        self.in_flight = 0;
        self.retries_in_flight = 0;
        self.recording = 0;
        // The futures that would have cleared these died with the old context.
        self.refilling = false;
        self.refill_again = false;
        self.wake_scheduled = false;
        self.reload_on_start = true;
        self.answer_drained();
    }
}

/// The subscription's `rate_limit`: `n` sends per period (at least one).
fn rate_bucket(spec: &Spec) -> Option<TokenBucket> {
    spec.rate
        .map(|(n, p)| TokenBucket::new(n.max(1), p, Instant::now()))
}

/// Says once, when a subscription is (re)loaded, that it cannot sign and so holds its
/// deliveries.
fn report_signing(spec: &Spec) {
    if let Some(e) = spec.signing_error() {
        tracing::error!(subscription_id = spec.id.0, error = %e, "webhook cannot sign; its deliveries are held, never sent unsigned");
    }
}
