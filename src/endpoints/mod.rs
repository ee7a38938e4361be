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
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> WebResponse {
        WebResponse {
            status,
            body: body.to_string(),
            content_type: "application/json".into(),
            headers: Vec::new(),
            location: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> WebResponse {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}
