//! The WARN lines an operator alerts on for outbound delivery: a subscription's circuit
//! opening or closing, and a delivery going dead. One place, so every path that moves a
//! breaker (a failed attempt, a probe's success, a manual reset) logs the same fields.
//!
//! The target is named by host only: subscription URLs often carry their secret in the
//! path or query (Slack, Discord, Zapier hooks), and logs are read by more people.

use super::breaker::Transition;
use crate::ids::{DeliveryId, SubscriptionId};

/// The target's host (and port), never its path or query.
pub fn target_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_else(|| "unparsable URL".into())
}

/// Logs a breaker transition once, where it happens.
pub fn circuit(transition: Transition, subscription_id: SubscriptionId, url: &str, failures: u32) {
    let host = target_host(url);
    match transition {
        Transition::Opened => tracing::warn!(
            signal = "circuit_opened",
            subscription_id = subscription_id.0,
            target_host = %host,
            consecutive_failures = failures,
            "circuit opened: deliveries to this subscription wait until a probe succeeds"
        ),
        Transition::Closed => tracing::warn!(
            signal = "circuit_closed",
            subscription_id = subscription_id.0,
            target_host = %host,
            "circuit closed: deliveries to this subscription resume"
        ),
    }
}

/// What a dead delivery is logged with.
pub struct Dead<'a> {
    pub subscription_id: SubscriptionId,
    pub delivery_id: DeliveryId,
    pub event_id: i64,
    pub url: &'a str,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub error: Option<&'a str>,
}

/// Logs a delivery that reached the dead-letter queue (committed as dead).
pub fn dead(d: &Dead<'_>) {
    tracing::warn!(
        signal = "delivery_dead",
        subscription_id = d.subscription_id.0,
        delivery_id = d.delivery_id.0,
        event_id = d.event_id,
        target_host = %target_host(d.url),
        attempts = d.attempts,
        last_status = d.last_status,
        error = d.error.unwrap_or(""),
        "delivery is dead: it will not be retried unless replayed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_logged_without_path_or_query() {
        assert_eq!(
            target_host("https://hooks.slack.com/services/T0/B0/SECRET?x=1"),
            "hooks.slack.com"
        );
        assert_eq!(target_host("http://127.0.0.1:8080/a"), "127.0.0.1:8080");
        assert_eq!(target_host("not a url"), "unparsable URL");
    }
}
