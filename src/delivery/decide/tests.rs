//! The outcome decision, one row per case: the whole retry / dead / 410 / circuit
//! table in one place.

use super::*;
use crate::delivery::policy::Schedule;

use CircuitEffect::{Failure, Success, Untouched};
use DeliveryStatus::{Dead, Delivered, Retrying};

/// Two retries, 1 ms then 2 ms: below the jitter threshold, so times are exact.
fn policy() -> RetryPolicy {
    RetryPolicy {
        schedule: Schedule::Fixed(vec![1, 2]),
    }
}

fn answered(status: u16, retry_after_s: Option<u64>) -> Outcome {
    Outcome::Answered {
        status,
        retry_after: retry_after_s.map(Duration::from_secs),
    }
}

fn failed(e: SendError) -> Outcome {
    Outcome::Failed(e)
}

struct Row {
    case: &'static str,
    prior: (i32, i32),
    outcome: Outcome,
    status: DeliveryStatus,
    /// Milliseconds from now to the next attempt.
    next_ms: i64,
    counted: bool,
    disable: bool,
    circuit: CircuitEffect,
    error: Option<&'static str>,
}

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    let row = |case, prior, outcome, status, next_ms, counted, disable, circuit, error| Row {
        case,
        prior,
        outcome,
        status,
        next_ms,
        counted,
        disable,
        circuit,
        error,
    };
    vec![
        row("2xx delivers", (0, 0), answered(204, None), Delivered, 0, false, false, Success, None),
        row("2xx on a retry delivers", (2, 2), answered(200, Some(9)), Delivered, 0, false, false, Success, None),
        row("404 is final", (0, 0), answered(404, None), Dead, 0, true, false, Failure, Some("target answered 404")),
        row("410 is final and disables", (0, 0), answered(410, None), Dead, 0, true, true, Failure, Some("target answered 410")),
        row("500 retries after the first delay", (0, 0), answered(500, None), Retrying, 1, true, false, Failure, Some("target answered 500")),
        row("500 retries after the second delay", (1, 1), answered(500, None), Retrying, 2, true, false, Failure, Some("target answered 500")),
        row("500 with retries spent is dead", (2, 2), answered(500, None), Dead, 0, true, false, Failure, Some("target answered 500")),
        row("302 retries (redirects are not followed)", (0, 0), answered(302, Some(5)), Retrying, 1, true, false, Failure, Some("target answered 302")),
        row("429 with Retry-After waits free", (0, 0), answered(429, Some(7)), Retrying, 7_000, false, false, Failure, Some("target answered 429")),
        row("Retry-After is capped at an hour", (0, 0), answered(503, Some(86_400)), Retrying, 3_600_000, false, false, Failure, Some("target answered 503")),
        row("free throttling runs out, then counts", (21, 1), answered(429, Some(7)), Retrying, 7_000, true, false, Failure, Some("target answered 429")),
        row("counted throttling with retries spent is dead", (22, 2), answered(429, Some(7)), Dead, 0, true, false, Failure, Some("target answered 429")),
        row("timeout retries", (0, 0), failed(SendError::Timeout(Duration::from_millis(250))), Retrying, 1, true, false, Failure, Some("timed out after 250 ms")),
        row("connection error retries", (0, 0), failed(SendError::Connect("Connection refused".into())), Retrying, 1, true, false, Failure, Some("Connection refused")),
        row("TLS error retries", (1, 1), failed(SendError::Tls("SSL is not supported".into())), Retrying, 2, true, false, Failure, Some("SSL is not supported")),
        row("guard refusal is final and counts against the circuit", (0, 0), failed(SendError::Refused("target address 10.0.0.1 is private".into())), Dead, 0, true, false, Failure, Some("refused: target address 10.0.0.1 is private")),
        row("template failure is final, circuit untouched", (0, 0), failed(SendError::Template("bad".into())), Dead, 0, true, false, Untouched, Some("payload_template failed: bad")),
        row("secrets that do not open are final, circuit untouched", (0, 0), failed(SendError::Signing("cannot open".into())), Dead, 0, true, false, Untouched, Some("cannot open")),
        row("unreadable stored request is final, circuit untouched", (3, 3), failed(SendError::Unreadable("eof".into())), Dead, 0, true, false, Untouched, Some("the stored request is unreadable: eof")),
    ]
}

#[test]
fn the_decision_table() {
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0)
        .unwrap()
        .naive_utc();
    for r in rows() {
        let prior = Prior {
            attempts: r.prior.0,
            failures: r.prior.1,
        };
        let d = decide(prior, &policy(), &r.outcome, now);
        let want = Decision {
            status: r.status,
            next_attempt_at: now + chrono::Duration::milliseconds(r.next_ms),
            counted_failure: r.counted,
            disable: r.disable,
            circuit: r.circuit,
            error: r.error.map(str::to_string),
        };
        assert_eq!(d, want, "{}", r.case);
    }
}

#[test]
fn an_outcome_is_read_from_what_the_client_saw() {
    let sent = |status, error| Sent {
        status,
        headers: Vec::new(),
        retry_after: Some(Duration::from_secs(3)),
        excerpt: None,
        error,
        duration: Duration::ZERO,
    };
    assert_eq!(Outcome::of(&sent(Some(503), None)), answered(503, Some(3)));
    let timeout = SendError::Timeout(Duration::from_secs(1));
    assert_eq!(
        Outcome::of(&sent(None, Some(timeout.clone()))),
        failed(timeout)
    );
}
