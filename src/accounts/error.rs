//! What an accounts workflow refuses, and why. `http` maps each variant to a status
//! and an error code in one place.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The input breaks a rule; the message names the field and what to send.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A name that must be unique per user is taken; the message names it.
    #[error("{message}")]
    Taken {
        field: &'static str,
        message: String,
    },
    /// The user already has as many of these as one user may; the message says how
    /// many, the setting, and what to do.
    #[error("{0}")]
    AtLimit(String),
    /// No such object, or one the caller may not see (the same answer, so an id does
    /// not tell whether another user's object exists).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },
    /// No token, or one that is not (or no longer) valid.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller's token may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hub's actors did not answer: it is restarting or shutting down.
    #[error("the hub is restarting or shutting down; retry shortly")]
    HubUnavailable,
}

impl AccountError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> AccountError {
        AccountError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<actix::MailboxError> for AccountError {
    fn from(_: actix::MailboxError) -> AccountError {
        AccountError::HubUnavailable
    }
}
