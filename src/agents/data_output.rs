//! `data_output` — Huginn's DataOutputAgent: publishes the events of its source agents
//! as an RSS 2.0 and a JSON feed at its web-request URL (`.xml` / `.json`).
//!
//! The options ([`FeedSpec`]), rendering and caching live in `crate::feeds`; the
//! agent's behaviour on receive is empty because a feed reads its sources' events
//! itself (as Huginn's does), and is told to re-render by the Router when a source
//! commits an event.

use serde_json::Value;

use super::{Behavior, OptionError};
pub use crate::feeds::spec::{FeedSpec, NAME};

pub fn validate(options: &Value) -> Result<(), OptionError> {
    FeedSpec::new(options).map(|_| ())
}

pub fn build(_options: &Value) -> Result<Box<dyn Behavior>, OptionError> {
    // Options are checked by `validate` on save; the feed itself compiles them again in
    // its own actor, so the AgentActor needs nothing but a receiver of events.
    Ok(Box::new(DataOutput))
}

/// The AgentActor side: received events are only recorded (last_receive_at); the feed
/// reads them from the sources when it renders.
pub struct DataOutput;

impl Behavior for DataOutput {}
