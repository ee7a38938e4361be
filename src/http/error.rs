//! `ApiError`: every error the API answers, as a status and `{"error": "..."}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::store::{Answer, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{message}")]
    Unavailable { message: String, retry_after: u32 },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("{what} {id} not found"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::Unavailable { retry_after, .. } = self {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
        }
        if let ApiError::Unauthorized(_) = self {
            resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        resp.json(serde_json::json!({ "error": self.to_string() }))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            other => match other.answer() {
                Answer::RetryLater(retry_after) => ApiError::Unavailable {
                    message: match other {
                        StoreError::DatabaseGone(reason) => reason,
                        busy => format!("{busy}; nothing was changed, retry shortly"),
                    },
                    retry_after,
                },
                Answer::Internal => {
                    tracing::error!(error = %other, "database operation failed");
                    ApiError::Internal(
                        "internal error: the database operation failed and nothing was changed; \
                         the cause is in the server log"
                            .into(),
                    )
                }
            },
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(_: actix::MailboxError) -> ApiError {
        ApiError::Unavailable {
            message: "the hub is restarting or shutting down; retry shortly".into(),
            retry_after: 1,
        }
    }
}

/// Turns actix-web's JSON body errors into `ApiError`s with the reason.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::ContentType => ApiError::UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json".into(),
        ),
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("the request body is larger than {limit} bytes"))
        }
        J::Deserialize(e) if e.is_data() => {
            ApiError::Unprocessable(format!("invalid request body: {e}"))
        }
        J::Deserialize(e) => {
            ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))
        }
        J::Payload(e) if super::body::is_timeout(e) => ApiError::RequestTimeout(e.to_string()),
        other => ApiError::BadRequest(format!("could not read the request body: {other}")),
    };
    api.into()
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query parameters: {err}")).into()
}

pub fn path_error(
    err: actix_web::error::PathError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound(format!("no such object: {err}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_store_errors_are_500_and_overload_is_503_with_retry_after() {
        let corrupt = ApiError::from(StoreError::CorruptJson {
            what: "subscriptions.headers",
            reason: "eof".into(),
        });
        assert_eq!(corrupt.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!corrupt.to_string().contains("eof"), "{corrupt}");
        let busy = ApiError::from(StoreError::Overloaded(64));
        assert_eq!(busy.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let resp = busy.error_response();
        assert_eq!(
            resp.headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        let stopping = ApiError::from(StoreError::WriterGone);
        assert_eq!(stopping.status_code(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
