//! `SubscriptionActor`: one per outgoing webhook. It keeps a bounded window of due
//! deliveries in memory (two lanes, first attempts and retries, so retries never starve
//! new work), sends them with at most `max_in_flight` at once through the rate limiter
//! and the circuit breaker, and commits each attempt's outcome through the Writer.
//!
//! The database is the truth: deliveries are read back from it after a restart, when
//! the window overflowed, and when retries fall due. A delivery stays "known" to the
//! actor until its outcome is committed, so a read racing a send never sends it twice.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::NaiveDateTime;
use futures_util::future::Either;
use serde_json::json;

use super::breaker::{Breaker, Transition};
use super::client::{Sent, post, send};
use super::envelope::envelope;
use super::index::SubscriptionIndex;
use super::policy::{Verdict, classify};
use super::prepared::{EmitResponse, PreparedRequest};
use super::signals;
use super::signer;
use super::spec::Spec;
use crate::event_types::{
    CIRCUIT_CLOSED, CIRCUIT_OPENED, DELIVERY_DEAD, SUBSCRIPTION_DISABLED, TEST_WEBHOOK,
};
use crate::ops::backoff::{Backoff, Change};
use crate::ops::metrics::{self, DeliveryOutcome as Outcome};
use crate::store::deliveries::{self, AttemptResult, DEAD, DELIVERED, DeliveryRow, RETRYING};
use crate::store::delivery_attempts::{self, NewAttempt, cut};
use crate::store::events::{EventRow, NewEvent};
use crate::store::subscriptions::{self, SubscriptionRow};
use crate::store::system_events;
use crate::store::{Conn, Emitted, Store, now};
use crate::telemetry::stats::{DeliveryOutcome, Stats};

mod reset;
pub use reset::ResetCircuit;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub allow_private_targets: bool,
    pub poll_interval: Duration,
    pub window: usize,
    /// Where committed outcomes are counted and streamed.
    pub stats: Arc<Stats>,
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

struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_ms: f64,
    last: Instant,
}

/// Throttled answers (429/5xx with `Retry-After`) a delivery may get without spending a
/// retry; past this they count like any failure.
pub const MAX_FREE_THROTTLED_ATTEMPTS: i32 = 20;

impl TokenBucket {
    fn new(n: u32, period: Duration) -> TokenBucket {
        let capacity = f64::from(n.max(1));
        TokenBucket {
            capacity,
            tokens: capacity,
            per_ms: capacity / (period.as_millis().max(1) as f64),
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_millis() as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_millis(
                ((1.0 - self.tokens) / self.per_ms).ceil() as u64 + 1,
            ))
        }
    }
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
    known: HashSet<i64>,
    /// Ids being sent or whose outcome is being committed.
    sending: HashSet<i64>,
    /// Ids whose outcome committed since the last refill began: a refill that read them
    /// before that commit must not bring them back.
    done_since_refill: HashSet<i64>,
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
    saved_circuit: Option<(&'static str, i32)>,
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
            &row.circuit_state,
            opened_ago,
            row.consecutive_failures.max(0) as u32,
            Instant::now(),
        );
        shared
            .circuit_open
            .store(breaker.name() != "closed", Ordering::Relaxed);
        let restored = (breaker.name(), breaker.consecutive_failures as i32);
        let saved_circuit = (row.circuit_state == restored.0
            && row.consecutive_failures == restored.1)
            .then_some(restored);
        let opened_at =
            (breaker.name() != "closed").then(|| row.circuit_opened_at.unwrap_or_else(now));
        SubscriptionActor {
            saved_circuit,
            opened_at,
            bucket: spec.rate.map(|(n, p)| TokenBucket::new(n, p)),
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
                subscription_id = id,
                error = %e,
                retry_in_ms = wait.as_millis() as u64,
                "{what} failed; deliveries wait, longer while the failures go on"
            ),
            Change::Capped => tracing::error!(
                subscription_id = id,
                error = %e,
                failures = self.store_retry.failures(),
                "{what} still fails; retrying every {} s, and not logging each failure until it succeeds",
                wait.as_secs()
            ),
            Change::Same => {
                tracing::debug!(subscription_id = id, error = %e, "{what} failed again")
            }
        }
    }

    fn store_ok(&mut self) {
        self.paused_until = None;
        if let Some(failures) = self.store_retry.succeed() {
            tracing::info!(
                subscription_id = self.spec.id,
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
        self.shared
            .circuit_open
            .store(self.breaker.name() != "closed", Ordering::Relaxed);
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
        let read = self.store.read(move |c| {
            let rows = deliveries::due(c, id, at, ordered, limit)?;
            let next = deliveries::next_due_after(c, id, at)?;
            Ok((rows, next))
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
                Ok((rows, next)) => {
                    act.store_ok();
                    act.backlog |= rows.len() as i64 >= limit;
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
                self.wake_in(wait, ctx);
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

    fn send(&mut self, item: Item, is_retry: bool, ctx: &mut Context<Self>) {
        if let Some(stored) = item.delivery.request.clone() {
            let text = self.open_request(&stored);
            return self.send_prepared(item, text, is_retry, ctx);
        }
        let spec = self.spec.clone();
        let allow_private = self.settings.allow_private_targets;
        let env = envelope(&item.event, spec.id, &item.delivery.message_id);
        let body = spec.body(&env);
        let attempt_at = chrono::Utc::now();
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("X-Webhook-Event".to_string(), item.event.event_type.clone()),
            ("X-Webhook-ID".to_string(), spec.id.to_string()),
            (
                "X-Webhook-Message-ID".to_string(),
                item.delivery.message_id.clone(),
            ),
            (
                "X-Webhook-Timestamp".to_string(),
                attempt_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        ];
        headers.extend(spec.headers.iter().cloned());
        let message_id = item.delivery.message_id.clone();
        let fut = async move {
            let body = match body {
                Ok(b) => b,
                Err(e) => {
                    return (
                        Vec::new(),
                        headers,
                        Sent {
                            status: None,
                            headers: Vec::new(),
                            retry_after: None,
                            excerpt: None,
                            error: Some(format!("payload_template failed: {e}")),
                            duration: Duration::ZERO,
                        },
                        true,
                    );
                }
            };
            let secrets = match spec.valid_secrets(attempt_at.naive_utc()) {
                Ok(s) => s,
                // Unreachable while `pump` holds such a subscription; kept so that no
                // path can send unsigned.
                Err(e) => {
                    let sent = Sent {
                        status: None,
                        headers: Vec::new(),
                        retry_after: None,
                        excerpt: None,
                        error: Some(e),
                        duration: Duration::ZERO,
                    };
                    return (Vec::new(), headers, sent, true);
                }
            };
            headers.extend(signer::headers(
                spec.scheme,
                spec.signature_header.as_deref(),
                &secrets,
                &message_id,
                attempt_at.timestamp(),
                &body,
            ));
            let sent = post(
                &spec.url,
                &headers,
                body.clone(),
                spec.timeout,
                allow_private,
            )
            .await;
            (body, headers, sent, false)
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |(body, headers, sent, broken), act, ctx| {
                    act.settle(item, is_retry, body, headers, sent, broken, ctx);
                }),
        );
    }

    /// Sends a request an agent prepared (a post agent's): its own method, URL, headers
    /// and body; no envelope, no signature.
    fn send_prepared(
        &mut self,
        item: Item,
        text: Result<String, String>,
        is_retry: bool,
        ctx: &mut Context<Self>,
    ) {
        let prepared: Result<PreparedRequest, String> =
            text.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
        let timeout = self.spec.timeout;
        let allow_private = self.settings.allow_private_targets;
        let fut = async move {
            match prepared {
                Ok(req) => {
                    let body = req.body.clone().into_bytes();
                    let sent = send(
                        &req.method,
                        &req.url,
                        &req.headers,
                        body.clone(),
                        timeout,
                        allow_private,
                    )
                    .await;
                    (body, req.headers, sent, false)
                }
                Err(e) => (
                    Vec::new(),
                    Vec::new(),
                    Sent {
                        status: None,
                        headers: Vec::new(),
                        retry_after: None,
                        excerpt: None,
                        error: Some(format!("the stored request is unreadable: {e}")),
                        duration: Duration::ZERO,
                    },
                    true,
                ),
            }
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |(body, headers, sent, broken), act, ctx| {
                    act.settle(item, is_retry, body, headers, sent, broken, ctx);
                }),
        );
    }

    /// A queued prepared request as the agent made it (stored sealed; a row queued by
    /// an earlier version is clear text and reads as it is).
    fn open_request(&self, stored: &str) -> Result<String, String> {
        self.store
            .keys()
            .open(crate::secrets::purpose::DELIVERY_REQUESTS, stored)
            .map_err(|e| e.to_string())
    }

    /// Decides what an attempt means and commits it.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        item: Item,
        is_retry: bool,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
        sent: Sent,
        broken: bool,
        ctx: &mut Context<Self>,
    ) {
        let at = now();
        let t = Instant::now();
        let verdict = if broken
            || sent
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("refused:"))
        {
            // Our side is wrong (template, blocked target): retrying cannot help.
            Verdict::Final
        } else {
            classify(sent.status, sent.retry_after)
        };
        let d = &item.delivery;
        let delivery_id = d.id;
        let (status, next_at, counted) = match &verdict {
            Verdict::Delivered => (DELIVERED, at, false),
            Verdict::Final | Verdict::Gone => (DEAD, at, true),
            // A throttled answer (with Retry-After) waits as asked without spending a
            // retry, but only so many times: a target that always throttles must still
            // end in the dead-letter queue.
            Verdict::Retry {
                retry_after: Some(wait),
            } if d.attempts - d.failures < MAX_FREE_THROTTLED_ATTEMPTS => {
                let wait = self.spec.policy.cap_retry_after(*wait);
                (
                    RETRYING,
                    at + chrono::Duration::from_std(wait).unwrap_or_default(),
                    false,
                )
            }
            Verdict::Retry { retry_after } => {
                match self.spec.policy.delay(d.failures.max(0) as u32 + 1) {
                    Some(backoff) => {
                        let wait =
                            retry_after.map_or(backoff, |w| self.spec.policy.cap_retry_after(w));
                        (
                            RETRYING,
                            at + chrono::Duration::from_std(wait).unwrap_or_default(),
                            true,
                        )
                    }
                    None => (DEAD, at, true),
                }
            }
        };
        let transition = if broken {
            self.breaker.release_probe();
            None
        } else if verdict == Verdict::Delivered {
            self.breaker.on_success()
        } else {
            self.breaker.on_failure(t)
        };
        if let Some(change) = transition {
            signals::circuit(
                change,
                self.spec.id,
                &self.spec.url,
                self.breaker.consecutive_failures,
            );
        }
        let error = sent
            .error
            .clone()
            .or_else(|| match (&verdict, sent.status) {
                (Verdict::Delivered, _) => None,
                (_, Some(s)) => Some(format!("target answered {s}")),
                _ => None,
            });
        let result = AttemptResult {
            status,
            counted_failure: counted,
            next_attempt_at: next_at,
            response_status: sent.status.map(i32::from),
            error: error.clone(),
        };
        let mut request_headers = masked(&headers, self.spec.signature_header.as_deref());
        let mut request_body = cut(&String::from_utf8_lossy(&body));
        if d.request.is_some() {
            // A post agent's request is rendered options: the owner's credential
            // values are masked in the attempt log as everywhere else.
            let creds =
                crate::store::credential_cache::UserCredentials::of(&self.store, self.spec.user_id);
            request_headers = creds.redact_all(&request_headers);
            request_body = creds.redact_all(&request_body);
        }
        let attempt = NewAttempt {
            delivery_id: d.id,
            subscription_id: self.spec.id,
            attempt_number: d.attempts + 1,
            started_at: at - chrono::Duration::from_std(sent.duration).unwrap_or_default(),
            duration_ms: sent.duration.as_millis() as i64,
            request_headers,
            request_body,
            response_status: sent.status.map(i32::from),
            response_excerpt: sent.excerpt.clone(),
            error: error.clone(),
        };
        let spec = self.spec.clone();
        let index = self.index.clone();
        let keys = self.store.keys().clone();
        let gone = verdict == Verdict::Gone;
        let circuit = (
            self.breaker.name(),
            self.breaker.consecutive_failures as i32,
        );
        match transition {
            Some(Transition::Opened) => self.opened_at = Some(now()),
            Some(Transition::Closed) => self.opened_at = None,
            None => {}
        }
        let opened_at = if circuit.0 == "closed" {
            None
        } else {
            Some(*self.opened_at.get_or_insert_with(now))
        };
        let circuit_changed = self.saved_circuit != Some(circuit);
        // Assumed saved from here; a failed commit forgets it (below).
        self.saved_circuit = Some(circuit);
        let event_type = item.event.event_type.clone();
        // A post agent with emit_events emits the response once the request is final.
        let emit = item
            .delivery
            .request
            .as_deref()
            .and_then(|t| self.open_request(t).ok())
            .and_then(|t| serde_json::from_str::<PreparedRequest>(&t).ok())
            .and_then(|r| r.emit)
            .filter(|_| sent.status.is_some() && (status == DELIVERED || status == DEAD))
            .map(|e| response_event(&e, &sent));
        // The target has answered, so its request slot is free while the outcome
        // commits: holding the slot through the commit capped one subscription at
        // max_in_flight per commit round trip. An ordered subscription keeps it until
        // the outcome is known, because its next delivery depends on that outcome.
        let slot_freed = !self.spec.ordered;
        if slot_freed {
            self.free_slot(is_retry);
        }
        self.recording += 1;
        let record = move |c: &mut Conn, out: &mut Emitted<'_>| {
            let row = deliveries::record_result(c, delivery_id, &result)?;
            if let Some(new) = &emit {
                out.insert(c, std::slice::from_ref(new), 0)?;
            }
            delivery_attempts::insert(c, &attempt)?;
            if circuit_changed {
                subscriptions::save_circuit(c, spec.id, circuit.0, opened_at, circuit.1)?;
            }
            if row.status == DEAD {
                system_events::record(
                    c,
                    out,
                    spec.user_id,
                    DELIVERY_DEAD,
                    json!({"webhook_id": spec.id, "delivery_id": row.id, "message_id": row.message_id,
                           "event_id": row.event_id, "event_type": event_type, "attempts": row.attempts,
                           "last_status": row.last_status, "error": row.last_error}),
                )?;
            }
            if gone {
                subscriptions::disable(c, spec.id, "the target answered 410 Gone")?;
                if let Some(updated) = subscriptions::find(c, spec.id)?
                    && let Ok(s) = Spec::from_row(&updated, &keys)
                {
                    index.upsert(Arc::new(s));
                }
                system_events::record(
                    c,
                    out,
                    spec.user_id,
                    SUBSCRIPTION_DISABLED,
                    json!({"webhook_id": spec.id, "url": spec.url, "reason": "the target answered 410 Gone"}),
                )?;
            }
            match transition {
                Some(Transition::Opened) => system_events::record(
                    c,
                    out,
                    spec.user_id,
                    CIRCUIT_OPENED,
                    json!({"webhook_id": spec.id, "url": spec.url, "consecutive_failures": circuit.1}),
                )?,
                Some(Transition::Closed) => system_events::record(
                    c,
                    out,
                    spec.user_id,
                    CIRCUIT_CLOSED,
                    json!({"webhook_id": spec.id, "url": spec.url}),
                )?,
                None => {}
            }
            Ok(row)
        };
        // The 410 path updates the in-memory subscription index, which a rollback
        // cannot undo, so it must run exactly once; every other outcome only writes
        // rows and may be retried with its batch.
        let writer = self.store.writer();
        let write = if gone {
            Either::Left(writer.write(record))
        } else {
            Either::Right(writer.write_repeatable(record))
        };
        if gone {
            self.gone = true;
        }
        ctx.spawn(write.into_actor(self).map(move |res, act, ctx| {
            if !slot_freed {
                act.free_slot(is_retry);
            }
            act.recording = act.recording.saturating_sub(1);
            let id = item.delivery.id;
            act.sending.remove(&id);
            act.settled += 1;
            metrics::delivery(match &res {
                Ok(row) if row.status == DELIVERED => Outcome::Delivered,
                Ok(row) if row.status == DEAD => Outcome::Dead,
                Ok(_) => Outcome::Retrying,
                Err(_) => Outcome::Unrecorded,
            });
            match res {
                Ok(row) => {
                    act.store_ok();
                    if row.status == DEAD {
                        signals::dead(&signals::Dead {
                            subscription_id: act.spec.id,
                            delivery_id: row.id,
                            event_id: row.event_id,
                            url: &act.spec.url,
                            attempts: row.attempts,
                            last_status: row.last_status,
                            error: row.last_error.as_deref(),
                        });
                    }
                    act.settings.stats.record_delivery(DeliveryOutcome {
                        delivery_id: row.id,
                        webhook_id: act.spec.id,
                        user_id: act.spec.user_id,
                        event_id: row.event_id,
                        event_type: item.event.event_type.clone(),
                        status: row.status.clone(),
                        attempts: row.attempts,
                        response_status: row.last_status,
                        error: row.last_error.clone(),
                    });
                    if row.status == RETRYING {
                        if act.spec.ordered {
                            // The head stays the head; it waits for its time.
                            act.fresh.push_front(Item {
                                delivery: row,
                                event: item.event,
                            });
                        } else {
                            act.known.remove(&id);
                            act.done_since_refill.insert(id);
                            act.next_wake = Some(
                                act.next_wake
                                    .map_or(row.next_attempt_at, |w| w.min(row.next_attempt_at)),
                            );
                        }
                    } else {
                        act.known.remove(&id);
                        act.done_since_refill.insert(id);
                    }
                }
                Err(e) => {
                    // Not recorded: the delivery is still due in the database and will be
                    // read back (at-least-once, same message id).
                    act.store_failed("recording a delivery attempt", &e);
                    act.saved_circuit = None;
                    act.known.remove(&id);
                    act.backlog = true;
                }
            }
            act.pump(ctx);
            // A backlog waits in the database: top the window up now rather than at the
            // next poll tick, or one subscription is capped at window / poll_interval
            // deliveries per second (measured: 256 per 100 ms).
            if act.backlog && !act.refilling && act.window_len() <= act.settings.window / 2 {
                act.refill(ctx);
            }
            act.answer_drained();
        }));
        if slot_freed {
            self.pump(ctx);
        }
        self.publish();
    }

    fn free_slot(&mut self, is_retry: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if is_retry {
            self.retries_in_flight = self.retries_in_flight.saturating_sub(1);
        }
    }
}

/// Request headers as logged: signatures and anything that looks like a credential
/// are masked.
pub fn masked(headers: &[(String, String)], signature_header: Option<&str>) -> String {
    let secretish = |n: &str| {
        let n = n.to_ascii_lowercase();
        n == "authorization"
            || n == "cookie"
            || n == "webhook-signature"
            || n == signer::DEFAULT_SIGNATURE_HEADER.to_ascii_lowercase()
            || signature_header.is_some_and(|h| h.eq_ignore_ascii_case(&n))
            || n.contains("token")
            || n.contains("secret")
            || n.contains("api-key")
            || n.contains("apikey")
            || n.contains("signature")
    };
    let map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| {
            let v = if secretish(k) {
                "[masked]".to_string()
            } else {
                v.clone()
            };
            (k.clone(), serde_json::Value::String(v))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
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
                    Err(e) => tracing::error!(subscription_id = row.id, error = %e, "subscription is invalid"),
                },
                Ok(None) => ctx.stop(),
                Err(e) => tracing::error!(error = %e, "reloading a subscription failed"),
            }));
        }
        self.backlog = true;
        let every = self.settings.poll_interval;
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
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

/// New deliveries, committed, due now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueue(pub Vec<Item>);

impl Handler<Enqueue> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        // An earlier push was dropped: its deliveries wait in the database, ahead of these.
        if self.shared.lagging.swap(false, Ordering::AcqRel) {
            self.backlog = true;
        }
        for item in msg.0 {
            // With a backlog in the database, newer items must not jump ahead of it.
            if self.backlog || !self.admit(item) {
                self.backlog = true;
            }
        }
        if self.backlog {
            self.refill(ctx);
        }
        self.pump(ctx);
    }
}

/// The subscription changed (options, pause, resume) or deliveries were re-queued.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub SubscriptionRow);

impl Handler<Reconfigure> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, ctx: &mut Context<Self>) {
        // The row may carry circuit columns written elsewhere: save ours again.
        self.saved_circuit = None;
        match Spec::from_row(&msg.0, self.store.keys()) {
            Ok(s) => {
                report_signing(&s);
                self.bucket = s.rate.map(|(n, p)| TokenBucket::new(n, p));
                self.gone = !s.active;
                self.spec = Arc::new(s);
            }
            Err(e) => {
                tracing::error!(subscription_id = msg.0.id, error = %e, "subscription is invalid")
            }
        }
        self.backlog = true;
        self.refill(ctx);
        self.pump(ctx);
    }
}

/// Look in the database again now (after a manual retry or a replay).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

impl Handler<Wake> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.backlog = true;
        self.refill(ctx);
    }
}

/// The hub is shutting down: start no new attempt and answer once every attempt in
/// flight has its outcome committed. What is not sent stays due in the database and
/// is sent after the restart.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for SubscriptionActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        let (done, drained) = tokio::sync::oneshot::channel();
        self.drained.push(done);
        self.answer_drained();
        Box::pin(async move {
            let _ = drained.await;
        })
    }
}

/// The subscription was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for SubscriptionActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// What `POST /api/webhooks/outgoing/{id}/test` answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestOutcome {
    pub success: bool,
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error: Option<String>,
    pub latency_ms: u64,
    pub message_id: String,
}

/// Says once, when a subscription is (re)loaded, that it cannot sign and so holds its
/// deliveries.
fn report_signing(spec: &Spec) {
    if let Some(e) = spec.signing_error() {
        tracing::error!(subscription_id = spec.id, error = %e, "webhook cannot sign; its deliveries are held, never sent unsigned");
    }
}

/// Sends a `test.webhook` event now, outside the queue, breaker and rate limit. Its
/// `data` is the caller's `test_payload` when one was given.
#[derive(Message, Default)]
#[rtype(result = "TestOutcome")]
pub struct SendTest {
    pub data: Option<serde_json::Value>,
}

impl Handler<SendTest> for SubscriptionActor {
    type Result = ResponseFuture<TestOutcome>;

    fn handle(&mut self, msg: SendTest, _: &mut Context<Self>) -> Self::Result {
        let spec = self.spec.clone();
        let data = msg
            .data
            .unwrap_or_else(|| json!({"message": "This is a test webhook from muninn."}));
        let allow_private = self.settings.allow_private_targets;
        Box::pin(async move {
            let message_id = deliveries::new_message_id();
            let at = chrono::Utc::now();
            let env = json!({
                "id": message_id, "event_id": null, "event_type": TEST_WEBHOOK,
                "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "webhook_id": spec.id, "user_id": spec.user_id, "agent_id": null,
                "data": data,
            });
            let body = match spec.body(&env) {
                Ok(b) => b,
                Err(e) => {
                    return TestOutcome {
                        success: false,
                        status: None,
                        body: None,
                        error: Some(e),
                        latency_ms: 0,
                        message_id,
                    };
                }
            };
            let mut headers = vec![
                ("Content-Type".to_string(), "application/json".to_string()),
                ("X-Webhook-Event".to_string(), TEST_WEBHOOK.to_string()),
                ("X-Webhook-ID".to_string(), spec.id.to_string()),
                ("X-Webhook-Message-ID".to_string(), message_id.clone()),
                (
                    "X-Webhook-Timestamp".to_string(),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            ];
            headers.extend(spec.headers.iter().cloned());
            let secrets = match spec.valid_secrets(at.naive_utc()) {
                Ok(s) => s,
                Err(e) => {
                    return TestOutcome {
                        success: false,
                        status: None,
                        body: None,
                        error: Some(e),
                        latency_ms: 0,
                        message_id,
                    };
                }
            };
            headers.extend(signer::headers(
                spec.scheme,
                spec.signature_header.as_deref(),
                &secrets,
                &message_id,
                at.timestamp(),
                &body,
            ));
            let sent = post(&spec.url, &headers, body, spec.timeout, allow_private).await;
            TestOutcome {
                success: sent.status.is_some_and(|s| (200..300).contains(&s)),
                status: sent.status,
                body: sent.excerpt,
                error: sent.error,
                latency_ms: sent.duration.as_millis() as u64,
                message_id,
            }
        })
    }
}

/// The event a post agent emits for a response: `{status, headers, body}`, the body
/// parsed when it is JSON and `parse_body` is on; merged into the incoming payload with
/// `output_mode: merge`.
fn response_event(e: &EmitResponse, sent: &Sent) -> NewEvent {
    let body_text = sent.excerpt.clone().unwrap_or_default();
    let is_json = sent
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.contains("json"));
    let body = if e.parse_body && is_json {
        serde_json::from_str(&body_text).unwrap_or(serde_json::Value::String(body_text))
    } else {
        serde_json::Value::String(body_text)
    };
    let headers: serde_json::Map<String, serde_json::Value> = sent
        .headers
        .iter()
        .map(|(n, v)| {
            (
                crate::net::HeaderStyle::Capitalized.apply(n),
                serde_json::Value::String(v.clone()),
            )
        })
        .collect();
    let mut payload = match &e.merge_into {
        Some(serde_json::Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    payload.insert("status".into(), json!(sent.status));
    payload.insert("headers".into(), serde_json::Value::Object(headers));
    payload.insert("body".into(), body);
    NewEvent {
        user_id: e.user_id,
        agent_id: Some(e.agent_id),
        event_type: e.event_type.clone(),
        payload: NewEvent::payload_text(&serde_json::Value::Object(payload)),
        keep_for_seconds: e.keep_events_for,
    }
}
