//! `webhook` — Huginn's WebhookAgent: turns requests to its web-request URL into events.
//! The agent itself is idle; its options and the request -> events mapping belong to
//! its endpoint ([`crate::endpoints::webhook`]), which this type validates through.

use serde_json::Value;

use super::{Behavior, OptionError};
pub use crate::endpoints::webhook::Webhook;

pub fn validate(options: &Value) -> Result<(), OptionError> {
    Webhook::new(options).map(|_| ())
}

/// A webhook agent does nothing on its own: its work arrives through its endpoint.
struct Idle;
impl Behavior for Idle {}

pub fn build(options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    validate(options)?;
    Ok(Box::new(Idle))
}
