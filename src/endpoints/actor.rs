//! One `webhook` agent's Huginn URL (incoming webhooks have `IncomingEndpoint`).
//!
//! Before the body is read it checks the IP allowlist, rate limit and declared size
//! ([`Admit`]); then it authenticates (secret, verb, signature, reCAPTCHA), parses and
//! splits the request, hands the events to the Writer (with the idempotency key, if
//! any) and answers only once they are committed.
//!
//! The request path runs on the HTTP worker that received the request, against the
//! endpoint's [`EndpointCore`]; it does not pass through the actor's mailbox. Two
//! mailbox round trips per request (admit, then handle) were four thread switches, and
//! under load they cost more than the request's share of the group commit. The
//! [`EndpointActor`] owns the core's lifecycle: it is supervised, takes
//! reconfiguration, and flushes the request log and the last-request time on timers
//! and when it stops. The core's lock is held only for the in-memory checks and log
//! lines, never across parsing or a write.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::prelude::*;
use chrono::NaiveDateTime;

use super::guard::{Guard, InboundSettings, Refusal, too_large};
use super::incoming::{idempotency_key, replay, store_failure};
use super::log::{LogBuffer, Outcome};
use super::signature::Scheme;
use super::webhook::Webhook;
use super::{Admit, InboundRequest, NoteTooLarge, Rejection, WebResponse, params};
use crate::options::{OptionError, emitted_event_type};
use crate::store::agent_logs::{self, LEVEL_ERROR, NewLog};
use crate::store::agents::{self as agents_table, AgentRow};
use crate::store::events::NewEvent;
use crate::store::idempotency_keys;
use crate::store::{Store, StoreError};

/// How often the time of the last web request is written back (not once per request).
const FLUSH_EVERY: Duration = Duration::from_secs(5);

pub fn endpoint_key(agent_id: i64) -> String {
    crate::store::inbound_log::agent_endpoint(agent_id)
}

/// What the agent's options say; replaced as a whole when they change, so a request
/// in flight finishes with the options it started with.
struct Config {
    webhook: Result<Arc<Webhook>, OptionError>,
    event_type: String,
    keep_events_for: i64,
}

/// What changes per request.
struct State {
    config: Arc<Config>,
    guard: Option<Guard>,
    log: LogBuffer,
    last_request_at: Option<NaiveDateTime>,
    flushed: bool,
}

/// The endpoint's data and request path, shared by its actor and the HTTP workers.
pub struct EndpointCore {
    agent_id: i64,
    user_id: i64,
    store: Store,
    log_length: i64,
    inbound: Arc<InboundSettings>,
    state: Mutex<State>,
}

/// How the rest of the hub holds an endpoint: the core for requests, the actor for
/// its lifecycle.
#[derive(Clone)]
pub struct Endpoint {
    pub core: Arc<EndpointCore>,
    pub addr: Addr<EndpointActor>,
}

impl EndpointCore {
    pub fn new(
        row: &AgentRow,
        store: Store,
        log_length: i64,
        inbound: Arc<InboundSettings>,
    ) -> EndpointCore {
        let (config, guard) = configuration(row, &inbound);
        EndpointCore {
            agent_id: row.id,
            user_id: row.user_id,
            state: Mutex::new(State {
                config: Arc::new(config),
                guard,
                log: LogBuffer::new(endpoint_key(row.id), store.clone(), inbound.log_retention),
                last_request_at: None,
                flushed: true,
            }),
            store,
            log_length,
            inbound,
        }
    }

    /// The state, even after a panic while it was held: every field stays valid
    /// between statements, and the endpoint must keep answering.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the agent's new options (a new rate-limit bucket with them).
    pub fn configure(&self, row: &AgentRow) {
        let (config, guard) = configuration(row, &self.inbound);
        let mut state = self.state();
        state.config = Arc::new(config);
        state.guard = guard;
    }

    /// Whether the endpoint answers with a redirect (and so needs the request's URL).
    pub fn redirects(&self) -> bool {
        self.state()
            .config
            .webhook
            .as_ref()
            .is_ok_and(|w| w.redirects())
    }

    /// The pre-body checks: CORS preflight, secret and verb, IP allowlist, rate limit,
    /// declared size. Answers the body limit to read with, or the answer to send.
    pub fn admit(&self, msg: Admit) -> Result<usize, WebResponse> {
        let mut state = self.state();
        let config = state.config.clone();
        let Ok(webhook) = &config.webhook else {
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
            note(
                &mut state,
                &msg.method,
                msg.ip,
                msg.received,
                Some("unauthorized"),
                &r,
                Vec::new(),
            );
            return Err(r);
        }
        let Some(guard) = &mut state.guard else {
            return Ok(self.inbound.max_body_bytes);
        };
        match guard.admit(msg.ip, msg.content_length) {
            Ok(limit) => Ok(limit),
            Err((refusal, r)) => {
                note(
                    &mut state,
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

    /// The body grew past the limit while it was read; log it.
    pub fn note_too_large(&self, msg: NoteTooLarge) {
        let mut state = self.state();
        let limit = state
            .guard
            .as_ref()
            .map_or(self.inbound.max_body_bytes, |g| g.max_body_bytes);
        note(
            &mut state,
            &msg.method,
            msg.ip,
            msg.received,
            Some(Refusal::TooLarge.reason()),
            &too_large(limit),
            Vec::new(),
        );
    }

    /// Authenticates, parses and stores one request; resolves once its events are
    /// committed (or it was refused).
    pub async fn handle(&self, msg: HandleWebRequest) -> WebResponse {
        let (method, ip, received) = (
            msg.request.method.clone(),
            msg.request.client_ip,
            msg.request.received,
        );
        let config = {
            let mut state = self.state();
            state.last_request_at = Some(crate::store::now());
            state.flushed = false;
            state.config.clone()
        };
        let outcome = match self.check(&config, msg) {
            Ok(checked) => shape_off_worker(checked)
                .await
                .map(|shaped| self.start_write(&config, shaped)),
            Err(e) => Err(e),
        };
        let verify_url = self.inbound.recaptcha_verify_url.clone();
        let res = async move {
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
        }
        .await;
        let mut state = self.state();
        match res {
            Ok((r, fresh, ids)) => {
                let reason = fresh.is_none().then_some("duplicate");
                note(&mut state, &method, ip, received, reason, &r, ids);
                r
            }
            Err((reason, r)) => {
                note(
                    &mut state,
                    &method,
                    ip,
                    received,
                    Some(reason),
                    &r,
                    Vec::new(),
                );
                r
            }
        }
    }

    /// Sends the waiting log lines to the Writer at once, for a reader of the log.
    pub fn flush_log_for_read(&self) {
        self.state().log.flush_all();
    }

    /// Sends the waiting log lines to the Writer (unless a batch is still queued there).
    fn flush_log(&self) {
        self.state().log.flush();
    }

    /// Writes back the time of the last web request, if it changed since last time.
    fn flush_last_request(&self) {
        let at = {
            let mut state = self.state();
            if state.flushed {
                return;
            }
            state.flushed = true;
            state.last_request_at
        };
        let Some(at) = at else { return };
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

    /// The request's checks (secret, verb, signature, idempotency key, reCAPTCHA field)
    /// and its params; synchronous and cheap.
    fn check(
        &self,
        config: &Config,
        msg: HandleWebRequest,
    ) -> Result<Checked, (&'static str, Rejection)> {
        let webhook = match &config.webhook {
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
        // Read now, on this request: a credential saved a moment ago is seen.
        let credentials = if webhook.has_response_template() {
            crate::store::credential_cache::source_for(&self.store, self.user_id)
        } else {
            crate::template::context::no_credentials()
        };
        Ok(Checked {
            webhook,
            params,
            request: msg.request,
            key,
            captcha,
            credentials,
        })
    }

    /// Builds the write of a shaped request; it starts after the (optional) reCAPTCHA
    /// check.
    fn start_write(&self, config: &Config, shaped: Shaped) -> Prepared {
        let Shaped {
            response,
            render_error,
            payloads,
            key,
            captcha,
        } = shaped;
        let new: Vec<NewEvent> = payloads
            .into_iter()
            .map(|payload| NewEvent {
                user_id: self.user_id,
                agent_id: Some(self.agent_id),
                event_type: config.event_type.clone(),
                payload: NewEvent::payload_text(&payload),
                keep_for_seconds: config.keep_events_for,
            })
            .collect();
        let agent_id = self.agent_id;
        let log_length = self.log_length;
        let writer = self.store.writer().clone();
        let window = self.inbound.idempotency_window_seconds;
        let stored = response.clone();
        let start: StartWrite = Box::new(move || {
            let endpoint = endpoint_key(agent_id);
            let write = writer.try_write_repeatable(move |conn, out| {
                if let Some(k) = &key
                    && let Some(row) = idempotency_keys::find(conn, &endpoint, k)?
                {
                    return Ok(Written::Replayed(replay(row)));
                }
                let rows = out.insert(conn, &new, 0)?;
                let ids = rows.iter().map(|r| r.id).collect();
                if let Some(message) = &render_error {
                    agent_logs::append(
                        conn,
                        agent_id,
                        &[NewLog {
                            level: LEVEL_ERROR,
                            message: message.clone(),
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
        (start, response, captcha)
    }
}

/// A request that passed its checks, before the agent's own logic shaped it.
struct Checked {
    webhook: Arc<Webhook>,
    params: serde_json::Value,
    request: InboundRequest,
    key: Option<String>,
    captcha: Option<super::recaptcha::Check>,
    /// The owner's credentials, for a `response` template.
    credentials: Arc<dyn crate::template::liquid::CredentialSource>,
}

/// What the agent's logic made of a request: its answer and its events.
struct Shaped {
    response: WebResponse,
    render_error: Option<String>,
    payloads: Vec<serde_json::Value>,
    key: Option<String>,
    captcha: Option<super::recaptcha::Check>,
}

/// Runs the agent's response template and `payload_path`. They are user-written and
/// bounded by the sandboxes (a render may take up to its deadline), so an agent that has
/// either runs them on the blocking pool: one user's template never holds the HTTP
/// worker that serves everyone's requests. Plain agents stay inline, on the fast path.
async fn shape_off_worker(checked: Checked) -> Result<Shaped, (&'static str, Rejection)> {
    if !checked.webhook.runs_user_logic() {
        return shape(checked);
    }
    actix_web::web::block(move || shape(checked))
        .await
        .unwrap_or_else(|_| {
            Err((
                "internal",
                WebResponse::text(503, "the request could not be processed; retry later"),
            ))
        })
}

fn shape(checked: Checked) -> Result<Shaped, (&'static str, Rejection)> {
    let Checked {
        webhook,
        params,
        request,
        key,
        captcha,
        credentials,
    } = checked;
    let (response, render_error) = webhook.response(&params, &request.url, credentials);
    let payloads = webhook
        .payloads(params, &request.headers)
        .map_err(|r| ("bad_request", r))?;
    Ok(Shaped {
        response,
        render_error,
        payloads,
        key,
        captcha,
    })
}

/// Reads the agent's options into the endpoint's configuration and guard.
fn configuration(row: &AgentRow, inbound: &InboundSettings) -> (Config, Option<Guard>) {
    let options = row
        .options_json()
        .map_err(|e| OptionError::new("options", e.to_string()));
    let event_type = options
        .as_ref()
        .map(emitted_event_type)
        .unwrap_or_else(|_| "event.created".into());
    let webhook = options.and_then(|o| Webhook::new(&o)).map(Arc::new);
    // A Huginn URL has its own default limit (none, as in Huginn).
    let huginn = InboundSettings {
        default_rate_limit_per_minute: inbound.web_request_rate_limit_per_minute,
        ..inbound.clone()
    };
    let guard = webhook
        .as_ref()
        .ok()
        .map(|w| Guard::new(w.protections.clone(), &huginn).named(format!("agent {}", row.id)));
    if let Err(e) = &webhook {
        tracing::error!(agent_id = row.id, error = %e, "webhook agent has invalid options; its URL answers 503 until they are fixed");
    }
    (
        Config {
            webhook,
            event_type,
            keep_events_for: row.keep_events_for,
        },
        guard,
    )
}

/// Adds one request's outcome to the endpoint's log.
fn note(
    state: &mut State,
    method: &str,
    ip: Option<std::net::IpAddr>,
    started: std::time::Instant,
    reason: Option<&str>,
    r: &WebResponse,
    event_ids: Vec<i64>,
) {
    let failed = r.status >= 400;
    state.log.record(Outcome {
        ip,
        method,
        status: r.status,
        reason: reason.or(failed.then_some("rejected")),
        detail: failed.then_some(r.body.as_str()),
        started,
        event_ids,
    });
}

/// One request to the endpoint's URL; `secret` is the URL's last segment.
pub struct HandleWebRequest {
    pub secret: String,
    pub request: InboundRequest,
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

/// Supervises an endpoint: takes reconfiguration and flushes its log and last-request
/// time on timers and when it stops.
pub struct EndpointActor {
    core: Arc<EndpointCore>,
}

impl EndpointActor {
    pub fn new(core: Arc<EndpointCore>) -> Self {
        EndpointActor { core }
    }
}

impl Actor for EndpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(FLUSH_EVERY, |act, _| act.core.flush_last_request());
        ctx.run_interval(Duration::from_secs(1), |act, _| act.core.flush_log());
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.core.flush_last_request();
        self.core.state().log.flush_all();
        Running::Stop
    }
}

impl Supervised for EndpointActor {}

/// The agent was deleted: flush the log and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopEndpoint;

impl Handler<StopEndpoint> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: StopEndpoint, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// The agent behind the endpoint changed; take its new options.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub AgentRow);

impl Handler<Reconfigure> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
        self.core.configure(&msg.0);
    }
}
