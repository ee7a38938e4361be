//! Outbound delivery: subscriptions (outgoing webhooks), the outbox of deliveries
//! written with each event, and the `SubscriptionActor`s that send them — signed, with
//! retries, a circuit breaker, rate limits, dead letters and replay.
//!
//! The pieces: `index` decides which subscriptions an event owes (inside the event's
//! transaction); `actor` sends; `policy`, `breaker`, `signer`, `guard` and `client` are
//! the rules it sends by; `spec` is a subscription checked and compiled;
//! `subscription` is how callers manage them (input, validation, workflows).

pub mod actor;
pub mod breaker;
pub mod client;
pub mod envelope;
pub mod filters;
pub mod guard;
pub mod index;
pub mod policy;
pub mod signals;
pub mod signer;
pub mod spec;
pub mod subscription;

pub use actor::{
    DeliverySettings, Drain, Enqueue, Item, ResetCircuit, SubscriptionActor, SubscriptionShared,
};
pub use index::SubscriptionIndex;
pub use spec::Spec;
