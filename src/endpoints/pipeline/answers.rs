//! The answers the pipeline gives of its own: a failed write, a bad idempotency key,
//! a replay.

use crate::endpoints::{InboundRequest, OwnRefusal, WebResponse};
use crate::store::idempotency_keys;
use crate::store::{Answer as StoreAnswer, StoreError};

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The answer to a failed write: 503 with `Retry-After` when retrying can help, 500
/// with the cause in the log otherwise.
pub fn store_failure(e: &StoreError) -> WebResponse {
    match (e, e.answer()) {
        (StoreError::Overloaded(_), _) => WebResponse::refuse(
            OwnRefusal::Unavailable,
            "muninn is busy storing earlier requests; retry in a moment",
        )
        .with_header("Retry-After", "1"),
        (StoreError::DatabaseGone(reason), _) => {
            WebResponse::refuse(OwnRefusal::Unavailable, reason.clone())
                .with_header("Retry-After", "60")
        }
        (_, StoreAnswer::RetryLater(after)) => WebResponse::refuse(
            OwnRefusal::Unavailable,
            "muninn is busy or shutting down; nothing was saved, retry in a moment",
        )
        .with_header("Retry-After", after.to_string()),
        (other, StoreAnswer::Internal) => {
            tracing::error!(error = %other, "storing an inbound event failed");
            WebResponse::refuse(
                OwnRefusal::Internal,
                "internal error: the event could not be stored and nothing was saved; \
                 the cause is in the server log",
            )
        }
    }
}

/// The idempotency key of a request: `Idempotency-Key`, or `webhook-id` under the
/// standard scheme.
pub fn idempotency_key(
    req: &InboundRequest,
    standard: bool,
) -> Result<Option<String>, WebResponse> {
    let key = req.header("idempotency-key").or_else(|| {
        if standard {
            req.header("webhook-id")
        } else {
            None
        }
    });
    match key {
        None => Ok(None),
        Some(k) if k.trim().is_empty() || k.len() > MAX_IDEMPOTENCY_KEY => {
            Err(WebResponse::refuse(
                OwnRefusal::BadRequest,
                format!("the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
            ))
        }
        Some(k) => Ok(Some(k.trim().to_string())),
    }
}

/// Answers with the stored response of an earlier request with the same key, if any.
pub fn replay(row: idempotency_keys::IdempotencyRow) -> WebResponse {
    WebResponse {
        status: u16::try_from(row.status).unwrap_or(200),
        body: row.body,
        content_type: row.content_type,
        headers: vec![("Idempotent-Replayed".into(), "true".into())],
        location: None,
        refusal: None,
    }
}
