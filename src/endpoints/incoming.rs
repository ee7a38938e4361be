//! Incoming webhooks (`POST /webhook/{token}`): their stored options, checked and
//! compiled. A request runs the inbound pipeline (`super::pipeline`) with the form
//! made from these options (`super::form::incoming`): the event is a `webhook.received`
//! event of the owner with no source agent, addressed to the target agent through
//! `events.target_agent_id`: the Router pushes it to that agent after commit, and the
//! agent's catch-up reads it back after a crash, so a 2xx means the event is committed
//! and will be handled.

use std::sync::Arc;

use serde_json::{Value, json};

use super::guard::ProtectionOptions;
use super::transform::Transform;
use crate::secrets::{Keyring, purpose};
use crate::store::from_json_text;
use crate::store::incoming_webhooks::IncomingRow;

/// The stored options of an incoming webhook, checked and compiled.
pub struct Compiled {
    pub protections: ProtectionOptions,
    pub transform: Option<Transform>,
    pub response_headers: Vec<(String, String)>,
}

/// What is wrong with a `response_headers` object; the message names the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseHeadersError {
    #[error("response_headers must be an object of header names to values")]
    NotAnObject,
    #[error("response_headers: the value of {0:?} must be a string")]
    NotAString(String),
    #[error("response_headers: {name:?}: {value:?} is not a valid HTTP header")]
    NotAHeader { name: String, value: String },
}

/// Checks a `response_headers` object: names and values must be valid HTTP headers.
pub fn parse_response_headers(v: &Value) -> Result<Vec<(String, String)>, ResponseHeadersError> {
    let map = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) => m,
        _ => return Err(ResponseHeadersError::NotAnObject),
    };
    map.iter()
        .map(|(k, v)| {
            let value = v
                .as_str()
                .ok_or_else(|| ResponseHeadersError::NotAString(k.clone()))?;
            if actix_web::http::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || actix_web::http::header::HeaderValue::from_str(value).is_err()
            {
                return Err(ResponseHeadersError::NotAHeader {
                    name: k.clone(),
                    value: value.to_string(),
                });
            }
            Ok((k.clone(), value.to_string()))
        })
        .collect()
}

/// Why a stored incoming webhook's options do not compile; the message says which
/// option is wrong and why.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A JSON column does not parse.
    #[error(transparent)]
    Column(#[from] crate::store::StoreError),
    /// The signature secret does not open.
    #[error("signature: {0}")]
    Signature(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Protection(#[from] super::guard::ProtectionError),
    #[error(transparent)]
    ResponseHeaders(#[from] ResponseHeadersError),
    #[error(transparent)]
    Transform(#[from] super::transform::TransformError),
}

/// Compiles a row's options; the error says which option is wrong and why. A signature
/// secret that does not open is such an error, so the endpoint refuses every request
/// rather than accept unverified ones.
pub fn compile(row: &IncomingRow, keys: &Keyring) -> Result<Compiled, CompileError> {
    let mut obj = serde_json::Map::new();
    if let Some(r) = row.rate_limit {
        obj.insert("rate_limit".into(), json!(r));
    }
    if let Some(m) = row.max_body_bytes {
        obj.insert("max_body_bytes".into(), json!(m));
    }
    if let Some(ips) = &row.allowed_ips {
        obj.insert(
            "allowed_ips".into(),
            from_json_text(ips, "incoming_webhooks.allowed_ips")?,
        );
    }
    if let Some(sig) = &row.signature {
        let clear = keys.open(purpose::INCOMING_SIGNATURE, sig)?;
        obj.insert(
            "signature".into(),
            from_json_text(&clear, "incoming_webhooks.signature")?,
        );
    }
    let protections = ProtectionOptions::from_json(&Value::Object(obj), None)?;
    let response_headers = match &row.response_headers {
        Some(h) => {
            parse_response_headers(&from_json_text(h, "incoming_webhooks.response_headers")?)?
        }
        None => Vec::new(),
    };
    let transform = match row.transform_template.as_deref() {
        Some(t) if !t.trim().is_empty() => Some(Transform::new(t)?),
        _ => None,
    };
    Ok(Compiled {
        protections,
        transform,
        response_headers,
    })
}

pub fn endpoint_key(id: crate::ids::IncomingWebhookId) -> String {
    crate::store::inbound_log::incoming_endpoint(id)
}

/// Asks the hub whether an agent is still there (the webhook's agent may be deleted
/// before the webhook is). Passed in, so this subsystem does not depend on the hub.
pub type AgentExists = Arc<dyn Fn(crate::ids::AgentId) -> bool + Send + Sync>;
