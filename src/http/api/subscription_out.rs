//! The API's view of a subscription: `SubscriptionOut`, built from a stored row (with
//! what the row alone does not say: whether its secrets open, its public keys, its
//! circuit's times).

use serde::Serialize;
use serde_json::{Value, json};

use super::{ts, ts_opt};
use crate::delivery::signer::{self, Scheme};
use crate::delivery::spec::open_secrets;
use crate::delivery::subscription::shapes::{payload_format_of, retry_policy_of};
use crate::secrets::Keyring;
use crate::store::now;
use crate::store::subscriptions::SubscriptionRow;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionOut {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    pub url: String,
    pub target_url: String,
    pub event_types: Vec<String>,
    #[schema(required = true)]
    pub agent_id: Option<i64>,
    #[schema(required = true)]
    pub filters: Option<Value>,
    pub headers: Value,
    /// The template as given: a string, or an object of templates.
    #[schema(required = true)]
    pub payload_template: Option<Value>,
    /// `muninn`, `event`, or `template` (a template of the caller's own).
    pub payload_format: &'static str,
    pub signature_scheme: String,
    #[schema(required = true)]
    pub signature_header: Option<String>,
    pub has_secret: bool,
    /// Why the webhook cannot sign (its stored secrets do not open with this hub's key):
    /// its deliveries are held until the key is restored or a new secret is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_error: Option<String>,
    /// Only in the answers to create and rotate-secret (never for `standard-v1a`, whose
    /// private key stays in the hub).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `standard-v1a` only: the `whpk_` key receivers verify with (the newest), and
    /// every key still signing during a rotation, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_keys: Option<Vec<String>>,
    /// `{max_attempts, backoff}`, TagoRUN's view of the retry settings.
    pub retry_policy: Value,
    pub retry_count: i32,
    pub retry_delay: f64,
    pub max_retry_delay: f64,
    #[schema(required = true)]
    pub retry_schedule: Option<Vec<f64>>,
    pub timeout: f64,
    #[schema(required = true)]
    pub rate_limit: Option<i32>,
    pub rate_limit_period: &'static str,
    pub max_in_flight: i32,
    pub ordered: bool,
    pub is_active: bool,
    /// The same as `is_active`, for readers of the AGiXT SDK.
    pub active: bool,
    pub paused: bool,
    #[schema(required = true)]
    pub disabled_reason: Option<String>,
    pub failure_threshold: i32,
    pub circuit_cooldown: f64,
    /// `closed`, `open` or `half_open`, as last stored (the stored state changes with
    /// each attempt's outcome; an open circuit lets a probe through at
    /// `circuit_half_opens_at`).
    pub circuit_state: String,
    /// When the circuit opened; `null` while it is closed.
    #[schema(required = true)]
    pub circuit_opened_at: Option<String>,
    /// When an open circuit lets its probe through (opened + cooldown).
    #[schema(required = true)]
    pub circuit_half_opens_at: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: String,
    pub updated_at: String,
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub fn to_out(r: SubscriptionRow, secret: Option<String>, keys: &Keyring) -> SubscriptionOut {
    let now = now();
    let opened = open_secrets(keys, &r.secrets);
    let has_secret = opened.as_ref().map_or(true, |list| {
        list.iter().any(|s| s.expires_at.is_none_or(|e| e > now))
    });
    let public_keys = (r.signature_scheme == Scheme::StandardV1a.name()).then(|| {
        opened.as_ref().map_or_else(
            |_| Vec::new(),
            |list| {
                list.iter()
                    .filter(|s| s.expires_at.is_none_or(|e| e > now))
                    .filter_map(|s| signer::public_key_of(&s.secret))
                    .collect::<Vec<_>>()
            },
        )
    });
    let signing_error = opened.err().map(|e| e.to_string());
    let opened_at = r
        .circuit_opened_at
        .filter(|_| r.circuit_state != crate::store::subscriptions::CircuitState::Closed);
    SubscriptionOut {
        public_key: public_keys.as_ref().and_then(|k| k.first().cloned()),
        public_keys,
        id: r.id.0,
        user_id: r.user_id,
        name: r.name,
        description: r.description,
        target_url: r.url.clone(),
        url: r.url,
        event_types: serde_json::from_str(&r.event_types).unwrap_or_default(),
        agent_id: r.agent_id.map(i64::from),
        filters: r.filters.and_then(|f| serde_json::from_str(&f).ok()),
        headers: serde_json::from_str(&r.headers).unwrap_or_else(|_| json!({})),
        payload_format: payload_format_of(r.payload_template.as_deref()),
        payload_template: r.payload_template.as_deref().map(|t| {
            crate::template::object::stored_object(t)
                .unwrap_or_else(|| Value::String(t.to_string()))
        }),
        retry_policy: retry_policy_of(r.retry_count, r.retry_schedule.as_deref()),
        signature_scheme: r.signature_scheme,
        signature_header: r.signature_header,
        has_secret,
        signing_error,
        secret,
        retry_count: r.retry_count,
        retry_delay: secs(r.retry_delay_ms),
        max_retry_delay: secs(r.max_retry_delay_ms),
        retry_schedule: r
            .retry_schedule
            .and_then(|s| serde_json::from_str::<Vec<i64>>(&s).ok())
            .map(|v| v.into_iter().map(secs).collect()),
        timeout: secs(r.timeout_ms),
        rate_limit: r.rate_limit,
        rate_limit_period: if r.rate_limit_period_ms >= 60_000 {
            "minute"
        } else {
            "second"
        },
        max_in_flight: r.max_in_flight,
        ordered: r.ordered,
        is_active: r.is_active,
        active: r.is_active,
        paused: r.paused,
        disabled_reason: r.disabled_reason,
        failure_threshold: r.failure_threshold,
        circuit_cooldown: secs(r.circuit_cooldown_ms),
        circuit_opened_at: ts_opt(opened_at),
        circuit_half_opens_at: ts_opt(
            opened_at.map(|t| t + chrono::Duration::milliseconds(r.circuit_cooldown_ms)),
        ),
        consecutive_failures: r.consecutive_failures,
        circuit_state: r.circuit_state.as_str().to_string(),
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
    }
}
