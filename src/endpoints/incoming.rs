//! `IncomingEndpoint`: the EndpointActor of one incoming webhook (`POST /webhook/{token}`).
//! It owns the endpoint's guard (verbs, IP allowlist, rate limit, size), signature
//! check, transform and idempotency, and hands the event to the Writer. The event is a
//! `webhook.received` event of the owner with no source agent, addressed to the target
//! agent through `events.target_agent_id`: the Router pushes it to that agent after
//! commit, and the agent's catch-up reads it back after a crash, so a 2xx means the
//! event is committed and will be handled.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde_json::{Value, json};

use super::guard::{Guard, InboundSettings, ProtectionOptions, Refusal, too_large};
use super::log::{LogBuffer, Outcome};
use super::request::body_value;
use super::transform::Transform;
use super::{Admit, InboundRequest, NoteTooLarge, WebResponse};
use crate::event_types::WEBHOOK_RECEIVED;
use crate::secrets::{Keyring, purpose};
use crate::store::events::NewEvent;
use crate::store::idempotency_keys;
use crate::store::incoming_webhooks::IncomingRow;
use crate::store::{Answer, Store, StoreError, from_json_text};

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The stored options of an incoming webhook, checked and compiled.
pub struct Compiled {
    pub protections: ProtectionOptions,
    pub transform: Option<Transform>,
    pub response_headers: Vec<(String, String)>,
}

/// Checks a `response_headers` object: names and values must be valid HTTP headers.
pub fn parse_response_headers(v: &Value) -> Result<Vec<(String, String)>, String> {
    let map = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) => m,
        _ => return Err("response_headers must be an object of header names to values".into()),
    };
    map.iter()
        .map(|(k, v)| {
            let value = v
                .as_str()
                .ok_or_else(|| format!("response_headers: the value of {k:?} must be a string"))?;
            if actix_web::http::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || actix_web::http::header::HeaderValue::from_str(value).is_err()
            {
                return Err(format!(
                    "response_headers: {k:?}: {value:?} is not a valid HTTP header"
                ));
            }
            Ok((k.clone(), value.to_string()))
        })
        .collect()
}

/// Compiles a row's options; the error says which option is wrong and why. A signature
/// secret that does not open is such an error, so the endpoint refuses every request
/// rather than accept unverified ones.
pub fn compile(row: &IncomingRow, keys: &Keyring) -> Result<Compiled, String> {
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
            from_json_text(ips, "incoming_webhooks.allowed_ips").map_err(|e| e.to_string())?,
        );
    }
    if let Some(sig) = &row.signature {
        let clear = keys
            .open(purpose::INCOMING_SIGNATURE, sig)
            .map_err(|e| format!("signature: {e}"))?;
        obj.insert(
            "signature".into(),
            from_json_text(&clear, "incoming_webhooks.signature").map_err(|e| e.to_string())?,
        );
    }
    let protections = ProtectionOptions::from_json(&Value::Object(obj), None)?;
    let response_headers = match &row.response_headers {
        Some(h) => parse_response_headers(
            &from_json_text(h, "incoming_webhooks.response_headers").map_err(|e| e.to_string())?,
        )?,
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

pub fn endpoint_key(id: i64) -> String {
    crate::store::inbound_log::incoming_endpoint(id)
}

pub struct IncomingEndpoint {
    id: i64,
    user_id: i64,
    agent_id: i64,
    active: bool,
    compiled: Result<(Guard, Option<Arc<Transform>>), String>,
    response_headers: Vec<(String, String)>,
    settings: Arc<InboundSettings>,
    store: Store,
    agent_exists: AgentExists,
    log: LogBuffer,
}

/// Asks the hub whether an agent is still there (the webhook's agent may be deleted
/// before the webhook is). Passed in, so this subsystem does not depend on the hub.
pub type AgentExists = Arc<dyn Fn(i64) -> bool + Send + Sync>;

impl IncomingEndpoint {
    pub fn new(
        row: &IncomingRow,
        store: Store,
        agent_exists: AgentExists,
        settings: Arc<InboundSettings>,
    ) -> Self {
        let mut actor = IncomingEndpoint {
            id: row.id,
            user_id: row.user_id,
            agent_id: row.agent_id,
            active: row.is_active,
            compiled: Err("not loaded".into()),
            response_headers: Vec::new(),
            log: LogBuffer::new(endpoint_key(row.id), store.clone(), settings.log_retention),
            settings,
            store,
            agent_exists,
        };
        actor.configure(row);
        actor
    }

    fn configure(&mut self, row: &IncomingRow) {
        self.agent_id = row.agent_id;
        self.active = row.is_active;
        self.compiled = compile(row, self.store.keys()).map(|c| {
            self.response_headers = c.response_headers;
            (
                Guard::new(c.protections, &self.settings)
                    .named(format!("incoming webhook {}", row.id)),
                c.transform.map(Arc::new),
            )
        });
        if let Err(e) = &self.compiled {
            tracing::error!(incoming_webhook = row.id, error = %e, "incoming webhook has invalid options; it answers 503 until they are fixed");
        }
    }

    fn refuse(
        &mut self,
        req_method: &str,
        ip: Option<std::net::IpAddr>,
        received: std::time::Instant,
        reason: &str,
        r: WebResponse,
    ) -> WebResponse {
        self.log.record(Outcome {
            ip,
            method: req_method,
            status: r.status,
            reason: Some(reason),
            detail: Some(&r.body),
            started: received,
            event_ids: Vec::new(),
        });
        self.decorate(r)
    }

    /// Adds the endpoint's `response_headers` to an answer.
    fn decorate(&self, mut r: WebResponse) -> WebResponse {
        r.headers.extend(self.response_headers.iter().cloned());
        r
    }
}

impl Actor for IncomingEndpoint {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(FLUSH_EVERY, |act, _| act.log.flush());
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.log.flush_all();
        Running::Stop
    }
}

impl Supervised for IncomingEndpoint {}

/// The incoming webhook's row changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReconfigureIncoming(pub IncomingRow);

impl Handler<ReconfigureIncoming> for IncomingEndpoint {
    type Result = ();

    fn handle(&mut self, msg: ReconfigureIncoming, _: &mut Context<Self>) {
        self.configure(&msg.0);
    }
}

/// The incoming webhook was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopIncoming;

impl Handler<StopIncoming> for IncomingEndpoint {
    type Result = ();

    fn handle(&mut self, _: StopIncoming, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// A reader of the log is waiting: send the waiting lines to the Writer now, so the
/// read shows every request answered before it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushIncomingLog;

impl Handler<FlushIncomingLog> for IncomingEndpoint {
    type Result = ();

    fn handle(&mut self, _: FlushIncomingLog, _: &mut Context<Self>) {
        self.log.flush_all();
    }
}

fn not_found() -> WebResponse {
    WebResponse::text(404, "unknown or inactive webhook token")
}

impl Handler<Admit> for IncomingEndpoint {
    type Result = Result<usize, WebResponse>;

    fn handle(&mut self, msg: Admit, _: &mut Context<Self>) -> Self::Result {
        if !self.active || !(self.agent_exists)(self.agent_id) {
            return Err(not_found());
        }
        if msg.method == "OPTIONS" {
            // CORS preflight: answered from the endpoint's response_headers.
            return Err(self.decorate(
                WebResponse::text(204, "")
                    .with_header("Allow", "POST, OPTIONS")
                    .with_header("Access-Control-Allow-Methods", "POST, OPTIONS"),
            ));
        }
        if msg.method != "POST" {
            let r = WebResponse::text(
                405,
                format!("use POST to send to this webhook (got {})", msg.method),
            )
            .with_header("Allow", "POST, OPTIONS");
            return Err(self.refuse(&msg.method, msg.ip, msg.received, "method_not_allowed", r));
        }
        let guard = match &mut self.compiled {
            Ok((g, _)) => g,
            Err(e) => {
                return Err(WebResponse::text(
                    503,
                    format!("this webhook's options are invalid ({e}); fix them and retry"),
                ));
            }
        };
        match guard.admit(msg.ip, msg.content_length) {
            Ok(limit) => Ok(limit),
            Err((refusal, r)) => {
                Err(self.refuse(&msg.method, msg.ip, msg.received, refusal.reason(), r))
            }
        }
    }
}

impl Handler<NoteTooLarge> for IncomingEndpoint {
    type Result = ();

    fn handle(&mut self, msg: NoteTooLarge, _: &mut Context<Self>) {
        let limit = self.compiled.as_ref().map_or(0, |(g, _)| g.max_body_bytes);
        self.refuse(
            &msg.method,
            msg.ip,
            msg.received,
            Refusal::TooLarge.reason(),
            too_large(limit),
        );
    }
}

/// A request admitted by [`Admit`], with its body read.
#[derive(Message)]
#[rtype(result = "WebResponse")]
pub struct HandleIncoming(pub InboundRequest);

/// What the write job decided.
struct Stored {
    response: WebResponse,
    event_ids: Vec<i64>,
    replayed: bool,
}

pub fn store_failure(e: &StoreError) -> WebResponse {
    match (e, e.answer()) {
        (StoreError::Overloaded(_), _) => WebResponse::text(
            503,
            "muninn is busy storing earlier requests; retry in a moment",
        )
        .with_header("Retry-After", "1"),
        (StoreError::DatabaseGone(reason), _) => {
            WebResponse::text(503, reason.clone()).with_header("Retry-After", "60")
        }
        (_, Answer::RetryLater(after)) => WebResponse::text(
            503,
            "muninn is busy or shutting down; nothing was saved, retry in a moment",
        )
        .with_header("Retry-After", after.to_string()),
        (other, Answer::Internal) => {
            tracing::error!(error = %other, "storing an inbound event failed");
            WebResponse::text(
                500,
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
        Some(k) if k.trim().is_empty() || k.len() > MAX_IDEMPOTENCY_KEY => Err(WebResponse::text(
            400,
            format!("the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
        )),
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
    }
}

impl Handler<HandleIncoming> for IncomingEndpoint {
    type Result = ResponseActFuture<Self, WebResponse>;

    fn handle(&mut self, msg: HandleIncoming, _: &mut Context<Self>) -> Self::Result {
        let req = msg.0;
        let (method, ip, received) = (req.method.clone(), req.client_ip, req.received);
        let (key, data, transform) = match self.check(&req) {
            Ok(c) => c,
            Err((reason, r)) => {
                let r = self.refuse(&method, ip, received, reason, r);
                return Box::pin(actix::fut::ready(r));
            }
        };
        let id = self.id;
        let shaped: Shaping = match transform {
            None => Box::pin(std::future::ready(Ok(data))),
            // The transform is user-written: bounded by the template sandbox, it still
            // runs on the blocking pool so that it never holds this actor's thread,
            // which other users' endpoints, agents and subscriptions share.
            Some(t) => {
                let (headers, query) = (req.headers, req.query);
                Box::pin(async move {
                    actix_web::web::block(move || t.apply(&data, &headers, &query))
                        .await
                        .unwrap_or_else(|_| Err("the transform could not run; retry later".into()))
                        .map_err(|e| {
                            tracing::warn!(incoming_webhook = id, error = %e, "transform_template failed; answered 422 and stored nothing");
                            ("transform_failed", WebResponse::text(422, e))
                        })
                })
            }
        };
        Box::pin(
            shaped
                .into_actor(self)
                .then(move |res, act, _| {
                    let write = res.and_then(|payload| act.start_write(key, payload));
                    async move {
                        match write {
                            Ok(w) => w.await.map_err(|e| ("store_failed", store_failure(&e))),
                            Err(e) => Err(e),
                        }
                    }
                    .into_actor(act)
                })
                .map(move |res, act, _| match res {
                    Ok(stored) => {
                        act.log.record(Outcome {
                            ip,
                            method: &method,
                            status: stored.response.status,
                            reason: stored.replayed.then_some("duplicate"),
                            detail: None,
                            started: received,
                            event_ids: stored.event_ids,
                        });
                        act.decorate(stored.response)
                    }
                    Err((reason, r)) => act.refuse(&method, ip, received, reason, r),
                }),
        )
    }
}

/// A request's payload once its transform (if any) ran.
type Shaping = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Value, (&'static str, WebResponse)>>>,
>;

type PendingWrite =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Stored, StoreError>> + Send>>;

impl IncomingEndpoint {
    /// Signature, idempotency key and body: what comes before the transform.
    #[allow(clippy::type_complexity)]
    fn check(
        &self,
        req: &InboundRequest,
    ) -> Result<(Option<String>, Value, Option<Arc<Transform>>), (&'static str, WebResponse)> {
        let (guard, transform) = self.compiled.as_ref().map_err(|e| {
            (
                "invalid_options",
                WebResponse::text(503, format!("this webhook's options are invalid ({e})")),
            )
        })?;
        let standard = guard
            .options
            .signature
            .as_ref()
            .is_some_and(|s| s.scheme == super::signature::Scheme::Standard);
        if let Some(check) = &guard.options.signature {
            let now = chrono::Utc::now().timestamp();
            check
                .verify(|n| req.header(n), &req.body, now)
                .map_err(|e| {
                    let reason = if e.stale {
                        "stale_timestamp"
                    } else {
                        "bad_signature"
                    };
                    (reason, WebResponse::text(401, e.message))
                })?;
        }
        let key = idempotency_key(req, standard).map_err(|r| ("bad_request", r))?;
        let data = body_value(req).map_err(|r| {
            let reason = if r.status == 415 {
                "unsupported_media_type"
            } else {
                "bad_request"
            };
            (reason, r)
        })?;
        Ok((key, data, transform.clone()))
    }

    /// The write job of a request's payload (idempotency + event).
    fn start_write(
        &self,
        key: Option<String>,
        payload: Value,
    ) -> Result<PendingWrite, (&'static str, WebResponse)> {
        let new = NewEvent {
            user_id: self.user_id,
            agent_id: None,
            event_type: WEBHOOK_RECEIVED.to_string(),
            payload: NewEvent::payload_text(&payload),
            keep_for_seconds: 0,
        };
        let (id, target, window) = (
            self.id,
            self.agent_id,
            self.settings.idempotency_window_seconds,
        );
        let endpoint = endpoint_key(id);
        let write = self
            .store
            .writer()
            .try_write_repeatable(move |conn, out| {
                if let Some(k) = &key
                    && let Some(row) = idempotency_keys::find(conn, &endpoint, k)?
                {
                    return Ok(Stored { response: replay(row), event_ids: Vec::new(), replayed: true });
                }
                let rows = out.insert_targeted(conn, std::slice::from_ref(&new), 0, Some(target))?;
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                let response = WebResponse::json(
                    200,
                    &json!({"success": true, "webhook_id": id, "event_id": ids.first(), "event_ids": ids}),
                );
                if let Some(k) = &key {
                    idempotency_keys::insert(conn, &endpoint, k, response.status, &response.body, &response.content_type, window)?;
                }
                Ok(Stored { response, event_ids: ids, replayed: false })
            })
            .map_err(|e| ("store_failed", store_failure(&e)))?;
        Ok(Box::pin(write))
    }
}
