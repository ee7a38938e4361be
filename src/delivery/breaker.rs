//! The circuit breaker of one subscription: after `threshold` consecutive failures it
//! opens for `cooldown` (deliveries wait without spending attempts), then lets one probe
//! through; the probe's success closes it, its failure opens it again.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The circuit as stored (the store owns the column's type).
pub use crate::store::subscriptions::CircuitState;

/// A change worth telling the world about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    Closed,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    pub state: State,
    pub consecutive_failures: u32,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            state: State::Closed,
            consecutive_failures: 0,
            threshold: threshold.max(1),
            cooldown,
        }
    }

    /// Resumes a stored state; an open circuit restarts its cooldown from `opened_ago`.
    pub fn restore(
        mut self,
        state: CircuitState,
        opened_ago: Option<Duration>,
        failures: u32,
        now: Instant,
    ) -> Breaker {
        self.consecutive_failures = failures;
        self.state = match state {
            CircuitState::Open | CircuitState::HalfOpen => {
                let left = self.cooldown.saturating_sub(opened_ago.unwrap_or_default());
                State::Open { until: now + left }
            }
            CircuitState::Closed => State::Closed,
        };
        self
    }

    pub fn circuit(&self) -> CircuitState {
        match self.state {
            State::Closed => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    pub fn name(&self) -> &'static str {
        self.circuit().as_str()
    }

    /// Whether one more request may go now. In half-open state only one probe may be
    /// out at a time.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { probing: true };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: true } => false,
        }
    }

    /// When a request may be allowed again, if the circuit is open.
    pub fn opens_at(&self) -> Option<Instant> {
        match self.state {
            State::Open { until } => Some(until),
            _ => None,
        }
    }

    /// The probe never reached the target (its payload could not be built): it tells
    /// nothing about the target, so the next request may probe instead.
    pub fn release_probe(&mut self) {
        if self.state == (State::HalfOpen { probing: true }) {
            self.state = State::HalfOpen { probing: false };
        }
    }

    /// An operator closed the circuit by hand: everything may go again, and the
    /// failures counted so far are forgotten. Answers whether it was not closed.
    pub fn reset(&mut self) -> bool {
        let was_closed = self.state == State::Closed;
        self.state = State::Closed;
        self.consecutive_failures = 0;
        !was_closed
    }

    pub fn on_success(&mut self) -> Option<Transition> {
        self.consecutive_failures = 0;
        let was_closed = self.state == State::Closed;
        self.state = State::Closed;
        (!was_closed).then_some(Transition::Closed)
    }

    pub fn on_failure(&mut self, now: Instant) -> Option<Transition> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            State::HalfOpen { .. } => {
                self.state = State::Open {
                    until: now + self.cooldown,
                };
                Some(Transition::Opened)
            }
            State::Closed if self.consecutive_failures >= self.threshold => {
                self.state = State::Open {
                    until: now + self.cooldown,
                };
                Some(Transition::Opened)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_that_was_never_sent_lets_another_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(10));
        assert_eq!(b.on_failure(t0), Some(Transition::Opened));
        let later = t0 + Duration::from_secs(11);
        assert!(b.try_acquire(later));
        assert!(!b.try_acquire(later), "one probe at a time");
        b.release_probe();
        assert!(b.try_acquire(later));
        assert_eq!(b.on_success(), Some(Transition::Closed));
    }

    #[test]
    fn a_reset_closes_an_open_circuit_at_once_and_is_idempotent() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, Duration::from_secs(60));
        b.on_failure(t0);
        assert_eq!(b.on_failure(t0), Some(Transition::Opened));
        assert!(!b.try_acquire(t0));
        assert!(b.reset());
        assert_eq!((b.name(), b.consecutive_failures), ("closed", 0));
        assert!(b.try_acquire(t0));
        assert!(!b.reset(), "a closed circuit stays closed");
        // The count starts again: one failure does not reopen it.
        assert_eq!(b.on_failure(t0), None);
    }

    #[test]
    fn opens_probes_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), Some(Transition::Opened));
        assert!(!b.try_acquire(t0 + Duration::from_secs(5)));
        assert!(b.try_acquire(t0 + Duration::from_secs(10)));
        assert!(
            !b.try_acquire(t0 + Duration::from_secs(10)),
            "one probe at a time"
        );
        assert_eq!(
            b.on_failure(t0 + Duration::from_secs(11)),
            Some(Transition::Opened)
        );
        assert!(b.try_acquire(t0 + Duration::from_secs(21)));
        assert_eq!(b.on_success(), Some(Transition::Closed));
        assert!(b.try_acquire(t0 + Duration::from_secs(21)));
    }
}
