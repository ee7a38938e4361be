//! `ApiError`: every error muninn's own API answers, as a status and
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.
//!
//! `code` is one of [`ErrorCode`], a closed set a program can match on; `message` is the
//! sentence a person reads; `field` names the one input at fault, when there is one.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::{Answer, StoreError};

/// Every `code` an error body can carry. Adding one is a change to the API: programs
/// match on these, so a code is never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request is wrong in a way no more specific code says.
    BadRequest,
    /// 400: a query parameter cannot be read (`field` names it).
    InvalidQueryParameter,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 422: the body is JSON but not the shape the route takes (`field` names the member
    /// when one is at fault).
    InvalidBody,
    /// 422: the input is well formed but breaks a rule.
    ValidationFailed,
    /// 401: no token, or not a valid one.
    Unauthorized,
    /// 403: the token may not do this.
    Forbidden,
    /// 404: the object does not exist (or is not the caller's).
    NotFound,
    /// 404: no route has this path.
    RouteNotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 408: the body did not arrive in time.
    RequestTimeout,
    /// 409: the request conflicts with the current state.
    Conflict,
    /// 413: the body is larger than the route accepts.
    PayloadTooLarge,
    /// 415: the body is not sent as JSON.
    UnsupportedMediaType,
    /// 503: the hub or database is busy, restarting or stopping; retry after
    /// `Retry-After`.
    Unavailable,
    /// 503: a feed's agent has options that cannot render it.
    FeedMisconfigured,
    /// 500: something failed inside muninn; the cause is in the server log.
    InternalError,
    /// 429 (inbound URLs): over the endpoint's rate limit; retry after `Retry-After`.
    RateLimited,
    /// 403 (inbound URLs): the client address is not in the endpoint's `allowed_ips`.
    IpNotAllowed,
    /// 401 (inbound URLs): the endpoint's `signature` check failed (missing or wrong).
    InvalidSignature,
    /// 401 (inbound URLs): the signature's timestamp is too old or too far ahead.
    StaleTimestamp,
    /// 422 (inbound URLs): the incoming webhook's transform failed on this request.
    TransformFailed,
    /// 503 (inbound URLs): the endpoint's options are invalid; its owner must fix them.
    EndpointMisconfigured,
}

impl ErrorCode {
    /// Every code, in the order of the enum (the OpenAPI document lists these).
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidQueryParameter,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidBody,
        ErrorCode::ValidationFailed,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unavailable,
        ErrorCode::FeedMisconfigured,
        ErrorCode::InternalError,
        ErrorCode::RateLimited,
        ErrorCode::IpNotAllowed,
        ErrorCode::InvalidSignature,
        ErrorCode::StaleTimestamp,
        ErrorCode::TransformFailed,
        ErrorCode::EndpointMisconfigured,
    ];

    /// Codes only the inbound URLs (`/webhook/{token}`, the web-request URLs) answer:
    /// the document lists them there, not on every API route.
    pub fn inbound_only(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::IpNotAllowed
                | ErrorCode::InvalidSignature
                | ErrorCode::StaleTimestamp
                | ErrorCode::TransformFailed
                | ErrorCode::EndpointMisconfigured
        )
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest | ErrorCode::InvalidQueryParameter | ErrorCode::InvalidJson => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::InvalidBody | ErrorCode::ValidationFailed | ErrorCode::TransformFailed => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unauthorized | ErrorCode::InvalidSignature | ErrorCode::StaleTimestamp => {
                StatusCode::UNAUTHORIZED
            }
            ErrorCode::Forbidden | ErrorCode::IpNotAllowed => StatusCode::FORBIDDEN,
            ErrorCode::NotFound | ErrorCode::RouteNotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unavailable
            | ErrorCode::FeedMisconfigured
            | ErrorCode::EndpointMisconfigured => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as it appears in a body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidQueryParameter => "invalid_query_parameter",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::FeedMisconfigured => "feed_misconfigured",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::IpNotAllowed => "ip_not_allowed",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::StaleTimestamp => "stale_timestamp",
            ErrorCode::TransformFailed => "transform_failed",
            ErrorCode::EndpointMisconfigured => "endpoint_misconfigured",
        }
    }
}

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
    /// Any code, and the one field at fault when there is one.
    #[error("{message}")]
    Coded {
        code: ErrorCode,
        message: String,
        field: Option<String>,
    },
}

/// The body of every error: `{"error": ErrorBody}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    pub code: ErrorCode,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

/// The document names this schema `Error`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct Envelope<'a> {
    error: ErrorBody<'a>,
}

impl ApiError {
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("{what} {id} not found"))
    }

    /// An error about one field of the input.
    pub fn field(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Coded {
            code,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::RequestTimeout(_) => ErrorCode::RequestTimeout,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::Unprocessable(_) => ErrorCode::ValidationFailed,
            ApiError::Unavailable { .. } => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::InternalError,
            ApiError::Coded { code, .. } => *code,
        }
    }

    fn field_name(&self) -> Option<&str> {
        match self {
            ApiError::Coded { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::Unavailable { retry_after, .. } = self {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
        }
        if let ApiError::Unauthorized(_) = self {
            resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        let message = self.to_string();
        resp.json(Envelope {
            error: ErrorBody {
                code: self.code(),
                message: &message,
                field: self.field_name(),
            },
        })
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

/// The member a serde_json message names: serde writes "missing field `url`",
/// "unknown field `sourceids`, expected one of ..." and "duplicate field `x`".
pub(super) fn named_field(message: &str) -> Option<String> {
    ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| {
            let rest = &message[message.find(prefix)? + prefix.len()..];
            Some(rest[..rest.find('`')?].to_string())
        })
}

/// A JSON body that could not be read as the route's input, as an `ApiError`.
pub fn body_error(e: &serde_json::Error) -> ApiError {
    if e.is_data() {
        let message = format!("invalid request body: {e}");
        ApiError::Coded {
            code: ErrorCode::InvalidBody,
            field: named_field(&message),
            message,
        }
    } else {
        ApiError::Coded {
            code: ErrorCode::InvalidJson,
            message: format!("the request body is not valid JSON: {e}"),
            field: None,
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
        J::Deserialize(e) => body_error(e),
        J::Payload(e) if super::body::is_timeout(e) => ApiError::RequestTimeout(e.to_string()),
        other => ApiError::BadRequest(format!("could not read the request body: {other}")),
    };
    api.into()
}

/// For a handler that still takes actix's `web::Query` (which cannot tell the
/// parameter); `http::Query` names it.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::Coded {
        code: ErrorCode::InvalidQueryParameter,
        message: format!("invalid query parameters: {err}"),
        field: None,
    }
    .into()
}

pub fn path_error(
    err: actix_web::error::PathError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound(format!("no such object: {err}")).into()
}

/// Gives actix's own bodiless 404 and 405 answers (no route, a resource without the
/// method) the error body every other error has.
pub fn bodiless_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new()
        .handler(StatusCode::NOT_FOUND, fill_bodiless)
        .handler(StatusCode::METHOD_NOT_ALLOWED, fill_bodiless)
}

fn fill_bodiless<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let empty = matches!(
        res.response().body().size(),
        actix_web::body::BodySize::None | actix_web::body::BodySize::Sized(0)
    );
    if !empty {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, old) = res.into_parts();
    let error = if old.status() == StatusCode::METHOD_NOT_ALLOWED {
        method_not_allowed(&req)
    } else {
        // actix's own 404 (no handler here answers a bodiless one), which it also
        // answers for a path whose routes are all guarded by another method.
        no_route(&req)
    };
    let mut new: HttpResponse<BoxBody> = error.error_response();
    // Keep what actix set (an `Allow`, for one), but the body is now JSON.
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let res = ServiceResponse::new(req, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// The answer when no route took the request: 405 when a resource has the path (only
/// the method is wrong: actix answers 404 there for routes registered with a method
/// guard), else 404.
pub fn no_route(req: &actix_web::HttpRequest) -> ApiError {
    if req.resource_map().has_resource(req.path()) {
        method_not_allowed(req)
    } else {
        route_not_found(req.method(), req.path())
    }
}

fn method_not_allowed(req: &actix_web::HttpRequest) -> ApiError {
    ApiError::Coded {
        code: ErrorCode::MethodNotAllowed,
        message: format!("{} does not answer {}", req.path(), req.method()),
        field: None,
    }
}

pub fn route_not_found(method: &actix_web::http::Method, path: &str) -> ApiError {
    // The AGiXT document's debugging section posts to `/api/webhook/<id>`; the
    // incoming webhook's own URL is elsewhere, so say where.
    let hint = if path.starts_with("/api/webhook/") {
        ": an incoming webhook receives at /webhook/<token>, the `url` in the answer that created it (or rotated its token)"
    } else {
        ""
    };
    ApiError::Coded {
        code: ErrorCode::RouteNotFound,
        message: format!("no route for {method} {path}{hint}"),
        field: None,
    }
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

    #[test]
    fn every_code_is_listed_once_and_serializes_as_its_name() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
            assert!(!ErrorCode::ALL[..i].contains(code), "{code:?} twice");
        }
    }

    #[test]
    fn serde_messages_name_their_field() {
        let missing = serde_json::from_str::<std::collections::HashMap<String, u8>>("{\"a\": -1}")
            .unwrap_err();
        assert_eq!(body_error(&missing).field_name(), None);
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct In {
            url: String,
        }
        let unknown = serde_json::from_str::<In>(r#"{"url": "x", "sourceids": [1]}"#).unwrap_err();
        assert_eq!(body_error(&unknown).field_name(), Some("sourceids"));
        assert_eq!(body_error(&unknown).code(), ErrorCode::InvalidBody);
        let missing = serde_json::from_str::<In>("{}").unwrap_err();
        assert_eq!(body_error(&missing).field_name(), Some("url"));
        let broken = serde_json::from_str::<In>("{").unwrap_err();
        assert_eq!(body_error(&broken).code(), ErrorCode::InvalidJson);
    }
}
