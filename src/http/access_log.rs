//! The opt-in access log (`[server] access_log`): one INFO line per request, message
//! `access`, on the `muninn::access` target (so `RUST_LOG` / `[log] level` can set it
//! apart from the hub's own log).
//!
//! Secrets travel in URLs here: Huginn web-request and feed URLs carry the agent's
//! secret in the path (`/users/1/web_requests/2/SECRET`), incoming webhooks their token
//! (`/webhook/TOKEN`), and any caller may put one in the query. The logged path keeps
//! what identifies the endpoint and masks the rest; query values are never logged.

use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};

/// What replaces a secret in a logged path or query.
const MASK: &str = "***";

/// The path as logged: secret segments and every query value masked.
pub fn masked_target(path: &str, query: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    // ["", "users", uid, "web_requests"|"webhooks", agent_id, secret...]
    let keep = match segments.as_slice() {
        ["", "users", _, "web_requests" | "webhooks", _, _, ..] => Some(5),
        ["", "webhook", _, ..] => Some(2),
        _ => None,
    };
    let mut out = match keep {
        Some(n) => {
            let mut kept = segments[..n].join("/");
            kept.push('/');
            kept.push_str(MASK);
            kept
        }
        None => path.to_string(),
    };
    if !query.is_empty() {
        let keys: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let key = pair.split('=').next().unwrap_or("");
                format!("{key}={MASK}")
            })
            .collect();
        out.push('?');
        out.push_str(&keys.join("&"));
    }
    out
}

/// Facts about a request taken before it is handled (the handler consumes it).
pub struct Started {
    at: Instant,
    method: String,
    target: String,
    peer: String,
}

impl Started {
    pub fn new(req: &ServiceRequest) -> Started {
        Started {
            at: Instant::now(),
            method: req.method().to_string(),
            target: masked_target(req.path(), req.query_string()),
            peer: req
                .peer_addr()
                .map_or_else(|| "unknown".into(), |a| a.ip().to_string()),
        }
    }

    /// Logs the answered request.
    pub fn finish<B: MessageBody>(self, res: &ServiceResponse<B>) {
        let bytes = match res.response().body().size() {
            BodySize::Sized(n) => Some(n),
            BodySize::None => Some(0),
            BodySize::Stream => None,
        };
        tracing::info!(
            target: "muninn::access",
            method = %self.method,
            path = %self.target,
            status = res.status().as_u16(),
            bytes,
            duration_ms = self.at.elapsed().as_millis() as u64,
            peer = %self.peer,
            "access"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::masked_target;

    #[test]
    fn secrets_in_paths_and_queries_are_masked() {
        assert_eq!(
            masked_target("/users/1/web_requests/2/SECRET", ""),
            "/users/1/web_requests/2/***"
        );
        assert_eq!(
            masked_target("/users/1/web_requests/2/SECRET.xml", "a=b"),
            "/users/1/web_requests/2/***?a=***"
        );
        assert_eq!(
            masked_target("/users/1/webhooks/2/S/extra", ""),
            "/users/1/webhooks/2/***"
        );
        assert_eq!(masked_target("/webhook/TOKEN", ""), "/webhook/***");
        assert_eq!(
            masked_target("/api/agents", "limit=5&token=T"),
            "/api/agents?limit=***&token=***"
        );
        assert_eq!(masked_target("/healthz", ""), "/healthz");
    }
}
