//! The management API under `/api`: one module per resource.

pub mod agents;
pub mod circuit;
pub mod credentials;
pub mod deliveries;
pub mod events;
pub mod feed_logs;
pub mod incoming_webhooks;
pub mod links;
pub mod outgoing_logs;
pub mod register;
pub mod scenarios;
pub mod status;
pub mod stream;
pub mod subscription_out;
pub mod subscriptions;
pub mod summary;
pub mod tokens;
pub mod users;
pub mod webhook_logs;

/// The API writes time as [`crate::time`] does (kept here so handlers say `api::ts`).
pub use crate::time::{ts, ts_opt};

/// Clamps a `limit` query parameter into 1..=max, defaulting to `default`.
pub fn clamp_limit(limit: Option<i64>, default: i64, max: i64) -> i64 {
    limit.unwrap_or(default).clamp(1, max)
}
