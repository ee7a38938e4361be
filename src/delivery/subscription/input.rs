//! The bodies a caller sends to manage subscriptions, as the contract documents spell
//! them (AGiXT, TagoRUN, the AI Agent API). Every one refuses unknown fields, so a
//! misspelt field is a 422 naming it rather than silently ignored.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The body of create and update; on update, omitted fields keep their value. Fields
/// are spelt as muninn and the documents spell them (aliases); any other is a 422.
/// A new field goes here and in `validate::apply` (and the store's columns).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    #[serde(alias = "target_url", alias = "webhook_url")]
    pub url: Option<String>,
    /// TagoRUN's integration examples name one event.
    pub event: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(alias = "events")]
    pub event_types: Option<Vec<String>>,
    /// `active` is the AGiXT SDK's spelling.
    #[serde(alias = "active")]
    pub is_active: Option<bool>,
    pub headers: Option<Map<String, Value>>,
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub agent_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "some")]
    pub filters: Option<Option<Value>>,
    /// A template string that renders JSON, or an object of templates (TagoRUN's
    /// `payload_template`, `payload` in its integration examples).
    #[serde(default, deserialize_with = "some", alias = "payload")]
    pub payload_template: Option<Option<Value>>,
    pub retry_policy: Option<RetryPolicyIn>,
    /// `muninn` (the envelope) or `event` (`{event, data, timestamp}`); sets the
    /// payload template, so it cannot be given with one.
    pub payload_format: Option<String>,
    pub signature_scheme: Option<String>,
    #[serde(default, deserialize_with = "some")]
    pub signature_header: Option<Option<String>>,
    pub retry_count: Option<i64>,
    pub retry_delay: Option<f64>,
    pub max_retry_delay: Option<f64>,
    #[serde(default, deserialize_with = "some")]
    pub retry_schedule: Option<Option<Value>>,
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "some")]
    pub rate_limit: Option<Option<Value>>,
    pub max_in_flight: Option<i64>,
    pub ordered: Option<bool>,
    pub failure_threshold: Option<i64>,
    pub circuit_cooldown: Option<f64>,
}

/// Tells an absent field (keep) from `null` (clear).
fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// TagoRUN's `retry_policy`: attempts in all (the first and the retries) and how the
/// delay grows, from `retry_delay` (1 s, TagoRUN's base delay, unless given).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyIn {
    pub max_attempts: i64,
    pub backoff: Option<String>,
}

/// The optional body of rotate-secret.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    pub secret: Option<String>,
    #[serde(alias = "grace_period")]
    pub grace_period_seconds: Option<u64>,
}

/// The optional body of a test send: `{"test_payload": {...}}` becomes the event's `data`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestIn {
    pub test_payload: Option<Value>,
}

/// The optional body of replay: which deliveries go again.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    pub since: Option<String>,
    pub until: Option<String>,
    pub status: Option<Value>,
    pub event_type: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}
