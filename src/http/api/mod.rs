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

use chrono::NaiveDateTime;

/// RFC 3339 in UTC with milliseconds, as every timestamp in the API is written.
pub fn ts(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn ts_opt(t: Option<NaiveDateTime>) -> Option<String> {
    t.map(ts)
}

/// Clamps a `limit` query parameter into 1..=max, defaulting to `default`.
pub fn clamp_limit(limit: Option<i64>, default: i64, max: i64) -> i64 {
    limit.unwrap_or(default).clamp(1, max)
}
