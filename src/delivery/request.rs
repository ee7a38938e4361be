//! Building one attempt's request: the signed webhook (envelope or payload template,
//! the `X-Webhook-*` headers, the subscription's headers, the signature) for sends and
//! test sends alike, or a post agent's stored request as it was prepared. The request is
//! also what the attempt log shows, through [`masked`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::client::{Sent, send};
use super::error::SendError;
use super::prepared::StoredRequest;
use super::signer;
use super::spec::Spec;

/// A request ready to go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A request that could not be built: what it had so far (for the attempt log) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unbuilt {
    pub partial: Request,
    pub error: SendError,
}

/// The webhook for one message: the body from `envelope`, signed with the secrets
/// valid at `at` (never unsigned: secrets that do not open fail the build).
pub fn signed(
    spec: &Spec,
    message_id: &str,
    event_type: &str,
    envelope: &Value,
    at: DateTime<Utc>,
) -> Result<Request, Box<Unbuilt>> {
    let body = spec.body(envelope);
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-Webhook-Event".to_string(), event_type.to_string()),
        ("X-Webhook-ID".to_string(), spec.id.to_string()),
        ("X-Webhook-Message-ID".to_string(), message_id.to_string()),
        (
            "X-Webhook-Timestamp".to_string(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ];
    headers.extend(spec.headers.iter().cloned());
    let unbuilt = |headers, error| {
        Box::new(Unbuilt {
            partial: Request {
                method: "POST".into(),
                url: spec.url.clone(),
                headers,
                body: Vec::new(),
            },
            error,
        })
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return Err(unbuilt(headers, SendError::Template(e.to_string()))),
    };
    let secrets = match spec.valid_secrets(at.naive_utc()) {
        Ok(s) => s,
        // Unreachable for queued deliveries while `pump` holds such a subscription;
        // kept so that no path can send unsigned.
        Err(e) => return Err(unbuilt(headers, SendError::Signing(e.to_string()))),
    };
    headers.extend(signer::headers(
        spec.scheme,
        spec.signature_header.as_deref(),
        &secrets,
        message_id,
        at.timestamp(),
        &body,
    ));
    Ok(Request {
        method: "POST".into(),
        url: spec.url.clone(),
        headers,
        body,
    })
}

/// A post agent's request, from its opened stored text: its own method, URL, headers
/// and body; no envelope, no signature. Also answers what the agent wants done with
/// the response.
pub fn prepared(
    text: Result<String, crate::secrets::SecretError>,
) -> Result<(Request, Option<Value>), Box<Unbuilt>> {
    let stored: StoredRequest = text
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| {
            Box::new(Unbuilt {
                partial: Request::default(),
                error: SendError::Unreadable(e),
            })
        })?;
    let request = Request {
        method: stored.method,
        url: stored.url,
        headers: stored.headers,
        body: stored.body.into_bytes(),
    };
    Ok((request, stored.emit))
}

/// Makes the request, or reports why it could not be built as what the attempt saw.
pub async fn call(
    built: Result<Request, Box<Unbuilt>>,
    timeout: Duration,
    allow_private: bool,
) -> (Request, Sent) {
    match built {
        Ok(req) => {
            let sent = send(
                &req.method,
                &req.url,
                &req.headers,
                req.body.clone(),
                timeout,
                allow_private,
            )
            .await;
            (req, sent)
        }
        Err(u) => {
            let u = *u;
            (
                u.partial,
                Sent {
                    status: None,
                    headers: Vec::new(),
                    retry_after: None,
                    excerpt: None,
                    error: Some(u.error),
                    duration: Duration::ZERO,
                },
            )
        }
    }
}

/// The headers a request goes out with: its own, plus the client's `User-Agent` when
/// they set none (awc adds it then), so the attempt log shows every header sent.
pub fn as_sent(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = headers.to_vec();
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
    {
        all.push((
            "User-Agent".to_string(),
            super::client::USER_AGENT.to_string(),
        ));
    }
    all
}

/// Request headers as logged: signatures and anything that looks like a credential
/// are masked.
pub fn masked(headers: &[(String, String)], signature_header: Option<&str>) -> String {
    let secretish = |n: &str| {
        let n = n.to_ascii_lowercase();
        n == "authorization"
            || n == "cookie"
            || n == "webhook-signature"
            || n == signer::DEFAULT_SIGNATURE_HEADER.to_ascii_lowercase()
            || signature_header.is_some_and(|h| h.eq_ignore_ascii_case(&n))
            || n.contains("token")
            || n.contains("secret")
            || n.contains("api-key")
            || n.contains("apikey")
            || n.contains("signature")
    };
    let map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            let v = if secretish(k) {
                "[masked]".to_string()
            } else {
                v.clone()
            };
            (k.clone(), Value::String(v))
        })
        .collect();
    Value::Object(map).to_string()
}
