//! What an agent workflow refuses, and why: the one error type of the agents service.
//! The HTTP face maps it to a status and a body; the Hub and the importer log it.

use crate::store::StoreError;

/// Said when the Hub (or an agent's actor) cannot take a message: it is restarting or
/// shutting down.
pub const HUB_BUSY: &str = "the hub is restarting or shutting down; retry shortly";

#[derive(Debug, thiserror::Error)]
pub enum AgentServiceError {
    /// The object does not exist, or the caller may not see it (the same answer, so an
    /// id does not tell whether another user's agent exists).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },
    /// The input breaks a rule; `message` says which field and what to do.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The request is valid but the agent's state refuses it now (e.g. running a
    /// disabled agent).
    #[error("{0}")]
    Conflict(String),
    /// The running hub or the agent's actor cannot take the request right now; retrying
    /// shortly works.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AgentServiceError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> AgentServiceError {
        AgentServiceError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn agent_not_found(id: crate::ids::AgentId) -> AgentServiceError {
        AgentServiceError::NotFound {
            what: "agent",
            id: id.0,
        }
    }

    pub fn hub_busy() -> AgentServiceError {
        AgentServiceError::Busy(HUB_BUSY.into())
    }
}

impl From<actix::MailboxError> for AgentServiceError {
    fn from(_: actix::MailboxError) -> AgentServiceError {
        AgentServiceError::hub_busy()
    }
}
