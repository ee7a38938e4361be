//! Inbound endpoints: the HTTP faces that turn requests into events. Both URL forms (a
//! webhook agent's Huginn URL and an incoming webhook) run one pipeline
//! (`pipeline`), configured by their `form`; each endpoint's lifecycle is an
//! `EndpointActor`. This module owns the request model, body parsing and the response
//! type they share.

pub mod actor;
pub mod form;
pub mod guard;
pub mod incoming;
pub mod incoming_service;
pub mod log;
pub mod pipeline;
pub mod recaptcha;
pub mod request;
pub mod signature;
pub mod transform;
pub mod webhook;

use std::net::IpAddr;
use std::time::Instant;

pub use actor::{Endpoint, EndpointActor, FlushIncomingLog, Reconfigure, StopEndpoint};
pub use guard::InboundSettings;
pub use pipeline::{EndpointCore, HandleWebRequest};
pub use request::{InboundRequest, params};

/// The checks made before the body is read (verb, IP allowlist, rate limit, declared
/// size). Answers the body limit to read with, or the rejection to send.
pub struct Admit {
    pub method: String,
    /// The secret the URL carried, for endpoints addressed by agent id (checked before
    /// a rate-limit token is spent, so strangers cannot use up a sender's limit).
    pub secret: Option<String>,
    pub ip: Option<IpAddr>,
    pub content_length: Option<u64>,
    pub received: Instant,
}

/// The body turned out larger than the limit while it was read; log it.
pub struct NoteTooLarge {
    pub method: String,
    pub ip: Option<IpAddr>,
    pub received: Instant,
}

/// What an endpoint answers: a success or a rejection, ready to become an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebResponse {
    pub status: u16,
    pub body: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    /// Set for redirects.
    pub location: Option<String>,
    /// Set when the answer is muninn's own refusal, not an answer Huginn prints or the
    /// user configured: the HTTP layer then sends it in the API's error shape, with the
    /// code this names and `body` as the sentence.
    pub refusal: Option<OwnRefusal>,
}

/// Why muninn itself refused an inbound request. Huginn's own answers (`Not
/// Authorized`, `Please use POST requests only`, `agent not found`) are not these: they
/// stay the plain text Huginn sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnRefusal {
    /// No open endpoint has this token.
    NotFound,
    /// An incoming webhook takes POST only.
    MethodNotAllowed,
    /// The client address is not in the endpoint's `allowed_ips`.
    IpNotAllowed,
    /// Over the endpoint's rate limit (with `Retry-After`).
    RateLimited,
    /// The body is larger than the endpoint's limit.
    TooLarge,
    /// The body did not arrive in time.
    Timeout,
    /// The request is malformed in a way no other refusal says (an unreadable body, a
    /// bad idempotency key).
    BadRequest,
    /// A JSON body that does not parse.
    InvalidJson,
    /// A body of a type the endpoint does not read.
    UnsupportedMediaType,
    /// The endpoint's `signature` check failed (missing, wrong).
    InvalidSignature,
    /// The signature's timestamp is outside the tolerance.
    StaleTimestamp,
    /// `payload_path` selected something that cannot be an event.
    InvalidPayload,
    /// The incoming webhook's transform failed on this request.
    TransformFailed,
    /// The endpoint's options are invalid; it answers this until they are fixed.
    Misconfigured,
    /// Busy, or stopping; retry after `Retry-After`.
    Unavailable,
    /// Something failed inside muninn; the cause is in the server log.
    Internal,
}

impl OwnRefusal {
    /// Every refusal, for the tests that hold the HTTP layer's codes to these statuses.
    pub const ALL: [OwnRefusal; 16] = [
        OwnRefusal::NotFound,
        OwnRefusal::MethodNotAllowed,
        OwnRefusal::IpNotAllowed,
        OwnRefusal::RateLimited,
        OwnRefusal::TooLarge,
        OwnRefusal::Timeout,
        OwnRefusal::BadRequest,
        OwnRefusal::InvalidJson,
        OwnRefusal::UnsupportedMediaType,
        OwnRefusal::InvalidSignature,
        OwnRefusal::StaleTimestamp,
        OwnRefusal::InvalidPayload,
        OwnRefusal::TransformFailed,
        OwnRefusal::Misconfigured,
        OwnRefusal::Unavailable,
        OwnRefusal::Internal,
    ];

    pub fn status(self) -> u16 {
        match self {
            OwnRefusal::BadRequest | OwnRefusal::InvalidJson => 400,
            OwnRefusal::InvalidSignature | OwnRefusal::StaleTimestamp => 401,
            OwnRefusal::IpNotAllowed => 403,
            OwnRefusal::NotFound => 404,
            OwnRefusal::MethodNotAllowed => 405,
            OwnRefusal::Timeout => 408,
            OwnRefusal::TooLarge => 413,
            OwnRefusal::UnsupportedMediaType => 415,
            OwnRefusal::InvalidPayload | OwnRefusal::TransformFailed => 422,
            OwnRefusal::RateLimited => 429,
            OwnRefusal::Internal => 500,
            OwnRefusal::Misconfigured | OwnRefusal::Unavailable => 503,
        }
    }
}

/// A refused request; the same shape as any other answer.
pub type Rejection = WebResponse;

impl WebResponse {
    pub fn text(status: u16, body: impl Into<String>) -> WebResponse {
        WebResponse {
            status,
            body: body.into(),
            content_type: "text/plain; charset=utf-8".into(),
            headers: Vec::new(),
            location: None,
            refusal: None,
        }
    }

    /// muninn's own refusal: the sentence, sent in the API's error shape.
    pub fn refuse(refusal: OwnRefusal, message: impl Into<String>) -> WebResponse {
        WebResponse {
            refusal: Some(refusal),
            ..WebResponse::text(refusal.status(), message)
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> WebResponse {
        WebResponse {
            status,
            body: body.to_string(),
            content_type: "application/json".into(),
            headers: Vec::new(),
            location: None,
            refusal: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> WebResponse {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}
