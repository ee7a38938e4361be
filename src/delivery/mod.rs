//! Outbound delivery: subscriptions (outgoing webhooks), the outbox of deliveries
//! written with each event, and the `SubscriptionActor`s that send them — signed, with
//! retries, a circuit breaker, rate limits, dead letters and replay.
//!
//! The pieces: `index` decides which subscriptions an event owes (inside the event's
//! transaction); `actor` keeps the window and runs each attempt through its steps:
//! `request` builds and signs it, `client` makes it (through `guard`), `decide` says what
//! the typed outcome (`error`) means under the `policy` and for the `breaker`, `record`
//! writes it. `prepared` is a post agent's stored request and its response hook; `spec`
//! is a subscription checked and compiled; `subscription` is how callers manage them
//! (input, validation, workflows).

pub mod actor;
pub mod breaker;
pub mod client;
pub mod decide;
pub mod envelope;
pub mod error;
pub mod expand;
pub mod filters;
pub mod guard;
pub mod index;
pub mod policy;
pub mod prepared;
pub mod record;
pub mod request;
pub mod signals;
pub mod signer;
pub mod spec;
pub mod spec_error;
pub mod subscription;

pub use actor::{
    DeliverySettings, Drain, Enqueue, Item, ResetCircuit, SubscriptionActor, SubscriptionShared,
};
pub use index::SubscriptionIndex;
pub use spec::Spec;
