//! `EndpointActor`: one per `webhook` agent's Huginn URL (incoming webhooks have
//! `IncomingEndpoint`). Before the body is read it checks the IP allowlist, rate limit
//! and declared size ([`Admit`]); then it authenticates (secret, verb, signature,
//! reCAPTCHA), parses and splits the request, hands the events to the Writer (with the
//! idempotency key, if any) and answers only once they are committed. The handler does
//! not wait inside the actor: it returns a future, so many requests to one endpoint
//! share one group commit.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::NaiveDateTime;

use super::guard::{Guard, InboundSettings, Refusal, too_large};
use super::incoming::{idempotency_key, replay, store_failure};
use super::log::{LogBuffer, Outcome};
use super::signature::Scheme;
use super::{Admit, InboundRequest, NoteTooLarge, Rejection, WebResponse, params};
use crate::agents::webhook::Webhook;
use crate::agents::{OptionError, emitted_event_type};
use crate::store::agent_logs::{self, LEVEL_ERROR, NewLog};
use crate::store::agents::{self as agents_table, AgentRow};
use crate::store::events::NewEvent;
use crate::store::idempotency_keys;
use crate::store::{Store, StoreError};

/// How often the time of the last web request is written back (not once per request).
const FLUSH_EVERY: Duration = Duration::from_secs(5);

pub struct EndpointActor {
    agent_id: i64,
    user_id: i64,
    webhook: Result<Arc<Webhook>, OptionError>,
    event_type: String,
    keep_events_for: i64,
    store: Store,
    log_length: i64,
    last_request_at: Option<NaiveDateTime>,
    flushed: bool,
    inbound: Arc<InboundSettings>,
    guard: Option<Guard>,
    log: LogBuffer,
}

pub fn endpoint_key(agent_id: i64) -> String {
    format!("agent:{agent_id}")
}

impl EndpointActor {
    pub fn new(
        row: &AgentRow,
        store: Store,
        log_length: i64,
        inbound: Arc<InboundSettings>,
    ) -> Self {
        let mut actor = EndpointActor {
            log: LogBuffer::new(endpoint_key(row.id), store.clone(), inbound.log_retention),
            inbound,
            guard: None,
            agent_id: row.id,
            user_id: row.user_id,
            webhook: Err(OptionError::new("options", "not loaded")),
            event_type: String::new(),
            keep_events_for: 0,
            store,
            log_length,
            last_request_at: None,
            flushed: true,
        };
        actor.configure(row);
        actor
    }

    fn configure(&mut self, row: &AgentRow) {
        let options = row
            .options_json()
            .map_err(|e| OptionError::new("options", e.to_string()));
        self.event_type = options
            .as_ref()
            .map(emitted_event_type)
            .unwrap_or_else(|_| "event.created".into());
        self.webhook = options.and_then(|o| Webhook::new(&o)).map(Arc::new);
        self.guard = self
            .webhook
            .as_ref()
            .ok()
            .map(|w| Guard::new(w.protections.clone(), &self.inbound));
        self.keep_events_for = row.keep_events_for;
        if let Err(e) = &self.webhook {
            tracing::error!(agent_id = row.id, error = %e, "webhook agent has invalid options; its URL answers 503 until they are fixed");
        }
    }

    fn flush_last_request(&mut self) {
        if self.flushed {
            return;
        }
        if let Some(at) = self.last_request_at {
            self.flushed = true;
            let id = self.agent_id;
            let write = self
                .store
                .writer()
                .write(move |c, _| agents_table::note_web_request(c, id, at));
            actix::spawn(async move {
                if let Err(e) = write.await {
                    tracing::warn!(agent_id = id, error = %e, "could not record the last web request time");
                }
            });
        }
    }
}

impl Actor for EndpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(FLUSH_EVERY, |act, _| act.flush_last_request());
        ctx.run_interval(Duration::from_secs(1), |act, _| act.log.flush());
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.flush_last_request();
        self.log.flush();
        Running::Stop
    }
}

impl Supervised for EndpointActor {}

/// One request to the endpoint's URL; `secret` is the URL's last segment.
#[derive(Message)]
#[rtype(result = "WebResponse")]
pub struct HandleWebRequest {
    pub secret: String,
    pub request: InboundRequest,
}

/// The agent behind the endpoint changed; take its new options.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub AgentRow);

impl Handler<Reconfigure> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
        self.configure(&msg.0);
    }
}

impl Handler<Admit> for EndpointActor {
    type Result = Result<usize, WebResponse>;

    fn handle(&mut self, msg: Admit, _: &mut Context<Self>) -> Self::Result {
        let Ok(webhook) = &self.webhook else {
            return Ok(self.inbound.max_body_bytes);
        };
        if msg.method == "OPTIONS" {
            // CORS preflight: answered from the agent's response_headers.
            let mut r = WebResponse::text(200, "");
            r.headers = webhook.response_headers().to_vec();
            return Err(r);
        }
        if let Some(secret) = &msg.secret
            && let Err(r) = webhook.authorize(secret, &msg.method)
        {
            self.note(
                &msg.method,
                msg.ip,
                msg.received,
                Some("unauthorized"),
                &r,
                Vec::new(),
            );
            return Err(r);
        }
        let Some(guard) = &mut self.guard else {
            return Ok(self.inbound.max_body_bytes);
        };
        match guard.admit(msg.ip, msg.content_length) {
            Ok(limit) => Ok(limit),
            Err((refusal, r)) => {
                self.note(
                    &msg.method,
                    msg.ip,
                    msg.received,
                    Some(refusal.reason()),
                    &r,
                    Vec::new(),
                );
                Err(r)
            }
        }
    }
}

impl Handler<NoteTooLarge> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: NoteTooLarge, _: &mut Context<Self>) {
        let limit = self
            .guard
            .as_ref()
            .map_or(self.inbound.max_body_bytes, |g| g.max_body_bytes);
        self.note(
            &msg.method,
            msg.ip,
            msg.received,
            Some(Refusal::TooLarge.reason()),
            &too_large(limit),
            Vec::new(),
        );
    }
}

impl Handler<HandleWebRequest> for EndpointActor {
    type Result = ResponseActFuture<Self, WebResponse>;

    fn handle(&mut self, msg: HandleWebRequest, _: &mut Context<Self>) -> Self::Result {
        self.last_request_at = Some(crate::store::now());
        self.flushed = false;
        let (method, ip, received) = (
            msg.request.method.clone(),
            msg.request.client_ip,
            msg.request.received,
        );
        let outcome = self.prepare(msg);
        let verify_url = self.inbound.recaptcha_verify_url.clone();
        let fut = async move {
            let (write, response, captcha) = outcome?;
            if let Some(c) = captcha {
                super::recaptcha::verify(&verify_url, c)
                    .await
                    .map_err(|r| ("recaptcha_failed", r))?;
            }
            let write = write().map_err(|e| ("store_failed", store_failure(&e)))?;
            match write.await {
                Ok(stored) => Ok(match stored {
                    Written::Replayed(r) => (r, None, Vec::new()),
                    Written::Events(ids) => (response, Some(()), ids),
                }),
                Err(e) => Err(("store_failed", store_failure(&e))),
            }
        };
        Box::pin(fut.into_actor(self).map(move |res, act, _| match res {
            Ok((r, fresh, ids)) => {
                let reason = fresh.is_none().then_some("duplicate");
                act.note(&method, ip, received, reason, &r, ids);
                r
            }
            Err((reason, r)) => {
                act.note(&method, ip, received, Some(reason), &r, Vec::new());
                r
            }
        }))
    }
}

/// What the write job did.
enum Written {
    Events(Vec<i64>),
    Replayed(WebResponse),
}

type PendingWrite =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Written, StoreError>>>>;
type StartWrite = Box<dyn FnOnce() -> Result<PendingWrite, StoreError>>;
type Prepared = (StartWrite, WebResponse, Option<super::recaptcha::Check>);

impl EndpointActor {
    fn note(
        &mut self,
        method: &str,
        ip: Option<std::net::IpAddr>,
        started: std::time::Instant,
        reason: Option<&str>,
        r: &WebResponse,
        event_ids: Vec<i64>,
    ) {
        let failed = r.status >= 400;
        self.log.record(Outcome {
            ip,
            method,
            status: r.status,
            reason: reason.or(failed.then_some("rejected")),
            detail: failed.then_some(r.body.as_str()),
            started,
            event_ids,
        });
    }

    /// Everything up to handing the events to the Writer; synchronous and CPU-only.
    /// The write itself starts after the (optional) reCAPTCHA check.
    fn prepare(&self, msg: HandleWebRequest) -> Result<Prepared, (&'static str, Rejection)> {
        let webhook = match &self.webhook {
            Ok(w) => w.clone(),
            Err(e) => {
                return Err((
                    "invalid_options",
                    WebResponse::text(
                        503,
                        format!("This agent's options are invalid ({e}); fix them and retry"),
                    ),
                ));
            }
        };
        webhook
            .authorize(&msg.secret, &msg.request.method)
            .map_err(|r| ("unauthorized", r))?;
        let standard = webhook
            .protections
            .signature
            .as_ref()
            .is_some_and(|s| s.scheme == Scheme::Standard);
        if let Some(check) = &webhook.protections.signature {
            let now = chrono::Utc::now().timestamp();
            check
                .verify(|n| msg.request.header(n), &msg.request.body, now)
                .map_err(|e| {
                    let reason = if e.stale {
                        "stale_timestamp"
                    } else {
                        "bad_signature"
                    };
                    (reason, WebResponse::text(401, e.message))
                })?;
        }
        let key = idempotency_key(&msg.request, standard).map_err(|r| ("bad_request", r))?;
        let mut params = params(&msg.request).map_err(|r| ("bad_request", r))?;
        let captcha = match &webhook.recaptcha {
            None => None,
            Some(rc) => Some(
                super::recaptcha::take(rc, &mut params, msg.request.client_ip)
                    .map_err(|r| ("recaptcha_failed", r))?,
            ),
        };
        let payloads = webhook
            .payloads(&params, &msg.request.headers)
            .map_err(|r| ("bad_request", r))?;
        let (response, render_error) = webhook.response(&params, &msg.request.url);
        let new: Vec<NewEvent> = payloads
            .into_iter()
            .map(|payload| NewEvent {
                user_id: self.user_id,
                agent_id: Some(self.agent_id),
                event_type: self.event_type.clone(),
                payload,
                keep_for_seconds: self.keep_events_for,
            })
            .collect();
        let agent_id = self.agent_id;
        let log_length = self.log_length;
        let writer = self.store.writer().clone();
        let window = self.inbound.idempotency_window_seconds;
        let stored = response.clone();
        let start: StartWrite = Box::new(move || {
            let endpoint = endpoint_key(agent_id);
            let write = writer.try_write(move |conn, out| {
                if let Some(k) = &key
                    && let Some(row) = idempotency_keys::find(conn, &endpoint, k)?
                {
                    return Ok(Written::Replayed(replay(row)));
                }
                let rows = out.insert(conn, &new, 0)?;
                agents_table::note_emitted(conn, agent_id, rows.len() as i64)?;
                let ids = rows.iter().map(|r| r.id).collect();
                if let Some(message) = render_error {
                    agent_logs::append(
                        conn,
                        agent_id,
                        &[NewLog {
                            level: LEVEL_ERROR,
                            message,
                            inbound_event_id: None,
                        }],
                        log_length,
                    )?;
                }
                if let Some(k) = &key
                    && stored.location.is_none()
                {
                    idempotency_keys::insert(
                        conn,
                        &endpoint,
                        k,
                        stored.status,
                        &stored.body,
                        &stored.content_type,
                        window,
                    )?;
                }
                Ok(Written::Events(ids))
            })?;
            Ok(Box::pin(write) as PendingWrite)
        });
        Ok((start, response, captcha))
    }
}
