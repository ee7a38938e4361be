//! What a subscription workflow can fail with; `http` maps each to a status and body.

use crate::ids::SubscriptionId;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The input is wrong; the message names the field and what to send instead.
    #[error("{0}")]
    Invalid(String),
    /// No such subscription, or one the caller may not see (the same answer, so ids
    /// of other users' webhooks are not revealed).
    #[error("webhook {0} not found")]
    NotFound(SubscriptionId),
    /// The subscription has no running actor (its stored settings do not compile).
    #[error("webhook {0} is not running (its stored settings are invalid)")]
    NotRunning(SubscriptionId),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hub's actors did not answer: it is restarting or shutting down.
    #[error("the hub is restarting or shutting down; retry shortly")]
    HubUnavailable,
    /// The node that runs the subscription's actor did not answer in time; the
    /// message names it.
    #[error("{0}")]
    OwnerSilent(String),
}

impl From<actix::MailboxError> for SubscriptionError {
    fn from(_: actix::MailboxError) -> SubscriptionError {
        SubscriptionError::HubUnavailable
    }
}

/// `field: why`, the shape of every validation message.
pub fn bad(field: &str, why: impl std::fmt::Display) -> SubscriptionError {
    SubscriptionError::Invalid(format!("{field}: {why}"))
}
