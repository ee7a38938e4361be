//! One attempt, step by step: build the request (signed webhook or a post agent's
//! stored request), call the target, decide what the outcome means (`decide`, pure),
//! apply it to the circuit, and hand the record to the Writer; then the bookkeeping
//! once the outcome is committed.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use chrono::NaiveDateTime;
use futures_util::future::Either;
use serde_json::Value;

use super::{Item, SubscriptionActor};
use crate::delivery::breaker::{CircuitState, Transition};
use crate::delivery::client::Sent;
use crate::delivery::decide::{CircuitEffect, Decision, Outcome, Prior, decide};
use crate::delivery::envelope::envelope;
use crate::delivery::record::{self, AttemptRecord, SavedCircuit};
use crate::delivery::request::{self, Request, masked};
use crate::delivery::signals;
use crate::delivery::spec::Spec;
use crate::store::deliveries::{AttemptResult, DeliveryRow, DeliveryStatus};
use crate::store::delivery_attempts::{NewAttempt, cut};
use crate::store::{Conn, Emitted, StoreError, now};
use crate::telemetry::{self, stats::DeliveryOutcome};

/// What one attempt sent and saw.
pub(super) struct Attempted {
    item: Item,
    is_retry: bool,
    request: Request,
    sent: Sent,
    /// A post agent's note asking for the response as an event.
    emit: Option<Value>,
}

impl SubscriptionActor {
    /// Builds the request and calls the target, off the mailbox.
    pub(super) fn send(&mut self, item: Item, is_retry: bool, ctx: &mut Context<Self>) {
        let (built, emit) = match item.delivery.request.as_deref() {
            Some(stored) => match request::prepared(self.open_request(stored)) {
                Ok((req, emit)) => (Ok(req), emit),
                Err(unbuilt) => (Err(unbuilt), None),
            },
            None => {
                let d = &item.delivery;
                let env = envelope(&item.event, self.spec.id, &d.message_id);
                let at = chrono::Utc::now();
                let built =
                    request::signed(&self.spec, &d.message_id, &item.event.event_type, &env, at);
                (built, None)
            }
        };
        let call = request::call(
            built,
            self.spec.timeout,
            self.settings.allow_private_targets,
        );
        ctx.spawn(call.into_actor(self).map(move |(request, sent), act, ctx| {
            let attempted = Attempted {
                item,
                is_retry,
                request,
                sent,
                emit,
            };
            act.settle(attempted, ctx);
        }));
    }

    /// A queued prepared request as the agent made it (stored sealed; a row queued by
    /// an earlier version is clear text and reads as it is).
    fn open_request(&self, stored: &str) -> Result<String, crate::secrets::SecretError> {
        self.store
            .keys()
            .open(crate::secrets::purpose::DELIVERY_REQUESTS, stored)
    }

    /// Decides what an attempt means and commits it.
    fn settle(&mut self, a: Attempted, ctx: &mut Context<Self>) {
        let at = now();
        let d = &a.item.delivery;
        let prior = Prior {
            attempts: d.attempts,
            failures: d.failures,
        };
        let decision = decide(prior, &self.spec.policy, &Outcome::of(&a.sent), at);
        let (transition, circuit, circuit_changed) =
            self.apply_circuit(decision.circuit, Instant::now());
        let record = AttemptRecord {
            spec: self.spec.clone(),
            delivery_id: d.id,
            event_type: a.item.event.event_type.clone(),
            result: AttemptResult {
                status: decision.status,
                counted_failure: decision.counted_failure,
                next_attempt_at: decision.next_attempt_at,
                response_status: a.sent.status.map(i32::from),
                error: decision.error.clone(),
            },
            attempt: self.attempt_row(&a, &decision, at),
            emit: self.response_event(&a, &decision),
            circuit,
            circuit_changed,
            transition,
            disable: decision.disable,
        };
        // The target has answered, so its request slot is free while the outcome
        // commits: holding the slot through the commit capped one subscription at
        // max_in_flight per commit round trip. An ordered subscription keeps it until
        // the outcome is known, because its next delivery depends on that outcome.
        let slot_freed = !self.spec.ordered;
        if slot_freed {
            self.free_slot(a.is_retry);
        }
        self.recording += 1;
        let (index, keys) = (self.index.clone(), self.store.keys().clone());
        let claimed = self.settings.claims.is_some();
        let write = move |c: &mut Conn, out: &mut Emitted<'_>| {
            if claimed {
                // The outcome ends the claim, in the same transaction.
                crate::store::claims::clear(c, record.delivery_id)?;
            }
            record::record(c, out, &record, &|row| {
                if let Ok(s) = Spec::from_row(row, &keys) {
                    index.upsert(Arc::new(s));
                }
            })
        };
        // The 410 path updates the in-memory subscription index, which a rollback
        // cannot undo, so it must run exactly once; every other outcome only writes
        // rows and may be retried with its batch.
        let writer = self.store.writer();
        let write = if decision.disable {
            self.gone = true;
            Either::Left(writer.write(write))
        } else {
            Either::Right(writer.write_repeatable(write))
        };
        let (item, is_retry, took) = (a.item, a.is_retry, a.sent.duration);
        ctx.spawn(write.into_actor(self).map(move |res, act, ctx| {
            act.committed(item, is_retry, slot_freed, res, took, ctx);
        }));
        if slot_freed {
            self.pump(ctx);
        }
        self.publish();
    }

    /// Tells the breaker; answers the change, the circuit to save and whether it
    /// differs from the one last saved.
    fn apply_circuit(
        &mut self,
        effect: CircuitEffect,
        t: Instant,
    ) -> (Option<Transition>, SavedCircuit, bool) {
        let transition = match effect {
            CircuitEffect::Untouched => {
                self.breaker.release_probe();
                None
            }
            CircuitEffect::Success => self.breaker.on_success(),
            CircuitEffect::Failure => self.breaker.on_failure(t),
        };
        let failures = self.breaker.consecutive_failures as i32;
        if let Some(change) = transition {
            let failures = self.breaker.consecutive_failures;
            signals::circuit(change, self.spec.id, &self.spec.url, failures);
        }
        match transition {
            Some(Transition::Opened) => self.opened_at = Some(now()),
            Some(Transition::Closed) => self.opened_at = None,
            None => {}
        }
        let state = self.breaker.circuit();
        let opened_at = if state == CircuitState::Closed {
            None
        } else {
            Some(*self.opened_at.get_or_insert_with(now))
        };
        let changed = self.saved_circuit != Some((state, failures));
        // Assumed saved from here; a failed commit forgets it (in `committed`).
        self.saved_circuit = Some((state, failures));
        let circuit = SavedCircuit {
            state,
            opened_at,
            consecutive_failures: failures,
        };
        (transition, circuit, changed)
    }

    /// The attempt log row: the request as sent, masked.
    fn attempt_row(&self, a: &Attempted, decision: &Decision, at: NaiveDateTime) -> NewAttempt {
        let d = &a.item.delivery;
        let sent = crate::delivery::request::as_sent(&a.request.headers);
        let mut request_headers = masked(&sent, self.spec.signature_header.as_deref());
        let mut request_body = cut(&String::from_utf8_lossy(&a.request.body));
        if d.request.is_some() {
            // A post agent's request is rendered options: the owner's credential
            // values are masked in the attempt log as everywhere else.
            let creds =
                crate::store::credential_cache::UserCredentials::of(&self.store, self.spec.user_id);
            request_headers = creds.redact_all(&request_headers);
            request_body = creds.redact_all(&request_body);
        }
        NewAttempt {
            delivery_id: d.id,
            subscription_id: self.spec.id,
            attempt_number: d.attempts + 1,
            started_at: at - chrono::Duration::from_std(a.sent.duration).unwrap_or_default(),
            duration_ms: a.sent.duration.as_millis() as i64,
            request_headers,
            request_body,
            response_status: a.sent.status.map(i32::from),
            response_excerpt: a.sent.excerpt.clone(),
            error: decision.error.clone(),
        }
    }

    /// A post agent with emit_events emits the response once the request is final.
    fn response_event(
        &self,
        a: &Attempted,
        decision: &Decision,
    ) -> Option<crate::store::events::NewEvent> {
        let is_final = matches!(
            decision.status,
            DeliveryStatus::Delivered | DeliveryStatus::Dead
        );
        let emit = a.emit.as_ref()?;
        if a.sent.status.is_none() || !is_final {
            return None;
        }
        self.settings.on_response.event(emit, &a.sent)
    }

    /// The outcome is committed (or could not be): counts, signals and the window.
    fn committed(
        &mut self,
        item: Item,
        is_retry: bool,
        slot_freed: bool,
        res: Result<DeliveryRow, StoreError>,
        took: std::time::Duration,
        ctx: &mut Context<Self>,
    ) {
        if !slot_freed {
            self.free_slot(is_retry);
        }
        self.recording = self.recording.saturating_sub(1);
        let id = item.delivery.id;
        self.sending.remove(&id);
        self.settled += 1;
        let outcome = res.as_ref().ok().map(|row| self.outcome(row, &item, took));
        telemetry::delivery_settled(&self.settings.stats, outcome);
        match res {
            Ok(row) => {
                self.store_ok();
                self.signal_dead(&row);
                self.requeue_or_forget(row, item);
            }
            Err(e) => {
                // Not recorded: the delivery is still due in the database and will be
                // read back (at-least-once, same message id).
                self.store_failed("recording a delivery attempt", &e);
                self.saved_circuit = None;
                self.known.remove(&id);
                self.backlog = true;
            }
        }
        self.pump(ctx);
        // A backlog waits in the database: top the window up now rather than at the
        // next poll tick, or one subscription is capped at window / poll_interval
        // deliveries per second (measured: 256 per 100 ms).
        if self.backlog && !self.refilling && self.window_len() <= self.settings.window / 2 {
            self.refill(ctx);
        }
        self.answer_drained();
    }

    /// The dead-letter signal for a committed outcome.
    fn signal_dead(&self, row: &DeliveryRow) {
        if row.status == DeliveryStatus::Dead {
            signals::dead(&signals::Dead {
                subscription_id: self.spec.id,
                delivery_id: row.id,
                event_id: row.event_id.0,
                url: &self.spec.url,
                attempts: row.attempts,
                last_status: row.last_status,
                error: row.last_error.as_deref(),
            });
        }
    }

    /// A committed outcome as the metrics and the console's statistics count it.
    fn outcome(
        &self,
        row: &DeliveryRow,
        item: &Item,
        took: std::time::Duration,
    ) -> DeliveryOutcome {
        DeliveryOutcome {
            delivery_id: row.id,
            webhook_id: self.spec.id,
            user_id: self.spec.user_id,
            event_id: row.event_id,
            event_type: item.event.event_type.clone(),
            status: row.status.as_str().to_string(),
            attempts: row.attempts,
            response_status: row.last_status,
            error: row.last_error.clone(),
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// A retry goes back to the head of an ordered queue, or waits in the database
    /// for its time; anything final leaves the window for good.
    fn requeue_or_forget(&mut self, row: DeliveryRow, item: Item) {
        let id = row.id;
        if row.status == DeliveryStatus::Retrying {
            if self.spec.ordered {
                // The head stays the head; it waits for its time.
                self.fresh.push_front(Item {
                    delivery: row,
                    event: item.event,
                });
                return;
            }
            self.next_wake = Some(
                self.next_wake
                    .map_or(row.next_attempt_at, |w| w.min(row.next_attempt_at)),
            );
        }
        self.known.remove(&id);
        self.done_since_refill.insert(id);
    }
}
