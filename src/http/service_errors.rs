//! Where the errors of the subsystems' services become API errors: one `From` per
//! service error type, so each variant's status and code is decided once, here.
//! (The agents, subscriptions and incoming-webhook services map in their handler files.)

use super::{ApiError, ErrorCode};
use crate::accounts::AccountError;
use crate::delivery::subscription::DeliveryError;
use crate::endpoints::incoming_service::logs::LogError;

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        match e {
            AccountError::Invalid { message, .. } => ApiError::Unprocessable(message),
            AccountError::Taken { field, message } => {
                ApiError::field(ErrorCode::ValidationFailed, field, message)
            }
            AccountError::NotFound { what, id } => ApiError::not_found(what, id),
            AccountError::AtLimit(m) => ApiError::Conflict(m),
            AccountError::Unauthorized(m) => ApiError::Unauthorized(m),
            AccountError::Forbidden(m) => ApiError::Forbidden(m),
            AccountError::Store(s) => s.into(),
            AccountError::HubUnavailable => actix::MailboxError::Closed.into(),
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(e: DeliveryError) -> ApiError {
        match e {
            DeliveryError::UnknownStatus(_) => ApiError::BadRequest(e.to_string()),
            DeliveryError::NotFound { what, id } => ApiError::not_found(what, id),
            DeliveryError::Conflict(m) => ApiError::Conflict(m),
            DeliveryError::Store(s) => s.into(),
        }
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> ApiError {
        match e {
            LogError::Invalid(m) => ApiError::Unprocessable(m),
            LogError::AgentNotFound(id) => ApiError::not_found("webhook agent", id),
            LogError::Incoming(e) => e.into(),
            LogError::Store(s) => s.into(),
        }
    }
}
