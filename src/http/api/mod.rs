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
pub mod page;
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
