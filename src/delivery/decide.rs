//! What one attempt's outcome means for its delivery, as a pure function of the
//! delivery's counts so far, the retry policy, the typed outcome and the time: delivered,
//! retried (when), dead, or dead with the subscription disabled (410), and what it does to
//! the circuit. No clock, no I/O: the actor applies the decision, the store records it.

use std::time::Duration;

use chrono::NaiveDateTime;

use super::client::Sent;
use super::error::SendError;
use super::policy::{RetryPolicy, Verdict, classify};
use crate::store::deliveries::DeliveryStatus;

/// Throttled answers (429/5xx with `Retry-After`) a delivery may get without spending a
/// retry; past this they count like any failure.
pub const MAX_FREE_THROTTLED_ATTEMPTS: i32 = 20;

/// What the delivery row says before this attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prior {
    /// Attempts made so far.
    pub attempts: i32,
    /// Of them, those that spent a retry.
    pub failures: i32,
}

/// One attempt's outcome, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The target answered this status.
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer, or the request could not be made.
    Failed(SendError),
}

impl Outcome {
    pub fn of(sent: &Sent) -> Outcome {
        match (&sent.error, sent.status) {
            (Some(e), _) => Outcome::Failed(e.clone()),
            (None, Some(status)) => Outcome::Answered {
                status,
                retry_after: sent.retry_after,
            },
            // The client always says one or the other; a silent attempt is retried.
            (None, None) => Outcome::Failed(SendError::Request("no answer".into())),
        }
    }
}

/// What the attempt does to the subscription's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitEffect {
    Success,
    Failure,
    /// Nothing reached the target, so the attempt says nothing about it.
    Untouched,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: DeliveryStatus,
    pub next_attempt_at: NaiveDateTime,
    /// The attempt spent one of the policy's retries.
    pub counted_failure: bool,
    /// The target answered 410 Gone: disable the subscription.
    pub disable: bool,
    pub circuit: CircuitEffect,
    /// What the attempt log and the delivery row say went wrong.
    pub error: Option<String>,
}

pub fn decide(
    prior: Prior,
    policy: &RetryPolicy,
    outcome: &Outcome,
    now: NaiveDateTime,
) -> Decision {
    let verdict = match outcome {
        // Our side is wrong (template, secrets, blocked target): retrying cannot help.
        Outcome::Failed(e) if e.is_final() => Verdict::Final,
        Outcome::Failed(_) => classify(None, None),
        Outcome::Answered {
            status,
            retry_after,
        } => classify(Some(*status), *retry_after),
    };
    let after = |wait: Duration| now + chrono::Duration::from_std(wait).unwrap_or_default();
    let (status, next_attempt_at, counted_failure) = match &verdict {
        Verdict::Delivered => (DeliveryStatus::Delivered, now, false),
        Verdict::Final | Verdict::Gone => (DeliveryStatus::Dead, now, true),
        // A throttled answer (with Retry-After) waits as asked without spending a
        // retry, but only so many times: a target that always throttles must still
        // end in the dead-letter queue.
        Verdict::Retry {
            retry_after: Some(wait),
        } if prior.attempts - prior.failures < MAX_FREE_THROTTLED_ATTEMPTS => (
            DeliveryStatus::Retrying,
            after(policy.cap_retry_after(*wait)),
            false,
        ),
        Verdict::Retry { retry_after } => match policy.delay(prior.failures.max(0) as u32 + 1) {
            Some(backoff) => {
                let wait = retry_after.map_or(backoff, |w| policy.cap_retry_after(w));
                (DeliveryStatus::Retrying, after(wait), true)
            }
            None => (DeliveryStatus::Dead, now, true),
        },
    };
    let circuit = match outcome {
        Outcome::Failed(e) if e.is_local() => CircuitEffect::Untouched,
        _ if verdict == Verdict::Delivered => CircuitEffect::Success,
        _ => CircuitEffect::Failure,
    };
    let error = match outcome {
        Outcome::Failed(e) => Some(e.to_string()),
        Outcome::Answered { .. } if verdict == Verdict::Delivered => None,
        Outcome::Answered { status, .. } => Some(SendError::Status(*status).to_string()),
    };
    Decision {
        status,
        next_attempt_at,
        counted_failure,
        disable: verdict == Verdict::Gone,
        circuit,
        error,
    }
}

#[cfg(test)]
mod tests;
