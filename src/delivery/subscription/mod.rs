//! Subscriptions (outgoing webhooks) as callers manage them: the bodies they send
//! (`input`), the checks that turn them into the stored fields the engine compiles
//! (`validate`, `shapes`; `super::spec` compiles the stored row), and the workflows
//! (`service`, `replay`, `deliveries`, `attempts`) with ownership in each query and
//! their own error type.
//! HTTP handlers and the CLI extract, call one function here and map the result; the
//! running hub is told through the `Running` trait, so nothing here imports it.

pub mod actor_ask;
pub mod attempts;
pub mod deliveries;
pub mod error;
pub mod input;
pub mod replay;
pub mod service;
pub mod shapes;
pub mod validate;

pub use attempts::{AttemptLine, AttemptPage, AttemptTotals};
pub use deliveries::{DeliveryError, DeliveryFilter};
pub use error::SubscriptionError;
pub use input::{ReplayIn, RetryPolicyIn, RotateIn, SubscriptionIn, TestIn};
pub use replay::Replayed;
pub use service::{Caller, Rotated, Running, Saved, Settings, Subscriptions};

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod validate_tests;
