//! The data layer: typed calls to the hub's HTTP API (awc, async). Every screen's data
//! and every action goes through here; the console never opens the database.
//! Runs on the worker thread's actix runtime (`worker`), or in a test's.

use std::time::Duration;

use awc::http::Method;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::{
    Agent, AgentLog, Delivery, EventRef, InboundLog, InboundStats, IncomingWebhook, OutgoingLog,
    StreamItem, Subscription, Summary, WorkerStatus,
};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The hub refused the token (401/403).
    #[error("the hub refused the API token ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// The hub could not be reached or the connection broke.
    #[error("cannot reach the hub: {0}")]
    Disconnected(String),
    /// The hub answered with an error.
    #[error("{message} ({status})")]
    Api { status: u16, message: String },
    /// The hub answered something the console does not understand.
    #[error("unexpected answer from the hub: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn is_connection(&self) -> bool {
        matches!(self, ClientError::Disconnected(_))
    }
}

/// The most pages `get_all` follows: 100 000 items at the hub's largest page.
const MAX_PAGES: usize = 100;

/// The target of `<target>; rel="next"` (RFC 8288), when it is a path on the hub.
fn next_link(link: &str) -> Option<String> {
    let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
    let next = params
        .split(';')
        .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
    (next && target.starts_with('/')).then(|| target.to_string())
}

pub struct Client {
    base: String,
    token: String,
    http: awc::Client,
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            // `{"error": {"code", "message"}}`, or the older `{"error": "..."}`.
            let e = v.get("error")?;
            e.as_str()
                .or_else(|| e.get("message").and_then(Value::as_str))
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

impl Client {
    pub fn new(base: &str, token: &str, timeout: Duration) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: awc::Client::builder()
                .timeout(timeout)
                .disable_redirects()
                .add_default_header((
                    "User-Agent",
                    concat!("muninn-console/", env!("CARGO_PKG_VERSION")),
                ))
                .finish(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Vec<u8>, ClientError> {
        Ok(self.call_page(method, path, body).await?.0)
    }

    /// As `call`, with the target of a `Link: <…>; rel="next"` header if any.
    async fn call_page(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(Vec<u8>, Option<String>), ClientError> {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .insert_header(("Authorization", format!("Bearer {}", self.token)));
        let sent = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        };
        let mut resp = sent.map_err(|e| ClientError::Disconnected(e.to_string()))?;
        let bytes = resp
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(|e| ClientError::Disconnected(e.to_string()))?;
        let status = resp.status().as_u16();
        let next = resp
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(next_link);
        match status {
            200..=299 => Ok((bytes.to_vec(), next)),
            401 | 403 => Err(ClientError::Unauthorized {
                status,
                message: error_message(&bytes),
            }),
            _ => Err(ClientError::Api {
                status,
                message: error_message(&bytes),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.call(Method::GET, path, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    /// A whole list: pages of the most the hub gives (1000), following `Link` to the end
    /// (at most `MAX_PAGES` pages, so a hub that always says "next" cannot loop us).
    async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ClientError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}limit=1000"));
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let Some(p) = next.take() else { break };
            let (bytes, link) = self.call_page(Method::GET, &p, None).await?;
            let page: Vec<T> = serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Decode(format!("{p}: {e}")))?;
            all.extend(page);
            next = link;
        }
        Ok(all)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let bytes = self.call(method, path, body).await?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    pub async fn summary(&self) -> Result<Summary, ClientError> {
        self.get("/api/summary").await
    }

    /// The node that answers and, for an admin, every node sharing its database.
    pub async fn worker_status(&self) -> Result<WorkerStatus, ClientError> {
        self.get("/worker_status").await
    }

    /// Deliveries in one status, newest first.
    pub async fn deliveries(&self, status: &str, limit: u32) -> Result<Vec<Delivery>, ClientError> {
        self.get(&format!("/api/deliveries?status={status}&limit={limit}"))
            .await
    }

    /// One delivery with its attempt log.
    pub async fn delivery(&self, id: i64) -> Result<Delivery, ClientError> {
        self.get(&format!("/api/deliveries/{id}")).await
    }

    pub async fn event(&self, id: i64) -> Result<EventRef, ClientError> {
        self.get(&format!("/api/events/{id}")).await
    }

    /// Sends a dead (or delivered) delivery again.
    pub async fn retry_delivery(&self, id: i64) -> Result<Delivery, ClientError> {
        let v = self
            .send(Method::POST, &format!("/api/deliveries/{id}/retry"), None)
            .await?;
        serde_json::from_value(v).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Re-queues the dead deliveries of a subscription, those created since `since`
    /// (RFC 3339) or all; answers the hub's report.
    pub async fn replay_dead(
        &self,
        webhook_id: i64,
        since: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut body = json!({"status": "dead"});
        if let Some(s) = since {
            body["since"] = json!(s);
        }
        self.send(
            Method::POST,
            &format!("/api/webhooks/outgoing/{webhook_id}/replay"),
            Some(body),
        )
        .await
    }

    pub async fn set_paused(&self, webhook_id: i64, paused: bool) -> Result<(), ClientError> {
        let verb = if paused { "pause" } else { "resume" };
        self.send(
            Method::POST,
            &format!("/api/webhooks/outgoing/{webhook_id}/{verb}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Sends a test event to a subscription's URL now; answers the hub's report.
    pub async fn test_delivery(&self, webhook_id: i64) -> Result<Value, ClientError> {
        self.send(
            Method::POST,
            &format!("/api/webhooks/outgoing/{webhook_id}/test"),
            None,
        )
        .await
    }

    /// Closes a subscription's circuit now; answers whether it was open.
    pub async fn reset_circuit(&self, webhook_id: i64) -> Result<bool, ClientError> {
        let v = self
            .send(
                Method::POST,
                &format!("/api/webhooks/outgoing/{webhook_id}/reset-circuit"),
                None,
            )
            .await?;
        Ok(v.get("was_open").and_then(Value::as_bool).unwrap_or(false))
    }

    /// Changes the fields given in `body` (the hub keeps the others).
    pub async fn update_subscription(
        &self,
        webhook_id: i64,
        body: Value,
    ) -> Result<Subscription, ClientError> {
        let v = self
            .send(
                Method::PATCH,
                &format!("/api/webhooks/outgoing/{webhook_id}"),
                Some(body),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub async fn delete_subscription(&self, webhook_id: i64) -> Result<(), ClientError> {
        self.send(
            Method::DELETE,
            &format!("/api/webhooks/outgoing/{webhook_id}"),
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn subscription(&self, id: i64) -> Result<Subscription, ClientError> {
        self.get(&format!("/api/webhooks/outgoing/{id}")).await
    }

    /// One subscription's deliveries in one status.
    pub async fn deliveries_of(
        &self,
        webhook_id: i64,
        status: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>, ClientError> {
        self.get(&format!(
            "/api/deliveries?status={status}&webhook_id={webhook_id}&limit={limit}"
        ))
        .await
    }

    /// A subscription's latest attempts, newest first.
    pub async fn outgoing_logs(
        &self,
        id: i64,
        limit: u32,
    ) -> Result<Vec<OutgoingLog>, ClientError> {
        self.get(&format!(
            "/api/webhooks/{id}/logs?webhook_type=outgoing&limit={limit}"
        ))
        .await
    }

    pub async fn scenarios(&self) -> Result<Vec<crate::api::Scenario>, ClientError> {
        self.get_all("/api/scenarios").await
    }

    /// The token's user's credentials: names and modes, never values.
    pub async fn credentials(&self) -> Result<Vec<crate::api::Credential>, ClientError> {
        self.get_all("/api/credentials").await
    }

    pub async fn incoming(&self) -> Result<Vec<IncomingWebhook>, ClientError> {
        self.get_all("/api/webhooks/incoming").await
    }

    /// An endpoint's request log; `kind` is `incoming` or `agent`.
    pub async fn inbound_logs(
        &self,
        id: i64,
        kind: &str,
        limit: u32,
    ) -> Result<Vec<InboundLog>, ClientError> {
        self.get(&format!(
            "/api/webhooks/{id}/logs?webhook_type={kind}&limit={limit}"
        ))
        .await
    }

    pub async fn inbound_stats(&self, id: i64, kind: &str) -> Result<InboundStats, ClientError> {
        self.get(&format!(
            "/api/webhooks/{id}/statistics?webhook_type={kind}"
        ))
        .await
    }

    pub async fn agents(&self) -> Result<Vec<Agent>, ClientError> {
        self.get_all("/api/agents").await
    }

    pub async fn agent(&self, id: i64) -> Result<Agent, ClientError> {
        self.get(&format!("/api/agents/{id}")).await
    }

    pub async fn agent_logs(&self, id: i64, limit: u32) -> Result<Vec<AgentLog>, ClientError> {
        self.get(&format!("/api/agents/{id}/logs?limit={limit}"))
            .await
    }

    pub async fn set_agent_disabled(&self, id: i64, disabled: bool) -> Result<(), ClientError> {
        self.send(
            Method::PATCH,
            &format!("/api/agents/{id}"),
            Some(json!({ "disabled": disabled })),
        )
        .await
        .map(|_| ())
    }

    pub async fn run_agent(&self, id: i64) -> Result<(), ClientError> {
        self.send(Method::POST, &format!("/api/agents/{id}/run"), None)
            .await
            .map(|_| ())
    }

    pub async fn clear_agent_memory(&self, id: i64) -> Result<(), ClientError> {
        self.send(Method::DELETE, &format!("/api/agents/{id}/memory"), None)
            .await
            .map(|_| ())
    }

    /// Opens `GET /api/stream`; yields items until the connection ends.
    pub async fn stream(
        &self,
    ) -> Result<impl Stream<Item = Result<StreamItem, ClientError>> + use<>, ClientError> {
        let resp = self
            .http
            .get(format!("{}/api/stream", self.base))
            .insert_header(("Authorization", format!("Bearer {}", self.token)))
            .insert_header(("Accept", "text/event-stream"))
            .send()
            .await
            .map_err(|e| ClientError::Disconnected(e.to_string()))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(ClientError::Unauthorized {
                status,
                message: "the stream refused the token".into(),
            });
        }
        if status != 200 {
            return Err(ClientError::Api {
                status,
                message: "the stream is not available".into(),
            });
        }
        let mut parser = SseParser::default();
        Ok(resp.flat_map(move |chunk| {
            let items: Vec<Result<StreamItem, ClientError>> = match chunk {
                Ok(bytes) => parser.push(&bytes),
                Err(e) => vec![Err(ClientError::Disconnected(e.to_string()))],
            };
            futures_util::stream::iter(items)
        }))
    }
}

/// Splits a Server-Sent Events byte stream into items.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: String,
    event: String,
    data: String,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<StreamItem, ClientError>> {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        let mut out = Vec::new();
        while let Some(pos) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=pos).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let (event, data) = (
                    std::mem::take(&mut self.event),
                    std::mem::take(&mut self.data),
                );
                match event.as_str() {
                    "event" | "delivery" => out.push(
                        serde_json::from_str(&data).map_err(|e| ClientError::Decode(e.to_string())),
                    ),
                    "lagged" => {
                        let skipped = serde_json::from_str::<Value>(&data)
                            .ok()
                            .and_then(|v| v.get("skipped").and_then(Value::as_u64))
                            .unwrap_or(0);
                        out.push(Ok(StreamItem::Lagged { skipped }));
                    }
                    _ => {}
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                self.event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(v.trim_start());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_reassembles_split_frames() {
        let mut p = SseParser::default();
        assert!(
            p.push(b"event: hello\ndata: {}\n\n: keep-alive\n\nevent: ev")
                .is_empty()
        );
        let items = p.push(
            b"ent\ndata: {\"kind\":\"event\",\"id\":3,\"user_id\":1,\"agent_id\":null,\"event_type\":\"t\",\"created_at\":\"x\",\"payload\":{}}\n\nevent: lagged\ndata: {\"skipped\":5}\n\n",
        );
        assert_eq!(items.len(), 2);
        assert!(matches!(items[0], Ok(StreamItem::Event { id: 3, .. })));
        assert_eq!(items[1], Ok(StreamItem::Lagged { skipped: 5 }));
    }

    #[test]
    fn error_bodies_give_their_sentence_in_either_shape() {
        assert_eq!(
            error_message(br#"{"error": {"code": "not_found", "message": "agent 9 not found"}}"#),
            "agent 9 not found"
        );
        assert_eq!(error_message(br#"{"error": "old shape"}"#), "old shape");
        assert_eq!(error_message(b"Not Authorized"), "Not Authorized");
    }
}
